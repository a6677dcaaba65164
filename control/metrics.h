// metrics.h: Prometheus text exposition of ecmplb's state, and a tiny non-blocking HTTP
// endpoint that serves it (GET /metrics) from the control loop.
//
// RenderPrometheus encodes the same typed views `ecmplbctl stats` and the health view are
// made of (views.h), so every figure has one source. The endpoint is off unless
// host.metrics_listen is set (e.g. "127.0.0.1:9187"). It serves one response per connection
// and never blocks; what a client may cost the control loop is bounded:
//   - per Poll: at most accepts_per_poll new connections, read_bytes_per_poll bytes read and
//     write_bytes_per_poll bytes written over all clients (taken round-robin), and at most one
//     rendering of the body, which is also reused for render_interval_ms (so a flood of
//     requests costs one render every 100 ms, not one per request);
//   - per client: a request head of at most max_request bytes within request_timeout_ms of
//     its connection; a response of any size (a large configuration makes a body of many
//     megabytes) written over as many polls as the client takes to read it, dropped if it
//     makes no progress for write_stall_ms;
//   - in all: max_clients connections (when full, a new connection evicts the oldest client
//     still sending its request, so idle and slow-header clients cannot lock out a scraper;
//     if every client is being answered, it is refused) and max_owed_bytes of responses not
//     yet written (more: "503 Service Unavailable").
// Every connection refused or dropped is counted by reason and exposed in the body itself:
// ecmplb_metrics_clients_refused_total{reason="..."}.
//
// Thread-safety: control thread only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/views.h"

namespace ecmplb::control {

// `stats`: ControlPlane::Stats(); `health`: HealthMonitor::View().
// `per_backend`: also the per-backend series (packets, bytes, up); without them a host with
// 100,000 backends stays at a few series per service (ecmplb_service_backends_up counts).
std::string RenderPrometheus(const StatsView& stats, const HealthView& health,
                             bool per_backend = true);

class MetricsServer {
 public:
  struct Options {
    size_t max_clients = 32;
    size_t max_request = 8192;           // bytes of a request head
    uint64_t request_timeout_ms = 1000;  // from connection to a complete request head
    uint64_t write_stall_ms = 5000;      // a response without progress this long is dropped
    uint64_t render_interval_ms = 100;   // a rendered body is reused this long
    size_t accepts_per_poll = 16;
    size_t read_bytes_per_poll = 64 * 1024;        // over all clients
    size_t write_bytes_per_poll = 4 * 1024 * 1024;  // over all clients
    size_t max_owed_bytes = 128 * 1024 * 1024;     // response bytes not yet written, in all
  };
  // Why a connection was refused or dropped before its response was complete.
  enum class Refusal : uint8_t {
    kTooManyClients,   // full of clients being answered
    kEvicted,          // still sending its request when a new connection needed the slot
    kRequestTooLarge,  // request head beyond max_request
    kRequestTimeout,   // no complete request head within request_timeout_ms
    kWriteStalled,     // did not read its response for write_stall_ms
    kBusy,             // max_owed_bytes reached: answered 503
  };
  static constexpr size_t kRefusals = 6;
  static const char* RefusalName(Refusal r);  // "too_many_clients", ...
  struct Stats {
    uint64_t accepted = 0;
    uint64_t responses = 0;  // responses written completely
    uint64_t renders = 0;    // calls of the render function
    uint64_t bytes_read = 0;
    uint64_t bytes_written = 0;
    uint64_t refused[kRefusals] = {};
  };

  // Listens on "ADDRESS:PORT" (IPv4) or "[ADDRESS]:PORT" (IPv6).
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Listen(const std::string& listen,
                                                               Options options);
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Listen(const std::string& listen) {
    return Listen(listen, Options());
  }
  ~MetricsServer();
  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;
  uint16_t port() const { return port_; }

  // Accepts, reads and writes what is ready, within the per-poll bounds; never blocks.
  // `render` (the Prometheus text) is called only when a complete request waits and the last
  // body is render_interval_ms old or more; the endpoint's own counters are appended to it.
  // Returns the number of responses started.
  size_t Poll(uint64_t now_ms, const std::function<std::string()>& render);

  size_t clients() const { return clients_.size(); }
  const Stats& stats() const { return stats_; }

 private:
  enum class State : uint8_t { kReading, kReady, kWriting, kDone };
  struct Client {
    int fd = -1;
    uint64_t accepted_ms = 0;
    uint64_t progress_ms = 0;  // last write progress
    State state = State::kReading;
    bool wants_metrics = false;  // GET /metrics (else 404)
    std::string req;             // the request head so far
    std::string head;            // status line and headers (a short response: all of it)
    std::shared_ptr<const std::string> body;
    size_t sent = 0;  // bytes of head + body written
  };
  explicit MetricsServer(Options options) : options_(options) {}
  void Accept(uint64_t now_ms);
  void Read(uint64_t now_ms);
  void Respond(uint64_t now_ms);
  void Write(uint64_t now_ms);
  void Drop(Client& c, Refusal why);
  void Sweep();
  std::string SelfMetrics() const;

  Options options_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::vector<Client> clients_;
  size_t next_ = 0;  // round-robin start of the next poll's reads and writes
  std::shared_ptr<const std::string> body_;
  uint64_t rendered_ms_ = 0;
  Stats stats_;
};

}  // namespace ecmplb::control
