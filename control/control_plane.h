// control_plane.h: the live control plane: validated, all-or-nothing configuration changes
// (service and backend add/set/del), snapshot publication, saving the running configuration,
// and the read-only views behind `ecmplbctl show/stats/conns/lookup/config dump`.
//
// A change is applied to a copy of the running Config, validated (Validate) and turned into
// a snapshot (SnapshotBuilder, which rebuilds only the touched services' Maglev tables);
// only then is the copy saved (atomically) and the snapshot handed to the publish callback
// (the daemon's SnapshotPublisher). Any failure leaves the running Config, the published
// snapshot and the saved file unchanged.
//
// Backend ids are stable; a backend added without an id gets the lowest id that is neither
// in use nor recently removed: an id stays reserved for the longest conntrack timeout after
// its backend was removed, so a flow still tracked with the old id never reaches a new
// backend. (The reservation is not saved: a restart starts with empty connection tables.)
//
// No DPDK here: the daemon passes the publish callback and plain pointers to each worker's
// counters and connection table (both safe to read concurrently with their worker).
//
// Thread-safety: one thread (the daemon's control loop) owns a ControlPlane.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "conntrack/conntrack.h"
#include "control/commands.h"
#include "control/config.h"
#include "control/config_edit.h"
#include "control/log.h"
#include "control/snapshot_builder.h"
#include "control/views.h"
#include "dataplane/counters.h"
#include "dataplane/snapshot.h"

namespace ecmplb::control {

// What the control plane reads of one worker (owned by the daemon, outliving the plane).
struct WorkerView {
  uint32_t id = 0;
  const dataplane::WorkerCounters* counters = nullptr;
  const conntrack::Table* table = nullptr;  // nullptr: no connection table (exception path)
  std::string name;                         // "worker0", "exception"
  const std::atomic<uint64_t>* heartbeat = nullptr;  // advanced by the worker (telemetry)
};

// What an applied change touched: every service (ApplyConfig) or the one service a command
// edited: its name, and its configuration now (null: removed; valid until
// the next change).
struct AppliedChange {
  bool all = true;
  std::string service;
  const ServiceConfig* now = nullptr;
};

class ControlPlane {
 public:
  using PublishFn = std::function<void(std::unique_ptr<const dataplane::Snapshot>)>;
  using ClockFn = std::function<uint64_t()>;  // seconds, monotonic

  struct Options {
    std::string save_path;  // running configuration saved here after each change; "" = never
    // Save from SaveIfDirty (the daemon's housekeeping), not in the change: at 10,000 services
    // writing the file costs more than the change, and a burst of changes is written once. A
    // save that fails no longer refuses the change: it is reported (show's "config_save") and
    // retried.
    bool defer_save = false;
    // Told about every change that took longer than slow_apply_ms (e.g. one that touched
    // every service of a large host): its time, services rebuilt and generation.
    log::Sink log;
    uint64_t slow_apply_ms = 100;
    ClockFn clock;          // for the removed-id reservation; default: steady clock
    ClockFn worker_clock;   // the workers' connection-table clock (flow ages); optional
    // Called after every applied configuration (e.g. the health monitor follows it), with
    // what changed when a command changed one service (followers can update in part).
    std::function<void(const Config&, const AppliedChange&)> on_applied;
    // The backends of a candidate configuration that must not serve (failed, or checked and
    // not yet proven); default: the current unhealthy set.
    // (Per service: adds to `out` the (name, id) of each of its backends that must not serve.)
    std::function<void(const ServiceConfig& service, const std::string& name,
                       std::set<BackendRef>* out)>
        unhealthy_in;
    // Fleet mode: the services come from etcd (fleet_agent.h, through ApplyConfig); Apply
    // refuses commands (ecmplbctl writes to etcd instead) and Reload re-reads the host
    // settings only.
    bool services_from_fleet = false;
  };

  // Builds and publishes the snapshot of `initial` (already validated by ParseConfig).
  static absl::StatusOr<std::unique_ptr<ControlPlane>> Create(Config initial,
                                                              dataplane::MacAddr port_mac,
                                                              PublishFn publish, Options options);

  void SetWorkers(std::vector<WorkerView> workers) { workers_ = std::move(workers); }

  // Backends that failed their health checks: they leave the Maglev tables and their tracked
  // flows are re-picked, as if removed (they keep their ids and configuration). Rebuilds and
  // publishes when the set changed.
  absl::Status SetUnhealthy(std::set<BackendRef> unhealthy);
  const std::set<BackendRef>& unhealthy() const { return unhealthy_; }

  // The daemon's own views and commands, reached through the same socket and protocol:
  // `health_view` is added to Show() as its health; an extension handles one of the command
  // table's extension commands (commands.h: drain, fault) with the request's arguments.
  using Extension = std::function<absl::StatusOr<ExtensionReply>(const Request& request)>;
  void SetHealthView(std::function<HealthView()> view) { health_view_ = std::move(view); }
  // Fleet mode's state, added to Show() as its fleet (the daemon's fleet agent).
  void SetFleetView(std::function<FleetView()> view) { fleet_view_ = std::move(view); }
  // Flow sync's figures, added to Stats() (the daemon's sync engine).
  void SetSyncView(std::function<SyncView()> view) { sync_view_ = std::move(view); }
  void AddExtension(CommandId command, Extension fn) { extensions_[command] = std::move(fn); }
  const Extension* FindExtension(CommandId command) const {
    auto it = extensions_.find(command);
    return it == extensions_.end() ? nullptr : &it->second;
  }

