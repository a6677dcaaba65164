// telemetry_views.cc: /ecmplb/* telemetry dictionaries (see telemetry_views.h).
#include "control/telemetry_views.h"

#include <cctype>

#include "absl/strings/str_cat.h"

namespace ecmplb::control {

std::string TelemetryKey(absl::string_view s) {
  std::string k(s);
  for (char& c : k) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '/') c = '_';
  }
  return k;
}

TelemetryDict TelemetryCounters(const std::vector<WorkerView>& workers) {
  TelemetryDict d;
  for (size_t i = 0; i < dataplane::kNumCounters; ++i) {
    uint64_t sum = 0;
    for (const auto& w : workers) sum += w.counters->counters[i].Get();
    d.emplace_back(std::string(dataplane::kCounterNames[i]), sum);
  }
  return d;
}

TelemetryDict TelemetryWorkers(const std::vector<WorkerView>& workers) {
  TelemetryDict d;
  for (const auto& w : workers) {
    const std::string p = absl::StrCat("worker", w.id);
    d.emplace_back(p + "/heartbeat",
                   w.heartbeat != nullptr ? w.heartbeat->load(std::memory_order_relaxed) : 0);
    d.emplace_back(p + "/rx_packets", w.counters->Get(dataplane::Counter::rx_packets));
    d.emplace_back(p + "/tx_packets", w.counters->Get(dataplane::Counter::tx_packets));
    d.emplace_back(p + "/conntrack_entries", w.table != nullptr ? w.table->Count() : 0);
  }
  return d;
}

TelemetryDict TelemetryVips(const HealthView& health) {
  TelemetryDict d;
  for (const auto& v : health.vips) d.emplace_back(TelemetryKey(v.vip), v.announced ? 1 : 0);
  return d;
}

TelemetryDict TelemetryBackends(const HealthView& health) {
  TelemetryDict d;
  for (const auto& b : health.backends)
    d.emplace_back(absl::StrCat(TelemetryKey(b.service), "/", b.id), b.up ? 1 : 0);
  return d;
}

void TelemetryViews::SetHealth(HealthView health) {
  std::lock_guard<std::mutex> lock(mutex_);
  health_ = std::move(health);
}

TelemetryDict TelemetryViews::Vips() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return TelemetryVips(health_);
}

TelemetryDict TelemetryViews::Backends() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return TelemetryBackends(health_);
}

}  // namespace ecmplb::control
