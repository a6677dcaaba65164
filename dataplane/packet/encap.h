// Forwarding rewrites on plain byte spans: direct-return MAC rewrite (DR),
// GRE encapsulation (RFC 2784, IPv4 outer header), and the ICMP errors a
// tunnel hop owes the client when a DF packet no longer fits after
// encapsulation (ICMPv4 fragmentation needed, ICMPv6 packet too big).
//
// Thread-safety: pure functions writing only into the caller's buffer.
// Fast path: no allocation, exception, lock, syscall or logging; every write
// is bounds-checked against the span (a function returns 0 and may have
// written nothing useful if the buffer is too small; it never writes outside
// it).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "dataplane/packet/checksum.h"
#include "dataplane/packet/headers.h"
#include "dataplane/packet/parse.h"

namespace ecmplb::dataplane {

// Outer IPv4 header + GRE header.
inline constexpr size_t kGreOverhead = kIpv4MinHeaderLen + kGreHeaderLen;
static_assert(kGreOverhead == 24);
// TTL of the packets we originate (outer GRE header, ICMP errors).
inline constexpr uint8_t kOriginTtl = 64;
// RFC 1812 4.3.2.3: an ICMPv4 error datagram is at most 576 bytes.
inline constexpr size_t kIcmpv4ErrorMaxIpLen = 576;
// RFC 4443 2.4(c): an ICMPv6 error packet is at most the minimum MTU.
inline constexpr size_t kIcmpv6ErrorMaxIpLen = 1280;

// Direct return: sets the Ethernet source and destination MACs, nothing
// else. A frame shorter than the two addresses is left untouched.
inline void RewriteDr(std::span<uint8_t> frame, const MacAddr& src, const MacAddr& dst) {
  if (frame.size() < 2 * kEthAddrLen) return;
  std::memcpy(frame.data(), dst.bytes.data(), kEthAddrLen);
  std::memcpy(frame.data() + kEthAddrLen, src.bytes.data(), kEthAddrLen);
}

// True if an inner IP packet of inner_ip_len bytes no longer fits an
// interface MTU once GRE-encapsulated.
inline bool GreExceedsMtu(size_t inner_ip_len, size_t mtu) {
  return inner_ip_len + kGreOverhead > mtu;
}

// The MTU to advertise to clients (ICMP next-hop MTU) for a GRE port MTU.
inline uint16_t GreInnerMtu(uint16_t port_mtu) {
  return port_mtu > kGreOverhead ? static_cast<uint16_t>(port_mtu - kGreOverhead) : uint16_t{0};
}

// Where a GRE tunnel packet goes.
struct GreTunnel {
  MacAddr src_mac;    // our port's MAC
  MacAddr dst_mac;    // next hop toward the backend
  IpAddr tunnel_src;  // IPv4 source of the outer header
  IpAddr backend;     // IPv4 destination of the outer header
};

// GRE-encapsulates in place. The caller has prepended kGreOverhead bytes, so
// `buf` starts kGreOverhead bytes before the original frame, which `pkt`
// describes (offsets relative to the original frame, Parse() == kOk, IPv4 or
// IPv6). Writes a new L2 header (tunnel MACs, the original 802.1Q tag kept),
// the outer IPv4 header (TOS copied from the inner packet, id = inner id
// unless DF, DF copied from the inner IPv4 or set for IPv6, TTL 64, proto 47,
// checksum) and the GRE header; the inner IP packet stays where it is.
// Returns the new frame length (l2 + 24 + inner IP length; any trailing
// Ethernet padding of the original is past it, for the caller to trim), or 0
// if `buf` is too short, the tunnel addresses are not IPv4, or the result
// would exceed 65535 bytes of IP.
inline size_t EncapGre(std::span<uint8_t> buf, const ParsedPacket& pkt, const GreTunnel& tunnel);
// The same with the tunnel's parts passed separately (the per-packet caller
// has them in different places and need not copy them together).
inline size_t EncapGre(std::span<uint8_t> buf, const ParsedPacket& pkt, const MacAddr& src_mac,
                       const MacAddr& dst_mac, const IpAddr& tunnel_src, const IpAddr& backend);

// Builds an ICMPv4 "fragmentation needed" (type 3 code 4) reply to the
// client for the IPv4 packet in `in` (described by `pkt`, Parse() == kOk).
// `out` may be the same memory as `in` (or overlap it): the reply is built
// in place. Ethernet: dst = the frame's source MAC, src = port_mac, VLAN
// tag kept. IPv4: src = the packet's destination (the VIP), dst = its source,
// TTL 64, DF clear, TOS 0xc0. ICMP: next-hop MTU = next_hop_mtu, quote = the
// offending IP header and as much of its data as keeps the reply within 576
// bytes of IP (RFC 1812). Returns the reply frame length, or 0 if `out` is
// too short, `pkt` is not IPv4, or no error may be sent about this packet
// (a non-first fragment, an ICMP error itself, or a source address that is
// not unicast: 0/8, 127/8, 224/4 and above; RFC 1812 4.3.2.7).
size_t BuildIcmpFragNeeded(std::span<uint8_t> out, std::span<const uint8_t> in,
                           const ParsedPacket& pkt, const MacAddr& port_mac, uint16_t next_hop_mtu);

// IPv6 counterpart: ICMPv6 "packet too big" (type 2 code 0) with the MTU,
// quoting as much of the packet as fits in 1280 bytes (RFC 4443). Same
// aliasing rules; returns 0 if `pkt` is not IPv6, is itself an ICMPv6 error,
// comes from ::, ::1 or a multicast address, or `out` is too short.
size_t BuildIcmpv6PacketTooBig(std::span<uint8_t> out, std::span<const uint8_t> in,
                               const ParsedPacket& pkt, const MacAddr& port_mac, uint32_t mtu);

// ---- Inline definitions (EncapGre runs per packet) ----

namespace internal {

// Writes an Ethernet header (with the 802.1Q tag if has_vlan) at p and
// returns its length. p must have room for 18 bytes when has_vlan.
inline size_t WriteL2(uint8_t* p, const MacAddr& dst, const MacAddr& src, bool has_vlan,
                      uint16_t vlan_tci, uint16_t type) {
  std::memcpy(p, dst.bytes.data(), kEthAddrLen);
  std::memcpy(p + kEthAddrLen, src.bytes.data(), kEthAddrLen);
  if (has_vlan) {
    StoreBe16(p + 12, ether_type::kVlan);
    StoreBe16(p + 14, vlan_tci);
    StoreBe16(p + 16, type);
    return kEthVlanHeaderLen;
  }
  StoreBe16(p + 12, type);
  return kEthHeaderLen;
}

// Writes a 20-byte IPv4 header (no options) with a correct checksum, as five
// 32-bit stores of words holding the wire bytes. The checksum is summed from
// those words, not re-read from the buffer (reading back fresh stores would
// stall store forwarding), and needs no byte swap: the one's-complement sum
// of words read in host order is the wire sum read in host order (RFC 1071
// section 2(B)).
inline void WriteIpv4Header(uint8_t* ip, uint8_t tos, uint16_t total_len, uint16_t id, bool df,
                            uint8_t ttl, uint8_t proto, const IpAddr& src, const IpAddr& dst) {
  static_assert(std::endian::native == std::endian::little,
                "the header words below are laid out for a little-endian host");
  uint32_t w[5];
  w[0] = 0x45u | uint32_t{tos} << 8 | uint32_t{__builtin_bswap16(total_len)} << 16;
  w[1] =
      uint32_t{__builtin_bswap16(id)} | (df ? uint32_t{__builtin_bswap16(kIpv4FlagDf)} << 16 : 0u);
  w[2] = uint32_t{ttl} | uint32_t{proto} << 8;  // checksum field zero
  std::memcpy(&w[3], src.bytes.data(), 4);
  std::memcpy(&w[4], dst.bytes.data(), 4);
  const uint64_t acc = uint64_t{w[0]} + w[1] + w[2] + w[3] + w[4];
  w[2] |= uint32_t{static_cast<uint16_t>(~FoldSum(acc))} << 16;
  std::memcpy(ip, w, sizeof(w));
}

// True if `pkt` is an ICMP error message (no ICMP error may answer one).

}  // namespace internal

inline size_t EncapGre(std::span<uint8_t> buf, const ParsedPacket& pkt, const MacAddr& src_mac,
                       const MacAddr& dst_mac, const IpAddr& tunnel_src, const IpAddr& backend) {
  if ((pkt.family != 4 && pkt.family != 6) || !tunnel_src.is_v4() || !backend.is_v4()) {
    return 0;
  }
  if (pkt.l3_offset != pkt.l2_len ||
      (pkt.l2_len != kEthHeaderLen && pkt.l2_len != kEthVlanHeaderLen)) {
    return 0;
  }
  const size_t outer_ip_len = kGreOverhead + pkt.ip_total_len;
  if (outer_ip_len > 0xFFFF) return 0;
  const size_t new_len = pkt.l2_len + outer_ip_len;
  // The original frame (at buf + kGreOverhead) must hold the inner packet.
  if (buf.size() < kGreOverhead + pkt.ip_end()) return 0;
  // new_len == kGreOverhead + pkt.ip_end(), so it fits as well.

  uint8_t* p = buf.data();
  // The new L2 header (<= 18 bytes) ends before the old one starts (at 24);
  // the outer IP and GRE headers then overwrite the old L2 header, which
  // `pkt` already told us everything about.
  const size_t l2 =
      internal::WriteL2(p, dst_mac, src_mac, pkt.has_vlan, pkt.vlan_tci, ether_type::kIpv4);
  const bool df = pkt.dont_fragment;
  internal::WriteIpv4Header(p + l2, pkt.tos, static_cast<uint16_t>(outer_ip_len),
                            df ? uint16_t{0} : pkt.ip_id, df, kOriginTtl, inet::ip_proto::kGre,
                            tunnel_src, backend);
  // GRE: C=0, K=0, S=0, version 0, then the inner protocol.
  const uint32_t gre =
      uint32_t{__builtin_bswap16(pkt.family == 4 ? ether_type::kIpv4 : ether_type::kIpv6)} << 16;
  std::memcpy(p + l2 + kIpv4MinHeaderLen, &gre, sizeof(gre));
  return new_len;
}

inline size_t EncapGre(std::span<uint8_t> buf, const ParsedPacket& pkt, const GreTunnel& tunnel) {
  return EncapGre(buf, pkt, tunnel.src_mac, tunnel.dst_mac, tunnel.tunnel_src, tunnel.backend);
}

}  // namespace ecmplb::dataplane
