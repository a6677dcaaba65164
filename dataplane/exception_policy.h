// exception_policy.h: what a worker lets through to the kernel (the exception path), so that a
// flood aimed at the host's own address or at non-VIP destinations cannot take the TAP from
// OSPF, BFD, ARP and the host's own health checks.
//
// Classification (ClassifyException, pure, per packet): the priority kinds are validated so
// that they cannot themselves be a flood vector:
//   ARP        ARP whose target protocol address is the host's address;
//   OSPF       IP protocol 89 with TTL 1 from the host's subnet;
//   BFD        UDP to port 3784 (single-hop BFD) with TTL 255 (RFC 5881's GTSM) from the subnet;
//   health     TCP from a backend's address to the host's address that is not a bare SYN,
//              and UDP from a backend's address to the host's address (replies to the host's
//              own health checks: TCP, HTTP, UDP, DNS);
//   BGP        TCP to or from port 179 at the host's address;
//   fleet      TCP from a configured etcd endpoint's address and port to the host (fleet
//              mode: the answers on the connections the host opened to etcd).
// Everything else to the kernel is "other" (ICMP echo to the host or a VIP, ARP for other
// addresses, multicast, allowlisted ports), and unsolicited TCP/UDP to the host's address
// that matches no allowlisted port is dropped in the worker ("unsolicited": the kernel's
// RST/ICMP answers would come back through the exception path).
//
// Limits (ExceptionLimiter, per worker): each priority kind has a per-worker bound
// (priority_pps, burst priority_pps / 10 + 10); "other" draws on one host-wide budget
// (rate_pps, burst) shared by every worker (SharedTokenBucket: lock-free, one CAS per
// chunk of kChunk tokens, never per packet). Token buckets are GCRA (virtual scheduling) in
// clock ticks: no floating point, no division per packet.
//
// Thread-safety: ClassifyException is pure. An ExceptionLimiter belongs to one worker; a
// SharedTokenBucket is shared by all workers (atomics only).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bitset>
#include <cstdint>
#include <span>

#include "dataplane/packet/parse.h"

namespace ecmplb::dataplane {

class Snapshot;

enum class ExceptionClass : uint8_t {
  kOther = 0,
  kArp,
  kOspf,
  kBfd,
  kHealthReply,
  kBgp,
  kUnsolicited,  // dropped in the worker
  kSync,         // flow sync from a configured peer LB host (UDP to the sync port; TCP
                 // to or from it: bulk sync)
  kNd,           // IPv6 neighbour discovery from the link: solicitations and advertisements
                 // (hop limit 255, RFC 4861)
  kFleet,        // TCP from a configured etcd endpoint (fleet mode)
};
inline constexpr size_t kExceptionClasses = 10;
const char* ExceptionClassName(ExceptionClass c);

// The host's exception-path settings as the workers use them (built from host.exception).
struct ExceptionPolicy {
  uint32_t rate_pps = 10000;     // host-wide budget of "other" packets to the kernel
  uint32_t burst = 1000;         // of that budget
  uint32_t priority_pps = 5000;  // per worker and priority kind
  bool drop_unsolicited = true;  // unsolicited TCP/UDP to the host's address: drop
  std::bitset<65536> allow_tcp;  // destination ports at the host's address let through
  std::bitset<65536> allow_udp;
  // Flow sync: UDP to sync_port at the host's address is a priority kind from one of the
  // peers (host order), and dropped (unsolicited) from anyone else. 0: sync off.
  uint16_t sync_port = 0;
  uint8_t sync_peer_count = 0;
  std::array<uint32_t, 16> sync_peers{};
  bool IsSyncPeer(uint32_t addr) const {
    for (uint8_t i = 0; i < sync_peer_count; ++i) {
      if (sync_peers[i] == addr) return true;
    }
    return false;
  }
  // Fleet mode: the etcd endpoints given by address (fleet.endpoints); TCP from one of them
  // (address and client port) to the host is a priority kind.
  uint8_t fleet_endpoint_count = 0;
  std::array<IpAddr, 8> fleet_addrs{};
  std::array<uint16_t, 8> fleet_ports{};
  bool IsFleetEndpoint(const IpAddr& addr, uint16_t port) const {
    for (uint8_t i = 0; i < fleet_endpoint_count; ++i) {
      if (fleet_ports[i] == port && fleet_addrs[i] == addr) return true;
    }
    return false;
  }
};

// The class of a packet that the pipeline would pass to the kernel. `r` is the parse result
// (kNotIp: `frame` is examined for ARP); `p` is valid when r == kOk.
ExceptionClass ClassifyException(std::span<const uint8_t> frame, ParseResult r,
                                 const ParsedPacket& p, const Snapshot& snap);

// A token bucket by virtual scheduling (GCRA): `tat` is the theoretical arrival time of the
// next conforming packet. One packet conforms at `now` if tat - burst_ticks <= now.
struct Gcra {
  uint64_t tat = 0;
  // Takes one token at `now`; false (nothing changed) if the bucket is empty.
  bool Take(uint64_t now, uint64_t interval, uint64_t burst_ticks) {
    const uint64_t t = std::max(tat, now);
    if (t - now > burst_ticks) return false;
    tat = t + interval;
    return true;
  }
};

// The host-wide budget of "other" exception packets, shared by every worker.
class SharedTokenBucket {
 public:
  // Takes `n` tokens at `now` (all or none). Lock-free; callers take chunks, not single tokens.
  bool Take(uint64_t now, uint32_t n, uint64_t interval, uint64_t burst_ticks) {
    uint64_t tat = tat_.load(std::memory_order_relaxed);
    for (;;) {
      const uint64_t t = std::max(tat, now);
      if (t - now > burst_ticks) return false;
      if (tat_.compare_exchange_weak(tat, t + interval * n, std::memory_order_relaxed)) {
        return true;
      }
    }
  }

