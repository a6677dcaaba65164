// counters.h: per-worker counters for every verdict and every drop reason, plus per-service
// and per-backend packets and bytes.
//
// Each worker owns one WorkerCounters and is its only writer; the control thread reads them
// concurrently and sums over workers. Values are std::atomic<uint64_t> updated with a relaxed
// load + store (a plain add on x86, no locked instruction) so readers never see torn values
// and the code is free of data races. Parse drops are counted in a separate array indexed by
// ParseResult (see packet/parse.h).
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace ecmplb::dataplane {

// X(name, help): every worker verdict. Names are stable: they appear in `ecmplbctl stats`,
// Prometheus and telemetry output.
#define ECMPLB_WORKER_COUNTERS(X)                                                                  \
  X(rx_packets, "packets received on the data port")                                               \
  X(rx_bytes, "bytes received on the data port")                                                   \
  X(tx_packets, "packets sent on the data port")                                                   \
  X(tx_bytes, "bytes sent on the data port")                                                       \
  X(forward_dr, "packets forwarded to a backend by MAC rewrite")                                   \
  X(forward_gre, "packets forwarded to a backend in GRE")                                          \
  X(forward_ipip, "packets forwarded to a backend in IPIP")                                        \
  X(forward_gue, "packets forwarded to a backend in GUE (IP in UDP)")                              \
  X(exception, "packets passed to the kernel (ARP, OSPF, BFD, traffic to this host)")              \
  X(exception_priority,                                                                            \
    "of those: the priority kinds (ARP for us, OSPF, BFD, health replies, BGP)")                   \
  X(exception_rate_limited,                                                                        \
    "packets for the kernel over the host-wide exception budget (dropped)")                        \
  X(exception_priority_limited, "priority packets over their kind's per-worker bound (dropped)")   \
  X(drop_unsolicited, "TCP/UDP to this host's address on no allowed port (dropped in the worker)") \
  X(icmp_error_steered, "ICMP errors about a flow sent to that flow's backend")                    \
  X(icmp_frag_needed_sent, "ICMP fragmentation-needed replies sent (GRE would exceed MTU)")        \
  X(conntrack_hit, "packets of a tracked flow")                                                    \
  X(conntrack_miss, "packets that found no tracked flow")                                          \
  X(conntrack_insert, "flows inserted in the connection table")                                    \
  X(conntrack_untracked, "new flows that did not fit in the connection table (still forwarded)")   \
  X(conntrack_repick, "tracked flows whose backend was removed, given a new backend")              \
  X(conntrack_expired, "entries reclaimed by the timed expiry sweep")                              \
  X(sync_queued, "flows queued for the peer LB hosts (flow sync)")                                 \
  X(sync_rate_limited, "flow-sync events over the worker's sync rate (not sent to peers)")         \
  X(sync_ring_full, "flow-sync events the worker's sync queue had no room for (not sent)")         \
  X(sync_peer_hit, "untracked non-SYN packets placed by a peer's synced entry (moved flows)")      \
  X(sync_peer_miss, "untracked non-SYN packets no synced entry knew (placed by Maglev)")           \
  X(sync_peer_stale, "synced entries found expired or naming a removed backend (ignored)")         \
  X(drop_parse, "malformed packets (see the parse counters for the reason)")                       \
  X(drop_other_mac, "unicast frames for another MAC address (the port is not promiscuous)")        \
  X(drop_vip_no_service, "packets to a VIP on a port or protocol no service listens on")           \
  X(drop_no_backend, "packets of a service with no usable backend")                                \
  X(drop_neighbor_unresolved, "packets whose backend or next-hop MAC is not resolved yet")         \
  X(drop_fragment, "later fragments to a VIP: fragment tracking off, or their service gone")       \
  X(fragment_forwarded, "later fragments sent to their datagram's first fragment's backend")       \
  X(fragment_held, "later fragments that came before their first one, held for it")               \
  X(fragment_released, "held fragments given their verdict (forwarded, dropped or timed out)")     \
  X(fragment_timeout, "held fragments whose first fragment did not come in time (dropped)")        \
  X(fragment_hold_full, "later fragments before their first one, with no room to hold (dropped)")  \
  X(fragment_table_full, "fragmented datagrams displaced from a full fragment table")              \
  X(drop_icmp_unmatched, "ICMP errors to a VIP that quote no service flow")                        \
  X(drop_too_big, "packets over the MTU after encapsulation that may be fragmented (no DF)")       \
  X(drop_no_headroom, "packets without room in front for the GRE header")                          \
  X(drop_multi_segment, "multi-segment packets (not supported)")                                   \
  X(drop_tx_full, "packets the data port's TX queue did not take")                                 \
  X(drop_exception_full, "packets the exception port's TX queue did not take")                     \
  X(idle_polls, "polls that found the RX queue empty")                                             \
  X(busy_polls, "polls that received at least one packet")                                         \
  X(busy_cycles, "TSC cycles spent in polls that received packets (cycles/packet: / rx_packets)")  \
  X(idle_sleeps, "back-off sleeps taken by an idle worker")                                        \
  X(snapshot_changes, "configuration snapshots picked up")

enum class Counter : uint16_t {
#define ECMPLB_ENUM(name, help) name,
  ECMPLB_WORKER_COUNTERS(ECMPLB_ENUM)
#undef ECMPLB_ENUM
      kCount
};

inline constexpr size_t kNumCounters = static_cast<size_t>(Counter::kCount);

inline constexpr std::array<std::string_view, kNumCounters> kCounterNames = {
#define ECMPLB_NAME(name, help) #name,
    ECMPLB_WORKER_COUNTERS(ECMPLB_NAME)
#undef ECMPLB_NAME
};
inline constexpr std::array<std::string_view, kNumCounters> kCounterHelp = {
#define ECMPLB_HELP(name, help) help,
    ECMPLB_WORKER_COUNTERS(ECMPLB_HELP)
#undef ECMPLB_HELP
};

// The pipeline's verdict counters: Pipeline::Process counts every frame it is given in exactly
// one of these (tests/fuzz/fuzz_pipeline.cc asserts it per burst), except a frame it holds
// (Verdict::kHeld, counted fragment_held), which is counted in one of these when it is released
// (fragment_released). So rx_packets = the verdicts' sum + fragment_held - fragment_released.
inline constexpr std::array kPipelineVerdicts = {
    Counter::drop_other_mac,
    Counter::exception,
    Counter::drop_parse,
    Counter::drop_vip_no_service,
    Counter::drop_fragment,
    Counter::fragment_timeout,
    Counter::fragment_hold_full,
    Counter::drop_icmp_unmatched,
    Counter::drop_no_backend,
    Counter::drop_neighbor_unresolved,
    Counter::forward_dr,
    Counter::forward_gre,
    Counter::forward_ipip,
    Counter::forward_gue,
    Counter::icmp_frag_needed_sent,
    Counter::drop_too_big,
    Counter::drop_no_headroom,
    Counter::exception_rate_limited,
    Counter::exception_priority_limited,
    Counter::drop_unsolicited,
};

// A worker's verdict counters: every packet it receives (rx_packets) is counted in exactly one
// of these, the pipeline's verdicts or drop_multi_segment (refused before the pipeline). What
// happens after a verdict (drop_tx_full, drop_exception_full) is counted on top. `ecmplbctl
// stats` lists them ("verdicts") so that a reader can check the sum against rx_packets
// (tests/daemon/malformed_e2e.py does).
inline constexpr auto kReceiveVerdicts = [] {
  std::array<Counter, kPipelineVerdicts.size() + 1> all{};
  for (size_t i = 0; i < kPipelineVerdicts.size(); ++i) all[i] = kPipelineVerdicts[i];
  all[kPipelineVerdicts.size()] = Counter::drop_multi_segment;
  return all;
}();

// Limits on counter slots; the snapshot builder assigns slots below these. A service's slot is
// also its index in the connection key (conntrack::FlowKey::service, 16 bits).
inline constexpr size_t kMaxServiceSlots = size_t{1} << 16;
inline constexpr size_t kMaxBackendSlots = size_t{1} << 20;
inline constexpr size_t kMaxParseResults = 32;

// One cell written by a single thread and read by others.
class Cell {
 public:
  void Add(uint64_t n) {
    v_.store(v_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  uint64_t Get() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

struct PacketsBytes {
  Cell packets;
  Cell bytes;
  void Add(uint32_t len) {
    packets.Add(1);
    bytes.Add(len);
  }
};
// Per-slot packets and bytes in chunks of 2^kChunkBits slots, allocated as slots come into use
// (memory follows what is configured, not kMaxSlots). The first chunk exists from the start;
// the control thread calls Ensure before it publishes a snapshot that uses higher slots, so a
// worker, which reads the snapshot with acquire ordering, always finds the chunk: two
// dependent loads per access, no check. Chunks are freed with the counters, never before.
template <size_t kChunkBits, size_t kMaxSlots>
class SlotCells {
 public:
  static constexpr size_t kChunk = size_t{1} << kChunkBits;
  static constexpr size_t kChunks = kMaxSlots / kChunk;
  static_assert(kMaxSlots % kChunk == 0);

  SlotCells() { Ensure(1); }
  ~SlotCells() {
    for (auto& c : chunks_) delete[] c.load(std::memory_order_relaxed);
  }
  SlotCells(const SlotCells&) = delete;
  SlotCells& operator=(const SlotCells&) = delete;

  // Worker side: `slot` must be below what Ensure covered.
  [[gnu::always_inline]] PacketsBytes& operator[](size_t slot) {
    return chunks_[slot >> kChunkBits].load(std::memory_order_relaxed)[slot & (kChunk - 1)];
  }
  // Readers (any thread): null if `slot` has no memory yet (never used).
  const PacketsBytes* Find(size_t slot) const {
    if (slot >= kMaxSlots) return nullptr;
    const PacketsBytes* c = chunks_[slot >> kChunkBits].load(std::memory_order_acquire);
    return c == nullptr ? nullptr : &c[slot & (kChunk - 1)];
  }
  // Control thread: gives slots [0, slots) memory (at most kMaxSlots).
  void Ensure(size_t slots) {
    const size_t n = std::min((slots + kChunk - 1) / kChunk, kChunks);
    for (size_t i = 0; i < n; ++i) {
      if (chunks_[i].load(std::memory_order_relaxed) == nullptr) {
        chunks_[i].store(new PacketsBytes[kChunk], std::memory_order_release);
      }
    }
  }
  // Slots that have memory (a multiple of kChunk).
  size_t allocated() const {
    size_t n = 0;
    for (const auto& c : chunks_) n += c.load(std::memory_order_relaxed) != nullptr;
    return n * kChunk;
  }

 private:
  std::array<std::atomic<PacketsBytes*>, kChunks> chunks_{};
};

struct alignas(64) WorkerCounters {
  std::array<Cell, kNumCounters> counters;
  std::array<Cell, kMaxParseResults> parse;  // indexed by ParseResult
  SlotCells<10, kMaxServiceSlots> services;  // 16 KiB per 1,024 services
  SlotCells<12, kMaxBackendSlots> backends;  // 64 KiB per 4,096 backends

  void Add(Counter c, uint64_t n = 1) { counters[static_cast<size_t>(c)].Add(n); }
  uint64_t Get(Counter c) const { return counters[static_cast<size_t>(c)].Get(); }
  // Control thread, before publishing a snapshot whose slots reach these counts.
  void EnsureSlots(size_t service_slots, size_t backend_slots) {
    services.Ensure(service_slots);
    backends.Ensure(backend_slots);
  }
};

}  // namespace ecmplb::dataplane
