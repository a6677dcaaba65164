// telemetry.cc: /ecmplb/* telemetry commands (see telemetry.h).
#include "dataplane/dpdk/telemetry.h"

#include <rte_telemetry.h>

#include <cctype>
#include <string>

namespace ecmplb::dataplane {
namespace {

// Telemetry callbacks take no user data: the registered state lives here.
const std::vector<std::unique_ptr<Worker>>* g_workers = nullptr;
std::mutex* g_view_mutex = nullptr;
const nlohmann::json* g_view = nullptr;

// Telemetry dictionary keys may hold only alphanumerics, '_' and '/': 10.100.0.1 -> 10_100_0_1.
std::string Key(const std::string& s) {
  std::string k = s;
  for (char& c : k) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '/') c = '_';
  }
  return k;
}

int Counters(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  for (size_t i = 0; i < kNumCounters; ++i) {
    uint64_t sum = 0;
    for (const auto& w : *g_workers) sum += w->counters->counters[i].Get();
    rte_tel_data_add_dict_u64(d, std::string(kCounterNames[i]).c_str(), sum);
  }
  return 0;
}

int Workers(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  for (const auto& w : *g_workers) {
    std::string p = "worker" + std::to_string(w->id);
    rte_tel_data_add_dict_u64(d, (p + "/heartbeat").c_str(),
                              w->heartbeat.load(std::memory_order_relaxed));
    rte_tel_data_add_dict_u64(d, (p + "/rx_packets").c_str(),
                              w->counters->Get(Counter::rx_packets));
    rte_tel_data_add_dict_u64(d, (p + "/tx_packets").c_str(),
                              w->counters->Get(Counter::tx_packets));
    rte_tel_data_add_dict_u64(d, (p + "/conntrack_entries").c_str(), w->table->Count());
  }
  return 0;
}

int Vips(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  std::lock_guard<std::mutex> lock(*g_view_mutex);
  const nlohmann::json vips = g_view->value("vips", nlohmann::json::object());
  for (const auto& [vip, v] : vips.items()) {
    rte_tel_data_add_dict_u64(d, Key(vip).c_str(), v.value("announced", false) ? 1 : 0);
  }
  return 0;
}

int Backends(const char*, const char*, rte_tel_data* d) {
  rte_tel_data_start_dict(d);
  std::lock_guard<std::mutex> lock(*g_view_mutex);
  const nlohmann::json backends = g_view->value("backends", nlohmann::json::array());
  for (const auto& b : backends) {
    std::string key = Key(b.value("service", "")) + "/" + std::to_string(b.value("id", 0));
    rte_tel_data_add_dict_u64(d, key.c_str(), b.value("up", false) ? 1 : 0);
  }
  return 0;
}

}  // namespace

void RegisterTelemetry(const std::vector<std::unique_ptr<Worker>>* workers, std::mutex* view_mutex,
                       const nlohmann::json* health_view) {
  g_workers = workers;
  g_view_mutex = view_mutex;
  g_view = health_view;
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
