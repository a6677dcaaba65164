// daemon.h: the composition root of ecmplb. Create() wires every part together after EAL
// is up: the configuration file, the DPDK engine (ports, TAP, pool, workers, exception
// forwarder), the exception interface's address (netlink), the control plane and its
// snapshot publication, neighbour sync, the health monitor and VIP announcer, the control
// socket, the metrics endpoint and DPDK telemetry, the daemon's own commands (`drain`,
// `fault`), and the ControlLoop in an EventLoop. Run() forwards until a signal, a drain or
// the run-time limit ends it, then withdraws every VIP and stops the workers.
//
// Thread-safety: the main lcore's thread only.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/options.h"

namespace ecmplb::daemon {

class Daemon {
 public:
  // Every error is one line telling the operator what to change.
  static absl::StatusOr<std::unique_ptr<Daemon>> Create(const Options& options);
  ~Daemon();
  Daemon(const Daemon&) = delete;
  Daemon& operator=(const Daemon&) = delete;

  // Forwards until stopped; returns the process exit status.
  int Run();

 private:
  struct Parts;
  explicit Daemon(std::unique_ptr<Parts> parts);
  // Flow sync's bulk copy: at start (from every peer; holds the VIPs back if sync.bulk_wait),
  // or from the peers heard again after a silence.
  void StartBulkFetch(bool at_start);
  void BulkStep(uint64_t now_ms);
  // Writes the running configuration if a change is not saved yet (deferred saving); a failure
  // is logged once (and shown by `ecmplbctl show`), then retried every housekeeping step.
  static void SaveConfig(Parts& p);
  // Logs once when the next hops to resolve come near the kernel's neighbour table limit
  // (gc_thresh3, 1,024 by default): entries it evicts leave next hops unresolved.
  static void WarnNeighborLimit(Parts& p);
  // Fleet mode: etcd's store and the agent, wired to the plane, the monitor and flow sync;
  // and its step after every health step (follow, judge, withdraw, beacon).
  static absl::Status StartFleet(Parts& p, int64_t cached_version,
                                 const std::string& cached_pointer);
  static void FleetStep(Parts& p, uint64_t now_ms);
  std::unique_ptr<Parts> p_;
};

}  // namespace ecmplb::daemon
