// daemon.cc: see daemon.h.
#include "daemon/daemon.h"

#include <poll.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "control/config.h"
#include "control/control_plane.h"
#include "control/control_server.h"
#include "control/etcd_store.h"
#include "control/fleet_agent.h"
#include "control/health_monitor.h"
#include "control/log.h"
#include "control/peer_wait.h"
#include "control/metrics.h"
#include "control/neighbor_sync.h"
#include "control/netlink.h"
#include "control/protocol.h"
#include "control/sync_bulk.h"
#include "control/sync_engine.h"
#include "control/sync_wire.h"
#include "control/telemetry_views.h"
#include "control/views.h"
#include "daemon/control_loop.h"
#include "daemon/event_loop.h"
#include "dataplane/dpdk/engine.h"
#include "dataplane/dpdk/telemetry.h"

namespace ecmplb::daemon {
namespace {

// Flow sync's period: queued flows wait at most this long (plus the loop's own work).
constexpr uint64_t kSyncTickMs = 10;

// The process's log (control/log.h): set up first in Daemon::Create; before that (and after
// it), messages go straight to the writer.
control::log::Logger* g_log = nullptr;

// Whether stderr is connected to the journal (systemd's JOURNAL_STREAM names its device and
// inode): then messages go to the journal with their fields and priority.
bool StderrIsJournal() {
  const char* js = std::getenv("JOURNAL_STREAM");
  if (js == nullptr) return false;
  struct stat st {};
  if (::fstat(STDERR_FILENO, &st) != 0) return false;
  unsigned long long dev = 0, ino = 0;
  return std::sscanf(js, "%llu:%llu", &dev, &ino) == 2 && dev == st.st_dev && ino == st.st_ino;
}

void WriteLog(const control::log::Event& e) {
  static const bool journal = StderrIsJournal();
  if (journal) {
    std::vector<std::string> parts = {
        absl::StrCat("MESSAGE=", e.message),
        absl::StrCat("PRIORITY=", static_cast<int>(e.level)),
        absl::StrCat("SYSLOG_IDENTIFIER=ecmplb"),
        absl::StrCat("ECMPLB_KIND=", e.kind)};
    for (const auto& f : e.fields) parts.push_back(absl::StrCat("ECMPLB_", f.name, "=", f.value));
    std::vector<iovec> iov;
    for (auto& p : parts) iov.push_back(iovec{p.data(), p.size()});
    if (sd_journal_sendv(iov.data(), static_cast<int>(iov.size())) == 0) return;
  }
  // Errors and warnings on stderr (kept when stdout is not), the rest on stdout; one line each.
  const bool severe = e.level <= control::log::Level::kWarning;
  std::FILE* out = severe ? stderr : stdout;
  std::fprintf(out, "ecmplb: %s\n", e.message.c_str());
  std::fflush(out);
}

void Log(control::log::Level level, const char* kind, const std::string& m,
         control::log::Fields fields = {}) {
  control::log::Event e{level, kind, m, std::move(fields)};
  if (g_log != nullptr) {
    g_log->Log(e);
  } else {
    WriteLog(e);
  }
}

void Log(const std::string& m) { Log(control::log::Level::kInfo, "daemon", m); }

// systemd's service protocol (Type=notify): a no-op without NOTIFY_SOCKET.
void Notify(const std::string& state) { (void)sd_notify(0, state.c_str()); }

void NotifyStopping(const std::string& why) {
  Notify(absl::StrCat("STOPPING=1\nSTATUS=draining (", why, ")"));
}

control::log::Sink LogSink() {
  return control::log::Sink([](const control::log::Event& e) {
    if (g_log != nullptr) {
      g_log->Log(e);
    } else {
      WriteLog(e);
    }
  });
}

// Writes `value` to a /proc/sys file; a failure names the file.
absl::Status WriteSysctl(const std::string& path, const std::string& value) {
  std::ofstream f(path);
  f << value;
  f.flush();
  if (!f) return absl::FailedPreconditionError(absl::StrCat("cannot write ", value, " to ", path));
  return absl::OkStatus();
}

// What an operator must see even when stdout is not kept: refusals on the control socket.
void LogError(const std::string& m) { Log(control::log::Level::kError, "control_socket", m); }

dataplane::EngineOptions EngineOptionsFor(const Options& opt, const control::Config& config) {
  dataplane::EngineOptions eo;
  eo.port = opt.port;
  eo.exception_interface = config.host.exception_interface;
  eo.mbufs = opt.mbufs;
  eo.rx_desc = opt.rx_desc;
  eo.tx_desc = opt.tx_desc;
  eo.promiscuous = opt.promiscuous;
  eo.idle = dataplane::IdleConfig{opt.idle_backoff, opt.idle_polls, opt.idle_sleep_us};
  eo.idle.housekeeping_us = opt.housekeeping_us;
  eo.steering =
      opt.rx_steering == "peer" ? dataplane::RxSteering::kPeer : dataplane::RxSteering::kRss;
  eo.conntrack.capacity = config.conntrack.capacity;
  eo.conntrack.timeouts.tcp_established = config.conntrack.tcp_established_s;
  eo.conntrack.timeouts.tcp_syn = config.conntrack.tcp_syn_s;
  eo.conntrack.timeouts.tcp_closing = config.conntrack.tcp_closing_s;
  eo.conntrack.timeouts.tcp_probation = config.conntrack.tcp_probation_s;
  eo.conntrack.timeouts.udp = config.conntrack.udp_s;
  eo.pipeline.ip_checksum = opt.trust_ip_checksum ? dataplane::IpChecksumMode::kTrust
                                                  : dataplane::IpChecksumMode::kVerify;
  eo.pipeline.accept_any_mac = opt.promiscuous;
  eo.pipeline.fragment_capacity = config.fragments.capacity;
  eo.pipeline.fragment_hold = config.fragments.hold;
  eo.pipeline.fragment_timeout_s = config.fragments.timeout_s;
  if (!config.sync.peers.empty()) {
    eo.sync_ring_capacity = 16384;  // ~160 ms of a worker's new flows at 100k/s
    eo.pipeline.sync_rate = config.sync.rate_per_worker;
    // Default: room for every peer's whole share (N-1 hosts' flows, each worker's capacity).
    eo.peer_capacity = config.sync.peer_capacity;
    eo.sync_peers = config.sync.peers.size();
  }
  return eo;
}

// `ecmplbctl fault ...`: stall-worker (a hung worker: the watchdog withdraws the VIPs) and
// stall-control (a control step that takes long, e.g. a huge apply: forwarding, including
// the kernel's OSPF and BFD packets through the exception path, must go on meanwhile).
absl::StatusOr<control::ExtensionReply> Fault(const control::Request& req,
                                              dataplane::Engine& engine) {
  if (req.fault != "stall-worker" && req.fault != "stall-control") {
    return absl::InvalidArgumentError("unknown fault (known: stall-worker, stall-control)");
  }
  if (!req.ms || *req.ms == 0 || *req.ms > 60000) {
    return absl::InvalidArgumentError("ms must be 1..60000");
  }
  const uint32_t ms = static_cast<uint32_t>(*req.ms);
  if (req.fault == "stall-control") {
    Log(absl::StrCat("fault injection: the control loop stalls for ", ms, " ms"));
    std::this_thread::sleep_for(std::chrono::milliseconds(ms));
    return control::FaultReply{req.fault, std::nullopt, ms};
  }
  auto& workers = engine.workers();
  if (!req.worker || *req.worker >= workers.size()) {
    return absl::InvalidArgumentError(absl::StrCat("worker must be 0..", workers.size() - 1));
  }
  const uint64_t wi = *req.worker;
  workers[wi]->fault_stall_ms.store(ms);
  Log(absl::StrCat("fault injection: worker ", wi, " stalls for ", ms, " ms"));
  return control::FaultReply{req.fault, wi, ms};
}

}  // namespace

struct Daemon::Parts {
  ~Parts() {
    if (g_log == logger.get()) g_log = nullptr;  // what the other parts log on their way out
  }
  std::unique_ptr<control::log::Logger> logger;  // g_log while this daemon runs
  Options options;
  control::Config config;
  std::unique_ptr<dataplane::Engine> engine;
  std::unique_ptr<control::Netlink> netlink;
  std::unique_ptr<control::HealthMonitor> monitor;
  std::unique_ptr<control::ControlPlane> plane;
  std::unique_ptr<control::NeighborSync> neighbor_sync;
  control::AccessPolicy access;  // who may use the control socket
  std::unique_ptr<control::ControlServer> server;
  std::unique_ptr<control::MetricsServer> metrics;
  std::unique_ptr<ControlLoop> loop;
  EventLoop events;
  // Flow sync (sync section configured): its socket and engine, ticked every kSyncTickMs.
  std::unique_ptr<control::SyncSocket> sync_socket;
  std::unique_ptr<control::SyncEngine> sync;
  // Bulk sync: the TCP server answering peers, and the fetch in progress (at start, or from
  // peers heard again after a silence), if any.
  std::unique_ptr<control::BulkServer> bulk_server;
  std::unique_ptr<control::BulkFetcher> bulk_fetch;
  bool bulk_holds = false;  // the fetch holds withdrawn VIPs back (sync.bulk_wait)
  std::string bulk_hold_reason;
  // Withdrawn VIPs wait for peers that fell silent (control/peer_wait.h).
  control::SilentPeerWait peer_wait{control::kPeerSilentMs};
  std::string peer_wait_reason;
  std::vector<size_t> heal_pending;  // peers to fetch from once the current fetch is over
  std::string bulk_status;
  dataplane::IpAddr host_addr;
  // What DPDK's telemetry thread reads. Its sources hold telemetry_mutex and answer nothing
  // once telemetry_off is set (before the workers and their tables go away).
  std::unique_ptr<control::TelemetryViews> telemetry;
  std::mutex telemetry_mutex;
  bool telemetry_off = false;
  // Fleet mode (fleet section): etcd and the agent that follows it.
  std::unique_ptr<control::fleet::EtcdStore> fleet_store;
  std::unique_ptr<control::fleet::FleetAgent> fleet;
  std::string save_error;  // the last failed save's, logged once
  bool neighbor_warned = false;  // next hops near the kernel's neighbour limit: logged once
};

void Daemon::WarnNeighborLimit(Parts& p) {
  if (p.plane == nullptr) return;  // the first configuration, before Create returned
  const size_t hops = p.plane->builder().neighbor_slots().size();
  std::ifstream f("/proc/sys/net/ipv4/neigh/default/gc_thresh3");
  size_t limit = 0;
  if (!(f >> limit) || hops <= limit * 3 / 4) {
    p.neighbor_warned = false;
    return;
  }
  if (p.neighbor_warned) return;
  p.neighbor_warned = true;
  Log(control::log::Level::kWarning, "neighbors", absl::StrCat("warning: ", hops, " next hops to resolve, and the kernel keeps at most ",
                   limit, " neighbour entries (net.ipv4.neigh.default.gc_thresh3): raise it (and ",
                   "gc_thresh1/2) above ", hops + hops / 4,
                   ", or next hops it evicts drop traffic (drop_neighbor_unresolved)"));
}

void Daemon::SaveConfig(Parts& p) {
  absl::Status st = p.plane->SaveIfDirty();
  const std::string error = st.ok() ? "" : std::string(st.message());
  if (error == p.save_error) return;
  if (!error.empty()) {
    Log(control::log::Level::kError, "config_save",
        absl::StrCat("cannot save the running configuration (retrying): ", error),
        {{"REASON", error}});
  } else {
    Log(control::log::Level::kNotice, "config_save", "running configuration saved again");
  }
  p.save_error = error;
}

// Fleet mode: the file holds host settings only; the services start from the cache (the last
// revision applied, kept on disk) until etcd answers. Returns the cached version (0: none).
struct FleetCacheState {
  int64_t version = 0;  // 0: nothing restored
  std::string pointer;  // the cached revision's pointer digest
};

static absl::StatusOr<FleetCacheState> RestoreFleetCache(const std::string& path,
                                                         control::Config* config) {
  if (!config->fleet.enabled()) return FleetCacheState{};
  if (!config->services.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": services: in fleet mode (fleet.endpoints) the services come from etcd only; "
        "write them there (ecmplbctl fleet put FILE) and remove them from this file"));
  }
  const std::string& cache_file = config->fleet.cache_file;
  const std::string root = control::fleet::Layout::For(config->fleet).root;
  auto cache = control::fleet::LoadCache(cache_file);
  std::string why;
  if (!cache.ok()) {
    why = cache.status().code() == absl::StatusCode::kNotFound
              ? absl::StrCat("no cache yet (", cache_file, ")")
              : std::string(cache.status().message());
  } else if (cache->root != root) {
    why = absl::StrCat("the cache ", cache_file, " is of ", cache->root.empty() ? "?" : cache->root,
                       ", not ", root);
  } else if (auto with = control::WithServices(*config, cache->services); !with.ok()) {
    why = absl::StrCat("the cached version ", cache->version, " (", cache_file,
                       ") does not validate here: ", with.status().message());
  } else {
    *config = std::move(*with);
    Log(absl::StrCat("fleet: serving the cached version ", cache->version, " (",
                     config->services.size(), " services) until etcd answers"));
    return FleetCacheState{cache->version, cache->pointer};
  }
  Log(cache.ok() || cache.status().code() != absl::StatusCode::kNotFound
          ? control::log::Level::kWarning
          : control::log::Level::kInfo,
      "fleet", absl::StrCat("fleet: ", why, ": no services until etcd answers"));
  return FleetCacheState{};
}

