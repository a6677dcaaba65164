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
//   Then the filler up to the frame length: a 4-byte tag Mix32(flow, seq) (cut if fewer bytes
//   are left), then the fixed pattern byte i = (i * 7 + 0x5a) mod 256.
// The timestamp is the low 32 bits of a nanosecond clock (the TSC, converted); latency is
// (receive time - timestamp) mod 2^32, valid below 4.29 s.
// The IP packet fills the frame exactly (no Ethernet padding): frame length = --size - 4 (FCS),
// raised to the smallest frame the header stack needs (e.g. 78 B on the wire for IPv6 TCP).
//
// How: each service has a template frame with every constant byte in place and the
// one's-complement sums of its constant parts (GenService::tmpl, ip_sum, l4_sum); a frame is a
// copy of the template with the per-packet fields patched in and both checksums finished from
// those sums (no pass over the payload).
//
// Thread-safety: pure functions writing only to the caller's buffer. Fast path: no
// allocation; the caller guarantees room for the service's frame_len bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

#include "bench/gen/traffic_model.h"
#include "common/inet.h"
#include "dataplane/packet/checksum.h"
#include "dataplane/packet/headers.h"

namespace ecmplb::gen {

inline constexpr uint16_t kTcpWindow = 65535;
inline constexpr uint8_t kTtl = 64;
inline constexpr size_t kTagLen = 4;

inline uint32_t Mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// The filler's tag for (flow, seq).
inline uint32_t FillerTag(uint64_t flow, uint32_t seq) {
  return Mix32(static_cast<uint32_t>(flow) ^ Mix32(seq ^ static_cast<uint32_t>(flow >> 32)));
}
// Filler pattern byte i (counted from the first byte after the tag).
inline uint8_t FillerPattern(size_t i) {
  return static_cast<uint8_t>(i * 7 + 0x5a);
}

// Fills in s->tmpl, l2_len, ip_sum and l4_sum (TrafficModel::Create calls it).
void BuildTemplate(const TrafficModel& m, GenService* s);

namespace internal {

inline uint64_t Words32(uint32_t v) {
  return (v >> 16) + (v & 0xFFFF);
}

// What PatchIp does with each per-packet field: write it (frames), compare it with what is
// there (the checker, on a received packet: nothing is written), or mark it in a mask.
struct WriteFields {
  void U8(uint8_t* p, uint8_t v) { *p = v; }
  void U16(uint8_t* p, uint16_t v) { dataplane::StoreBe16(p, v); }
  void U32(uint8_t* p, uint32_t v) { dataplane::StoreBe32(p, v); }
};
struct VerifyFields {
  uint32_t diff = 0;  // non-zero: some field differs
  void U8(uint8_t* p, uint8_t v) { diff |= *p ^ v; }
  void U16(uint8_t* p, uint16_t v) { diff |= dataplane::LoadBe16(p) ^ v; }
  void U32(uint8_t* p, uint32_t v) { diff |= dataplane::LoadBe32(p) ^ v; }
};
struct MarkFields {  // the template's mask: 0x00 on per-packet bytes
  void U8(uint8_t* p, uint8_t) { *p = 0; }
  void U16(uint8_t* p, uint16_t) { std::memset(p, 0, 2); }
  void U32(uint8_t* p, uint32_t) { std::memset(p, 0, 4); }
};

// Puts the per-packet fields of (flow, seq, ts) into the IP packet at `ip` (a copy of the
// template's IP packet, when writing) and finishes its checksums: the one description of
// which bytes vary, shared by the builder, the checker and the template's mask.
template <typename Fields>
[[gnu::always_inline]] inline void PatchIp(const TrafficModel& m, const GenService& s,
                                           uint64_t flow, uint32_t seq, uint32_t ts, uint8_t* ip,
                                           Fields& put) {
  const bool tcp = s.key.proto == inet::ip_proto::kTcp;
  const uint64_t addr_offset = 1 + flow / kPortsPerAddr;
  const uint16_t sport = static_cast<uint16_t>(kFirstPort + flow % kPortsPerAddr);
  uint64_t l4_sum = s.l4_sum;
  uint8_t* l4;
  if (s.key.vip.is_v4()) {
    const uint32_t src = static_cast<uint32_t>(m.options().client_v4.base.v4_host() + addr_offset);
    const uint16_t id = static_cast<uint16_t>(seq);
    put.U16(ip + 4, id);
    put.U32(ip + 12, src);
    put.U16(ip + 10, static_cast<uint16_t>(~dataplane::FoldSum(s.ip_sum + Words32(src) + id)));
    l4_sum += Words32(src);
    l4 = ip + dataplane::kIpv4MinHeaderLen;
  } else {
    uint64_t lo;
    std::memcpy(&lo, m.options().client_v6.base.bytes.data() + 8, 8);
    lo = __builtin_bswap64(lo) + addr_offset;
    put.U32(ip + 16, static_cast<uint32_t>(lo >> 32));
    put.U32(ip + 20, static_cast<uint32_t>(lo));
    l4_sum += Words32(static_cast<uint32_t>(lo >> 32)) + Words32(static_cast<uint32_t>(lo));
    l4 = ip + dataplane::kIpv6HeaderLen;
  }
  put.U16(l4, sport);
  const size_t hdr = tcp ? dataplane::kTcpMinHeaderLen : dataplane::kUdpHeaderLen + kUdpStampLen;
  const size_t stamp = tcp ? 4 : dataplane::kUdpHeaderLen;  // seq, then the timestamp
  put.U32(l4 + stamp, seq);
  put.U32(l4 + stamp + 4, ts);
  l4_sum += sport + Words32(seq) + Words32(ts);
  if (tcp) {
    const uint8_t flags = m.is_new(flow) ? inet::tcp_flag::kSyn : inet::tcp_flag::kAck;
    put.U8(l4 + 13, flags);
    l4_sum += flags;
  }
  const size_t room = s.l4_len - hdr;
  const uint32_t tag = FillerTag(flow, seq);
  if (room >= kTagLen) {
    put.U32(l4 + hdr, tag);
    l4_sum += Words32(tag);
  } else {
    for (size_t i = 0; i < room; ++i) {
      const uint8_t b = static_cast<uint8_t>(tag >> (24 - 8 * i));
      put.U8(l4 + hdr + i, b);
      l4_sum += i % 2 == 0 ? uint64_t{b} << 8 : b;
    }
  }
  uint16_t sum = static_cast<uint16_t>(~dataplane::FoldSum(l4_sum));
  if (!tcp && sum == 0) sum = 0xFFFF;
  put.U16(l4 + (tcp ? 16 : 6), sum);
}

}  // namespace internal

// Writes the IP packet of (flow, seq, ts) of service `si` (ServiceOf(flow)) at `ip` and returns
// its length (the service's ip_len).
inline size_t BuildIpPacket(const TrafficModel& m, size_t si, uint64_t flow, uint32_t seq,
                            uint32_t ts, uint8_t* ip) {
  const GenService& s = m.service(si);
  std::memcpy(ip, s.tmpl.data() + s.l2_len, s.ip_len);
  internal::WriteFields put;
  internal::PatchIp(m, s, flow, seq, ts, ip, put);
  return s.ip_len;
}
inline size_t BuildIpPacket(const TrafficModel& m, uint64_t flow, uint32_t seq, uint32_t ts,
                            uint8_t* ip) {
  return BuildIpPacket(m, m.ServiceOf(flow), flow, seq, ts, ip);
}

// The whole frame; returns its length (the service's frame_len).
inline size_t BuildFrame(const TrafficModel& m, uint64_t flow, uint32_t seq, uint32_t ts,
                         uint8_t* out) {
  const GenService& s = m.service(m.ServiceOf(flow));
  std::memcpy(out, s.tmpl.data(), s.frame_len);
  internal::WriteFields put;
  internal::PatchIp(m, s, flow, seq, ts, out + s.l2_len, put);
  return s.frame_len;
}

// True if the received IP packet `ip` (at least the service's ip_len bytes) is exactly the one
// BuildIpPacket(m, si, flow, seq, ts) writes. Compares the constant bytes with the template
// under its mask and each per-packet field with its value: reads only, nothing is rebuilt (a
// rebuilt copy would be read back right after its narrow stores, stalling store forwarding).
inline bool IpPacketMatches(const TrafficModel& m, size_t si, uint64_t flow, uint32_t seq,
                            uint32_t ts, const uint8_t* ip) {
  const GenService& s = m.service(si);
  const uint8_t* t = s.tmpl.data() + s.l2_len;
  const uint8_t* k = s.mask.data();
  uint64_t diff = 0;
  size_t i = 0;
  for (; i + 8 <= s.ip_len; i += 8) {
    uint64_t a, b, c;
    std::memcpy(&a, ip + i, 8);
    std::memcpy(&b, t + i, 8);
    std::memcpy(&c, k + i, 8);
    diff |= (a ^ b) & c;
  }
  for (; i < s.ip_len; ++i) diff |= (ip[i] ^ t[i]) & k[i];
  internal::VerifyFields check;
  internal::PatchIp(m, s, flow, seq, ts, const_cast<uint8_t*>(ip), check);  // reads only
  return (diff | check.diff) == 0;
}

}  // namespace ecmplb::gen
