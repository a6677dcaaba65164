// engine.cc: see engine.h.
#include "dataplane/dpdk/engine.h"

#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include <span>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "dataplane/dpdk/port.h"

namespace ecmplb::dataplane {

absl::StatusOr<int> InitEal(int argc, char** argv) {
  int consumed = rte_eal_init(argc, argv);
  if (consumed < 0) {
    return absl::InvalidArgumentError(absl::StrCat("EAL initialisation failed (",
                                                   rte_strerror(rte_errno),
                                                   "): check the EAL options before '--'"));
  }
  return consumed;
}

void CleanupEal() {
  rte_eal_cleanup();
}

uint64_t WorkerClockSeconds() {
  return rte_rdtsc() / rte_get_tsc_hz();
}

uint64_t WorkerTicks() {
  return rte_rdtsc();
}

uint64_t WorkerTicksPerSecond() {
  return rte_get_tsc_hz();
}

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(const EngineOptions& options) {
  std::unique_ptr<Engine> e(new Engine());
  e->options_ = options;
  const unsigned n_workers = rte_lcore_count() - 1;
  if (n_workers == 0) {
    return absl::InvalidArgumentError(
        "no worker lcore: give EAL at least two lcores (e.g. -l 0,1); the main lcore runs "
        "control, each other one a worker");
  }
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) e->lcores_.push_back(lc);

  // Ports: the data port (given by EAL) and the exception TAP we create with its MAC.
  ECMPLB_ASSIGN_OR_RETURN(e->data_port_, FindDataPort(options.port, UINT16_MAX, UINT16_MAX));
  ECMPLB_ASSIGN_OR_RETURN(e->mac_, PortMac(e->data_port_));
  ECMPLB_ASSIGN_OR_RETURN(e->tap_port_, CreateTap(options.exception_interface, e->mac_));

  int socket = rte_eth_dev_socket_id(e->data_port_);
  if (socket < 0) socket = static_cast<int>(rte_socket_id());
  ECMPLB_ASSIGN_OR_RETURN(rte_mempool * pool, CreatePool("ecmplb_pkts", options.mbufs, socket));

  PortConfig pc;
  pc.rx_queues = static_cast<uint16_t>(n_workers);
  pc.tx_queues = static_cast<uint16_t>(n_workers + 1);
  if (QueuesArePaired(e->data_port_)) {
    // af_packet opens one socket per queue pair and the kernel spreads flows over all of
    // them: the extra RX queue (paired with the exception TX queue) is polled too, by worker 0.
    pc.rx_queues = pc.tx_queues;
    pc.rss = false;
  } else if (options.steering == RxSteering::kPeer) {
    pc.rss = false;  // the peer puts each flow on its queue (dataplane/rss.h)
  }
  pc.rx_desc = options.rx_desc;
  pc.tx_desc = options.tx_desc;
  pc.mtu = 0;  // the port keeps its MTU; host.mtu bounds what we send
  pc.promiscuous = options.promiscuous;
  pc.allmulticast = true;
  ECMPLB_RETURN_IF_ERROR(StartPort(e->data_port_, pc, pool));
  PortConfig tc;
  tc.rx_queues = static_cast<uint16_t>(n_workers);  // the TAP PMD pairs its queues
  tc.tx_queues = static_cast<uint16_t>(n_workers);
  tc.rx_desc = 512;
  tc.tx_desc = 512;
  tc.mtu = 0;
  tc.rx_interrupts = true;  // the forwarder sleeps until the kernel sends
  ECMPLB_RETURN_IF_ERROR(StartPort(e->tap_port_, tc, pool));
  e->ports_started_ = true;
  e->tap_queues_ = tc.rx_queues;