// Fleet mode's step, after every health step: the agent follows etcd and judges; its verdict
// reaches the announcements, and what it applied the peers (flow sync's beacon).
void Daemon::FleetStep(Parts& p, uint64_t now_ms) {
  p.fleet->Tick(now_ms);
  p.monitor->SetWithdraw(p.fleet->withdraw());
  if (p.sync != nullptr) {
    const control::HealthView hv = p.monitor->View(now_ms);
    bool serving = false;
    for (const auto& v : hv.vips) serving = serving || v.announced;
    p.sync->SetFleetBeacon(conntrack::sync::FleetBeacon{p.fleet->applied_version(),
                                                         p.fleet->fingerprints().root(), serving});
  }
}

absl::Status Daemon::StartFleet(Parts& p, int64_t cached_version,
                                const std::string& cached_pointer) {
  Parts* parts = &p;
  const control::FleetConfig& f = p.config.fleet;
  control::fleet::EtcdOptions eo;
  eo.endpoints = f.endpoints;
  eo.ca_file = f.ca_file;
  eo.cert_file = f.cert_file;
  eo.key_file = f.key_file;
  p.fleet_store = std::make_unique<control::fleet::EtcdStore>(std::move(eo));
  control::fleet::AgentOptions ao;
  ao.layout = control::fleet::Layout::For(f);
  ao.host = f.host_name.empty() ? p.config.host.address : f.host_name;
  ao.grace_ms = uint64_t{f.grace_s} * 1000;
  ao.min_announcing = f.min_announcing;
  ao.lease_ttl_s = f.lease_ttl_s;
  ao.cache_file = f.cache_file;
  auto apply = [parts](const std::string& services,
                       int64_t) -> absl::StatusOr<std::vector<control::ServiceConfig>> {
    control::Config base = parts->plane->config();
    base.services.clear();
    ECMPLB_ASSIGN_OR_RETURN(control::Config candidate, control::WithServices(base, services));
    ECMPLB_RETURN_IF_ERROR(parts->plane->ApplyConfig(std::move(candidate)).status());
    return parts->plane->config().services;
  };
  auto local = [parts](control::fleet::HostStatus* s) {
    const control::HealthView hv = parts->monitor->View(MonotonicMs());
    for (const auto& v : hv.vips) {
      if (v.announced) s->announced.push_back(v.vip);
    }
    s->serving = !s->announced.empty();
    for (const auto& b : hv.backends) {
      if (!b.up) s->down.push_back(absl::StrCat(b.service, "#", b.id, " ", b.address));
    }
    if (parts->sync != nullptr) {
      const uint64_t now = MonotonicMs();
      size_t alive = 0;
      for (size_t i = 0; i < parts->config.sync.peers.size(); ++i) {
        alive += parts->sync->PeerAlive(i, now) ? 1 : 0;
      }
      s->sync = absl::StrCat(alive, " of ", parts->config.sync.peers.size(), " peers heard",
                             parts->bulk_status.empty() ? "" : "; bulk: ", parts->bulk_status);
    }
  };
  auto beacons = [parts]() {
    std::vector<control::fleet::HostStatus> out;
    if (parts->sync == nullptr) return out;
    for (const auto& b : parts->sync->FleetBeacons(MonotonicMs(), control::kPeerSilentMs)) {
      control::fleet::HostStatus s;
      s.host = b.peer.ToString();
      s.applied_version = b.beacon.version;
      s.root = control::fleet::FingerprintHex(b.beacon.root);
      s.serving = b.beacon.serving;
      out.push_back(std::move(s));
    }
    return out;
  };
  p.fleet = std::make_unique<control::fleet::FleetAgent>(p.fleet_store.get(), ao, apply, local,
                                                         beacons, LogSink());
  if (cached_version != 0) {
    ECMPLB_RETURN_IF_ERROR(p.fleet->Restore(cached_version, cached_pointer, p.config.services));
  }
  p.events.Watch([parts](std::vector<pollfd>* fds) { parts->fleet_store->Fds(fds); },
                 [parts] { parts->fleet->Tick(MonotonicMs()); });
  p.plane->SetFleetView([parts] { return parts->fleet->View(); });
  Log(absl::StrCat("fleet: following ", ao.layout.root, " in etcd (", absl::StrJoin(f.endpoints, ", "),
                   ") as ", ao.host, "; grace ", f.grace_s, " s, min_announcing ",
                   f.min_announcing,
                   p.sync != nullptr ? "; peers' versions also heard through flow sync"
                                     : "; no flow sync: cut off from etcd, this host cannot tell "
                                       "whether the fleet moved on"));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Create(const Options& options) {
  auto p = std::make_unique<Parts>();
  Parts* parts = p.get();
  p->options = options;
  control::log::Logger::Options lo;
  lo.min_level = control::log::ParseLevel(options.log_level).value_or(control::log::Level::kInfo);
  p->logger = std::make_unique<control::log::Logger>(lo, WriteLog, MonotonicMs);
  g_log = p->logger.get();
  ECMPLB_ASSIGN_OR_RETURN(p->config, control::LoadConfigFile(options.config));
  ECMPLB_ASSIGN_OR_RETURN(const FleetCacheState fleet_cache,
                          RestoreFleetCache(options.config, &p->config));
  const control::Config& config = p->config;
  control::sync::Keyring sync_keys;
  if (!config.sync.peers.empty()) {
    // Before EAL's ports: a bad key file is the operator's first thing to fix.
    auto keys = control::sync::LoadKeyFile(config.sync.key_file);
    if (!keys.ok()) {
      return absl::Status(keys.status().code(),
                          absl::StrCat("sync.key_file: ", keys.status().message()));
    }
    sync_keys = std::move(*keys);
  }
  ECMPLB_ASSIGN_OR_RETURN(p->engine, dataplane::Engine::Create(EngineOptionsFor(options, config)));
  // Held fragments keep their mbufs: a spoofed flood of orphans may pin every worker's hold,
  // which must leave most of the pool to the RX queues.
  if (const uint64_t pinned = uint64_t{config.fragments.hold} * p->engine->worker_count();
      config.fragments.capacity != 0 && pinned * 4 > options.mbufs) {
    return absl::InvalidArgumentError(absl::StrCat(
        "fragments.hold x workers (", pinned, ") may pin more than a quarter of the packet pool (",
        options.mbufs, " mbufs): lower fragments.hold or raise --mbufs"));
  }
  if (!p->engine->data_port_allmulticast()) {
    Log(control::log::Level::kWarning, "port", "warning: the data port does not receive all multicast groups (no allmulticast): a NIC "
        "that filters multicast drops OSPF (224.0.0.5/6, ff02::5/6) and neighbour discovery "
        "unless it was told those groups");
  }
  dataplane::Engine& engine = *p->engine;

  // The kernel side of the exception interface: up, with the host's addresses. IPv6 first
  // gets its settings (before the link comes up and makes its link-local address): no router
  // advertisements accepted (the host's addresses and routes are configured, never learned
  // from the data segment) and no duplicate address detection (its ~1 s would delay OSPFv3,
  // ND and health checks at every start; the addresses are the operator's to keep unique).
  ECMPLB_ASSIGN_OR_RETURN(p->netlink, control::Netlink::Open());
  ECMPLB_ASSIGN_OR_RETURN(int tap_ifindex, p->netlink->IfIndex(config.host.exception_interface));
  if (!config.host.address6.empty()) {
    for (const char* setting : {"accept_ra", "accept_dad"}) {
      ECMPLB_RETURN_IF_ERROR(
          WriteSysctl(absl::StrCat("/proc/sys/net/ipv6/conf/", config.host.exception_interface,
                                   "/", setting),
                      "0"));
    }
  }
  ECMPLB_RETURN_IF_ERROR(p->netlink->SetLinkUp(tap_ifindex));
  ECMPLB_ASSIGN_OR_RETURN(dataplane::IpAddr host_addr,
                          dataplane::IpAddr::Parse(config.host.address));
  ECMPLB_RETURN_IF_ERROR(p->netlink->AddAddress(tap_ifindex, host_addr, config.host.prefix_length));
  if (!config.host.address6.empty()) {
    ECMPLB_ASSIGN_OR_RETURN(dataplane::IpAddr host_addr6,
                            dataplane::IpAddr::Parse(config.host.address6));
    ECMPLB_RETURN_IF_ERROR(p->netlink->AddAddress(tap_ifindex, host_addr6,
                                                  config.host.prefix_length6, /*no_dad=*/true));
  }

  // Health: backend checks, worker watchdog, VIP announcement (on host.announce_interface).
  p->monitor = std::make_unique<control::HealthMonitor>(
      config.host.announce ? p->netlink.get() : nullptr, engine.worker_count(),
      config.host.worker_stall_ms, LogSink());

  // Configuration -> snapshots, published to the workers.
  control::ControlPlane::Options cp;
  cp.save_path = options.config;  // the running configuration is saved after every change,
  cp.defer_save = true;           // from housekeeping (at most every 100 ms) and at exit
  cp.services_from_fleet = config.fleet.enabled();  // then the file keeps host settings only
  cp.worker_clock = dataplane::WorkerClockSeconds;
  cp.log = LogSink();  // reloads, changes slower than 100 ms
  cp.unhealthy_in = [parts](const control::ServiceConfig& s, const std::string& name,
                            std::set<control::BackendRef>* out) {
    parts->monitor->UnhealthyIn(s, name, out);
  };
  cp.on_applied = [parts](const control::Config&, const control::AppliedChange& change) {
    if (parts->loop != nullptr) parts->loop->ConfigApplied(MonotonicMs(), change);
    WarnNeighborLimit(*parts);
  };
  ECMPLB_ASSIGN_OR_RETURN(p->plane, control::ControlPlane::Create(
                                        config, engine.mac(),
                                        [&engine](std::unique_ptr<const dataplane::Snapshot> s) {
                                          engine.Publish(std::move(s));
                                        },
                                        std::move(cp)));
  control::ControlPlane& plane = *p->plane;
  // Neighbour changes as the kernel reports them; without the event socket every housekeeping
  // step dumps the table (slower with many next hops, same result).
  auto events = control::NeighborEvents::Open(tap_ifindex);
  if (!events.ok()) Log(absl::StrCat("neighbour events off: ", events.status().message()));
  p->neighbor_sync = std::make_unique<control::NeighborSync>(
      p->netlink.get(), tap_ifindex, &engine.neighbors(),
      events.ok() ? std::move(*events) : nullptr);
  if (p->neighbor_sync->events_fd() >= 0) {
    p->events.Watch(
        [parts](std::vector<pollfd>* fds) {
          fds->push_back(pollfd{parts->neighbor_sync->events_fd(), POLLIN, 0});
        },
        [parts] { parts->neighbor_sync->OnEvents(); });
  }
  p->neighbor_sync->Run(plane.builder().neighbor_slots());
  WarnNeighborLimit(*p);

  std::vector<control::WorkerView> views;
  for (auto& w : engine.workers()) {
    views.push_back(control::WorkerView{w->id, w->counters.get(), w->table.get(),
                                        absl::StrCat("worker", w->id), &w->heartbeat});
  }
  p->telemetry = std::make_unique<control::TelemetryViews>(views);
  views.push_back(control::WorkerView{static_cast<uint32_t>(engine.worker_count()),
                                      &engine.exception_counters(), nullptr, "exception"});
  plane.SetWorkers(std::move(views));

  // Flow sync: UDP at the host's address (through the exception interface), one engine.
  if (!config.sync.peers.empty()) {
    ECMPLB_ASSIGN_OR_RETURN(p->sync_socket, control::SyncSocket::Open(host_addr, config.sync.port));
    control::SyncEngine::Settings ss;
    ss.local = host_addr;
    for (const std::string& peer : config.sync.peers) {
      ECMPLB_ASSIGN_OR_RETURN(dataplane::IpAddr a, dataplane::IpAddr::Parse(peer));
      ss.peers.push_back(a);
    }
    ss.refresh_s = config.sync.refresh_s;
    ss.tick_ms = kSyncTickMs;
    ss.epoch = static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count());
    std::vector<control::SyncEngine::Worker> sw;
    for (auto& w : engine.workers()) sw.push_back({w->sync_ring.get(), w->table.get()});
    control::SyncEngine::Clock clock{[] { return static_cast<uint32_t>(dataplane::WorkerClockSeconds()); },
                                     dataplane::WorkerTicks, dataplane::WorkerTicksPerSecond(),
                                     MonotonicMs};
    control::SyncSocket* sock = p->sync_socket.get();
    p->sync = std::make_unique<control::SyncEngine>(
        std::move(ss), std::move(sync_keys), std::move(sw), engine.peer_table(), std::move(clock),
        [sock](const dataplane::IpAddr& peer, std::span<const uint8_t> d) {
          return sock->Send(peer, d);
        });
    p->events.Watch(
        [parts](std::vector<pollfd>* fds) {
          fds->push_back(pollfd{parts->sync_socket->fd(), POLLIN, 0});
        },
        [parts] {
          parts->sync_socket->ReceiveAll(256, [parts](const dataplane::IpAddr& from,
                                                      std::span<const uint8_t> d) {
            parts->sync->Receive(from, d, *parts->plane->latest());
          });
        });
    ECMPLB_ASSIGN_OR_RETURN(p->bulk_server, control::BulkServer::Listen(host_addr, config.sync.port,
                                                                         p->sync.get()));
    p->host_addr = host_addr;
    p->events.Watch([parts](std::vector<pollfd>* fds) { parts->bulk_server->AppendPollFds(fds); },
                    [parts] { parts->bulk_server->Poll(*parts->plane->latest(), MonotonicMs()); });
    p->events.Watch(
        [parts](std::vector<pollfd>* fds) {
          if (parts->bulk_fetch != nullptr) parts->bulk_fetch->AppendPollFds(fds);
        },
        [parts] {
          if (parts->bulk_fetch != nullptr) {
            parts->bulk_fetch->Poll(*parts->plane->latest(), MonotonicMs());
          }
        });
    plane.SetSyncView([parts] {
      control::SyncView v = parts->sync->View(parts->config.sync.port);
      v.bulk_status = parts->bulk_status;
      return v;
    });
    Log(absl::StrCat("flow sync: UDP ", config.host.address, ":", config.sync.port, " with ",
                     absl::StrJoin(config.sync.peers, ", "), "; peer table of ",
                     engine.peer_table()->capacity(), " flows"));
  }

  // The control socket (root, host.control's groups) and the daemon's own commands.
  ECMPLB_ASSIGN_OR_RETURN(p->access, control::ResolveAccessPolicy(config.host.control));
  control::ControlServer::Options so;
  so.access = p->access;
  ECMPLB_ASSIGN_OR_RETURN(
      p->server,
      control::ControlServer::Listen(
          config.host.control_socket,
          [parts](const control::PeerCredentials& peer, absl::string_view r) {
            return control::HandleRequest(*parts->plane, r, parts->access, peer, LogError);
          },
          so));
  plane.SetHealthView([parts] { return parts->monitor->View(MonotonicMs()); });
  plane.AddExtension(control::CommandId::kDrain,
                     [parts](const control::Request&) -> absl::StatusOr<control::ExtensionReply> {
                       NotifyStopping("ecmplbctl drain");
                       parts->loop->StartDrain("ecmplbctl drain", MonotonicMs());
                       return control::DrainReply{parts->config.host.drain_s};
                     });
  plane.AddExtension(control::CommandId::kFault,
                     [parts](const control::Request& req) { return Fault(req, *parts->engine); });
  if (!config.host.metrics_listen.empty()) {
    ECMPLB_ASSIGN_OR_RETURN(p->metrics, control::MetricsServer::Listen(config.host.metrics_listen));
  }

  // The control loop, and what wakes it.
  ControlLoop::Settings ls;
  ls.drain_ms = static_cast<uint64_t>(config.host.drain_s) * 1000;
  ls.idle_health_period_ms = 50;  // an idle host wakes 20 times a second for its health step
  ls.run_ms = static_cast<uint64_t>(options.run_seconds * 1000);
  ControlLoop::Hooks hooks;
  hooks.heartbeats = [parts](std::vector<uint64_t>* out) { parts->engine->Heartbeats(out); };
  hooks.housekeeping = [parts](uint64_t) {
    parts->logger->Flush();  // what the rate limit dropped, once each kind may log again
    SaveConfig(*parts);
    parts->neighbor_sync->Run(parts->plane->builder().neighbor_slots());
    parts->engine->Reclaim();
    parts->server->Poll();  // also drops idle clients
  };
  hooks.after_health = [parts](uint64_t now_ms) {
    if (parts->fleet != nullptr) FleetStep(*parts, now_ms);
    if (parts->metrics != nullptr) {
      parts->metrics->Poll(now_ms, [&] {
        return control::RenderPrometheus(parts->plane->Stats(), parts->monitor->View(now_ms),
                                         parts->config.host.metrics_per_backend);
      });
    }
    parts->telemetry->SetHealth(parts->monitor->View(now_ms));
  };
  p->loop = std::make_unique<ControlLoop>(&plane, p->monitor.get(), ls, std::move(hooks), LogSink(),
                                          MonotonicMs());
  if (config.fleet.enabled()) {
    ECMPLB_RETURN_IF_ERROR(StartFleet(*p, fleet_cache.version, fleet_cache.pointer));
  }
  p->events.Watch([parts](std::vector<pollfd>* fds) { parts->server->AppendPollFds(fds); },
                  [parts] { parts->server->Poll(); });
  ECMPLB_RETURN_IF_ERROR(p->events.CatchSignals({SIGTERM, SIGINT, SIGHUP}, [parts](int sig) {
    if (sig == SIGTERM) {
      NotifyStopping("SIGTERM");
      parts->loop->StartDrain("SIGTERM", MonotonicMs());
    }
    if (sig == SIGINT) {
      Notify("STOPPING=1");
      parts->loop->Stop("SIGINT");
    }
    if (sig == SIGHUP) {
      Notify(absl::StrCat("RELOADING=1\nMONOTONIC_USEC=", MonotonicMs() * 1000));
      (void)parts->plane->Reload();  // logs what it did, or why it refused
      Notify("READY=1");
    }
  }));
  auto source = [parts](control::TelemetryDict (control::TelemetryViews::*read)() const) {
    return [parts, read] {
      std::lock_guard<std::mutex> lock(parts->telemetry_mutex);
      return parts->telemetry_off ? control::TelemetryDict{} : (parts->telemetry.get()->*read)();
    };
  };
  dataplane::RegisterTelemetry(
      {source(&control::TelemetryViews::Counters), source(&control::TelemetryViews::Workers),
       source(&control::TelemetryViews::Vips), source(&control::TelemetryViews::Backends)});
  return std::unique_ptr<Daemon>(new Daemon(std::move(p)));
}

