// fleet_client.h: what ecmplbctl does with the fleet's configuration in etcd (fleet.h's
// layout), step by step and blocking (it waits on the Store through `run`): read the
// configuration at its version, write a new one with a compare-and-swap on the version it
// read, and read every host's status.
//
// A write stores the blobs the version read does not have (batches inside etcd's limits),
// then swaps the pointer in one transaction that compares its mod_revision with the version
// read and deletes the blobs nothing references any more (up to kTxnOps - 1 of them; the
// rest, and the blobs of a writer that lost the compare-and-swap, stay as unreferenced garbage:
// no sweep exists yet). If another writer got there first, nothing is changed and the error
// says so (Aborted).
//
// Thread-safety: one thread; the Store is driven by `run`.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/config.h"
#include "control/config_edit.h"
#include "control/fleet.h"
#include "control/fleet_store.h"

namespace ecmplb::control::fleet {

struct FleetDoc {
  int64_t version = 0;  // the pointer's mod_revision; 0: the fleet has no configuration yet
  Pointer pointer;
  std::string services;  // JSON array
  std::string error;     // Read(tolerant): why the pointer or its blobs could not be read
};

class FleetClient {
 public:
  // Drives the store until done() or timeout_ms; false on timeout.
  using RunFn = std::function<bool(const std::function<bool()>& done, long timeout_ms)>;
  FleetClient(Store* store, Layout layout, RunFn run, long timeout_ms = 5000)
      : store_(store), layout_(std::move(layout)), run_(std::move(run)), timeout_ms_(timeout_ms) {}

  // The configuration at its version; its blobs at the pointer's revision, or at the head once
  // that revision is compacted (content-addressed: the same bytes). tolerant: a pointer or
  // blob that cannot be read still gives the version (and `error`, no services), so that
  // `fleet put` can replace it and `fleet status` can show it.
  absl::StatusOr<FleetDoc> Read(bool tolerant = false);
  // Writes `services` if the fleet is still at base.version; returns the new version.
  // Aborted: another write came first (nothing written).
  absl::StatusOr<int64_t> Write(const FleetDoc& base, const std::vector<ServiceConfig>& services,
                                const std::string& writer);
  // Every host's status (the status prefix), by host.
  absl::StatusOr<std::map<std::string, HostStatus>> Statuses();

  // One ecmplbctl command on the fleet's configuration: read, check the edit against `host`
  // (this host's settings: the candidate is validated as a local change would be), write.
  // A backend added without an id gets one above every id the service ever had (the
  // pointer's id_high), so that no host sees a removed backend's id come back while its
  // flows may still be tracked. Returns the new version and the edit.
  absl::StatusOr<std::pair<int64_t, ServiceEdit>> Edit(const Config& host, const Command& cmd,
                                                       const std::string& writer);

 private:
  template <typename T>
  absl::StatusOr<T> Wait(std::function<void(std::function<void(absl::StatusOr<T>)>)> start,
                         const char* what);

  Store* store_;
  Layout layout_;
  RunFn run_;
  long timeout_ms_;
};

}  // namespace ecmplb::control::fleet
