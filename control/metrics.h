// metrics.h: Prometheus text exposition of ecmplb's state, and a tiny non-blocking HTTP
// endpoint that serves it (GET /metrics) from the control loop.
//
// RenderPrometheus encodes the same typed views `ecmplbctl stats` and the health view are
// made of (views.h), so every figure has one source. The endpoint is off unless host.metrics_listen
// is set (e.g. "127.0.0.1:9187"); it serves one short response per connection, never blocks, and
// drops clients that send more than 8 KiB or stay longer than a second.
//
// Thread-safety: control thread only.
#pragma once

#include <cstdint>
#include <string>
#include <vector>
#include <memory>

#include "absl/status/statusor.h"
#include "control/views.h"

namespace ecmplb::control {

// `stats`: ControlPlane::Stats(); `health`: HealthMonitor::View().
std::string RenderPrometheus(const StatsView& stats, const HealthView& health);

class MetricsServer {
 public:
  // Listens on "ADDRESS:PORT" (IPv4) or "[ADDRESS]:PORT" (IPv6).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Listen(const std::string& listen);
  ~MetricsServer();
  uint16_t port() const { return port_; }
  // Accepts and answers what is ready; `render` is called only when a full request arrived.
  // Returns the number of responses sent.
  template <typename Render>
  size_t Poll(uint64_t now_ms, Render&& render) {
    std::vector<size_t> ready = Step(now_ms);
    if (ready.empty()) return 0;
    std::string body = render();
    for (size_t i : ready) Respond(i, body);
    Sweep();
    return ready.size();
  }

 private:
  struct Client {
    int fd;
    uint64_t since_ms;
    std::string req;
    bool done = false;
  };
  MetricsServer() = default;
  std::vector<size_t> Step(uint64_t now_ms);
  void Respond(size_t i, const std::string& body);
  void Sweep();
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<Client> clients_;
};

}  // namespace ecmplb::control
