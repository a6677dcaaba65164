// frame_builder.h: the frames ecmplb-gen sends, built from (flow id, sequence number,
// timestamp) alone, so the checker can rebuild a received packet byte for byte.
//
// Layout (see traffic_model.h for addresses and ports):
//   Ethernet: --dst-mac <- --src-mac, optional 802.1Q tag (PCP 0, --vlan), IPv4 or IPv6.
//   IPv4: TOS 0, id = seq & 0xffff, DF, TTL 64, correct header checksum. IPv6: traffic class
//   and flow label 0, hop limit 64.
//   TCP: sequence number = seq, acknowledgment field = timestamp, data offset 5, flags SYN for
//   a new flow and ACK for an established one, window 65535, urgent 0, correct checksum.
//   UDP: payload bytes 0..3 = seq, 4..7 = timestamp (big-endian), correct checksum.
//   Then filler up to the frame length: 32-bit words x + k * 0x9e3779b9 (k = 0, 1, ... in host
//   byte order, the last one cut), x a mix of flow id and seq.
// The timestamp is the low 32 bits of a nanosecond clock (the TSC, converted); latency is
// (receive time - timestamp) mod 2^32, valid below 4.29 s.
// The IP packet fills the frame exactly (no Ethernet padding): frame length = --size - 4 (FCS),
// raised to the smallest frame the header stack needs (e.g. 78 B on the wire for IPv6 TCP).
//
// Thread-safety: pure functions writing only to the caller's buffer. Fast path: no
// allocation; the caller guarantees room for the service's frame_len bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "bench/gen/traffic_model.h"
#include "dataplane/packet/checksum.h"
#include "dataplane/packet/encap.h"
#include "dataplane/packet/headers.h"

namespace ecmplb::gen {

inline constexpr uint16_t kTcpWindow = 65535;
inline constexpr uint8_t kTtl = 64;

inline uint32_t Mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// Filler bytes for (flow, seq).
inline void WriteFiller(uint8_t* p, size_t n, uint64_t flow, uint32_t seq) {
  uint32_t x = Mix32(static_cast<uint32_t>(flow) ^ Mix32(seq ^ static_cast<uint32_t>(flow >> 32)));
  while (n >= 4) {
    std::memcpy(p, &x, 4);
    x += 0x9e3779b9u;
    p += 4;
    n -= 4;
  }
  if (n > 0) std::memcpy(p, &x, n);
}

// Writes the IP packet of (flow, seq, ts) at `ip` and returns its length (the service's
// ip_len).
inline size_t BuildIpPacket(const TrafficModel& m, uint64_t flow, uint32_t seq, uint32_t ts,
                            uint8_t* ip) {
  using namespace dataplane;  // NOLINT: header constants and helpers
  const GenService& s = m.service(m.ServiceOf(flow));
  const bool v4 = s.key.vip.is_v4();
  const bool tcp = s.key.proto == inet::ip_proto::kTcp;
  IpAddr src;
  src.family = s.key.vip.family;
  m.SourceAddress(flow, src.bytes.data());
  uint8_t* l4;
  if (v4) {
    internal::WriteIpv4Header(ip, 0, s.ip_len, static_cast<uint16_t>(seq), true, kTtl, s.key.proto,
                              src, s.key.vip);
    l4 = ip + kIpv4MinHeaderLen;
  } else {
    StoreBe32(ip, 0x60000000u);
    StoreBe16(ip + 4, s.l4_len);
    ip[6] = s.key.proto;
    ip[7] = kTtl;
    std::memcpy(ip + 8, src.bytes.data(), 16);
    std::memcpy(ip + 24, s.key.vip.bytes.data(), 16);
    l4 = ip + kIpv6HeaderLen;
  }
  StoreBe16(l4, m.SourcePort(flow));
  StoreBe16(l4 + 2, s.key.port);
  size_t hdr;
  if (tcp) {
    StoreBe32(l4 + 4, seq);
    StoreBe32(l4 + 8, ts);
    l4[12] = 0x50;
    l4[13] = m.is_new(flow) ? inet::tcp_flag::kSyn : inet::tcp_flag::kAck;
    StoreBe16(l4 + 14, kTcpWindow);
    StoreBe32(l4 + 16, 0);  // checksum (for now) and urgent pointer
    hdr = kTcpMinHeaderLen;
  } else {
    StoreBe16(l4 + 4, s.l4_len);
    StoreBe16(l4 + 6, 0);
    StoreBe32(l4 + 8, seq);
    StoreBe32(l4 + 12, ts);
    hdr = kUdpHeaderLen + kUdpStampLen;
  }
  WriteFiller(l4 + hdr, s.l4_len - hdr, flow, seq);
  uint16_t sum = L4Checksum(src, s.key.vip, s.key.proto, std::span<const uint8_t>(l4, s.l4_len));
  if (!tcp && sum == 0) sum = 0xFFFF;
  StoreBe16(l4 + (tcp ? 16 : 6), sum);
  return s.ip_len;
}

// Writes the Ethernet header (and VLAN tag) for a service of `family`; returns its length.
inline size_t BuildL2(const TrafficModel& m, uint8_t family, uint8_t* out) {
  const ModelOptions& o = m.options();
  return dataplane::internal::WriteL2(
      out, o.dst_mac, o.src_mac, o.vlan.has_value(), o.vlan.value_or(0),
      family == 4 ? dataplane::ether_type::kIpv4 : dataplane::ether_type::kIpv6);
}

// The whole frame; returns its length (the service's frame_len).
inline size_t BuildFrame(const TrafficModel& m, uint64_t flow, uint32_t seq, uint32_t ts,
                         uint8_t* out) {
  const size_t l2 = BuildL2(m, m.service(m.ServiceOf(flow)).key.vip.family, out);
  return l2 + BuildIpPacket(m, flow, seq, ts, out + l2);
}

}  // namespace ecmplb::gen
