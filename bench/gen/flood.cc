// flood.cc: see flood.h.
#include "bench/gen/flood.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/inet.h"
#include "common/status_macros.h"
#include "bench/gen/frame_builder.h"
#include "dataplane/packet/checksum.h"
#include "dataplane/packet/encap.h"

namespace ecmplb::gen {
namespace {

using dataplane::StoreBe16;
using dataplane::StoreBe32;

constexpr const char* kKindNames[kFloodKinds] = {"host-tcp", "host-udp", "icmp-echo", "nonvip",
                                                 "garbage"};
constexpr uint8_t kIcmpEchoRequest = 8;

// One's-complement sum of `n` bytes at `p` (from an even offset of the checksummed data),
// not folded.
uint64_t SumBytes(const uint8_t* p, size_t n) {
  uint64_t acc = 0;
  for (size_t i = 0; i + 1 < n; i += 2) acc += dataplane::LoadBe16(p + i);
  if (n % 2) acc += uint64_t{p[n - 1]} << 8;
  return acc;
}

// An IPv4 prefix as [base, base + size), host order.
struct Range {
  uint32_t base = 0;
  uint64_t size = 0;
  bool Contains(uint32_t a) const { return uint64_t{a - base} < size; }
};
Range RangeOf(const ClientNet& n) {
  return Range{n.base.v4_host(), uint64_t{1} << (32 - n.prefix)};
}

}  // namespace

const char* FloodKindName(FloodKind k) {
  return kKindNames[static_cast<size_t>(k)];
}

absl::StatusOr<std::vector<FloodKind>> ParseFloodKinds(const std::vector<std::string>& values) {
  std::vector<FloodKind> out;
  auto add = [&](FloodKind k) {
    if (std::find(out.begin(), out.end(), k) == out.end()) out.push_back(k);
  };
  for (const std::string& v : values) {
    for (absl::string_view name : absl::StrSplit(v, ',', absl::SkipWhitespace())) {
      if (name == "all") {
        for (size_t i = 0; i < kFloodKinds; ++i) add(static_cast<FloodKind>(i));
        continue;
      }
      const auto* it = std::find(std::begin(kKindNames), std::end(kKindNames), name);
      if (it == std::end(kKindNames)) {
        return absl::InvalidArgumentError(
            absl::StrCat("--flood ", name,
                         ": expected host-tcp, host-udp, icmp-echo, nonvip, garbage or all "
                         "(repeatable or a comma list)"));
      }
      add(static_cast<FloodKind>(it - std::begin(kKindNames)));
    }
  }
  if (out.empty()) {
    for (size_t i = 0; i < kFloodKinds; ++i) out.push_back(static_cast<FloodKind>(i));
  }
  return out;
}

uint64_t FloodCounts::total_packets() const {
  uint64_t n = 0;
  for (uint64_t p : packets) n += p;
  return n;
}

uint64_t FloodCounts::total_bytes() const {
  uint64_t n = 0;
  for (uint64_t b : bytes) n += b;
  return n;
}

void FloodCounts::Merge(const FloodCounts& o) {
  for (size_t i = 0; i < kFloodKinds; ++i) {
    packets[i] += o.packets[i];
    bytes[i] += o.bytes[i];
  }
}

absl::StatusOr<std::unique_ptr<const FloodSet>> FloodSet::Create(const control::Config& config,
                                                                 const TrafficModel& m,
                                                                 FloodOptions options) {
  std::unique_ptr<FloodSet> s(new FloodSet());
  if (options.net.base.family == 0) {
    ECMPLB_ASSIGN_OR_RETURN(options.net, ParseClientNet(kDefaultFloodNet));
  }
  if (!options.net.base.is_v4()) {
    return absl::InvalidArgumentError("--flood-net: must be an IPv4 range (e.g. 203.0.113.0/24)");
  }
  if (options.kinds.empty()) {
    for (size_t i = 0; i < kFloodKinds; ++i) options.kinds.push_back(static_cast<FloodKind>(i));
  }
  options.share = std::fmin(1.0, std::fmax(0.0, options.share));
  s->opt_ = options;
  const std::string net_text =
      absl::StrCat(options.net.base.ToString(), "/", static_cast<int>(options.net.prefix));
  const Range flood = RangeOf(options.net);
  s->src_base_ = options.net.base.v4_host();
  s->src_addrs_ = static_cast<uint32_t>(options.net.addrs);

  // Addresses a flood frame must never come from or go to (the checker would take the test
  // frames of that address for flood), and nonvip must not aim at.
  const ModelOptions& mo = m.options();
  const Range client = RangeOf(mo.client_v4);
  if (flood.Contains(client.base) || client.Contains(flood.base)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--flood-net ", net_text,
                     " overlaps the IPv4 --client-net: give disjoint "
                     "ranges (flood sources must never look like test flows)"));
  }
  const dataplane::HostInfo& host = m.snapshot().host();
  std::vector<std::pair<uint32_t, std::string>> reserved;  // address, what it is
  if (host.address.is_v4()) reserved.emplace_back(host.address.v4_host(), "host.address");
  if (host.tunnel_source.is_v4()) {
    reserved.emplace_back(host.tunnel_source.v4_host(), "host.tunnel_source");
  }
  std::vector<uint32_t> vips;
  for (const auto& svc : m.snapshot().services()) {
    if (svc->key.vip.is_v4()) {
      reserved.emplace_back(svc->key.vip.v4_host(), "a VIP");
      if (std::find(vips.begin(), vips.end(), svc->key.vip.v4_host()) == vips.end()) {
        vips.push_back(svc->key.vip.v4_host());
      }
    }
    for (const auto& be : svc->backends) {
      if (be.addr.is_v4()) reserved.emplace_back(be.addr.v4_host(), "a backend");
    }
  }
  if (auto gw = dataplane::IpAddr::Parse(config.host.gateway); gw.ok() && gw->is_v4()) {
    reserved.emplace_back(gw->v4_host(), "host.gateway");
  }
  for (const Neighbor& n : m.Neighbors()) {
    if (n.addr.is_v4()) reserved.emplace_back(n.addr.v4_host(), "a next hop");
  }
  for (const auto& [a, what] : reserved) {
    if (flood.Contains(a)) {
      return absl::InvalidArgumentError(absl::StrCat("--flood-net ", net_text, " holds ", what,
                                                     " (", dataplane::IpAddr::V4(a).ToString(),
                                                     "): choose another range"));
    }
  }
  if (!host.address.is_v4()) {
    return absl::InvalidArgumentError("--flood-share: the config has no IPv4 host.address");
  }
  const uint32_t host_addr = host.address.v4_host();

  // nonvip destinations: host.address + 100..200 in the host's subnet (else any address of the
  // subnet, the first 65536 tried), none of the reserved ones.
  const bool want_nonvip = std::find(options.kinds.begin(), options.kinds.end(),
                                     FloodKind::kNonVip) != options.kinds.end();
  if (want_nonvip) {
    const int prefix = std::min<int>(config.host.prefix_length, 32);
    const uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
    const uint32_t subnet = host_addr & mask;
    auto usable = [&](uint32_t a) {
      if ((a & mask) != subnet || a == subnet || a == (subnet | ~mask)) return false;
      if (flood.Contains(a) || client.Contains(a)) return false;
      for (const auto& [r, what] : reserved) {
        if (r == a) return false;
      }
      return true;
    };
    for (uint32_t off = 100; off <= 200; ++off) {
      if (usable(host_addr + off)) s->nonvip_.push_back(host_addr + off);
    }
    for (uint32_t i = 1; s->nonvip_.empty() && i < 65536 && i < ~mask; ++i) {
      if (usable(subnet + i)) s->nonvip_.push_back(subnet + i);
    }
    if (s->nonvip_.empty()) {
      return absl::InvalidArgumentError(
          "--flood nonvip: the host's subnet has no address that is not the host, a VIP, a "
          "backend or a next hop: leave nonvip out");
    }
  }
  std::vector<uint32_t> icmp_targets{host_addr};
  for (uint32_t v : vips) {
    if (v != host_addr) icmp_targets.push_back(v);
  }

  // The templates: the kinds in turn.
  const size_t nk = options.kinds.size();
  const size_t count = (kFloodTemplates + nk - 1) / nk * nk;
  const size_t len = std::max<size_t>(mo.frame_size - kFcsLen, 60);
  const size_t stride = (len + 63) / 64 * 64;
  s->storage_.assign(count * stride, 0);
  std::array<size_t, kFloodKinds> nth{};  // templates of each kind so far
  for (size_t i = 0; i < count; ++i) {
    FloodTemplate t;
    t.kind = options.kinds[i % nk];
    const size_t j = nth[static_cast<size_t>(t.kind)]++;
    t.len = static_cast<uint16_t>(len);
    t.offset = i * stride;
    uint8_t* f = s->storage_.data() + t.offset;
    t.l3 = static_cast<uint16_t>(
        dataplane::internal::WriteL2(f, mo.dst_mac, mo.src_mac, mo.vlan.has_value(),
                                     mo.vlan.value_or(0), dataplane::ether_type::kIpv4));
    uint8_t* ip = f + t.l3;
    const size_t ip_len = len - t.l3;
    if (t.kind == FloodKind::kGarbage) {
      for (size_t b = 0; b < ip_len; ++b) {
        ip[b] = static_cast<uint8_t>(Mix32(static_cast<uint32_t>(i * 4096 + b) ^ 0x6a09e667u));
      }
      StoreBe32(ip + 12, s->src_base_ + 1 + static_cast<uint32_t>(i % s->src_addrs_));
      s->templates_.push_back(t);
      continue;
    }
    switch (t.kind) {
      case FloodKind::kHostTcp:
        t.proto = inet::ip_proto::kTcp;
        t.dst = host_addr;
        break;
      case FloodKind::kHostUdp:
        t.proto = inet::ip_proto::kUdp;
        t.dst = host_addr;
        break;
      case FloodKind::kIcmpEcho:
        t.proto = inet::ip_proto::kIcmp;
        t.dst = icmp_targets[j % icmp_targets.size()];
        break;
      case FloodKind::kNonVip:
        t.proto = j % 2 == 0 ? inet::ip_proto::kTcp : inet::ip_proto::kUdp;
        t.dst = s->nonvip_[j % s->nonvip_.size()];
        break;
      case FloodKind::kGarbage:
        break;
    }
    ip[0] = 0x45;
    StoreBe16(ip + 2, static_cast<uint16_t>(ip_len));
    StoreBe16(ip + 6, dataplane::kIpv4FlagDf);
    ip[8] = kTtl;
    ip[9] = t.proto;
    StoreBe32(ip + 16, t.dst);
    t.ip_sum = SumBytes(ip, dataplane::kIpv4MinHeaderLen);  // id, source, checksum zero
    uint8_t* l4 = ip + dataplane::kIpv4MinHeaderLen;
    const size_t l4_len = ip_len - dataplane::kIpv4MinHeaderLen;
    if (t.proto == inet::ip_proto::kIcmp) {
      l4[0] = kIcmpEchoRequest;
      StoreBe16(l4 + 4, static_cast<uint16_t>(0xF100 + i));  // identifier
      t.l4_sum = SumBytes(l4, l4_len);                       // sequence, checksum zero
    } else {
      if (t.proto == inet::ip_proto::kTcp) {
        l4[12] = 0x50;
        l4[13] = inet::tcp_flag::kSyn;
        StoreBe16(l4 + 14, kTcpWindow);
      } else {
        StoreBe16(l4 + 4, static_cast<uint16_t>(l4_len));
      }
      // Ports, sequence number, checksum and source address still zero.
      t.l4_sum = dataplane::PseudoHeaderSum(dataplane::IpAddr::V4(0), dataplane::IpAddr::V4(t.dst),
                                            t.proto, static_cast<uint32_t>(l4_len)) +
                 SumBytes(l4, l4_len);
    }
    s->templates_.push_back(t);
  }
  return std::unique_ptr<const FloodSet>(std::move(s));
}

