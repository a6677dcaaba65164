// health_monitor.h: the control thread's view of "can this host serve?".
//
// Each tick it runs the backend checks (HealthChecker) and feeds their results to one
// RiseFall per backend, watches the workers' heartbeats (WorkerWatchdog), decides which VIPs
// may be announced (DecideAnnouncements) and makes the kernel agree: a VIP /32 (/128) is on
// host.announce_interface (normally `lo`, where FRR's ospfd advertises it) exactly while it is
// announced. Every announce, withdraw and backend state change is logged with its reason.
//
// Backends of a service with a health check start down and need `rise` successes (a VIP is
// never announced before its backends are proven); backends without a check are always up.
//
// Thread-safety: control thread only.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/health.h"
#include "control/health_checker.h"
#include "control/log.h"
#include "control/netlink.h"
#include "control/snapshot_builder.h"
#include "control/views.h"

namespace ecmplb::control {

struct BackendHealth {
  std::string address;
  bool up = true;
  bool checked = false;     // has a health check
  std::string last_detail;  // last check result ("HTTP 200", "timeout", ...)
  uint64_t last_check_ms = 0;
  uint32_t last_latency_ms = 0;
};

// The checker's key of a probe: its spec as text (equal specs share one probe).
std::string ProbeName(const CheckSpec& spec);

class HealthMonitor {
 public:
  using Logger = log::Sink;
  // `netlink` may be null (no announcing: tests, or host.announce false).
  HealthMonitor(Netlink* netlink, size_t workers, uint64_t stall_ms, Logger log);

  // Call after every configuration change (keeps state of unchanged backends).
  void SetConfig(const Config& config, uint64_t now_ms);
  // The same after a change to one service (`service` as it is now; null: removed): only its
  // backends are looked at (SetConfig costs ~0.5 s at 10,000 checked services).
  void SetService(const std::string& name, const ServiceConfig* service, uint64_t now_ms);
  // The unhealthy backends `service` (named `name`) would have if it were applied now (known
  // states kept; a new checked backend starts down), added to `out`, without changing
  // anything: a configuration change builds its tables with them, so a new checked backend
  // never serves before it is proven.
  void UnhealthyIn(const ServiceConfig& service, const std::string& name,
                   std::set<BackendRef>* out) const;
  // Runs checks and the watchdog. Returns true when the set of unhealthy backends changed
  // (the caller rebuilds the snapshot with unhealthy()).
  bool Tick(uint64_t now_ms, const std::vector<uint64_t>& heartbeats);
  // When a check needs Tick next (HealthChecker::NextDue): `now_ms` while one is in flight.
  uint64_t NextCheckMs(uint64_t now_ms) const { return checker_.NextDue(now_ms); }
  // Decides and applies announcements; call after Tick and after config changes.
  void Announce(const Config& config);
  // While `reason` is not empty, no withdrawn VIP is announced (its decision says why); an
  // announced VIP stays announced. A host that just started, or whose peers were silent, waits
  // for their flows (bulk sync) before the router sends it any. Takes effect at the next
  // Announce.
  void SetHold(std::string reason) { hold_ = std::move(reason); }
  const std::string& hold() const { return hold_; }
  // Whether the last Announce kept back a VIP that would have been announced but for the hold.
  bool held() const { return held_; }
  // While `reason` is not empty, every VIP is withdrawn (announced ones too) with it as the
  // decision's reason; cleared, they are announced again as health decides. Fleet mode's lag
  // rule (control/fleet_agent.h). Takes effect at the next Announce.
  void SetWithdraw(std::string reason) { withdraw_ = std::move(reason); }
  const std::string& withdraw_reason() const { return withdraw_; }
  // Withdraws every VIP (drain, shutdown) and keeps them withdrawn.
  void WithdrawAll(const std::string& reason);

  // Workers, VIP decisions and backend checks (ages relative to `now_ms`).
  HealthView View(uint64_t now_ms) const;

  const std::set<BackendRef>& unhealthy() const { return unhealthy_; }
  const std::map<BackendRef, BackendHealth>& backends() const { return view_; }
  size_t probes() const { return checker_.size(); }  // distinct checks being run
  bool workers_healthy() const { return watchdog_.healthy(); }
  bool worker_stalled(size_t i) const { return watchdog_.stalled(i); }
  const std::map<std::string, std::string>& vips() const {
    return decided_;
  }  // VIP -> "" or reason
  bool draining() const { return draining_; }

 private:
  void Apply(const std::string& vip, bool announce, const std::string& reason);
  void FollowInterface(const Config& config);  // host.announce_interface's index
  // The backends of `s` into the maps, their rise/fall state and view taken from the old ones
  // when there; `probe` is told every probe they subscribe to.
  void AddService(const ServiceConfig& s, const std::string& name,
                  std::map<BackendRef, RiseFall>* old_state,
                  std::map<BackendRef, BackendHealth>* old_view,
                  const std::function<void(const CheckKey&, const CheckSpec&)>& probe);

  Netlink* nl_;
  int ifindex_ = -1;
  std::string ifname_;
  Logger log_;
  WorkerWatchdog watchdog_;
  HealthChecker checker_;
  std::map<CheckKey, std::vector<BackendRef>> subscribers_;  // probe -> who records its results
  std::map<BackendRef, CheckKey> probe_of_;                   // and back
  std::map<BackendRef, RiseFall> state_;
  std::map<BackendRef, BackendHealth> view_;
  std::set<BackendRef> unhealthy_;
  std::map<std::string, std::string> decided_;
  std::set<std::string> announced_;
  bool draining_ = false;
  std::string hold_;
  bool held_ = false;
  std::string withdraw_;
};

}  // namespace ecmplb::control
