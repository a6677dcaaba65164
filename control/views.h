// views.h: what the control plane's read-only commands and changes return, as typed values:
// `show`, `stats`, `conns`, `lookup`, `service list`, a change's result, the health view and
// the daemon's extension replies (drain, fault). No encoding here: the socket's JSON
// (views_json.h), Prometheus text (metrics.h) and DPDK telemetry dictionaries
// (telemetry_views.h) are encoders at the edge, each reading these structs.
//
// Thread-safety: plain values. Hand a view to another thread by copying it.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "conntrack/conntrack.h"
#include "control/config.h"
#include "dataplane/counters.h"
#include "dataplane/packet/parse.h"

namespace ecmplb::control {

// HealthMonitor::View: workers, VIP announcements, backend checks.
struct HealthView {
  struct Worker {
    uint32_t id = 0;
    bool stalled = false;
  };
  struct Vip {
    std::string vip;  // canonical text
    bool announced = false;
    std::string reason;  // "serving", or why it is withdrawn
  };
  struct Backend {
    std::string service;
    uint32_t id = 0;
    std::string address;
    bool up = true;
    bool checked = false;  // has a health check; the fields below only then
    std::string last_check;
    uint32_t latency_ms = 0;
    std::optional<uint64_t> last_check_age_ms;  // none before the first result
  };
  bool workers_healthy = true;
  std::vector<Worker> workers;
  bool draining = false;
  std::vector<Vip> vips;  // sorted by VIP text
  std::vector<Backend> backends;
};

enum class BackendState : uint8_t { kActive, kDraining, kFailed };
inline const char* BackendStateName(BackendState s) {
  return s == BackendState::kFailed     ? "failed"
         : s == BackendState::kDraining ? "draining"
                                        : "active";
}

// Fleet mode (control/fleet_agent.h): `ecmplbctl show`'s "fleet".
struct FleetView {
  std::string cluster;            // ROOT (prefix/cluster/)
  std::string host;               // this host's status key
  bool connected = false;
  std::string last_error;
  int64_t applied_version = 0;
  std::string root;
  int64_t seen_version = 0;       // the newest pointer revision seen
  int64_t refused_version = 0;
  std::string refused_reason;
  std::string withdraw;           // the lag rule's reason to withdraw, "" if none
  std::string kept;
  size_t peers = 0;               // other hosts' statuses (etcd) or beacons (no etcd)
  int64_t newest_peer_version = 0;
  uint64_t applies = 0, refusals = 0, resyncs = 0, status_writes = 0;
};

// ControlPlane::Show: services, backends, Maglev slots, tracked flows, reserved ids.
struct ShowView {
  struct Backend {
    uint32_t id = 0;
    std::string address;
    uint16_t port = 0;  // the service's when the backend names none
    uint32_t weight = 0;
    BackendState state = BackendState::kActive;
    uint32_t maglev_slots = 0;
    uint64_t flows = 0;
  };
  struct SorryBackend {
    std::string address;
    bool serving = false;
  };
  struct ReservedId {
    uint32_t id = 0;
    uint64_t seconds_left = 0;
  };
  struct Service {
    std::string service;  // canonical name
    std::string vip;
    uint16_t port = 0;
    Protocol protocol = Protocol::kTcp;
    ForwardMode forward = ForwardMode::kDr;
    HashMode hash = HashMode::kFiveTuple;
    uint32_t table_size = 0;
    std::vector<Backend> backends;
    std::optional<SorryBackend> sorry_backend;
    bool serving = false;  // false: "no usable backend"
    std::vector<ReservedId> reserved_ids;
  };
  uint64_t generation = 0;
  // Deferred saving: a change not written to the configuration file yet, and the last save's
  // error (empty once a save succeeded).
  bool save_pending = false;
  std::string save_error;
  std::vector<Service> services;
  std::optional<HealthView> health;  // when the daemon set a health view
  std::optional<FleetView> fleet;    // in fleet mode
};

// ControlPlane::Stats: counters per worker, service and backend.
inline constexpr size_t kParseResults = static_cast<size_t>(dataplane::ParseResult::kCount);
// Flow-state sync (control/sync_engine.h), when configured: `ecmplbctl stats` "sync".
struct SyncView {
  std::vector<std::string> peers;
  uint16_t port = 0;
  std::vector<uint32_t> key_ids;  // loaded keys (never their bytes)
  uint32_t send_key_id = 0;
  uint64_t events = 0, refreshed = 0, unsendable = 0, entries_sent = 0, messages_sent = 0,
           bytes_sent = 0, send_errors = 0, messages_received = 0, messages_accepted = 0,
           entries_applied = 0;
  std::vector<std::pair<std::string, uint64_t>> rejected;  // by reason, every reason
  uint64_t peer_entries = 0, peer_capacity = 0;
  uint64_t lag_ms = 0, lag_max_ms = 0, lag_p50_ms = 0, lag_p99_ms = 0;  // queued -> sent
  std::vector<std::string> peers_alive;  // heard within the last 3 s
  uint64_t heartbeats_sent = 0, peer_heals = 0;
  // Bulk sync: answers served and fetched (whole), their entries, and the last fetch's outcome.
  uint64_t bulk_served = 0, bulk_entries_sent = 0, bulk_fetched = 0, bulk_entries_received = 0;
  std::string bulk_status;  // "fetching from 2 peers" / "2 of 2 peers answered, 1234 flows"
};

struct StatsView {
  using Counters = std::array<uint64_t, dataplane::kNumCounters>;  // by dataplane::Counter
  using ParseDrops = std::array<uint64_t, kParseResults>;  // by ParseResult; [0] (ok) unused
  struct Conntrack {
    uint64_t entries = 0, capacity = 0, inserts = 0, updates = 0, evictions = 0, expirations = 0,
             full = 0;
  };
  struct Worker {
    std::string name;  // "worker0", "exception"
    uint32_t id = 0;
    Counters counters{};
    ParseDrops parse{};
    std::optional<Conntrack> conntrack;  // none: no connection table
  };
  struct Backend {
    uint32_t id = 0;
    std::string address;
    uint64_t packets = 0, bytes = 0;
  };
  struct Service {
    std::string service;
    uint64_t packets = 0, bytes = 0;
    std::vector<Backend> backends;
  };
  std::vector<Worker> workers;
  Counters total{};          // summed over the workers
  ParseDrops parse_total{};  // summed over the workers
  std::vector<Service> services;
  std::optional<SyncView> sync;  // flow sync configured
};

// ControlPlane::Conns: tracked flows of every worker.
struct ConnsView {
  struct Flow {
    uint32_t worker = 0;
    std::optional<std::string> service;  // none: removed since
    std::string client;                  // ADDRESS:PORT
    uint8_t protocol = 0;                // IP protocol number
    uint32_t backend_id = 0;
    std::optional<std::string> backend;  // address; none: removed since
    conntrack::FlowState state = conntrack::FlowState::kNew;
    uint32_t last_seen = 0;
    std::optional<uint32_t> idle_s;  // when the workers' clock is known
  };
  uint64_t total = 0;  // flows tracked, of which `flows` are shown
  std::vector<Flow> flows;
};

// ControlPlane::Lookup: which backend a flow gets, and whether it is tracked.
struct LookupView {
  struct Backend {
    uint32_t id = 0;
    std::string address;
    uint32_t weight = 0;
    bool operator==(const Backend&) const = default;
  };
  struct Tracked {
    uint32_t worker = 0;
    uint32_t backend_id = 0;
    conntrack::FlowState state = conntrack::FlowState::kNew;
  };
  std::string service;
  std::string client;
  std::optional<Backend> maglev_backend;  // none: no usable backend
  std::vector<Tracked> tracked_by;
  std::optional<Backend> backend;  // the tracked backend while it exists, else Maglev's
  bool tracked() const { return !tracked_by.empty(); }
};

// ControlPlane::ServiceList.
struct ServiceListView {
  struct Service {
    std::string service;
    ForwardMode forward = ForwardMode::kDr;
    HashMode hash = HashMode::kFiveTuple;
    uint32_t table_size = 0;
    size_t backends = 0;
  };
  std::vector<Service> services;
};

// ControlPlane::Apply: one change, applied and published.
struct ApplyResult {
  std::string service;                 // canonical name
  std::optional<uint32_t> backend_id;  // backend commands
  uint64_t generation = 0;             // of the published snapshot
  size_t services_rebuilt = 0;         // Maglev tables rebuilt by this change
  uint64_t apply_us = 0;               // validate, diff, rebuild, publish (not the save)
};

// `config reload`: the services the file added, removed and changed, and the change applied.
struct ReloadResult {
  size_t services_added = 0;
  size_t services_removed = 0;
  size_t services_changed = 0;
  ApplyResult applied;
};

// The daemon's extension commands (ControlPlane::AddExtension).
struct DrainReply {
  uint32_t drain_s = 0;  // the daemon stops this long after the VIPs were withdrawn
};
struct FaultReply {
  std::string fault;               // "stall-worker" | "stall-control"
  std::optional<uint64_t> worker;  // stall-worker only
  uint32_t ms = 0;
};
using ExtensionReply = std::variant<DrainReply, FaultReply>;

}  // namespace ecmplb::control
