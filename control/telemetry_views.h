// telemetry_views.h: the /ecmplb/* DPDK telemetry dictionaries, built from the workers'
// counters and the typed health view (views.h) as flat key -> value lists. The DPDK adapter
// (dataplane/dpdk/telemetry.h) only hands these lists to rte_telemetry.
//   counters   every worker counter, summed over the workers
//   workers    workerN/heartbeat, workerN/rx_packets, workerN/tx_packets,
//              workerN/conntrack_entries
//   vips       VIP -> 1 announced / 0 withdrawn
//   backends   SERVICE/ID -> 1 up / 0 failed
// DPDK allows only alphanumerics, '_' and '/' in keys: other characters become '_'
// (VIP 10.100.0.1 -> "10_100_0_1", backend 1 of 10.100.0.1:80/tcp -> "10_100_0_1_80/tcp/1").
//
// Thread-safety: the free functions are pure. TelemetryViews is read by DPDK's telemetry
// thread while the control thread refreshes its health view (SetHealth): the view is a copy
// guarded by a mutex; the workers' counters (atomics), heartbeats (atomics) and connection
// table counts (reader API) are read directly.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "control/control_plane.h"
#include "control/views.h"

namespace ecmplb::control {

using TelemetryDict = std::vector<std::pair<std::string, uint64_t>>;

// `s` with every character DPDK refuses in a key replaced by '_'.
std::string TelemetryKey(absl::string_view s);

TelemetryDict TelemetryCounters(const std::vector<WorkerView>& workers);
TelemetryDict TelemetryWorkers(const std::vector<WorkerView>& workers);  // with tables
TelemetryDict TelemetryVips(const HealthView& health);
TelemetryDict TelemetryBackends(const HealthView& health);

class TelemetryViews {
 public:
  // `workers`: the forwarding workers (each with a connection table and a heartbeat), whose
  // pointed-to state outlives this object.
  explicit TelemetryViews(std::vector<WorkerView> workers) : workers_(std::move(workers)) {}

  void SetHealth(HealthView health);  // control thread

  // Any thread.
  TelemetryDict Counters() const { return TelemetryCounters(workers_); }
  TelemetryDict Workers() const { return TelemetryWorkers(workers_); }
  TelemetryDict Vips() const;
  TelemetryDict Backends() const;

 private:
  const std::vector<WorkerView> workers_;
  mutable std::mutex mutex_;
  HealthView health_;  // guarded by mutex_
};

}  // namespace ecmplb::control
