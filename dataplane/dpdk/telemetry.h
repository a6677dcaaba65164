// telemetry.h: registers ecmplb's DPDK telemetry commands, readable with dpdk-telemetry.py:
//   /ecmplb/counters, /ecmplb/workers, /ecmplb/vips, /ecmplb/backends
// Each answers with the flat dictionary its source function returns (what the keys and values
// are is the caller's: control/telemetry_views.h). This adapter only speaks rte_telemetry.
//
// Thread-safety: the source functions run on DPDK's telemetry thread; they must be safe to
// call from it concurrently with the rest of the process.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace ecmplb::dataplane {

struct TelemetrySources {
  // Keys hold only alphanumerics, '_' and '/' (DPDK refuses other characters).
  using Dict = std::vector<std::pair<std::string, uint64_t>>;
  std::function<Dict()> counters;  // /ecmplb/counters
  std::function<Dict()> workers;   // /ecmplb/workers
  std::function<Dict()> vips;      // /ecmplb/vips
  std::function<Dict()> backends;  // /ecmplb/backends
};

// Call once, after rte_eal_init; what the sources use must outlive EAL (rte_eal_cleanup stops
// the telemetry thread).
void RegisterTelemetry(TelemetrySources sources);

}  // namespace ecmplb::dataplane
