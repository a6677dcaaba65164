// Forwarding rewrites on plain byte spans: direct-return MAC rewrite (DR),
// the tunnel encapsulations with an IPv4 or IPv6 outer header, the backend's
// family (GRE, RFC 2784, over IPv6 RFC 7676; IPIP, RFC 2003 / RFC 4213 /
// RFC 2473, any IP version inside either; GUE variant 1, direct IP in UDP as
// Linux `fou` and Katran send it), and the ICMP errors a tunnel hop owes the
// client when a DF packet no longer fits after encapsulation (ICMPv4
// fragmentation needed, ICMPv6 packet too big).
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
// Outer IPv4 header only (protocol 4 for IPv4 inside, 41 for IPv6).
inline constexpr size_t kIpipOverhead = kIpv4MinHeaderLen;
// Outer IPv4 header + UDP header; the inner IP packet follows the UDP header directly
// (GUE variant 1: its first nibble, 4 or 6, says which IP version).
inline constexpr size_t kGueOverhead = kIpv4MinHeaderLen + kUdpHeaderLen;
static_assert(kGueOverhead == 28);
// IANA's port for GUE; host.gue_port changes it.
inline constexpr uint16_t kGueDefaultPort = 6080;
// The tunnel encapsulations, as Service::forward names them (dr is not one).
enum class Tunnel : uint8_t { kGre, kIpip, kGue };
inline constexpr size_t TunnelOverhead(Tunnel t) {
  return t == Tunnel::kGre ? kGreOverhead : t == Tunnel::kIpip ? kIpipOverhead : kGueOverhead;
}
// With an IPv6 outer header (an IPv6 backend): 20 bytes more than IPv4's.
inline constexpr size_t kIpv6OuterExtra = kIpv6HeaderLen - kIpv4MinHeaderLen;
inline constexpr size_t TunnelOverhead(Tunnel t, bool ipv6_outer) {
  return TunnelOverhead(t) + (ipv6_outer ? kIpv6OuterExtra : 0);
}
// The largest overhead: the headroom a frame needs for any tunnel (GUE over IPv6: 48).
inline constexpr size_t kMaxTunnelOverhead = kGueOverhead + kIpv6OuterExtra;
static_assert(kMaxTunnelOverhead == 48);
// GUE's UDP source port, from the flow's hash: in 49152..65535 (RFC 8086 5.1, as for
// GRE-in-UDP), the same for every packet of a flow, spread over flows so that the fabric's
// ECMP spreads the tunnel's packets.
inline uint16_t GueSourcePort(uint64_t flow_hash) {
  return static_cast<uint16_t>(0xC000u | ((flow_hash >> 32) & 0x3FFFu));
}
// TTL of the packets we originate (tunnels' outer headers, ICMP errors).
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
// interface MTU once encapsulated with `overhead` bytes (TunnelOverhead).
inline bool TunnelExceedsMtu(size_t inner_ip_len, size_t overhead, size_t mtu) {
  return inner_ip_len + overhead > mtu;
}
inline bool GreExceedsMtu(size_t inner_ip_len, size_t mtu) {
  return TunnelExceedsMtu(inner_ip_len, kGreOverhead, mtu);
}

// The MTU to advertise to clients (ICMP next-hop MTU) for a tunnel's port MTU.
inline uint16_t TunnelInnerMtu(uint16_t port_mtu, size_t overhead) {
  return port_mtu > overhead ? static_cast<uint16_t>(port_mtu - overhead) : uint16_t{0};
}
inline uint16_t GreInnerMtu(uint16_t port_mtu) { return TunnelInnerMtu(port_mtu, kGreOverhead); }

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
// if `buf` is too short, the tunnel source and backend are not both IPv4 (or
// both IPv6: the IPv6 outer header below), or the result would exceed 65535
// bytes of IP.
inline size_t EncapGre(std::span<uint8_t> buf, const ParsedPacket& pkt, const GreTunnel& tunnel);
// The same with the tunnel's parts passed separately (the per-packet caller
// has them in different places and need not copy them together).
inline size_t EncapGre(std::span<uint8_t> buf, const ParsedPacket& pkt, const MacAddr& src_mac,
                       const MacAddr& dst_mac, const IpAddr& tunnel_src, const IpAddr& backend);
// ... and the flow's hash, the flow label of an IPv6 outer header (see below).
inline size_t EncapGre(std::span<uint8_t> buf, const ParsedPacket& pkt, const MacAddr& src_mac,
                       const MacAddr& dst_mac, const IpAddr& tunnel_src, const IpAddr& backend,
                       uint64_t flow_hash);