 private:
  alignas(64) std::atomic<uint64_t> tat_{0};
};

// One worker's exception-path limits. Time is in ticks of `ticks_per_second` (the TSC).
class ExceptionLimiter {
 public:
  static constexpr uint32_t kChunk = 8;  // tokens a worker takes from the shared budget at once

  ExceptionLimiter(SharedTokenBucket* shared, uint64_t ticks_per_second)
      : shared_(shared), hz_(ticks_per_second) {}

  // Recomputes intervals when the policy's rates change (a new snapshot); cheap when not.
  void Configure(const ExceptionPolicy& p) {
    if (p.rate_pps == rate_pps_ && p.priority_pps == priority_pps_ && p.burst == burst_) return;
    rate_pps_ = p.rate_pps;
    priority_pps_ = p.priority_pps;
    burst_ = p.burst;
    other_interval_ = rate_pps_ == 0 ? 0 : std::max<uint64_t>(1, hz_ / rate_pps_);
    other_burst_ = other_interval_ * burst_;
    prio_interval_ = priority_pps_ == 0 ? 0 : std::max<uint64_t>(1, hz_ / priority_pps_);
    prio_burst_ = prio_interval_ * (priority_pps_ / 10 + 10);
  }

  // True if a packet of class `c` may go to the kernel at `now`.
  bool Allow(ExceptionClass c, uint64_t now) {
    if (c == ExceptionClass::kUnsolicited) return false;
    if (c == ExceptionClass::kOther) {
      if (rate_pps_ == 0) return false;
      if (prepaid_ == 0) {
        if (!shared_->Take(now, kChunk, other_interval_, other_burst_)) return false;
        prepaid_ = kChunk;
      }
      --prepaid_;
      return true;
    }
    if (priority_pps_ == 0) return false;
    return priority_[static_cast<size_t>(c)].Take(now, prio_interval_, prio_burst_);
  }

 private:
  SharedTokenBucket* shared_;
  uint64_t hz_;
  uint32_t rate_pps_ = ~0u, priority_pps_ = ~0u, burst_ = ~0u;
  uint64_t other_interval_ = 0, other_burst_ = 0, prio_interval_ = 0, prio_burst_ = 0;
  uint32_t prepaid_ = 0;
  Gcra priority_[kExceptionClasses];
};

}  // namespace ecmplb::dataplane
