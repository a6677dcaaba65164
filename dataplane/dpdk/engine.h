// engine.h: the DPDK side of the daemon, behind an interface free of DPDK types: EAL start
// and stop, the data port and the exception TAP, the packet pool, one Worker per worker
// lcore (its connection table in DPDK memory on its NUMA socket when there is room), the
// snapshot publisher, and the exception forwarder thread (kernel -> wire).
//
// The exception forwarder runs on its own thread (DPDK control thread, on the non-worker
// cores), not in the daemon's control loop: OSPF hellos and BFD packets the kernel sends
// through the TAP leave at once even while the control loop is busy (a config apply, a
// Maglev rebuild, an fsync).
//
// Thread-safety: Create/Start/Stop/Reclaim from the daemon's control thread. Heartbeats,
// counters and tables may be read from any thread (they are atomics / the table's reader
// API). Each worker's state is otherwise its own lcore's.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "conntrack/conntrack.h"
#include "dataplane/counters.h"
#include "dataplane/dpdk/exception_forwarder.h"
#include "dataplane/dpdk/publisher.h"
#include "dataplane/dpdk/worker.h"
#include "dataplane/neighbor_table.h"
#include "dataplane/packet/headers.h"
#include "dataplane/pipeline.h"

namespace ecmplb::dataplane {

// rte_eal_init. Returns how many argv entries EAL consumed (the application's options
// follow), or an error naming the problem. `CleanupEal` undoes it (idempotent).
absl::StatusOr<int> InitEal(int argc, char** argv);
void CleanupEal();

// The workers' clock: seconds of the TSC (what connection-table ages are measured in).
uint64_t WorkerClockSeconds();
// The workers' fine clock (the TSC: SyncEvent::ticks), and its rate.
uint64_t WorkerTicks();
uint64_t WorkerTicksPerSecond();

// How the data port's flows are spread over the workers' RX queues.
enum class RxSteering : uint8_t {
  kRss,   // the NIC hashes (RSS, ecmplb's key); a port without RSS runs one worker only
  kPeer,  // the peer chooses the queue (dataplane/rss.h's rule): memif with the generator
};

struct EngineOptions {
  int port = -1;                    // data port id; -1: the only DPDK port
  std::string exception_interface;  // TAP name
  uint32_t mbufs = 16383;
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  bool promiscuous = false;
  RxSteering steering = RxSteering::kRss;
  IdleConfig idle;               // workers' and exception forwarder's back-off
  conntrack::Options conntrack;  // each worker's table
  PipelineOptions pipeline;
  // Flow sync (control/sync_engine.h): each worker gets a sync ring of this many events and
  // every worker reads one peer table of peer_capacity flow slots (process memory, written by
  // the sync engine). 0: sync off.
  size_t sync_ring_capacity = 0;
  uint64_t peer_capacity = 0;  // 0: conntrack.capacity x workers x sync_peers
  size_t sync_peers = 1;
};

class Engine {
 public:
  // Brings up ports, pool and workers (not yet running). Every error is one line naming
  // what to change.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(const EngineOptions& options);
  ~Engine();  // stops workers and the forwarder if running, closes ports
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Launches the workers and the exception forwarder.
  absl::Status Start();
  // Stops and joins both (idempotent).
  void Stop();
  // Stop(), then stops and closes the ports and frees the workers (their tables, counters)
  // and the publisher, all while EAL is still up: call it before CleanupEal(). workers() is
  // empty afterwards. Idempotent; the destructor calls it.
  void Shutdown();

  size_t worker_count() const { return workers_.size(); }
  // Whether the data port receives every multicast group (PortConfig::allmulticast took).
  bool data_port_allmulticast() const;
  const std::vector<unsigned>& worker_lcores() const { return lcores_; }
  const MacAddr& mac() const { return mac_; }
  std::string data_port_name() const;
  // How many workers' tables are in DPDK memory, and each table's size.
  size_t tables_in_dpdk_memory() const { return tables_in_dpdk_memory_; }
  size_t table_bytes() const { return table_bytes_; }

  SnapshotPublisher& publisher() { return *publisher_; }
  // Gives every worker's counters the slots `snapshot` uses, then publishes it: the one way
  // the control plane hands the workers a configuration.
  void Publish(std::unique_ptr<const Snapshot> snapshot);
  NeighborTable& neighbors() { return *neighbors_; }
  std::vector<std::unique_ptr<Worker>>& workers() { return workers_; }
  const WorkerCounters& exception_counters() const { return *exception_counters_; }
  // Flow sync: the peer table (nullptr when sync is off); each worker's ring is Worker::sync_ring.
  conntrack::Table* peer_table() { return peer_table_.get(); }

  // Copies every worker's heartbeat into `out` (resized to worker_count()).
  void Heartbeats(std::vector<uint64_t>* out) const;
  // True when the exception forwarder sleeps on the TAP's RX interrupt (not polling).
  bool exception_path_interrupt_driven() const {
    return forwarder_ != nullptr && forwarder_->interrupt_driven();
  }
  // Frees snapshots no worker can still see.
  size_t Reclaim() { return publisher_->Reclaim(); }

 private:
  Engine() = default;
  EngineOptions options_;
  std::unique_ptr<conntrack::Table> peer_table_;  // outlives the workers (declared first)
  std::vector<unsigned> lcores_;
  uint16_t data_port_ = 0;
  uint16_t tap_port_ = 0;
  uint16_t tap_queues_ = 0;
  bool ports_started_ = false;
  MacAddr mac_;
  size_t tables_in_dpdk_memory_ = 0;
  size_t table_bytes_ = 0;
  std::unique_ptr<NeighborTable> neighbors_;
  std::unique_ptr<SnapshotPublisher> publisher_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::unique_ptr<WorkerCounters> exception_counters_;
  std::unique_ptr<SharedTokenBucket> exception_budget_;  // host-wide, shared by every worker
  std::atomic<bool> stop_workers_{false};
  bool workers_running_ = false;
  std::unique_ptr<ExceptionForwarder> forwarder_;
};

}  // namespace ecmplb::dataplane