Daemon::Daemon(std::unique_ptr<Parts> parts) : p_(std::move(parts)) {}

void Daemon::StartBulkFetch(bool at_start) {
  Parts& p = *p_;
  std::vector<size_t> peers;
  if (at_start) {
    for (size_t i = 0; i < p.config.sync.peers.size(); ++i) peers.push_back(i);
  } else {
    peers = std::exchange(p.heal_pending, {});
  }
  if (peers.empty()) return;
  const uint64_t now = MonotonicMs();
  p.bulk_fetch = std::make_unique<control::BulkFetcher>(
      p.host_addr, p.config.sync.port, peers, p.sync.get(),
      now + uint64_t{p.config.sync.bulk_timeout_s} * 1000);
  // Announced VIPs stay announced (a heal on a serving host changes nothing); withdrawn ones
  // wait for the copy.
  p.bulk_holds = p.config.sync.bulk_wait;
  std::vector<std::string> names;
  for (size_t i : peers) names.push_back(p.config.sync.peers[i]);
  p.bulk_status = absl::StrCat("fetching from ", absl::StrJoin(names, ", "));
  p.bulk_hold_reason = p.bulk_holds ? absl::StrCat("waiting for the peers' flows (bulk sync, at most ",
                                                   p.config.sync.bulk_timeout_s, " s)")
                                    : "";
  p.monitor->SetHold(p.bulk_hold_reason);
  Log(absl::StrCat("flow sync: bulk copy ", at_start ? "at start" : "after a silence", " from ",
                   absl::StrJoin(names, ", "),
                   p.bulk_holds ? "; withdrawn VIPs held back until it is done" : ""));
}