// IPIP and GUE: the same in-place rules as EncapGre, with kIpipOverhead /
// kGueOverhead bytes prepended. IPIP's outer protocol is 4 (IPv4 inside) or
// 41 (IPv6 inside). GUE's outer protocol is 17, then a UDP header: source
// port `src_port` (GueSourcePort), destination `dst_port`, length 8 + inner
// IP length, checksum 0 (allowed for an IPv4 outer header, RFC 768; the
// inner packet carries its own checksums).
//
// An IPv6 backend (and tunnel source) gets an IPv6 outer header instead,
// TunnelOverhead(t, true) bytes prepended (44 GRE, 40 IPIP, 48 GUE): traffic
// class copied from the inner packet, flow label from `flow_hash` (RFC 6438:
// the fabric spreads tunnels by it), next header 47 / 4 or 41 / 17, hop
// limit 64. GUE over IPv6 carries a full UDP checksum (RFC 6935 allows a
// zero one only where every receiver is set to accept it, RFC 6936; Linux
// accepts one only with `udp6zerocsumrx`): computed over the pseudo-header,
// the UDP header and the whole inner packet.
inline size_t EncapIpip(std::span<uint8_t> buf, const ParsedPacket& pkt, const MacAddr& src_mac,
                        const MacAddr& dst_mac, const IpAddr& tunnel_src, const IpAddr& backend,
                        uint64_t flow_hash = 0);
inline size_t EncapGue(std::span<uint8_t> buf, const ParsedPacket& pkt, const MacAddr& src_mac,
                       const MacAddr& dst_mac, const IpAddr& tunnel_src, const IpAddr& backend,
                       uint16_t src_port, uint16_t dst_port, uint64_t flow_hash = 0);

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

namespace internal {

// The part every tunnel shares: checks, the new L2 header and the outer IPv4
// header (`overhead` bytes in front of the inner IP packet, protocol
// `proto`). Returns a pointer just past the outer IPv4 header, where the
// tunnel's own header goes, or null when the packet cannot be encapsulated;
// `*new_len` is the new frame length.
inline uint8_t* EncapIpv4Outer(std::span<uint8_t> buf, const ParsedPacket& pkt,
                               const MacAddr& src_mac, const MacAddr& dst_mac,
                               const IpAddr& tunnel_src, const IpAddr& backend, size_t overhead,
                               uint8_t proto, size_t* new_len) {
  if ((pkt.family != 4 && pkt.family != 6) || !tunnel_src.is_v4() || !backend.is_v4()) {
    return nullptr;
  }
  if (pkt.l3_offset != pkt.l2_len ||
      (pkt.l2_len != kEthHeaderLen && pkt.l2_len != kEthVlanHeaderLen)) {
    return nullptr;
  }
  const size_t outer_ip_len = overhead + pkt.ip_total_len;
  if (outer_ip_len > 0xFFFF) return nullptr;
  // The original frame (at buf + overhead) must hold the inner packet.
  if (buf.size() < overhead + pkt.ip_end()) return nullptr;
  // The new length, overhead + pkt.ip_end(), fits as well.
  *new_len = pkt.l2_len + outer_ip_len;

  uint8_t* p = buf.data();
  // The new L2 header (<= 18 bytes) ends before the old one starts (at
  // `overhead`, >= 20); the outer headers then overwrite the old L2 header,
  // which `pkt` already told us everything about.
  const size_t l2 =
      WriteL2(p, dst_mac, src_mac, pkt.has_vlan, pkt.vlan_tci, ether_type::kIpv4);
  const bool df = pkt.dont_fragment;
  WriteIpv4Header(p + l2, pkt.tos, static_cast<uint16_t>(outer_ip_len),
                  df ? uint16_t{0} : static_cast<uint16_t>(pkt.ip_id), df, kOriginTtl, proto, tunnel_src, backend);
  return p + l2 + kIpv4MinHeaderLen;
}

// The IPv6 counterpart of EncapIpv4Outer: `overhead` includes the 40-byte
// outer IPv6 header; the flow label comes from `flow_hash`.
inline uint8_t* EncapIpv6Outer(std::span<uint8_t> buf, const ParsedPacket& pkt,
                               const MacAddr& src_mac, const MacAddr& dst_mac,
                               const IpAddr& tunnel_src, const IpAddr& backend, size_t overhead,
                               uint8_t proto, uint64_t flow_hash, size_t* new_len) {
  if ((pkt.family != 4 && pkt.family != 6) || !tunnel_src.is_v6() || !backend.is_v6()) {
    return nullptr;
  }
  if (pkt.l3_offset != pkt.l2_len ||
      (pkt.l2_len != kEthHeaderLen && pkt.l2_len != kEthVlanHeaderLen)) {
    return nullptr;
  }
  const size_t payload = overhead - kIpv6HeaderLen + pkt.ip_total_len;
  if (payload > 0xFFFF) return nullptr;
  if (buf.size() < overhead + pkt.ip_end()) return nullptr;
  *new_len = pkt.l2_len + kIpv6HeaderLen + payload;
  uint8_t* p = buf.data();
  const size_t l2 = WriteL2(p, dst_mac, src_mac, pkt.has_vlan, pkt.vlan_tci, ether_type::kIpv6);
  uint8_t* ip = p + l2;
  const uint32_t flow_label = static_cast<uint32_t>(flow_hash ^ (flow_hash >> 32)) & 0xFFFFFu;
  StoreBe32(ip, 0x60000000u | uint32_t{pkt.tos} << 20 | flow_label);
  StoreBe16(ip + 4, static_cast<uint16_t>(payload));
  ip[6] = proto;
  ip[7] = kOriginTtl;
  std::memcpy(ip + 8, tunnel_src.bytes.data(), 16);
  std::memcpy(ip + 24, backend.bytes.data(), 16);
  return ip + kIpv6HeaderLen;
}

// The outer header of the backend's family.
inline uint8_t* EncapOuter(std::span<uint8_t> buf, const ParsedPacket& pkt,
                           const MacAddr& src_mac, const MacAddr& dst_mac,
                           const IpAddr& tunnel_src, const IpAddr& backend, Tunnel t,
                           uint8_t proto, uint64_t flow_hash, size_t* new_len) {
  if (backend.is_v6()) {
    return EncapIpv6Outer(buf, pkt, src_mac, dst_mac, tunnel_src, backend,
                          TunnelOverhead(t, true), proto, flow_hash, new_len);
  }
  return EncapIpv4Outer(buf, pkt, src_mac, dst_mac, tunnel_src, backend, TunnelOverhead(t),
                        proto, new_len);
}

}  // namespace internal

