// control_loop.cc: see control_loop.h.
#include "daemon/control_loop.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ecmplb::daemon {

ControlLoop::ControlLoop(control::ControlPlane* plane, control::HealthMonitor* monitor,
                         Settings settings, Hooks hooks, Logger log, uint64_t now_ms)
    : plane_(plane),
      monitor_(monitor),
      settings_(settings),
      hooks_(std::move(hooks)),
      log_(std::move(log)),
      start_ms_(now_ms),
      next_health_ms_(now_ms),
      next_housekeeping_ms_(now_ms) {
  monitor_->SetConfig(plane_->config(), now_ms);
  Publish();
}

void ControlLoop::Publish() {
  if (absl::Status st = plane_->SetUnhealthy(monitor_->unhealthy()); !st.ok()) {
    log_(control::log::Level::kError, "apply", std::string(st.message()));
  }
}

void ControlLoop::ConfigApplied(uint64_t now_ms, const control::AppliedChange& change) {
  if (change.all) {
    monitor_->SetConfig(plane_->config(), now_ms);
  } else {
    monitor_->SetService(change.service, change.now, now_ms);
  }
  Publish();
  next_health_ms_ = now_ms;        // announce what changed without waiting a period
  next_housekeeping_ms_ = now_ms;  // resolve new next hops, reclaim the old snapshot soon
}

void ControlLoop::StartDrain(const std::string& why, uint64_t now_ms) {
  if (draining_ || done_) return;
  draining_ = true;
  drain_end_ms_ = now_ms + settings_.drain_ms;
  monitor_->WithdrawAll("draining");
  log_(control::log::Level::kNotice, "drain",
       absl::StrCat("draining (", why, "): VIPs withdrawn, forwarding ",
                    settings_.drain_ms / 1000.0, " s more, then stopping"),
       {{"REASON", why}});
}

void ControlLoop::Stop(const std::string& why) {
  if (!done_) {
    log_(control::log::Level::kNotice, "drain", absl::StrCat("stopping (", why, ")"),
         {{"REASON", why}});
  }
  done_ = true;
}

void ControlLoop::HealthStep(uint64_t now_ms) {
  ++health_steps_;
  hooks_.heartbeats(&beats_);
  if (monitor_->Tick(now_ms, beats_)) Publish();
  if (!draining_) monitor_->Announce(plane_->config());
  if (hooks_.after_health) hooks_.after_health(now_ms);
  if (draining_ && now_ms >= drain_end_ms_) done_ = true;
}

uint64_t ControlLoop::Tick(uint64_t now_ms) {
  if (now_ms >= next_health_ms_) {
    HealthStep(now_ms);
    // Soon while a check runs or is due; else at the idle period.
    const uint64_t busy = now_ms + settings_.health_period_ms;
    const uint64_t idle = now_ms + std::max(settings_.idle_health_period_ms,
                                            settings_.health_period_ms);
    next_health_ms_ = std::min(idle, std::max(busy, monitor_->NextCheckMs(now_ms)));
  }
  if (now_ms >= next_housekeeping_ms_) {
    next_housekeeping_ms_ = now_ms + settings_.housekeeping_period_ms;
    ++housekeeping_steps_;
    if (hooks_.housekeeping) hooks_.housekeeping(now_ms);
    if (settings_.run_ms > 0 && now_ms - start_ms_ >= settings_.run_ms) Stop("run time over");
  }
  uint64_t next = std::min(next_health_ms_, next_housekeeping_ms_);
  if (draining_) next = std::min(next, std::max(drain_end_ms_, now_ms));
  return next;
}

}  // namespace ecmplb::daemon