void Daemon::BulkStep(uint64_t now_ms) {
  Parts& p = *p_;
  for (size_t peer : p.sync->TakeHealedPeers()) {
    if (std::find(p.heal_pending.begin(), p.heal_pending.end(), peer) == p.heal_pending.end()) {
      p.heal_pending.push_back(peer);
    }
  }
  if (p.bulk_fetch != nullptr) {
    p.bulk_fetch->Poll(*p.plane->latest(), now_ms);  // also its deadline
    if (p.bulk_fetch->done()) {
      p.bulk_status = p.bulk_fetch->Summary();
      Log(absl::StrCat("flow sync: bulk copy done: ", p.bulk_status,
                       p.bulk_holds ? "; VIPs may be announced" : ""));
      p.bulk_holds = false;
      p.bulk_fetch.reset();
    }
  }
  if (p.bulk_fetch == nullptr && !p.heal_pending.empty()) StartBulkFetch(false);
  // A peer heard again is no longer silent, and its heal fetch (started above, in this same
  // step) takes over the hold: a withdrawn VIP is never free in between.
  const uint64_t silent = p.sync->SilentPeers(now_ms);
  std::string wait = p.peer_wait.Step(now_ms, silent, p.monitor->held() && !p.bulk_holds);
  if (wait != p.peer_wait_reason) {
    if (!wait.empty()) {
      Log("flow sync: a peer is silent; withdrawn VIPs wait for it (its flows) or for " +
          absl::StrCat(control::kPeerSilentMs, " ms once ready"));
    } else if (p.peer_wait.gave_up()) {
      Log("flow sync: silent peers still silent; withdrawn VIPs announced without their flows");
    }
    p.peer_wait_reason = wait;
  }
  p.monitor->SetHold(p.bulk_holds ? p.bulk_hold_reason : wait);
}

