// control_loop.h: the daemon's control loop as a class with a clock passed in: what runs
// when (worker watchdog and backend checks every 10 ms, VIP announcement, neighbour sync and
// snapshot reclamation every 100 ms), graceful drain (withdraw, keep forwarding drain_ms,
// stop), immediate stop, a run-time limit, and following every applied configuration.
//
// Tick(now_ms) runs whatever is due at `now_ms` and returns the next deadline; the daemon
// waits in its EventLoop until then (or until a descriptor is ready), tests call Tick with a
// fake clock. The forwarding side is reached through Hooks (the DPDK engine in the daemon, a
// fake in tests); kernel-to-wire forwarding of the exception path is NOT done here: it has
// its own thread (dataplane/dpdk/exception_forwarder.h) so that no step of this loop can
// delay OSPF or BFD.
//
// Thread-safety: one thread (the daemon's main lcore) owns a ControlLoop, its ControlPlane
// and its HealthMonitor.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "control/control_plane.h"
#include "control/log.h"
#include "control/health_monitor.h"

namespace ecmplb::daemon {

class ControlLoop {
 public:
  struct Settings {
    uint64_t health_period_ms = 10;         // watchdog, checks, announcements, metrics
    // The health step's period while no check is in flight or due sooner (the watchdog's and
    // announcements' granularity). An idle host wakes this often, not every health_period:
    // the daemon uses 50 ms; equal to health_period_ms (the default), a fixed period.
    uint64_t idle_health_period_ms = 10;
    uint64_t housekeeping_period_ms = 100;  // neighbour sync, snapshot reclamation
    uint64_t drain_ms = 5000;               // host.drain_s
    uint64_t run_ms = 0;                    // stop after this long (tests); 0: never
  };
  struct Hooks {
    // Required: every worker's progress counter (WorkerWatchdog input).
    std::function<void(std::vector<uint64_t>*)> heartbeats;
    // Optional: every housekeeping period (neighbour sync, snapshot reclamation, idle sweeps).
    std::function<void(uint64_t now_ms)> housekeeping;
    // Optional: after every health period (metrics endpoint, telemetry view).
    std::function<void(uint64_t now_ms)> after_health;
  };
  using Logger = control::log::Sink;

  // `plane` and `monitor` outlive the loop. Starts the health monitor on the plane's
  // configuration and publishes the resulting unhealthy set (checked backends start down).
  ControlLoop(control::ControlPlane* plane, control::HealthMonitor* monitor, Settings settings,
              Hooks hooks, Logger log, uint64_t now_ms);

  // Runs what is due at `now_ms`; returns the next deadline (ms, same clock).
  uint64_t Tick(uint64_t now_ms);

  // After an applied configuration (ControlPlane::Options::on_applied): the health monitor
  // follows it (keeping unchanged backends' states; only the changed service after a
  // command) and the next health step runs at once.
  void ConfigApplied(uint64_t now_ms, const control::AppliedChange& change = {});

  // SIGTERM / `ecmplbctl drain`: withdraw every VIP now, keep forwarding drain_ms, then stop.
  // A second call changes nothing.
  void StartDrain(const std::string& why, uint64_t now_ms);
  // SIGINT: stop at once (the daemon withdraws the VIPs on its way out).
  void Stop(const std::string& why);

  bool done() const { return done_; }
  bool draining() const { return draining_; }
  uint64_t drain_ms() const { return settings_.drain_ms; }
  // Steps run so far (tests).
  uint64_t health_steps() const { return health_steps_; }
  uint64_t housekeeping_steps() const { return housekeeping_steps_; }

 private:
  void HealthStep(uint64_t now_ms);
  void Publish();

  control::ControlPlane* plane_;
  control::HealthMonitor* monitor_;
  Settings settings_;
  Hooks hooks_;
  Logger log_;
  uint64_t start_ms_;
  uint64_t next_health_ms_;
  uint64_t next_housekeeping_ms_;
  uint64_t drain_end_ms_ = 0;
  bool draining_ = false;
  bool done_ = false;
  uint64_t health_steps_ = 0;
  uint64_t housekeeping_steps_ = 0;
  std::vector<uint64_t> beats_;
};

}  // namespace ecmplb::daemon
