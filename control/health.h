// health.h: the state machines that decide whether this host may announce a VIP.
//
//  - RiseFall: a backend's health from its check results, keepalived-style: it goes down after
//    `fall` consecutive failures and comes back after `rise` consecutive successes.
//  - WorkerWatchdog: a worker is stalled when its heartbeat has not moved for `stall_ms`; the
//    host is healthy only while every worker progresses.
//  - AnnounceDecision: a VIP is announced while at least one of its services is
//    administratively up and has a healthy backend with weight > 0, and every worker is healthy.
//
// Thread-safety: plain values, used by the control thread only. Time is passed in (ms).
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace ecmplb::control {

class RiseFall {
 public:
  RiseFall(uint32_t rise, uint32_t fall, bool initially_up)
      : rise_(rise == 0 ? 1 : rise), fall_(fall == 0 ? 1 : fall), up_(initially_up) {}
  // Records one check result; returns true when the state flips.
  bool Record(bool success) {
    if (success) {
      fails_ = 0;
      if (!up_ && ++oks_ >= rise_) {
        up_ = true;
        oks_ = 0;
        return true;
      }
    } else {
      oks_ = 0;
      if (up_ && ++fails_ >= fall_) {
        up_ = false;
        fails_ = 0;
        return true;
      }
    }
    return false;
  }
  bool up() const { return up_; }
  // Down, but its last check(s) passed: up within (rise - 1) more checks unless one fails.
  bool rising() const { return !up_ && oks_ > 0; }

 private:
  uint32_t rise_, fall_;
  bool up_;
  uint32_t oks_ = 0, fails_ = 0;
};

class WorkerWatchdog {
 public:
  WorkerWatchdog(size_t workers, uint64_t stall_ms) : stall_ms_(stall_ms), last_(workers) {}
  // Feeds the current heartbeat values; returns true when the overall health flips.
  bool Observe(const std::vector<uint64_t>& beats, uint64_t now_ms) {
    bool all = true;
    for (size_t i = 0; i < last_.size() && i < beats.size(); ++i) {
      if (!last_[i].seen || beats[i] != last_[i].beat) {
        last_[i] = {true, beats[i], now_ms};
      }
      last_[i].stalled = now_ms - last_[i].since_ms > stall_ms_;
      all = all && !last_[i].stalled;
    }
    bool flipped = all != healthy_;
    healthy_ = all;
    return flipped;
  }
  bool healthy() const { return healthy_; }
  bool stalled(size_t worker) const { return last_[worker].stalled; }
  size_t workers() const { return last_.size(); }

 private:
  struct State {
    bool seen = false;
    uint64_t beat = 0;
    uint64_t since_ms = 0;
    bool stalled = false;
  };
  uint64_t stall_ms_;
  std::vector<State> last_;
  bool healthy_ = true;
};

// What one service contributes to its VIP's announcement.
struct ServiceServability {
  std::string vip;  // canonical text
  bool admin_up = true;
  bool has_healthy_backend = false;  // healthy and weight > 0 (or a healthy sorry backend)
  bool has_rising_backend = false;   // one with weight > 0 is down but passing its checks
};

// VIP -> reason it is withdrawn ("" when announced).
// With `announced` (the VIPs announced now): a withdrawn VIP is not announced yet while one of
// its backends is rising (RiseFall::rising), so that a host whose checks all failed (its link
// was down) and now pass again takes traffic only once they have all risen, not with the first
// one (flows the router moves to it would otherwise be placed among part of the backends). An
// announced VIP is never withdrawn for that. The wait lasts at most (rise - 1) check intervals.
std::map<std::string, std::string> DecideAnnouncements(
    const std::vector<ServiceServability>& services, bool workers_healthy, bool draining,
    const std::set<std::string>* announced = nullptr);

}  // namespace ecmplb::control
