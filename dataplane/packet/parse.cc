// Packet parser and ICMP error steering; see parse.h.
#include "dataplane/packet/parse.h"

#include "dataplane/packet/checksum.h"

namespace ecmplb::dataplane {
namespace {

// Parses the L4 header at l4[0..len) for `proto` into `out`.
ParseResult ParseL4(const uint8_t* l4, size_t len, uint8_t proto, uint8_t icmp_proto,
                    ParsedPacket* out) {
  if (proto == inet::ip_proto::kTcp) {
    if (len < kTcpMinHeaderLen) return ParseResult::kTruncatedL4;
    const size_t data_offset = size_t{static_cast<uint8_t>(l4[12] >> 4)} * 4;
    if (data_offset < kTcpMinHeaderLen) {
      return ParseResult::kBadTcpHeaderLength;
    }
    if (data_offset > len) return ParseResult::kTruncatedL4;
    out->sport = LoadBe16(l4);
    out->dport = LoadBe16(l4 + 2);
    out->tcp_flags = l4[13];
    out->has_l4 = true;
    return ParseResult::kOk;
  }
  if (proto == inet::ip_proto::kUdp) {
    if (len < kUdpHeaderLen) return ParseResult::kTruncatedL4;
    const size_t udp_len = LoadBe16(l4 + 4);
    // The first fragment of a datagram carries the length of all of it.
    if (udp_len < kUdpHeaderLen || (udp_len > len && !out->is_fragment)) {
      return ParseResult::kBadUdpLength;
    }
    out->sport = LoadBe16(l4);
    out->dport = LoadBe16(l4 + 2);
    out->has_l4 = true;
    return ParseResult::kOk;
  }
  if (proto == icmp_proto) {
    if (len < kIcmpHeaderLen) return ParseResult::kTruncatedL4;
    out->icmp_type = l4[0];
    out->icmp_code = l4[1];
    out->has_l4 = true;
    return ParseResult::kOk;
  }
  return ParseResult::kOk;  // another protocol: no L4 fields
}

ParseResult ParseIpv4(const uint8_t* ip, size_t rem, IpChecksumMode mode, ParsedPacket* out) {
  if (rem < kIpv4MinHeaderLen) return ParseResult::kTruncatedIp;
  if ((ip[0] >> 4) != 4) return ParseResult::kBadIpVersion;
  const size_t ihl = size_t{static_cast<uint8_t>(ip[0] & 0x0F)} * 4;
  if (ihl < kIpv4MinHeaderLen) return ParseResult::kBadIpHeaderLength;
  if (ihl > rem) return ParseResult::kTruncatedIp;
  const size_t total = LoadBe16(ip + 2);
  if (total < ihl || total > rem) return ParseResult::kBadIpTotalLength;
  if (mode == IpChecksumMode::kVerify && !Ipv4HeaderChecksumOk(std::span<const uint8_t>(ip, ihl))) {
    return ParseResult::kBadIpChecksum;
  }
  const uint16_t frag = LoadBe16(ip + 6);
  out->family = 4;
  out->ip_header_len = static_cast<uint16_t>(ihl);
  out->ip_total_len = static_cast<uint32_t>(total);
  out->tos = ip[1];
  out->ip_id = LoadBe16(ip + 4);
  out->dont_fragment = (frag & kIpv4FlagDf) != 0;
  out->frag_offset = frag & kIpv4FragOffsetMask;
  out->is_fragment = (frag & kIpv4FlagMf) != 0 || out->frag_offset != 0;
  out->ttl = ip[8];
  out->proto = ip[9];
  out->src.AssignV4(ip + 12);
  out->dst.AssignV4(ip + 16);
  out->l4_offset = static_cast<uint16_t>(out->l3_offset + ihl);
  if (out->frag_offset != 0) return ParseResult::kOk;  // no L4 header here
  return ParseL4(ip + ihl, total - ihl, out->proto, inet::ip_proto::kIcmp, out);
}

// Walks the extension headers of the IPv6 packet ip[0..end) from ip[40] (next header `nh`);
// sets the fragment fields, proto and the offset of the transport header.
ParseResult WalkIpv6ExtensionHeaders(const uint8_t* ip, size_t end, ParsedPacket* out) {
  uint8_t nh = ip[6];
  size_t off = kIpv6HeaderLen;
  bool fragment_header = false;
  for (int n = 0;; ++n) {
    const bool chained = nh == inet::ip_proto::kHopByHop || nh == inet::ip_proto::kIpv6Routing ||
                         nh == inet::ip_proto::kIpv6DestOptions ||
                         nh == inet::ip_proto::kIpv6Fragment;
    if (!chained) break;
    if (n == kMaxIpv6ExtensionHeaders) return ParseResult::kTooManyExtensionHeaders;
    // Hop-by-hop only right after the fixed header (RFC 8200 4.1); one fragment header.
    if ((nh == inet::ip_proto::kHopByHop && n != 0) ||
        (nh == inet::ip_proto::kIpv6Fragment && fragment_header)) {
      return ParseResult::kBadExtensionHeader;
    }
    // A first fragment holds the whole chain (RFC 7112): what does not fit in it never will.
    const ParseResult truncated = out->is_fragment ? ParseResult::kIncompleteHeaderChain
                                                   : ParseResult::kBadExtensionHeader;
    if (end - off < 8) return truncated;
    const uint8_t* h = ip + off;
    if (nh == inet::ip_proto::kIpv6Fragment) {
      fragment_header = true;
      const uint16_t field = LoadBe16(h + 2);
      out->frag_offset = static_cast<uint16_t>(field >> 3);
      // An atomic fragment (offset 0, no more fragments; RFC 6946) is a whole datagram.
      out->is_fragment = out->frag_offset != 0 || (field & 1) != 0;
      if (out->is_fragment) out->ip_id = LoadBe32(h + 4);
      nh = h[0];
      off += 8;
      if (out->frag_offset != 0) break;  // the rest of the chain is in the first fragment
      continue;
    }
    const size_t len = (size_t{h[1]} + 1) * 8;
    if (len > end - off) return truncated;
    nh = h[0];
    off += len;
  }
  out->proto = nh;
  out->ip_header_len = static_cast<uint16_t>(off);
  out->l4_offset = static_cast<uint16_t>(out->l3_offset + off);
  return ParseResult::kOk;
}

ParseResult ParseIpv6(const uint8_t* ip, size_t rem, ParsedPacket* out) {
  if (rem < kIpv6HeaderLen) return ParseResult::kTruncatedIp;
  if ((ip[0] >> 4) != 6) return ParseResult::kBadIpVersion;
  const size_t payload = LoadBe16(ip + 4);
  if (kIpv6HeaderLen + payload > rem) return ParseResult::kBadIpTotalLength;
  const size_t end = kIpv6HeaderLen + payload;
  out->family = 6;
  out->ip_header_len = static_cast<uint16_t>(kIpv6HeaderLen);
  out->ip_total_len = static_cast<uint32_t>(end);
  out->tos = static_cast<uint8_t>(((ip[0] & 0x0F) << 4) | (ip[1] >> 4));
  out->dont_fragment = true;
  out->proto = ip[6];
  out->ttl = ip[7];
  out->src.AssignV6(ip + 8);
  out->dst.AssignV6(ip + 24);
  out->l4_offset = static_cast<uint16_t>(out->l3_offset + kIpv6HeaderLen);
  if (const ParseResult r = WalkIpv6ExtensionHeaders(ip, end, out); r != ParseResult::kOk) {
    return r;
  }
  if (out->frag_offset != 0) return ParseResult::kOk;  // no transport header here
  const size_t hlen = out->ip_header_len;
  const ParseResult r = ParseL4(ip + hlen, end - hlen, out->proto, inet::ip_proto::kIcmpv6, out);
  // A first fragment too short for its transport header breaks RFC 7112 as well.
  if (r == ParseResult::kTruncatedL4 && out->is_fragment) {
    return ParseResult::kIncompleteHeaderChain;
  }
  return r;
}

}  // namespace

const char* ParseResultName(ParseResult r) {
  switch (r) {
    case ParseResult::kOk:
      return "ok";
    case ParseResult::kNotIp:
      return "not_ip";
    case ParseResult::kTruncatedEthernet:
      return "truncated_ethernet";
    case ParseResult::kTruncatedVlan:
      return "truncated_vlan";
    case ParseResult::kUnsupportedVlan:
      return "unsupported_vlan";
    case ParseResult::kTruncatedIp:
      return "truncated_ip";
    case ParseResult::kBadIpVersion:
      return "bad_ip_version";
    case ParseResult::kBadIpHeaderLength:
      return "bad_ip_header_length";
    case ParseResult::kBadIpTotalLength:
      return "bad_ip_total_length";
    case ParseResult::kBadIpChecksum:
      return "bad_ip_checksum";
    case ParseResult::kTruncatedL4:
      return "truncated_l4";
    case ParseResult::kBadTcpHeaderLength:
      return "bad_tcp_header_length";
    case ParseResult::kBadUdpLength:
      return "bad_udp_length";
    case ParseResult::kBadExtensionHeader:
      return "bad_extension_header";
    case ParseResult::kTooManyExtensionHeaders:
      return "too_many_extension_headers";
    case ParseResult::kIncompleteHeaderChain:
      return "incomplete_header_chain";
    case ParseResult::kNotIcmpError:
      return "not_icmp_error";
    case ParseResult::kTruncatedIcmpQuote:
      return "truncated_icmp_quote";
    case ParseResult::kBadQuotedIp:
      return "bad_quoted_ip";
    case ParseResult::kCount:
      break;
  }
  return "unknown";
}

namespace {}  // namespace

namespace internal {

ParseResult ParseGeneric(std::span<const uint8_t> frame, ParsedPacket* out, IpChecksumMode mode) {
  *out = ParsedPacket{};
  const uint8_t* p = frame.data();
  const size_t n = frame.size();
  if (n < kEthHeaderLen) return ParseResult::kTruncatedEthernet;
  uint16_t type = LoadBe16(p + 12);
  size_t l2 = kEthHeaderLen;
  if (type == ether_type::kVlan) {
    if (n < kEthVlanHeaderLen) return ParseResult::kTruncatedVlan;
    out->has_vlan = true;
    out->vlan_tci = LoadBe16(p + 14);
    type = LoadBe16(p + 16);
    l2 = kEthVlanHeaderLen;
  }
  if (type == ether_type::kVlan || type == ether_type::kQinQ || type == ether_type::kQinQOld) {
    return ParseResult::kUnsupportedVlan;
  }
  out->l2_len = static_cast<uint16_t>(l2);
  out->l3_offset = static_cast<uint16_t>(l2);
  out->ether_type = type;
  if (type == ether_type::kIpv4) return ParseIpv4(p + l2, n - l2, mode, out);
  if (type == ether_type::kIpv6) return ParseIpv6(p + l2, n - l2, out);
  return ParseResult::kNotIp;
}

}  // namespace internal

ParseResult ParseIcmpErrorFlow(std::span<const uint8_t> frame, const ParsedPacket& pkt,
                               FlowTuple* out) {
  if (!IsSteerableIcmpError(pkt)) return ParseResult::kNotIcmpError;
  // The quote runs from after the 8-byte ICMP header to the end of the IP
  // packet; clamp to the span in case pkt and frame disagree.
  size_t begin = size_t{pkt.l4_offset} + kIcmpHeaderLen;
  size_t end = pkt.ip_end();
  if (end > frame.size()) end = frame.size();
  if (begin > end) return ParseResult::kTruncatedIcmpQuote;
  const uint8_t* q = frame.data() + begin;
  const size_t qlen = end - begin;

  // Validate everything before writing `out`.
  size_t inner_hlen;
  uint8_t proto;
  bool ports_present;
  if (pkt.family == 4) {
    if (qlen < kIpv4MinHeaderLen) return ParseResult::kTruncatedIcmpQuote;
    if ((q[0] >> 4) != 4) return ParseResult::kBadQuotedIp;
    inner_hlen = size_t{static_cast<uint8_t>(q[0] & 0x0F)} * 4;
    if (inner_hlen < kIpv4MinHeaderLen) return ParseResult::kBadQuotedIp;
    proto = q[9];
    ports_present = (LoadBe16(q + 6) & kIpv4FragOffsetMask) == 0;
  } else {
    if (qlen < kIpv6HeaderLen) return ParseResult::kTruncatedIcmpQuote;
    if ((q[0] >> 4) != 6) return ParseResult::kBadQuotedIp;
    inner_hlen = kIpv6HeaderLen;
    proto = q[6];
    ports_present = true;
  }
  // RFC 792 / RFC 4443 quote at least the IP header and 8 bytes of L4.
  if (qlen < inner_hlen + 8) return ParseResult::kTruncatedIcmpQuote;
  ports_present = ports_present && (proto == inet::ip_proto::kTcp || proto == inet::ip_proto::kUdp);

  // The quoted packet went VIP:vport -> client:cport; the flow it belongs
  // to is client:cport -> VIP:vport.
  out->family = pkt.family;
  out->proto = proto;
  if (pkt.family == 4) {
    out->src.AssignV4(q + 16);
    out->dst.AssignV4(q + 12);
  } else {
    out->src.AssignV6(q + 24);
    out->dst.AssignV6(q + 8);
  }
  out->sport = ports_present ? LoadBe16(q + inner_hlen + 2) : uint16_t{0};
  out->dport = ports_present ? LoadBe16(q + inner_hlen) : uint16_t{0};
  return ParseResult::kOk;
}

}  // namespace ecmplb::dataplane