Daemon::~Daemon() {
  // A stopped balancer must not stay announced.
  p_->monitor->WithdrawAll("stopping");
  SaveConfig(*p_);  // the last changes
  p_->server.reset();
  {
    std::lock_guard<std::mutex> lock(p_->telemetry_mutex);
    p_->telemetry_off = true;  // the workers and their tables go next, while EAL is up
  }
  p_->engine->Shutdown();
  dataplane::CleanupEal();
}

int Daemon::Run() {
  const Options& opt = p_->options;
  const control::Config& config = p_->config;
  dataplane::Engine& engine = *p_->engine;
  const size_t n = engine.worker_count();
  std::vector<std::string> lcores;
  for (unsigned l : engine.worker_lcores()) lcores.push_back(absl::StrCat(l));
  const size_t in_dpdk = engine.tables_in_dpdk_memory();
  std::printf(
      "ecmplb: %zu worker%s on lcore%s %s, data port %s %s, exception interface %s (%s/%u), "
      "%zu service%s, %s polling%s, connection tables %s (%zu MiB each), flows to workers by "
      "%s\n",
      n, n == 1 ? "" : "s", n == 1 ? "" : "s", absl::StrJoin(lcores, ",").c_str(),
      engine.data_port_name().c_str(), engine.mac().ToString().c_str(),
      config.host.exception_interface.c_str(), config.host.address.c_str(),
      config.host.prefix_length, config.services.size(), config.services.size() == 1 ? "" : "s",
      opt.idle_backoff ? "idle back-off" : "busy",
      opt.idle_backoff ? absl::StrCat(" (sleep ", opt.idle_sleep_us, " us after ", opt.idle_polls,
                                      " empty polls)")
                             .c_str()
                       : "",
      in_dpdk == n   ? "in DPDK memory"
      : in_dpdk == 0 ? "in process memory (DPDK memory too small)"
                     : "partly in process memory (DPDK memory too small)",
      engine.table_bytes() >> 20,
      n == 1                      ? "one queue"
      : opt.rx_steering == "peer" ? "the peer's queue choice"
                                  : "RSS");
  std::fflush(stdout);
  if (absl::Status st = engine.Start(); !st.ok()) {
    std::fprintf(stderr, "ecmplb: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  Log(engine.exception_path_interrupt_driven()
          ? "exception path: kernel -> wire woken by the TAP's RX interrupts"
          : "exception path: kernel -> wire polled (the exception port has no RX interrupts)");

  ControlLoop& loop = *p_->loop;
  uint64_t next_sync = MonotonicMs();
  if (p_->sync != nullptr) StartBulkFetch(true);
  // systemd: ready once the first health step decided the VIPs; the watchdog (WatchdogSec) is
  // fed from this loop, so a hung control loop gets the daemon restarted.
  bool ready = false;
  uint64_t watchdog_us = 0;
  const bool watchdog = sd_watchdog_enabled(0, &watchdog_us) > 0 && watchdog_us > 0;
  const uint64_t watchdog_period_ms = std::max<uint64_t>(watchdog_us / 2000, 1);
  uint64_t next_watchdog = MonotonicMs();
  while (!loop.done()) {
    uint64_t next = loop.Tick(MonotonicMs());
    if (loop.done()) break;
    uint64_t now = MonotonicMs();
    if (!ready) {
      ready = true;
      Notify(absl::StrCat("READY=1\nSTATUS=serving ", p_->plane->config().services.size(),
                          " services on ", engine.worker_count(), " workers"));
    }
    if (watchdog) {
      if (now >= next_watchdog) {
        Notify("WATCHDOG=1");
        next_watchdog = now + watchdog_period_ms;
      }
      next = std::min(next, next_watchdog);
    }
    if (p_->sync != nullptr) {
      if (now >= next_sync) {
        p_->sync->Tick(*p_->plane->latest());
        next_sync = now + kSyncTickMs;
        BulkStep(now);
      }
      next = std::min(next, next_sync);
    }
    p_->events.Wait(next > now ? next - now : 0);
  }

  p_->monitor->WithdrawAll("stopping");
  engine.Stop();
  uint64_t rx = 0, tx = 0;
  for (auto& w : engine.workers()) {
    rx += w->counters->Get(dataplane::Counter::rx_packets);
    tx += w->counters->Get(dataplane::Counter::tx_packets);
  }
  std::printf("ecmplb: stopped; workers received %lu and sent %lu packets\n",
              static_cast<unsigned long>(rx), static_cast<unsigned long>(tx));
  std::fflush(stdout);
  return 0;
}

}  // namespace ecmplb::daemon
