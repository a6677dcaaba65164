// Packet parser for Ethernet frames on plain byte spans: Ethernet with at
// most one 802.1Q tag, IPv4/IPv6 (IPv6 extension headers followed: hop-by-hop,
// routing, destination options, fragment; at most kMaxIpv6ExtensionHeaders),
// TCP/UDP ports and flags, ICMP/ICMPv6 type/code; plus ICMP error steering
// (the flow an ICMP error is about).
//
// Every read is bounds-checked against the span; every malformed input has
// its own ParseResult, with a stable snake_case name for counters.
//
// Thread-safety: pure functions; each call writes only its own output.
// Fast path: no allocation, exception, lock, syscall or logging.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "dataplane/packet/checksum.h"
#include "dataplane/packet/headers.h"

namespace ecmplb::dataplane {

enum class ParseResult : uint8_t {
  kOk = 0,
  kNotIp,               // ARP, LLDP, 802.3 length frames...: kernel's business
  kTruncatedEthernet,   // fewer than 14 bytes
  kTruncatedVlan,       // 802.1Q TPID but the tag does not fit
  kUnsupportedVlan,     // QinQ / a second tag
  kTruncatedIp,         // IP fixed header (or IPv4 IHL*4 bytes) do not fit
  kBadIpVersion,        // version nibble does not match the EtherType
  kBadIpHeaderLength,   // IPv4 IHL < 5
  kBadIpTotalLength,    // IPv4 total length < IHL*4 or > frame; IPv6 payload
                        // length > frame
  kBadIpChecksum,       // IPv4 header checksum (only when verifying)
  kTruncatedL4,         // TCP/UDP/ICMP header does not fit in the IP packet
  kBadTcpHeaderLength,  // TCP data offset < 5
  kBadUdpLength,        // UDP length < 8 or > IP payload (unfragmented)
  kBadExtensionHeader,  // IPv6 extension header truncated, hop-by-hop not first, or a second
                        // fragment header
  kTooManyExtensionHeaders,  // more than kMaxIpv6ExtensionHeaders before the transport header
  kIncompleteHeaderChain,    // an IPv6 first fragment without the whole header chain (RFC 7112)
  // ParseIcmpErrorFlow only:
  kNotIcmpError,        // not ICMPv4 type 3 / ICMPv6 type 1 or 2
  kTruncatedIcmpQuote,  // quoted IP header + 8 bytes do not fit
  kBadQuotedIp,         // quoted header: wrong version or IHL < 5
  kCount,               // number of values (counter array size)
};

// The IPv6 extension headers Parse walks before it gives up (kTooManyExtensionHeaders):
// legitimate packets carry one or two; the bound keeps a crafted chain from costing more.
inline constexpr int kMaxIpv6ExtensionHeaders = 8;

// Stable snake_case name ("ok", "truncated_ip", ...) for counters and logs.
const char* ParseResultName(ParseResult r);

// The 5-tuple of a flow (plus family). Ports are 0 for protocols without
// ports and for non-first fragments.
struct FlowTuple {
  uint8_t family = 0;  // 4 or 6
  uint8_t proto = 0;
  uint16_t sport = 0;  // host order
  uint16_t dport = 0;  // host order
  IpAddr src;
  IpAddr dst;

  friend bool operator==(const FlowTuple&, const FlowTuple&) = default;
};

// What Parse found. Offsets are from the start of the frame. Fields past the
// point where parsing stopped keep their zero defaults.
struct ParsedPacket {
  // L2
  uint16_t l2_len = 0;  // 14, or 18 with a VLAN tag
  bool has_vlan = false;
  uint16_t vlan_tci = 0;    // PCP/DEI/VID as on the wire (host order)
  uint16_t ether_type = 0;  // after the tag, if any
  // L3
  uint16_t l3_offset = 0;      // == l2_len
  uint8_t family = 0;          // 4 or 6 (0: not IP)
  uint8_t proto = 0;           // IPv4 protocol / IPv6: the transport's next header, after
                               // the extension headers
  uint16_t ip_header_len = 0;  // IHL*4, or 40 + the extension headers for IPv6
  uint32_t ip_total_len = 0;   // IPv4 total length, IPv6 40 + payload length
  uint8_t tos = 0;             // IPv4 TOS / IPv6 traffic class (DSCP + ECN)
  uint8_t ttl = 0;             // IPv4 TTL / IPv6 hop limit
  bool dont_fragment = false;  // IPv4 DF; always true for IPv6 (routers
                               // never fragment IPv6)
  bool is_fragment = false;    // MF set or fragment offset != 0 (IPv4 header or IPv6
                               // fragment header; an atomic IPv6 fragment is not one)
  uint32_t ip_id = 0;          // IPv4 identification; IPv6: the fragment header's (else 0)
  uint16_t frag_offset = 0;    // in 8-byte units
  IpAddr src;
  IpAddr dst;
  // L4
  uint16_t l4_offset = 0;  // l3_offset + ip_header_len
  bool has_l4 = false;     // TCP/UDP/ICMP header parsed (not a non-first
                           // fragment, not another protocol)
  uint16_t sport = 0;      // host order (TCP/UDP only)
  uint16_t dport = 0;
  uint8_t tcp_flags = 0;
  uint8_t icmp_type = 0;  // ICMP (v4) or ICMPv6, per family
  uint8_t icmp_code = 0;

  friend bool operator==(const ParsedPacket&, const ParsedPacket&) = default;

