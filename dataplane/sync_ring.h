// sync_ring.h: flow sync's per-worker queue. A worker's pipeline pushes an event when one of
// its flows reaches a state its peers must learn (established, closing, given another
// backend); the sync engine (control/sync_engine.h) pops them in batches, turns host-local
// indexes into identities (VIP, port, protocol; backend address) and sends them to the peer LB
// hosts.
//
// SpscRing is a bounded single-producer single-consumer ring: a fixed array allocated at
// construction, two monotonically increasing 64-bit indices on cache lines of their own, each
// side caching the other's index so that a push or pop usually touches no shared line. Push
// never blocks: a full ring refuses the event (the caller counts it).
//
// Thread-safety: one producer thread (the worker) calls Push; one consumer thread (the sync
// engine's) calls Pop; size()/dropped counters may be read from any thread.
// Fast path: Push is a copy and two relaxed/acquire-release index operations; no allocation,
// lock or syscall.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>

#include "conntrack/flow_key.h"
#include "conntrack/flow_state.h"

namespace ecmplb::dataplane {

template <typename T>
class SpscRing {
 public:
  // Capacity is rounded up to a power of two (at least 2).
  explicit SpscRing(size_t capacity)
      : mask_(std::bit_ceil(capacity < 2 ? size_t{2} : capacity) - 1),
        slots_(new T[mask_ + 1]) {}
  SpscRing(const SpscRing&) = delete;
  SpscRing& operator=(const SpscRing&) = delete;

  // Producer only. False (nothing changed) if the ring is full.
  bool Push(const T& v) {
    const uint64_t h = head_.v.load(std::memory_order_relaxed);
    if (h - tail_cache_ > mask_) {
      tail_cache_ = tail_.v.load(std::memory_order_acquire);
      if (h - tail_cache_ > mask_) return false;
    }
    slots_[h & mask_] = v;
    head_.v.store(h + 1, std::memory_order_release);
    return true;
  }

  // Consumer only: moves up to out.size() elements into `out`, oldest first; returns how many.
  size_t Pop(std::span<T> out) {
    const uint64_t t = tail_.v.load(std::memory_order_relaxed);
    if (head_cache_ - t < out.size()) head_cache_ = head_.v.load(std::memory_order_acquire);
    size_t n = static_cast<size_t>(head_cache_ - t);
    if (n > out.size()) n = out.size();
    for (size_t i = 0; i < n; ++i) out[i] = slots_[(t + i) & mask_];
    tail_.v.store(t + n, std::memory_order_release);
    return n;
  }

  // Any thread: elements waiting (approximate while the sides run).
  size_t size() const {
    const uint64_t t = tail_.v.load(std::memory_order_acquire);
    const uint64_t h = head_.v.load(std::memory_order_acquire);
    return h >= t ? static_cast<size_t>(h - t) : 0;
  }
  size_t capacity() const { return mask_ + 1; }

 private:
  struct alignas(64) Index {
    std::atomic<uint64_t> v{0};
  };
  const uint64_t mask_;
  std::unique_ptr<T[]> slots_;
  Index head_;  // next slot the producer writes
  alignas(64) uint64_t tail_cache_ = 0;  // producer's copy of tail_
  Index tail_;  // next slot the consumer reads
  alignas(64) uint64_t head_cache_ = 0;  // consumer's copy of head_
};

// Why a flow is queued for its peers.
enum class SyncReason : uint8_t {
  kEstablished = 0,  // reached established here (handshake ACK, a probationary flow's proof,
                     // a non-TCP flow's second packet)
  kClosing = 1,      // FIN or RST seen
  kRepick = 2,       // its backend was removed; it was given another
};

// One queued flow: host-local indexes (key.service is a service counter slot, backend_id a
// backend id within that service), translated by the sync engine with the configuration it
// holds. `time_s` is the worker clock (the TSC in seconds, shared by every thread of the
// process) when it was queued, the flow being seen then; `ticks` the same instant in TSC
// ticks (the sync engine's lag figures). 64 bytes: one cache line.
struct SyncEvent {
  conntrack::FlowKey key;
  uint32_t backend_id = 0;
  uint32_t time_s = 0;
  conntrack::FlowState state = conntrack::FlowState::kEstablished;
  SyncReason reason = SyncReason::kEstablished;
  uint64_t ticks = 0;
};
static_assert(sizeof(SyncEvent) == 64);

using SyncRing = SpscRing<SyncEvent>;

}  // namespace ecmplb::dataplane