  // Validates and applies one change, all or nothing: turns the command into a candidate
  // configuration and hands it to ApplyConfig. Errors: InvalidArgument (bad value or
  // syntax), NotFound (unknown service/backend), AlreadyExists (duplicate service, backend
  // address or id), FailedPrecondition (id still reserved, DR backend off-link, ...),
  // ResourceExhausted (limits), or the save error.
  absl::StatusOr<ApplyResult> Apply(const Command& command);

  // The one path every change takes (ecmplbctl commands, and reload, fleet revisions and bulk
  // changes): validate `candidate` whole; diff it against the running configuration (a
  // backend id that is still reserved after its removal, or an id that changes address, is
  // refused: flows tracked with that id would reach the wrong backend); rebuild the Maglev
  // tables of the services that changed; save it to Options::save_path; publish the snapshot;
  // reserve the ids of removed backends; tell Options::on_applied. All or nothing: on any
  // error the running configuration, the published snapshot and the saved file are unchanged.
  absl::StatusOr<ApplyResult> ApplyConfig(Config candidate);

  // `ecmplbctl config reload` / SIGHUP: re-reads Options::save_path, validates the whole file
  // and applies it through ApplyConfig's path (only changed services' tables rebuilt, flows
  // kept), without writing the file back. Refused whole, with the running configuration kept,
  // when the file does not parse or validate (the message names the field), or changes a
  // field outside `services` (RestartOnlyChanges). Logged either way (Options::log).
  //
  // The file is the operator's: a save (a command's, or deferred) over an edit made since the
  // daemon last read or wrote it is refused (FailedPrecondition, in `show`'s config_save),
  // so an edit is never overwritten; a reload applies it.
  absl::StatusOr<ReloadResult> Reload();

  // Deferred saving (Options::defer_save): writes the running configuration if a change is
  // not saved yet. Returns the save's error (kept for `show` until a save succeeds).
  absl::Status SaveIfDirty();
  bool save_pending() const { return save_pending_; }

  const Config& config() const { return config_; }
  const SnapshotBuilder& builder() const { return builder_; }
  // The latest published snapshot (owned by the publisher; valid until the next change).
  const dataplane::Snapshot* latest() const { return latest_; }

  // Read-only views (views.h; their JSON is README "## ecmplbctl").
  // `only`: one service (`show --service`, `stats --service`); null: every service.
  ShowView Show(const ServiceConfig* only = nullptr) const;
  StatsView Stats(const ServiceConfig* only = nullptr) const;
  ConnsView Conns(size_t limit) const;  // at most `limit` flows
  absl::StatusOr<LookupView> Lookup(absl::string_view service, absl::string_view client) const;
  ServiceListView ServiceList() const;
  std::string ConfigDump() const { return SerializeConfig(config_); }

  // Ids of `service` reserved after removal, with seconds left (tests, show).
  std::map<uint32_t, uint64_t> ReservedIds(const std::string& service) const;

 private:
  ControlPlane(Config config, dataplane::MacAddr mac, PublishFn publish, Options options)
      : config_(std::move(config)),
        builder_(mac),
        publish_(std::move(publish)),
        options_(std::move(options)) {}

  // A command's change: the service at `pos` becomes `now` (pos == services.size(): added;
  // `now` empty: removed). The same checks and steps as ApplyConfig, for that service only,
  // made in place and undone on error; the builder gets the delta.
  absl::StatusOr<ApplyResult> ApplyEdit(size_t pos, std::optional<ServiceConfig> now);
  // The ids of old_svc's backends that now_svc (null: removed) no longer has go to `released`;
  // refuses an id that changes address, and a new id that is still reserved.
  absl::Status CheckIds(const ServiceConfig* old_svc, const ServiceConfig* now_svc,
                        std::vector<std::pair<std::string, uint32_t>>* released) const;
  std::set<BackendRef> UnhealthyIn(const Config& config) const;
  absl::StatusOr<ApplyResult> ApplyWhole(Config candidate, bool save);
  absl::StatusOr<ReloadResult> ReloadFile();
  // Writes `config` to Options::save_path unless the file was edited (Reload's comment).
  absl::Status Save(const Config& config);
  static uint64_t FileDigest(absl::string_view text);
  // A change whose save failed: republishes the running configuration; the error to return.
  absl::Status SaveFailed(const absl::Status& st);
  // The end of every change: publish, reservations, timing, on_applied.
  ApplyResult Published(std::unique_ptr<const dataplane::Snapshot> snap,
                        std::set<BackendRef> unhealthy,
                        const std::vector<std::pair<std::string, uint32_t>>& released,
                        uint64_t t0, const AppliedChange& change);

  uint64_t Now() const;
  uint64_t ReservationSeconds() const;
  bool Reserved(const std::string& service, uint32_t id) const;
  void ForgetExpiredReservations();

  Config config_;
  SnapshotBuilder builder_;
  PublishFn publish_;
  Options options_;
  const dataplane::Snapshot* latest_ = nullptr;
  bool save_pending_ = false;
  std::string save_error_;
  std::optional<uint64_t> file_digest_;  // of the file as last read or written; unset: none
  std::vector<WorkerView> workers_;
  std::set<BackendRef> unhealthy_;
  std::function<HealthView()> health_view_;
  std::function<FleetView()> fleet_view_;
  std::function<SyncView()> sync_view_;
  std::map<CommandId, Extension> extensions_;
  // service name -> backend id -> removal time (Now()).
  std::map<std::string, std::map<uint32_t, uint64_t>> removed_;
};

}  // namespace ecmplb::control