inline size_t EncapGre(std::span<uint8_t> buf, const ParsedPacket& pkt, const MacAddr& src_mac,
                       const MacAddr& dst_mac, const IpAddr& tunnel_src, const IpAddr& backend,
                       uint64_t flow_hash) {
  size_t new_len = 0;
  uint8_t* h = internal::EncapOuter(buf, pkt, src_mac, dst_mac, tunnel_src, backend, Tunnel::kGre,
                                    inet::ip_proto::kGre, flow_hash, &new_len);
  if (h == nullptr) return 0;
  // GRE: C=0, K=0, S=0, version 0, then the inner protocol.
  const uint32_t gre =
      uint32_t{__builtin_bswap16(pkt.family == 4 ? ether_type::kIpv4 : ether_type::kIpv6)} << 16;
  std::memcpy(h, &gre, sizeof(gre));
  return new_len;
}

inline size_t EncapGre(std::span<uint8_t> buf, const ParsedPacket& pkt, const MacAddr& src_mac,
                       const MacAddr& dst_mac, const IpAddr& tunnel_src, const IpAddr& backend) {
  return EncapGre(buf, pkt, src_mac, dst_mac, tunnel_src, backend, 0);
}

inline size_t EncapIpip(std::span<uint8_t> buf, const ParsedPacket& pkt, const MacAddr& src_mac,
                        const MacAddr& dst_mac, const IpAddr& tunnel_src, const IpAddr& backend,
                        uint64_t flow_hash) {
  size_t new_len = 0;
  const uint8_t proto = pkt.family == 4 ? inet::ip_proto::kIpip : inet::ip_proto::kIpv6;
  uint8_t* h = internal::EncapOuter(buf, pkt, src_mac, dst_mac, tunnel_src, backend,
                                    Tunnel::kIpip, proto, flow_hash, &new_len);
  return h == nullptr ? 0 : new_len;
}

inline size_t EncapGue(std::span<uint8_t> buf, const ParsedPacket& pkt, const MacAddr& src_mac,
                       const MacAddr& dst_mac, const IpAddr& tunnel_src, const IpAddr& backend,
                       uint16_t src_port, uint16_t dst_port, uint64_t flow_hash) {
  size_t new_len = 0;
  uint8_t* h = internal::EncapOuter(buf, pkt, src_mac, dst_mac, tunnel_src, backend, Tunnel::kGue,
                                    inet::ip_proto::kUdp, flow_hash, &new_len);
  if (h == nullptr) return 0;
  const uint16_t udp_len = static_cast<uint16_t>(kUdpHeaderLen + pkt.ip_total_len);
  StoreBe16(h, src_port);
  StoreBe16(h + 2, dst_port);
  StoreBe16(h + 4, udp_len);
  StoreBe16(h + 6, 0);
  if (backend.is_v6()) {
    // The inner packet follows the UDP header in the buffer (EncapIpv6Outer checked its room).
    uint16_t c = L4Checksum(tunnel_src, backend, inet::ip_proto::kUdp,
                            std::span<const uint8_t>(h, udp_len));
    StoreBe16(h + 6, c == 0 ? uint16_t{0xFFFF} : c);
  }
  return new_len;
}

inline size_t EncapGre(std::span<uint8_t> buf, const ParsedPacket& pkt, const GreTunnel& tunnel) {
  return EncapGre(buf, pkt, tunnel.src_mac, tunnel.dst_mac, tunnel.tunnel_src, tunnel.backend);
}

}  // namespace ecmplb::dataplane