  e->neighbors_ = std::make_unique<NeighborTable>();
  ECMPLB_ASSIGN_OR_RETURN(e->publisher_, SnapshotPublisher::Create(n_workers));
  e->table_bytes_ = conntrack::Table::MemoryNeeded(options.conntrack);
  e->exception_budget_ = std::make_unique<SharedTokenBucket>();
  PipelineOptions po = options.pipeline;
  po.exception_budget = e->exception_budget_.get();
  po.ticks_per_second = rte_get_tsc_hz();
  if (options.sync_ring_capacity != 0) {
    conntrack::Options peer = options.conntrack;
    peer.capacity = options.peer_capacity != 0
                        ? options.peer_capacity
                        : options.conntrack.capacity * n_workers *
                              std::max<size_t>(1, options.sync_peers);
    auto t = conntrack::Table::Create(peer);
    if (!t.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("flow sync's peer table: ", t.status().message(), " (change sync.peer_capacity)"));
    }
    e->peer_table_ = std::move(*t);
    po.peer_table = e->peer_table_.get();
  }
  for (unsigned i = 0; i < n_workers; ++i) {
    auto w = std::make_unique<Worker>();
    w->id = i;
    for (uint16_t q = static_cast<uint16_t>(i); q < pc.rx_queues;
         q = static_cast<uint16_t>(q + n_workers)) {
      w->rx_queues.push_back(q);
    }
    w->lcore = e->lcores_[i];
    w->port = e->data_port_;
    w->exception_port = e->tap_port_;
    w->idle = options.idle;
    w->publisher = e->publisher_.get();
    w->stop = &e->stop_workers_;
    // The table in DPDK memory on the worker's socket (huge pages: a random bucket access
    // costs no 4 KiB TLB miss); if DPDK has not that much left, in process memory (where
    // transparent huge pages are asked for), said in the start-up line.
    absl::StatusOr<std::unique_ptr<conntrack::Table>> table;
    if (void* mem = rte_malloc_socket("ecmplb_conntrack", e->table_bytes_,
                                      conntrack::Table::kMemoryAlignment,
                                      static_cast<int>(rte_lcore_to_socket_id(w->lcore)))) {
      w->table_memory.reset(mem);
      table = conntrack::Table::Create(
          options.conntrack, std::span<std::byte>(static_cast<std::byte*>(mem), e->table_bytes_));
      ++e->tables_in_dpdk_memory_;
    } else {
      table = conntrack::Table::Create(options.conntrack);
    }
    if (!table.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("connection table: ", table.status().message(),
                                                     " (change conntrack.capacity)"));
    }
    w->table = std::move(*table);
    w->counters = std::make_unique<WorkerCounters>();
    PipelineOptions wpo = po;
    if (options.sync_ring_capacity != 0) {
      w->sync_ring = std::make_unique<SyncRing>(options.sync_ring_capacity);
      wpo.sync_out = w->sync_ring.get();
    }
    w->pipeline =
        std::make_unique<Pipeline>(w->table.get(), w->counters.get(), e->neighbors_.get(), wpo);
    e->workers_.push_back(std::move(w));
  }
  e->exception_counters_ = std::make_unique<WorkerCounters>();
  ExceptionForwarder::Ports fp;
  fp.exception_port = e->tap_port_;
  fp.exception_queues = e->tap_queues_;
  fp.data_port = e->data_port_;
  fp.tx_queue = static_cast<uint16_t>(n_workers);
  e->forwarder_ = std::make_unique<ExceptionForwarder>(fp, e->exception_counters_.get(),
                                                       options.idle.backoff ? 200 : 20);
  return e;
}

std::string Engine::data_port_name() const {
  return PortName(data_port_);
}

absl::Status Engine::Start() {
  stop_workers_.store(false);
  for (auto& w : workers_) {
    if (rte_eal_remote_launch(WorkerMain, w.get(), w->lcore) != 0) {
      Stop();
      return absl::InternalError(absl::StrCat("cannot launch a worker on lcore ", w->lcore));
    }
    workers_running_ = true;
  }
  return forwarder_->Start();
}

void Engine::Stop() {
  if (forwarder_ != nullptr) forwarder_->Stop();
  if (workers_running_) {
    stop_workers_.store(true);
    rte_eal_mp_wait_lcore();
    workers_running_ = false;
  }
}

void Engine::Publish(std::unique_ptr<const Snapshot> snapshot) {
  for (auto& w : workers_) {
    w->counters->EnsureSlots(snapshot->service_slots(), snapshot->backend_slots());
  }
  publisher_->Publish(std::move(snapshot));
}

void Engine::Heartbeats(std::vector<uint64_t>* out) const {
  out->resize(workers_.size());
  for (size_t i = 0; i < workers_.size(); ++i) {
    (*out)[i] = workers_[i]->heartbeat.load(std::memory_order_relaxed);
  }
}

void Engine::Shutdown() {
  Stop();
  if (ports_started_) {
    rte_eth_dev_stop(data_port_);
    rte_eth_dev_stop(tap_port_);
    rte_eth_dev_close(tap_port_);
    ports_started_ = false;
  }
  workers_.clear();
  publisher_.reset();
}

Engine::~Engine() {
  Shutdown();
}

bool Engine::data_port_allmulticast() const {
  return rte_eth_allmulticast_get(data_port_) == 1;
}

}  // namespace ecmplb::dataplane
