// telemetry.h: DPDK telemetry commands for ecmplb, readable with dpdk-telemetry.py:
//   /ecmplb/counters   every worker counter, summed over the workers
//   /ecmplb/workers    workerN/heartbeat, workerN/rx_packets, workerN/tx_packets, ...
//   /ecmplb/vips       VIP -> 1 announced / 0 withdrawn
//   /ecmplb/backends   SERVICE/ID -> 1 up / 0 failed
// DPDK allows only alphanumerics, '_' and '/' in keys: other characters become '_'
// (VIP 10.100.0.1 -> "10_100_0_1", backend 1 of 10.100.0.1:80/tcp -> "10_100_0_1_80/tcp/1").
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