size_t FloodSet::Build(size_t slot, uint32_t stream, uint64_t k, uint8_t* out) const {
  const FloodTemplate& t = templates_[slot];
  std::memcpy(out, storage_.data() + t.offset, t.len);
  if (t.kind == FloodKind::kGarbage) return t.len;
  const uint32_t r = Mix32(static_cast<uint32_t>(k) ^
                           Mix32(stream * 0x9E3779B9u ^ static_cast<uint32_t>(k >> 32)));
  uint8_t* ip = out + t.l3;
  const uint32_t src = src_base_ + 1 + r % src_addrs_;
  const uint16_t id = static_cast<uint16_t>(k);
  StoreBe16(ip + 4, id);
  StoreBe32(ip + 12, src);
  StoreBe16(ip + 10,
            static_cast<uint16_t>(~dataplane::FoldSum(t.ip_sum + id + internal::Words32(src))));
  uint8_t* l4 = ip + dataplane::kIpv4MinHeaderLen;
  uint64_t sum = t.l4_sum;
  if (t.proto == inet::ip_proto::kIcmp) {
    StoreBe16(l4 + 6, id);  // sequence number
    sum += id;
    StoreBe16(l4 + 2, static_cast<uint16_t>(~dataplane::FoldSum(sum)));
    return t.len;
  }
  const uint32_t r2 = Mix32(r + 0x3C6EF372u);
  const uint32_t r3 = Mix32(r2 + 0xA54FF53Au);
  const uint16_t sport = static_cast<uint16_t>(kFirstPort + r2 % kPortsPerAddr);
  const uint16_t dport = static_cast<uint16_t>(std::max<uint32_t>(r3 & 0xFFFF, 1));
  StoreBe16(l4, sport);
  StoreBe16(l4 + 2, dport);
  sum += internal::Words32(src) + sport + dport;
  if (t.proto == inet::ip_proto::kTcp) {
    StoreBe32(l4 + 4, r3);  // initial sequence number
    sum += internal::Words32(r3);
    StoreBe16(l4 + 16, static_cast<uint16_t>(~dataplane::FoldSum(sum)));
  } else {
    uint16_t c = static_cast<uint16_t>(~dataplane::FoldSum(sum));
    StoreBe16(l4 + 6, c == 0 ? uint16_t{0xFFFF} : c);
  }
  return t.len;
}

FloodSchedule::FloodSchedule(const FloodSet* set, uint32_t stream) : set_(set), stream_(stream) {
  if (set_ != nullptr && set_->size() > 0) {
    step_ = static_cast<uint64_t>(std::llround(set_->options().share * static_cast<double>(kOne)));
  }
}

}  // namespace ecmplb::gen
