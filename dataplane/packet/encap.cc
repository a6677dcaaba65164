// DR rewrite, GRE encapsulation and ICMP too-big builders; see encap.h.
#include "dataplane/packet/encap.h"

#include <algorithm>
#include <cstring>

#include "dataplane/packet/checksum.h"

namespace ecmplb::dataplane {
namespace {

using internal::WriteIpv4Header;
using internal::WriteL2;

bool IsIcmpErrorMessage(const ParsedPacket& pkt) {
  if (!pkt.has_l4) return false;
  if (pkt.family == 4 && pkt.proto == inet::ip_proto::kIcmp) {
    const uint8_t t = pkt.icmp_type;
    return t == 3 || t == 4 || t == 5 || t == 11 || t == 12;
  }
  if (pkt.family == 6 && pkt.proto == inet::ip_proto::kIcmpv6) {
    return pkt.icmp_type < 128;  // RFC 4443 2.1: errors are 0..127
  }
  return false;
}

// True if an ICMP error may be addressed to `src` (RFC 1812 4.3.2.7, RFC 4443
// 2.4(e)): not unspecified, loopback, multicast or limited broadcast.
bool IsUnicastSource(const IpAddr& src) {
  const uint8_t first = src.bytes[0];
  if (src.family == 4) return first != 0 && first != 127 && first < 224;
  if (src.family == 6) {
    if (first == 0xFF) return false;  // multicast
    for (size_t i = 0; i < 15; ++i) {
      if (src.bytes[i] != 0) return true;
    }
    return src.bytes[15] > 1;  // :: and ::1
  }
  return false;
}

// Shape checks shared by the ICMP builders: `pkt` describes `in`.
bool PacketFitsFrame(std::span<const uint8_t> in, const ParsedPacket& pkt) {
  return pkt.l3_offset == pkt.l2_len &&
         (pkt.l2_len == kEthHeaderLen || pkt.l2_len == kEthVlanHeaderLen) &&
         pkt.ip_total_len >= pkt.ip_header_len && pkt.ip_end() <= in.size();
}

}  // namespace

size_t BuildIcmpFragNeeded(std::span<uint8_t> out, std::span<const uint8_t> in,
                           const ParsedPacket& pkt, const MacAddr& port_mac,
                           uint16_t next_hop_mtu) {
  if (pkt.family != 4 || pkt.frag_offset != 0 || IsIcmpErrorMessage(pkt) ||
      !IsUnicastSource(pkt.src) || in.size() < kEthHeaderLen || !PacketFitsFrame(in, pkt)) {
    return 0;
  }
  constexpr size_t kMaxQuote = kIcmpv4ErrorMaxIpLen - kIpv4MinHeaderLen - kIcmpHeaderLen;  // 548
  const size_t quote_len = std::min<size_t>(pkt.ip_total_len, kMaxQuote);
  const size_t l2 = pkt.l2_len;
  const size_t icmp_len = kIcmpHeaderLen + quote_len;
  const size_t ip_len = kIpv4MinHeaderLen + icmp_len;
  const size_t frame_len = l2 + ip_len;
  if (out.size() < frame_len) return 0;

  // Read everything needed from `in` before writing `out` (they may alias).
  const MacAddr client_mac = MacAddr::FromBytes(in.data() + kEthAddrLen);
  uint8_t* p = out.data();
  std::memmove(p + l2 + kIpv4MinHeaderLen + kIcmpHeaderLen, in.data() + pkt.l3_offset, quote_len);

  WriteL2(p, client_mac, port_mac, pkt.has_vlan, pkt.vlan_tci, ether_type::kIpv4);
  WriteIpv4Header(p + l2, 0xC0, static_cast<uint16_t>(ip_len), 0,
                  /*df=*/false, kOriginTtl, inet::ip_proto::kIcmp, pkt.dst, pkt.src);
  uint8_t* icmp = p + l2 + kIpv4MinHeaderLen;
  icmp[0] = 3;  // destination unreachable
  icmp[1] = 4;  // fragmentation needed and DF set
  StoreBe16(icmp + 2, 0);
  StoreBe16(icmp + 4, 0);  // unused
  StoreBe16(icmp + 6, next_hop_mtu);
  StoreBe16(icmp + 2, InternetChecksum(std::span<const uint8_t>(icmp, icmp_len)));
  return frame_len;
}

size_t BuildIcmpv6PacketTooBig(std::span<uint8_t> out, std::span<const uint8_t> in,
                               const ParsedPacket& pkt, const MacAddr& port_mac, uint32_t mtu) {
  if (pkt.family != 6 || IsIcmpErrorMessage(pkt) || !IsUnicastSource(pkt.src) ||
      in.size() < kEthHeaderLen || !PacketFitsFrame(in, pkt)) {
    return 0;
  }
  constexpr size_t kMaxQuote = kIcmpv6ErrorMaxIpLen - kIpv6HeaderLen - kIcmpHeaderLen;  // 1232
  const size_t quote_len = std::min<size_t>(pkt.ip_total_len, kMaxQuote);
  const size_t l2 = pkt.l2_len;
  const size_t icmp_len = kIcmpHeaderLen + quote_len;
  const size_t frame_len = l2 + kIpv6HeaderLen + icmp_len;
  if (out.size() < frame_len) return 0;

  const MacAddr client_mac = MacAddr::FromBytes(in.data() + kEthAddrLen);
  uint8_t* p = out.data();
  std::memmove(p + l2 + kIpv6HeaderLen + kIcmpHeaderLen, in.data() + pkt.l3_offset, quote_len);

  WriteL2(p, client_mac, port_mac, pkt.has_vlan, pkt.vlan_tci, ether_type::kIpv6);
  uint8_t* ip = p + l2;
  StoreBe32(ip, 0x60000000u);  // version 6, traffic class 0, flow label 0
  StoreBe16(ip + 4, static_cast<uint16_t>(icmp_len));
  ip[6] = inet::ip_proto::kIcmpv6;
  ip[7] = kOriginTtl;
  std::memcpy(ip + 8, pkt.dst.bytes.data(), 16);
  std::memcpy(ip + 24, pkt.src.bytes.data(), 16);
  uint8_t* icmp = ip + kIpv6HeaderLen;
  icmp[0] = 2;  // packet too big
  icmp[1] = 0;
  StoreBe16(icmp + 2, 0);
  StoreBe32(icmp + 4, mtu);
  StoreBe16(icmp + 2, L4Checksum(pkt.dst, pkt.src, inet::ip_proto::kIcmpv6,
                                 std::span<const uint8_t>(icmp, icmp_len)));
  return frame_len;
}

}  // namespace ecmplb::dataplane
