// main.cc: the ecmplb daemon.
//
//   ecmplb [EAL options] -- --config PATH [--port N] [--idle-backoff] ...
//
// The main lcore runs the control loop (exception forwarding kernel -> data port, the control
// socket every millisecond, neighbour resolution, snapshot reclamation); every other EAL
// lcore runs one worker on its own RX/TX queue pair. Every start-up problem is one line on
// stderr and exit status 1. Each accepted change (ecmplbctl) is saved to the --config file.
#include <rte_eal.h>
#include <rte_errno.h>
#include <rte_ethdev.h>
#include <rte_lcore.h>
#include <rte_malloc.h>

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "control/config.h"
#include "control/control_plane.h"
#include "control/control_server.h"
#include "control/health_monitor.h"
#include "control/metrics.h"
#include "dataplane/dpdk/telemetry.h"
#include "control/netlink.h"
#include "control/protocol.h"
#include "control/snapshot_builder.h"
#include "control/telemetry_views.h"
#include "dataplane/dpdk/port.h"
#include "dataplane/dpdk/publisher.h"
#include "dataplane/dpdk/worker.h"

namespace {

using namespace ecmplb;  // NOLINT

// Signals only record themselves; the control loop acts on them (SIGTERM: graceful drain,
// SIGINT: stop now). Workers stop when g_stop_workers is set, after the loop has withdrawn the
// VIPs.
std::atomic<int> g_signal{0};
void OnSignal(int sig) {
  g_signal.store(sig);
}
std::atomic<bool> g_stop_workers{false};

[[noreturn]] void Die(const std::string& msg) {
  std::fprintf(stderr, "ecmplb: %s\n", msg.c_str());
  rte_eal_cleanup();
  std::exit(1);
}

template <typename T>
T OrDie(absl::StatusOr<T> v) {
  if (!v.ok()) Die(std::string(v.status().message()));
  return *std::move(v);
}
void OrDie(const absl::Status& s) {
  if (!s.ok()) Die(std::string(s.message()));
}

struct AppOptions {
  std::string config;
  int port = -1;
  bool idle_backoff = false;
  uint32_t idle_sleep_us = 50;
  uint32_t idle_polls = 256;
  uint32_t mbufs = 16383;
  uint16_t rx_desc = 1024;
  uint16_t tx_desc = 1024;
  bool trust_ip_checksum = false;
  bool promiscuous = false;
  double run_seconds = 0;
};

// Keeps the neighbour table in step with the kernel's table of the exception interface.
class NeighborSync {
 public:
  NeighborSync(control::Netlink* nl, int ifindex, dataplane::NeighborTable* table)
      : nl_(nl), ifindex_(ifindex), table_(table) {}

  void Run(const std::map<uint32_t, dataplane::IpAddr>& slots) {
    auto dump = nl_->DumpNeighbors(ifindex_);
    if (!dump.ok()) return;
    for (const auto& [slot, addr] : slots) {
      const control::Neighbor* found = nullptr;
      for (const auto& n : *dump) {
        if (n.addr == addr && n.usable()) found = &n;
      }
      if (found != nullptr) {
        table_->Set(slot, found->mac.bytes.data());
      } else {
        table_->Invalidate(slot);
      }
      bool asked = table_->TakeRequest(slot);
      if (found == nullptr && (asked || ++ticks_ % 10 == 0)) {
        (void)nl_->ResolveNeighbor(ifindex_, addr);
      }
    }
  }

 private:
  control::Netlink* nl_;
  int ifindex_;
  dataplane::NeighborTable* table_;
  uint64_t ticks_ = 0;
};

}  // namespace

