// frame_builder.cc: the per-service frame templates (see frame_builder.h).
#include "bench/gen/frame_builder.h"

#include "dataplane/packet/encap.h"

namespace ecmplb::gen {
namespace {

// One's-complement sum of `n` bytes at `p` starting at an even offset of the checksummed
// data, not folded.
uint64_t SumBytes(const uint8_t* p, size_t n) {
  uint64_t acc = 0;
  for (size_t i = 0; i + 1 < n; i += 2) acc += dataplane::LoadBe16(p + i);
  if (n % 2) acc += uint64_t{p[n - 1]} << 8;
  return acc;
}

}  // namespace

void BuildTemplate(const TrafficModel& m, GenService* s) {
  using namespace dataplane;  // NOLINT: header constants and helpers
  const ModelOptions& o = m.options();
  const bool v4 = s->key.vip.is_v4();
  const bool tcp = s->key.proto == inet::ip_proto::kTcp;
  s->tmpl.assign(s->frame_len, 0);
  uint8_t* f = s->tmpl.data();
  s->l2_len = static_cast<uint16_t>(
      dataplane::internal::WriteL2(f, o.dst_mac, o.src_mac, o.vlan.has_value(), o.vlan.value_or(0),
                                   v4 ? ether_type::kIpv4 : ether_type::kIpv6));
  uint8_t* ip = f + s->l2_len;
  IpAddr src;  // the constant part of the client address (IPv6: the upper 64 bits)
  src.family = s->key.vip.family;
  uint8_t* l4;
  if (v4) {
    ip[0] = 0x45;
    StoreBe16(ip + 2, s->ip_len);
    StoreBe16(ip + 6, kIpv4FlagDf);
    ip[8] = kTtl;
    ip[9] = s->key.proto;
    std::memcpy(ip + 16, s->key.vip.bytes.data(), 4);
    s->ip_sum = SumBytes(ip, kIpv4MinHeaderLen);  // src, id, checksum still zero
    l4 = ip + kIpv4MinHeaderLen;
  } else {
    StoreBe32(ip, 0x60000000u);
    StoreBe16(ip + 4, s->l4_len);
    ip[6] = s->key.proto;
    ip[7] = kTtl;
    std::memcpy(src.bytes.data(), o.client_v6.base.bytes.data(), 8);
    std::memcpy(ip + 8, src.bytes.data(), 8);
    std::memcpy(ip + 24, s->key.vip.bytes.data(), 16);
    s->ip_sum = 0;
    l4 = ip + kIpv6HeaderLen;
  }
  StoreBe16(l4 + 2, s->key.port);
  size_t hdr;
  if (tcp) {
    l4[12] = 0x50;
    StoreBe16(l4 + 14, kTcpWindow);
    hdr = kTcpMinHeaderLen;
  } else {
    StoreBe16(l4 + 4, s->l4_len);
    hdr = kUdpHeaderLen + kUdpStampLen;
  }
  for (size_t i = hdr + kTagLen; i < s->l4_len; ++i) l4[i] = FillerPattern(i - hdr - kTagLen);
  // Pseudo-header without the per-packet part of the source (IPv4: all of it), then the L4
  // header and data with every per-packet field still zero.
  s->l4_sum = PseudoHeaderSum(src, s->key.vip, s->key.proto, s->l4_len) + SumBytes(l4, s->l4_len);
  // The mask marks the bytes PatchIp sets (any flow: the same fields for every flow).
  s->mask.assign(s->ip_len, 0xFF);
  gen::internal::MarkFields mark;
  gen::internal::PatchIp(m, *s, 0, 0, 0, s->mask.data(), mark);
}

}  // namespace ecmplb::gen
