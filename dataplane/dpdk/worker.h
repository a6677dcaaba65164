// worker.h: the DPDK poll-mode worker loop (one per RX queue, on its own lcore) and the
// exception forwarder (kernel TAP -> data port) run by the main lcore.
//
// A worker: RX burst -> Pipeline::Process -> TX burst on its own data-port queue, exception
// burst on its own TAP queue, frees the rest; after each burst it reports an RCU quiescent
// state and advances its heartbeat. Idle back-off (optional): after `idle_polls_before_sleep`
// empty polls in a row it sleeps `idle_sleep_us` so several instances can share a core.
//
// Thread-safety: a Worker is touched by its own lcore only, except `heartbeat` and
// `counters` (read by the control thread) and `stop` (set by the control thread).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "conntrack/conntrack.h"
#include "dataplane/counters.h"
#include "dataplane/dpdk/publisher.h"
#include "dataplane/neighbor_table.h"
#include "dataplane/pipeline.h"

namespace ecmplb::dataplane {

struct IdleConfig {
  bool backoff = false;  // false: pure busy polling (production default)
  uint32_t polls_before_sleep = 256;
  uint32_t sleep_us = 50;
  // Connection-table expiry (Pipeline::Housekeeping) runs at most once per this many
  // microseconds, busy or idle: on a time budget, not on every poll (an idle worker spent a
  // quarter of its cycles sweeping the table on every empty poll).
  uint32_t housekeeping_us = 100;
};

// Frees memory from rte_malloc (for unique_ptr).
struct RteFree {
  void operator()(void* p) const;
};

struct Worker {
  uint32_t id = 0;                  // 0..n-1: TX queue, TAP queue, RCU thread id
  std::vector<uint16_t> rx_queues;  // polled in turn; normally just {id}
  unsigned lcore = 0;
  uint16_t port = 0;
  uint16_t exception_port = 0;
  IdleConfig idle;
  SnapshotPublisher* publisher = nullptr;
  const std::atomic<bool>* stop = nullptr;
  // The memory of `table` when it came from DPDK (hugepages on the worker's NUMA socket);
  // empty when the table owns process memory. Declared first: it outlives the table.
  std::unique_ptr<void, RteFree> table_memory;
  std::unique_ptr<conntrack::Table> table;
  std::unique_ptr<WorkerCounters> counters;
  std::unique_ptr<SyncRing> sync_ring;  // flow sync on: this worker's queue to the sync engine
  std::unique_ptr<Pipeline> pipeline;
  alignas(64) std::atomic<uint64_t> heartbeat{0};
  // Fault injection (`ecmplbctl fault stall-worker`): when set, the worker spins this many
  // milliseconds without progress, as a hung worker would. Read once per loop, not per packet.
  std::atomic<uint32_t> fault_stall_ms{0};
};

// lcore entry point; `arg` is a Worker*. Returns 0 when *stop becomes true.
int WorkerMain(void* arg);

// Moves up to one burst from every queue of the exception port to the data port's
// `tx_queue`, and drains what workers sent to... nothing else. Returns packets moved.
uint32_t ForwardExceptionBurst(uint16_t exception_port, uint16_t exception_queues,
                               uint16_t data_port, uint16_t tx_queue, WorkerCounters* counters);

}  // namespace ecmplb::dataplane