int main(int argc, char** argv) {
  int eal_args = rte_eal_init(argc, argv);
  if (eal_args < 0) {
    std::fprintf(stderr,
                 "ecmplb: EAL initialisation failed (%s): check the EAL options before '--'\n",
                 rte_strerror(rte_errno));
    return 1;
  }
  argc -= eal_args;
  argv += eal_args;
  argv[0] = const_cast<char*>("ecmplb");

  AppOptions opt;
  CLI::App app{"ecmplb: DPDK L4 load balancer (DR and GRE, Maglev, per-worker conntrack)",
               "ecmplb"};
  app.add_option("--config", opt.config, "configuration file (JSON)")->required();
  app.add_option("--port", opt.port, "DPDK port id of the data port (default: the only one)");
  app.add_flag("--idle-backoff", opt.idle_backoff,
               "workers sleep after a run of empty polls (to share cores); default: busy polling");
  app.add_option("--idle-sleep-us", opt.idle_sleep_us, "back-off sleep in microseconds")
      ->check(CLI::Range(1u, 100000u));
  app.add_option("--idle-polls", opt.idle_polls, "empty polls before a back-off sleep")
      ->check(CLI::Range(1u, 1000000u));
  app.add_option("--mbufs", opt.mbufs, "mbufs in the packet pool")
      ->check(CLI::Range(1023u, 16777215u));
  app.add_option("--rx-desc", opt.rx_desc, "RX descriptors per queue")
      ->check(CLI::Range(64, 16384));
  app.add_option("--tx-desc", opt.tx_desc, "TX descriptors per queue")
      ->check(CLI::Range(64, 16384));
  app.add_flag("--trust-ip-checksum", opt.trust_ip_checksum, "do not verify IPv4 header checksums");
  app.add_flag(
      "--promiscuous", opt.promiscuous,
      "put the data port in promiscuous mode and forward frames whatever their destination MAC");
  app.add_option("--run-seconds", opt.run_seconds, "stop after this many seconds (tests)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      std::printf("%s", app.help().c_str());
      rte_eal_cleanup();
      return 0;
    }
    Die(absl::StrCat(e.what(), " (see ecmplb [EAL options] -- --help)"));
  }

  control::Config config = OrDie(control::LoadConfigFile(opt.config));

  const unsigned n_workers = rte_lcore_count() - 1;
  if (n_workers == 0) {
    Die("no worker lcore: give EAL at least two lcores (e.g. -l 0,1); the main lcore runs control, "
        "each other one a worker");
  }
  std::vector<unsigned> lcores;
  unsigned lc;
  RTE_LCORE_FOREACH_WORKER(lc) lcores.push_back(lc);

  // Ports: the data port (given by EAL) and the exception TAP we create with its MAC.
  uint16_t ports_before = rte_eth_dev_count_avail();
  uint16_t data_port = OrDie(dataplane::FindDataPort(opt.port, UINT16_MAX, UINT16_MAX));
  (void)ports_before;
  dataplane::MacAddr mac = OrDie(dataplane::PortMac(data_port));
  uint16_t tap_port = OrDie(dataplane::CreateTap(config.host.exception_interface, mac));

  int socket = rte_eth_dev_socket_id(data_port);
  if (socket < 0) socket = static_cast<int>(rte_socket_id());
  rte_mempool* pool = OrDie(dataplane::CreatePool("ecmplb_pkts", opt.mbufs, socket));

  dataplane::PortConfig pc;
  pc.rx_queues = static_cast<uint16_t>(n_workers);
  pc.tx_queues = static_cast<uint16_t>(n_workers + 1);
  const bool paired = dataplane::QueuesArePaired(data_port);
  if (paired) {
    // af_packet opens one socket per queue pair and the kernel spreads flows over all of them:
    // the extra RX queue (paired with the exception TX queue) is polled too, by worker 0.
    pc.rx_queues = pc.tx_queues;
    pc.rss = false;
  }
  pc.rx_desc = opt.rx_desc;
  pc.tx_desc = opt.tx_desc;
  pc.mtu = 0;  // the port keeps its MTU; host.mtu bounds what we send
  pc.promiscuous = opt.promiscuous;
  OrDie(dataplane::StartPort(data_port, pc, pool));
  dataplane::PortConfig tc;
  tc.rx_queues = static_cast<uint16_t>(n_workers);  // the TAP PMD pairs its queues
  tc.tx_queues = static_cast<uint16_t>(n_workers);
  tc.rx_desc = 512;
  tc.tx_desc = 512;
  tc.mtu = 0;
  OrDie(dataplane::StartPort(tap_port, tc, pool));

  // The kernel side of the exception interface: up, with the host's address.
  auto nl = OrDie(control::Netlink::Open());
  int tap_ifindex = OrDie(nl->IfIndex(config.host.exception_interface));
  OrDie(nl->SetLinkUp(tap_ifindex));
  OrDie(nl->AddAddress(tap_ifindex, OrDie(dataplane::IpAddr::Parse(config.host.address)),
                       config.host.prefix_length));

  // Configuration -> snapshot.
  auto neighbors = std::make_unique<dataplane::NeighborTable>();
  auto publisher = OrDie(dataplane::SnapshotPublisher::Create(n_workers));
  const uint64_t tsc_hz = rte_get_tsc_hz();
  control::ControlPlane::Options cp_opts;
  cp_opts.save_path = opt.config;  // the running configuration is saved after every change
  cp_opts.worker_clock = [tsc_hz] { return rte_rdtsc() / tsc_hz; };  // the workers' clock
  auto plane = OrDie(control::ControlPlane::Create(
      config, mac,
      [&publisher](std::unique_ptr<const dataplane::Snapshot> s) {
        publisher->Publish(std::move(s));
      },
      cp_opts));
  const control::SnapshotBuilder& builder = plane->builder();
  NeighborSync sync(nl.get(), tap_ifindex, neighbors.get());
  sync.Run(builder.neighbor_slots());

  // Workers.
  std::vector<std::unique_ptr<dataplane::Worker>> workers;
  conntrack::Options ct_opts;
  ct_opts.capacity = config.conntrack.capacity;
  ct_opts.timeouts.tcp_established = config.conntrack.tcp_established_s;
  ct_opts.timeouts.tcp_syn = config.conntrack.tcp_syn_s;
  ct_opts.timeouts.tcp_closing = config.conntrack.tcp_closing_s;
  ct_opts.timeouts.udp = config.conntrack.udp_s;
  dataplane::PipelineOptions popt;
  popt.ip_checksum = opt.trust_ip_checksum ? dataplane::IpChecksumMode::kTrust
                                           : dataplane::IpChecksumMode::kVerify;
  popt.accept_any_mac = opt.promiscuous;
  const size_t ct_bytes = conntrack::Table::MemoryNeeded(ct_opts);
  unsigned tables_in_dpdk_memory = 0;
  for (unsigned i = 0; i < n_workers; ++i) {
    auto w = std::make_unique<dataplane::Worker>();
    w->id = i;
    for (uint16_t q = static_cast<uint16_t>(i); q < pc.rx_queues;
         q = static_cast<uint16_t>(q + n_workers)) {
      w->rx_queues.push_back(q);
    }
    w->lcore = lcores[i];
    w->port = data_port;
    w->exception_port = tap_port;
    w->idle = dataplane::IdleConfig{opt.idle_backoff, opt.idle_polls, opt.idle_sleep_us};
    w->publisher = publisher.get();
    w->stop = &g_stop_workers;
    // The table in DPDK memory on the worker's socket (huge pages: a random bucket access
    // costs no 4 KiB TLB miss); if DPDK has not that much left, in process memory (where
    // transparent huge pages are asked for), said in the start-up line.
    absl::StatusOr<std::unique_ptr<conntrack::Table>> table;
    if (void* mem =
            rte_malloc_socket("ecmplb_conntrack", ct_bytes, conntrack::Table::kMemoryAlignment,
                              static_cast<int>(rte_lcore_to_socket_id(w->lcore)))) {
      w->table_memory.reset(mem);
      table = conntrack::Table::Create(
          ct_opts, std::span<std::byte>(static_cast<std::byte*>(mem), ct_bytes));
      ++tables_in_dpdk_memory;
    } else {
      table = conntrack::Table::Create(ct_opts);
    }
    if (!table.ok())
      Die(absl::StrCat("connection table: ", table.status().message(),
                       " (change conntrack.capacity)"));
    w->table = std::move(*table);
    w->counters = std::make_unique<dataplane::WorkerCounters>();
    w->pipeline = std::make_unique<dataplane::Pipeline>(w->table.get(), w->counters.get(),
                                                        neighbors.get(), popt);
    workers.push_back(std::move(w));
  }
  auto exception_counters = std::make_unique<dataplane::WorkerCounters>();
  std::vector<control::WorkerView> views;
  for (auto& w : workers) {
    views.push_back(control::WorkerView{w->id, w->counters.get(), w->table.get(),
                                        absl::StrCat("worker", w->id), &w->heartbeat});
  }
  // What the telemetry thread reads: the workers, and a copy of the health view.
  control::TelemetryViews telemetry(views);
  views.push_back(control::WorkerView{n_workers, exception_counters.get(), nullptr, "exception"});
  plane->SetWorkers(std::move(views));

  // The control socket, served from the loop below (non-blocking).
  auto server = control::ControlServer::Listen(
      config.host.control_socket,
      [&plane](absl::string_view req) { return control::HandleRequest(*plane, req); });
  if (!server.ok()) Die(std::string(server.status().message()));

  // Health: backend checks, worker watchdog, VIP announcement (on host.announce_interface).
  auto log = [](const std::string& m) {
    std::printf("ecmplb: %s\n", m.c_str());
    std::fflush(stdout);
  };
  const uint64_t hz = tsc_hz;
  auto now_ms = [hz] { return rte_rdtsc() * 1000 / hz; };
  control::HealthMonitor monitor(config.host.announce ? nl.get() : nullptr, n_workers,
                                 config.host.worker_stall_ms, log);
  monitor.SetConfig(plane->config(), now_ms());
  OrDie(plane->SetUnhealthy(monitor.unhealthy()));  // checked backends serve once proven
  plane->SetHealthView([&monitor, &now_ms] { return monitor.View(now_ms()); });

  bool draining = false;
  bool exiting = false;
  uint64_t drain_end = 0;
  auto start_drain = [&](const std::string& why) {
    if (draining) return;
    draining = true;
    drain_end = rte_rdtsc() + static_cast<uint64_t>(config.host.drain_s) * hz;
    monitor.WithdrawAll("draining");
    log(absl::StrCat("draining (", why, "): VIPs withdrawn, forwarding ", config.host.drain_s,
                     " s more, then stopping"));
  };
  plane->AddExtension(control::CommandId::kDrain,
                      [&](const control::Request&) -> absl::StatusOr<control::ExtensionReply> {
                        start_drain("ecmplbctl drain");
                        return control::DrainReply{config.host.drain_s};
                      });
  plane->AddExtension(
      control::CommandId::kFault,
      [&](const control::Request& req) -> absl::StatusOr<control::ExtensionReply> {
        if (req.fault != "stall-worker") {
          return absl::InvalidArgumentError("unknown fault (known: stall-worker)");
        }
        if (!req.worker || *req.worker >= workers.size()) {
          return absl::InvalidArgumentError(absl::StrCat("worker must be 0..", workers.size() - 1));
        }
        if (!req.ms || *req.ms == 0 || *req.ms > 60000) {
          return absl::InvalidArgumentError("ms must be 1..60000");
        }
        uint64_t wi = *req.worker;
        uint32_t ms = static_cast<uint32_t>(*req.ms);
        workers[wi]->fault_stall_ms.store(ms);
        log(absl::StrCat("fault injection: worker ", wi, " stalls for ", ms, " ms"));
        return control::FaultReply{"stall-worker", wi, ms};
      });
  std::unique_ptr<control::MetricsServer> metrics;
  if (!config.host.metrics_listen.empty()) {
    metrics = OrDie(control::MetricsServer::Listen(config.host.metrics_listen));
  }
  dataplane::RegisterTelemetry(
      {[&telemetry] { return telemetry.Counters(); }, [&telemetry] { return telemetry.Workers(); },
       [&telemetry] { return telemetry.Vips(); }, [&telemetry] { return telemetry.Backends(); }});

  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  std::vector<std::string> lcore_text;
  for (unsigned l : lcores) lcore_text.push_back(absl::StrCat(l));
  std::printf(
      "ecmplb: %u worker%s on lcore%s %s, data port %s %s, exception interface %s (%s/%u), %zu "
      "service%s, "
      "%s polling%s, connection tables %s (%zu MiB each)\n",
      n_workers, n_workers == 1 ? "" : "s", n_workers == 1 ? "" : "s",
      absl::StrJoin(lcore_text, ",").c_str(), dataplane::PortName(data_port).c_str(),
      mac.ToString().c_str(), config.host.exception_interface.c_str(), config.host.address.c_str(),
      config.host.prefix_length, config.services.size(), config.services.size() == 1 ? "" : "s",
      opt.idle_backoff ? "idle back-off" : "busy",
      opt.idle_backoff ? absl::StrCat(" (sleep ", opt.idle_sleep_us, " us after ", opt.idle_polls,
                                      " empty polls)")
                             .c_str()
                       : "",
      tables_in_dpdk_memory == n_workers ? "in DPDK memory"
      : tables_in_dpdk_memory == 0       ? "in process memory (DPDK memory too small)"
                                         : "partly in process memory (DPDK memory too small)",
      ct_bytes >> 20);
  std::fflush(stdout);

  for (auto& w : workers) {
    if (rte_eal_remote_launch(dataplane::WorkerMain, w.get(), w->lcore) != 0) {
      g_stop_workers.store(true);
      rte_eal_mp_wait_lcore();
      Die(absl::StrCat("cannot launch a worker on lcore ", w->lcore));
    }
  }

  // Control loop on the main lcore.
  const uint64_t start = rte_rdtsc();
  uint64_t next_tick = start;
  uint64_t next_poll = start;
  uint64_t next_health = start;
  std::vector<uint64_t> beats(workers.size());
  while (!exiting) {
    uint32_t moved = dataplane::ForwardExceptionBurst(tap_port, tc.rx_queues, data_port,
                                                      static_cast<uint16_t>(n_workers),
                                                      exception_counters.get());
    uint64_t now = rte_rdtsc();
    if (now >= next_poll) {
      next_poll = now + hz / 1000;  // 1 ms
      if ((*server)->Poll() > 0) {
        next_tick = now;  // resolve new next hops, reclaim soon
        monitor.SetConfig(plane->config(), now_ms());
        if (absl::Status st = plane->SetUnhealthy(monitor.unhealthy()); !st.ok())
          log(std::string(st.message()));
        next_health = now;
      }
      int sig = g_signal.exchange(0);
      if (sig == SIGTERM) start_drain("SIGTERM");
      if (sig == SIGINT) exiting = true;
    }
    if (now >= next_health) {
      next_health = now + hz / 100;  // 10 ms
      for (size_t i = 0; i < workers.size(); ++i)
        beats[i] = workers[i]->heartbeat.load(std::memory_order_relaxed);
      if (monitor.Tick(now_ms(), beats)) {
        if (absl::Status st = plane->SetUnhealthy(monitor.unhealthy()); !st.ok())
          log(std::string(st.message()));
      }
      if (!draining) monitor.Announce(plane->config());
      if (metrics != nullptr) {
        metrics->Poll(now_ms(), [&] {
          return control::RenderPrometheus(plane->Stats(), monitor.View(now_ms()));
        });
      }
      telemetry.SetHealth(monitor.View(now_ms()));
      if (draining && now >= drain_end) exiting = true;
    }
    if (now >= next_tick) {
      next_tick = now + hz / 10;  // 100 ms
      sync.Run(builder.neighbor_slots());
      publisher->Reclaim();
      if (opt.run_seconds > 0 &&
          static_cast<double>(now - start) / static_cast<double>(hz) >= opt.run_seconds) {
        exiting = true;
      }
    }
    if (moved == 0)
      std::this_thread::sleep_for(std::chrono::microseconds(opt.idle_backoff ? 200 : 20));
  }

  // A stopped balancer must not stay announced.
  monitor.WithdrawAll("stopping");
  g_stop_workers.store(true);
  rte_eal_mp_wait_lcore();
  server->reset();
  uint64_t rx = 0, tx = 0;
  for (auto& w : workers) {
    rx += w->counters->Get(dataplane::Counter::rx_packets);
    tx += w->counters->Get(dataplane::Counter::tx_packets);
  }
  std::printf("ecmplb: stopped; workers received %lu and sent %lu packets\n",
              static_cast<unsigned long>(rx), static_cast<unsigned long>(tx));
  rte_eth_dev_stop(data_port);
  rte_eth_dev_stop(tap_port);
  rte_eth_dev_close(tap_port);
  workers.clear();
  publisher.reset();
  rte_eal_cleanup();
  return 0;
}
