// telemetry.h: DPDK telemetry commands for ecmplb, readable with dpdk-telemetry.py:
//   /ecmplb/counters   every worker counter, summed over the workers
//   /ecmplb/workers    per worker: heartbeat, rx/tx packets, conntrack entries
//   /ecmplb/vips       VIP -> 1 announced / 0 withdrawn
//   /ecmplb/backends   "SERVICE#ID" -> 1 up / 0 failed
//
// Thread-safety: callbacks run on DPDK's telemetry thread. They read the workers' counters
// (atomics) and conntrack counts (reader API) directly, and the health view under `view_mutex`,
// which the control thread refreshes.
#pragma once

#include <memory>
#include <mutex>
#include <vector>

#include <nlohmann/json.hpp>

#include "dataplane/dpdk/worker.h"

namespace ecmplb::dataplane {

// The pointed-to objects must outlive EAL (rte_eal_cleanup stops the telemetry thread).
void RegisterTelemetry(const std::vector<std::unique_ptr<Worker>>* workers, std::mutex* view_mutex,
                       const nlohmann::json* health_view);

}  // namespace ecmplb::dataplane
