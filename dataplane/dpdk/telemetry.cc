// telemetry.cc: /ecmplb/* telemetry commands (see telemetry.h).
#include "dataplane/dpdk/telemetry.h"

#include <rte_telemetry.h>

namespace ecmplb::dataplane {
namespace {

// Telemetry callbacks take no user data: the registered sources live here.
TelemetrySources g_sources;

int Emit(const std::function<TelemetrySources::Dict()>& source, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  for (const auto& [key, value] : source()) rte_tel_data_add_dict_u64(d, key.c_str(), value);
  return 0;
}

int Counters(const char*, const char*, rte_tel_data* d) {
  return Emit(g_sources.counters, d);
}
int Workers(const char*, const char*, rte_tel_data* d) {
  return Emit(g_sources.workers, d);
}
int Vips(const char*, const char*, rte_tel_data* d) {
  return Emit(g_sources.vips, d);
}
int Backends(const char*, const char*, rte_tel_data* d) {
  return Emit(g_sources.backends, d);
}

}  // namespace

void RegisterTelemetry(TelemetrySources sources) {
  g_sources = std::move(sources);
  rte_telemetry_register_cmd("/ecmplb/counters", Counters,
                             "Worker counters summed over workers. No parameters");
  rte_telemetry_register_cmd("/ecmplb/workers", Workers,
                             "Per worker heartbeat, packets and flows. No parameters");
  rte_telemetry_register_cmd("/ecmplb/vips", Vips,
                             "VIP -> 1 announced, 0 withdrawn. No parameters");
  rte_telemetry_register_cmd("/ecmplb/backends", Backends,
                             "SERVICE#ID -> 1 up, 0 failed. No parameters");
}

}  // namespace ecmplb::dataplane
