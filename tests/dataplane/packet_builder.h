// Test-side packet builder: Ethernet (+802.1Q), IPv4 (options, DF/MF,
// fragment offset, TTL, id, TOS) or IPv6, then TCP (flags, options),
// UDP, ICMP/ICMPv6 (including errors quoting another packet) or a raw
// protocol, with payload and optional trailing Ethernet padding. All lengths
// and checksums are filled in. Tests only: it allocates.
//
// Thread-safety: a builder is a plain value; do not share one between
// threads while modifying it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dataplane/packet/headers.h"

namespace ecmplb::dataplane::testing {

// Parses text or aborts the test binary; for literals in tests.
MacAddr Mac(std::string_view text);
IpAddr Ip(std::string_view text);
// "45 00 00 54" -> bytes; whitespace ignored; aborts on bad input.
std::vector<uint8_t> FromHex(std::string_view hex);
// Bytes as lower-case hex, 16 per line, for failure messages.
std::string ToHex(const std::vector<uint8_t>& bytes);

class PacketBuilder {
 public:
  // Defaults: 02:00:00:00:00:01 -> 02:00:00:00:00:02, IPv4 10.0.0.1 ->
  // 10.0.0.2, TTL 64, no L4 header (protocol 253, experimental).
  PacketBuilder();

  PacketBuilder& Eth(const MacAddr& src, const MacAddr& dst);
  PacketBuilder& Vlan(uint16_t tci);
  // A non-IP frame: this EtherType followed by the payload.
  PacketBuilder& RawEtherType(uint16_t type);

  PacketBuilder& Ipv4(const IpAddr& src, const IpAddr& dst);
  PacketBuilder& Ipv6(const IpAddr& src, const IpAddr& dst);
  PacketBuilder& Ttl(uint8_t ttl);
  PacketBuilder& Tos(uint8_t tos);  // IPv4 TOS / IPv6 traffic class
  PacketBuilder& Id(uint16_t id);
  PacketBuilder& Df(bool df);
  PacketBuilder& Mf(bool mf);
  PacketBuilder& FragOffset(uint16_t units_of_8_bytes);
  // IPv4 options of this many bytes (multiple of 4, <= 40): NOPs then EOL.
  PacketBuilder& Ipv4Options(size_t bytes);

  // IPv6 extension headers, in the order added, between the fixed header and the transport:
  // a hop-by-hop (0), routing (43) or destination-options (60) header of `bytes` (a multiple
  // of 8, >= 8; padding options), or a fragment header (44).
  PacketBuilder& Ipv6Extension(uint8_t type, size_t bytes = 8);
  PacketBuilder& Ipv6Fragment(uint16_t offset_units, bool more, uint32_t id);

  PacketBuilder& Tcp(uint16_t sport, uint16_t dport, uint8_t flags);
  // TCP options of this many bytes (multiple of 4, <= 40): NOPs.
  PacketBuilder& TcpOptions(size_t bytes);
  PacketBuilder& Udp(uint16_t sport, uint16_t dport);
  // ICMP (IPv4) or ICMPv6 (IPv6) with the 32-bit "rest of header" word; the
  // payload is the message body.
  PacketBuilder& Icmp(uint8_t type, uint8_t code, uint32_t rest = 0);
  // An ICMP error quoting `quoted` (an IP packet, e.g. from BuildIp()),
  // cut to at most quote_limit bytes.
  PacketBuilder& IcmpError(uint8_t type, uint8_t code, uint32_t rest,
                           const std::vector<uint8_t>& quoted, size_t quote_limit = 1 << 16);
  // Another IP protocol: the payload follows the IP header as is.
  PacketBuilder& Proto(uint8_t proto);

  PacketBuilder& Payload(std::vector<uint8_t> payload);
  // n payload bytes 0, 1, 2, ... (mod 256).
  PacketBuilder& PayloadSize(size_t n);
  // n zero bytes after the IP packet (Ethernet minimum-size padding).
  PacketBuilder& Padding(size_t n);

  // The whole frame.
  std::vector<uint8_t> Build() const;
  // The IP packet alone (no L2, no padding).
  std::vector<uint8_t> BuildIp() const;

 private:
  enum class L4 { kNone, kTcp, kUdp, kIcmp };

  MacAddr src_mac_;
  MacAddr dst_mac_;
  std::optional<uint16_t> vlan_;
  std::optional<uint16_t> raw_ether_type_;
  IpAddr src_;
  IpAddr dst_;
  uint8_t ttl_ = 64;
  uint8_t tos_ = 0;
  uint16_t id_ = 0;
  bool df_ = false;
  bool mf_ = false;
  uint16_t frag_offset_ = 0;
  size_t ip_options_ = 0;
  struct Extension {
    uint8_t type;
    size_t bytes;
    uint16_t frag_field;  // fragment header: offset << 3 | M
    uint32_t id;
  };
  std::vector<Extension> extensions_;
  L4 l4_ = L4::kNone;
  uint8_t proto_ = 253;
  uint16_t sport_ = 0;
  uint16_t dport_ = 0;
  uint8_t tcp_flags_ = 0;
  size_t tcp_options_ = 0;
  uint8_t icmp_type_ = 0;
  uint8_t icmp_code_ = 0;
  uint32_t icmp_rest_ = 0;
  std::vector<uint8_t> payload_;
  size_t padding_ = 0;
};

// Fragments an untagged Ethernet frame's IP packet as a router or the sender's stack does:
// payloads of `bytes` (a multiple of 8) each, IPv4 by its own header's fields (identification
// `id`), IPv6 with a fragment header (identification `id`) after the fixed header (the packet
// must have no extension headers of its own). Returns the fragments in order.
std::vector<std::vector<uint8_t>> FragmentFrame(const std::vector<uint8_t>& frame, size_t bytes,
                                                uint32_t id);

}  // namespace ecmplb::dataplane::testing
