// checker.h: ecmplb-gen's receive side: classifies and verifies every frame that comes back
// (or one in N: sampling), on plain byte spans.
//
// A frame is test traffic if it is IPv4/IPv6 (optionally behind one 802.1Q tag) carrying TCP
// or UDP, or IPv4 carrying a tunnel: GRE (protocol 47), IPIP (4, 41), or GUE (UDP from
// host.tunnel_source to host.gue_port); anything else (ARP, OSPF, ICMP, LLDP from
// ecmplb's exception path) counts as `other`, not as an error. Test traffic is decoded back
// to its flow id (from the inner source address and port), seq and timestamp, the IP packet is
// rebuilt (frame_builder.h) and compared byte for byte, and the L2/outer headers are checked:
//   balancer mode, DR service:  destination MAC = the expected backend's MAC (NeighborMac),
//     source MAC = --dst-mac (the balancer's port), the VLAN tag as sent, IP packet identical.
//   balancer mode, tunnel service: outer destination MAC = the next hop's MAC (the backend, or
//     the gateway when off-link), source MAC = the balancer's, VLAN tag as sent, outer IPv4
//     header as ecmplb writes it (dataplane/packet/encap.h: TOS copied, id 0 and DF when the
//     inner packet has DF (IPv4) or is IPv6, TTL 64, protocol 47 / 4 or 41 / 17, correct
//     checksum, source = host.tunnel_source or host.address, destination = the backend), then
//     GRE: header 0 + inner EtherType; GUE: UDP source port in 49152..65535, destination
//     host.gue_port, length, checksum 0; inner IP packet identical.
//   loopback mode (testpmd macswap): the frame as sent with the two MACs swapped.
// With a flood net (CheckerOptions::flood_net, set with --flood-share > 0: flood.h), an IPv4
// frame whose (outer) source or destination address is in it is not test traffic either but
// flood or the answer to flood (the host's RSTs, ICMP replies): `other`, before any other check.
// So is an IPv4 frame (not a tunnel) from the balancer's host.address: its kernel's own traffic (flow
// sync to its peers, health checks).
// Verdicts, each frame exactly one (first that applies):
//   unknown        TCP/UDP/tunnel but not decodable as one of our flows (truncated, foreign
//                  address or port, destination not the flow's service)
//   corrupt        decoded, but some byte differs from what was sent (or ecmplb's tunnel headers)
//   moved          an established flow seen before at another backend (first one seen wins)
//   wrong_backend  not at the backend Maglev picks (loopback: MACs not swapped back)
//   ok
// Latency (receive clock - timestamp, mod 2^32 ns) is recorded for frames whose IP packet is
// intact (ok, moved, wrong_backend).
//
// Thread-safety: one Checker per receiving thread; the TrafficModel is shared read-only.
// Fast path: no allocation, lock or syscall; every read is bounds-checked against the span.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "bench/gen/latency_histogram.h"
#include "bench/gen/traffic_model.h"

namespace ecmplb::gen {

enum class ExpectMode : uint8_t { kBalancer, kLoopback };

enum class Verdict : uint8_t {
  kOk,
  kWrongBackend,
  kMoved,
  kCorrupt,
  kUnknown,
  kOther,
  kSampledOut,
};

struct CheckCounts {
  uint64_t rx_packets = 0;  // every frame received
  uint64_t rx_bytes = 0;    // without FCS
  uint64_t other = 0;
  uint64_t sampled_out = 0;  // test traffic not verified (sampling)
  uint64_t checked = 0;      // verified: ok + wrong_backend + moved + corrupt
  uint64_t ok = 0;
  uint64_t wrong_backend = 0;
  uint64_t moved = 0;
  uint64_t corrupt = 0;
  uint64_t unknown = 0;

  uint64_t errors() const { return wrong_backend + moved + corrupt + unknown; }
  // Received test traffic (what loss is computed against).
  uint64_t test_packets() const { return rx_packets - other; }
  void Merge(const CheckCounts& o);
};

struct CheckerOptions {
  ExpectMode mode = ExpectMode::kBalancer;
  uint32_t sample = 1;        // verify one test frame in `sample` (1: all)
  bool check_src_mac = true;  // balancer mode: source MAC must be --dst-mac
  ClientNet flood_net{};      // IPv4 flood sources (flood.h); family 0: no flood
};

class Checker {
 public:
  Checker(const TrafficModel& model, CheckerOptions options);

  // Classifies one received frame; `now_ns32` is the receive clock (the TX side's timestamp
  // clock). Updates counts() and latency().
  Verdict Check(std::span<const uint8_t> frame, uint32_t now_ns32);

  const CheckCounts& counts() const { return counts_; }
  const LatencyHistogram& latency() const { return latency_; }

 private:
  // Position (in the service's backends) whose next-hop MAC is `mac`; `hint` first. -1: none.
  int32_t BackendByMac(const GenService& s, const uint8_t* mac, int32_t hint) const;
  int32_t BackendByAddr(const GenService& s, const uint8_t* addr4, int32_t hint) const;
  Verdict Count(Verdict v);

  const TrafficModel& m_;
  CheckerOptions opt_;
  CheckCounts counts_;
  LatencyHistogram latency_;
  uint32_t sample_countdown_ = 1;
  // Per established flow: bits 0..15 the expected backend's position + 1 (0: not computed
  // yet), bits 16..31 the first backend seen + 1 (0: not seen yet; 0xFFFF: no backend).
  std::vector<uint32_t> flow_state_;
  // Expected L2 headers (IPv4, IPv6): loopback (MACs swapped) and forwarded (source MAC the
  // balancer's; the destination is compared apart).
  uint8_t l2_loopback_[2][dataplane::kEthVlanHeaderLen] = {};
  uint8_t l2_forwarded_[2][dataplane::kEthVlanHeaderLen] = {};
  size_t l2_len_ = 0;
  uint16_t gue_port_ = 0;    // GUE frames: UDP to this port from tunnel_v4_
  uint32_t tunnel_v4_ = 0;   // host.tunnel_source (host order)
  uint32_t host_v4_ = 0;     // the balancer's host address (host order): its kernel's frames
  uint32_t flood_base_ = 0;  // the flood net, host order; flood_size_ 0: none
  uint64_t flood_size_ = 0;
  uint8_t scratch_[128];  // a tunnel's outer headers
};

const char* VerdictName(Verdict v);

}  // namespace ecmplb::gen