  // A fragment that is not the first: no transport header, placed by its datagram.
  bool later_fragment() const { return frag_offset != 0; }
  // End of the IP packet in the frame (trailing padding excluded).
  size_t ip_end() const { return size_t{l3_offset} + ip_total_len; }
  FlowTuple Flow() const {
    return FlowTuple{
        .family = family, .proto = proto, .sport = sport, .dport = dport, .src = src, .dst = dst};
  }
};

enum class IpChecksumMode : uint8_t {
  kVerify,  // compute and check the IPv4 header checksum
  kTrust,   // the NIC already did (or the caller does not care)
};

// Parses `frame`. On kOk every field for the layers present is set. On
// kNotIp the L2 fields are set. On any other value the packet is malformed;
// `out` holds whatever was parsed before the problem (for debugging only).
// Untagged IPv4 TCP/UDP without options or fragmentation takes a one-pass
// fast path; everything else goes through internal::ParseGeneric, with the
// same results.
// Inline: the fast path runs per packet.
inline ParseResult Parse(std::span<const uint8_t> frame, ParsedPacket* out,
                         IpChecksumMode mode = IpChecksumMode::kVerify);

namespace internal {
// The general parser alone (tests compare it with Parse's fast path).
ParseResult ParseGeneric(std::span<const uint8_t> frame, ParsedPacket* out, IpChecksumMode mode);

// The common case in one pass: an untagged IPv4 packet without options, not a fragment,
// carrying a well-formed TCP or UDP header. Returns false (and `out` is to be ignored) for
// anything else, which ParseGeneric then classifies; when it returns true, `out` is exactly
// what ParseGeneric would produce (the robustness test checks this on mutated frames).
[[gnu::always_inline]] inline bool ParseFastIpv4(const uint8_t* p, size_t n, IpChecksumMode mode,
                                                 ParsedPacket* out) {
  constexpr size_t kL4 = kEthHeaderLen + kIpv4MinHeaderLen;
  if (n < kL4 || LoadBe16(p + 12) != ether_type::kIpv4) return false;
  const uint8_t* ip = p + kEthHeaderLen;
  if (ip[0] != 0x45) return false;
  const size_t total = LoadBe16(ip + 2);
  if (total < kIpv4MinHeaderLen || total > n - kEthHeaderLen) return false;
  const uint16_t frag = LoadBe16(ip + 6);
  if ((frag & (kIpv4FlagMf | kIpv4FragOffsetMask)) != 0) return false;
  const uint8_t proto = ip[9];
  const uint8_t* l4 = ip + kIpv4MinHeaderLen;
  const size_t l4_len = total - kIpv4MinHeaderLen;
  uint8_t tcp_flags = 0;
  if (proto == inet::ip_proto::kTcp) {
    if (l4_len < kTcpMinHeaderLen) return false;
    const size_t data_offset = size_t{static_cast<uint8_t>(l4[12] >> 4)} * 4;
    if (data_offset < kTcpMinHeaderLen || data_offset > l4_len) return false;
    tcp_flags = l4[13];
  } else if (proto == inet::ip_proto::kUdp) {
    if (l4_len < kUdpHeaderLen) return false;
    const size_t udp_len = LoadBe16(l4 + 4);
    if (udp_len < kUdpHeaderLen || udp_len > l4_len) return false;
  } else {
    return false;
  }
  if (mode == IpChecksumMode::kVerify &&
      !Ipv4HeaderChecksumOk(std::span<const uint8_t>(ip, kIpv4MinHeaderLen))) {
    return false;
  }
  *out = ParsedPacket{};
  out->l2_len = kEthHeaderLen;
  out->ether_type = ether_type::kIpv4;
  out->l3_offset = kEthHeaderLen;
  out->family = 4;
  out->proto = proto;
  out->ip_header_len = kIpv4MinHeaderLen;
  out->ip_total_len = static_cast<uint32_t>(total);
  out->tos = ip[1];
  out->ttl = ip[8];
  out->dont_fragment = (frag & kIpv4FlagDf) != 0;
  out->ip_id = LoadBe16(ip + 4);
  out->src.AssignV4(ip + 12);
  out->dst.AssignV4(ip + 16);
  out->l4_offset = kL4;
  out->has_l4 = true;
  out->sport = LoadBe16(l4);
  out->dport = LoadBe16(l4 + 2);
  out->tcp_flags = tcp_flags;
  return true;
}

}  // namespace internal

inline ParseResult Parse(std::span<const uint8_t> frame, ParsedPacket* out, IpChecksumMode mode) {
  if (internal::ParseFastIpv4(frame.data(), frame.size(), mode, out)) {
    return ParseResult::kOk;
  }
  return internal::ParseGeneric(frame, out, mode);
}

// True for ICMP (v4) type 3 (destination unreachable, including code 4,
// fragmentation needed) and ICMPv6 type 1 (destination unreachable) and 2
// (packet too big): the errors we steer back to the flow's backend.
inline bool IsSteerableIcmpError(const ParsedPacket& p) {
  if (!p.has_l4) return false;
  if (p.family == 4) return p.proto == inet::ip_proto::kIcmp && p.icmp_type == 3;
  if (p.family == 6) {
    return p.proto == inet::ip_proto::kIcmpv6 && (p.icmp_type == 1 || p.icmp_type == 2);
  }
  return false;
}

// For an ICMP error (see IsSteerableIcmpError) about a packet this LB's
// backends sent (src = VIP:vport, dst = client:cport), reads the quoted IP
// header and first 8 bytes of L4 and writes the flow it belongs to, reversed:
// client:cport -> VIP:vport. `pkt` must come from Parse(frame) == kOk. Ports
// are 0 unless the quoted protocol is TCP or UDP and the quoted packet is
// not a non-first fragment.
ParseResult ParseIcmpErrorFlow(std::span<const uint8_t> frame, const ParsedPacket& pkt,
                               FlowTuple* out);

}  // namespace ecmplb::dataplane
