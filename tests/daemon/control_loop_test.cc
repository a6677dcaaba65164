// Tests of the daemon's control loop with a fake clock and no DPDK: what runs when (health
// every 10 ms, housekeeping every 100 ms, the deadline Tick returns), the worker watchdog
// through the heartbeat hook, graceful drain (withdraw, keep going drain_ms, stop), stop,
// the run-time limit, and following an applied configuration (the health monitor sees new
// backends; a new checked backend never enters a published Maglev table before it is proven).
// Backends are on loopback: the one health check that runs is refused there.
#include "daemon/control_loop.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/control_plane.h"
#include "control/health_monitor.h"
#include "dataplane/snapshot.h"

namespace ecmplb::daemon {
namespace {

constexpr char kConfig[] = R"({
  "host": {"address": "127.0.0.11", "prefix_length": 8, "worker_stall_ms": 50},
  "conntrack": {"capacity": 4096},
  "services": [
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp",
     "backends": [{"id": 1, "address": "127.0.0.21"}, {"id": 2, "address": "127.0.0.22"}]},
    {"vip": "10.100.0.2", "port": 80, "protocol": "tcp",
     "health_check": {"type": "tcp", "port": 9, "interval_ms": 100000, "timeout_ms": 50,
                      "rise": 1, "fall": 1},
     "backends": []}
  ]})";

class ControlLoopTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto config = control::ParseConfig(kConfig);
    ASSERT_TRUE(config.ok()) << config.status();
    monitor_ = std::make_unique<control::HealthMonitor>(
        nullptr, 2, config->host.worker_stall_ms,
        [this](const std::string& m) { log_.push_back(m); });
    control::ControlPlane::Options o;
    o.unhealthy_in = [this](const control::ServiceConfig& s, const std::string& name,
                            std::set<control::BackendRef>* out) {
      monitor_->UnhealthyIn(s, name, out);
    };
    o.on_applied = [this](const control::Config&, const control::AppliedChange& change) {
      if (loop_) loop_->ConfigApplied(now_, change);
    };
    auto plane = control::ControlPlane::Create(
        *config, dataplane::MacAddr{},
        [this](std::unique_ptr<const dataplane::Snapshot> s) {
          published_.push_back(std::move(s));
        },
        o);
    ASSERT_TRUE(plane.ok()) << plane.status();
    plane_ = std::move(*plane);
  }

  void MakeLoop(ControlLoop::Settings s) {
    ControlLoop::Hooks h;
    h.heartbeats = [this](std::vector<uint64_t>* out) { *out = beats_; };
    h.housekeeping = [this](uint64_t now) { housekeeping_at_.push_back(now); };
    h.after_health = [this](uint64_t) { ++after_health_; };
    loop_ = std::make_unique<ControlLoop>(
        plane_.get(), monitor_.get(), s, std::move(h),
        [this](const std::string& m) { log_.push_back(m); }, now_);
  }

  // Runs the loop from now_ to `until` the way the daemon does: Tick, then "wait" until the
  // deadline it returned. Returns the number of Tick calls.
  int RunUntil(uint64_t until) {
    int ticks = 0;
    while (now_ <= until && !loop_->done()) {
      const uint64_t next = loop_->Tick(now_);
      ++ticks;
      EXPECT_GT(next, now_) << "a deadline in the past would spin";
      now_ = std::max(next, now_ + 1);
    }
    return ticks;
  }

  uint64_t now_ = 1000;
  std::vector<uint64_t> beats_ = {1, 1};
  std::vector<std::string> log_;
  std::vector<uint64_t> housekeeping_at_;
  int after_health_ = 0;
  std::vector<std::unique_ptr<const dataplane::Snapshot>> published_;
  std::unique_ptr<control::HealthMonitor> monitor_;
  std::unique_ptr<control::ControlPlane> plane_;
  std::unique_ptr<ControlLoop> loop_;
};

TEST_F(ControlLoopTest, RunsHealthEvery10msAndHousekeepingEvery100ms) {
  MakeLoop({});
  EXPECT_EQ(loop_->Tick(1000), 1010u);  // both due at once; next: the health step
  EXPECT_EQ(loop_->health_steps(), 1u);
  EXPECT_EQ(loop_->housekeeping_steps(), 1u);
  EXPECT_EQ(loop_->Tick(1005), 1010u);  // nothing due
  EXPECT_EQ(loop_->health_steps(), 1u);
  EXPECT_EQ(loop_->Tick(1010), 1020u);
  EXPECT_EQ(loop_->health_steps(), 2u);
  EXPECT_EQ(loop_->housekeeping_steps(), 1u);
  now_ = 1020;
  beats_ = {2, 2};
  RunUntil(1999);
  // 1000..1999: health at 1000, 1010, ..., 1990 and housekeeping at 1000, 1100, ..., 1900.
  EXPECT_EQ(loop_->health_steps(), 100u);
  EXPECT_EQ(loop_->housekeeping_steps(), 10u);
  EXPECT_EQ(after_health_, 100);
  EXPECT_EQ(housekeeping_at_.back(), 1900u);
  EXPECT_FALSE(loop_->done());
}

TEST_F(ControlLoopTest, WorkersWithoutProgressMakeTheHostUnhealthyAndRecover) {
  MakeLoop({});
  RunUntil(1040);
  EXPECT_TRUE(monitor_->workers_healthy());
  beats_ = {5, 1};  // worker 1 makes no progress from here
  for (uint64_t t = 1050; t <= 1200; t += 10) {
    beats_[0] += 1;
    now_ = t;
    loop_->Tick(now_);
  }
  EXPECT_FALSE(monitor_->workers_healthy());
  EXPECT_TRUE(monitor_->worker_stalled(1));
  EXPECT_FALSE(monitor_->worker_stalled(0));
  beats_[1] = 2;
  now_ = 1210;
  loop_->Tick(now_);
  EXPECT_TRUE(monitor_->workers_healthy());
}

TEST_F(ControlLoopTest, DrainWithdrawsAtOnceAndStopsAfterDrainTime) {
  ControlLoop::Settings s;
  s.drain_ms = 3000;
  MakeLoop(s);
  RunUntil(1500);
  loop_->StartDrain("test", 1500);
  EXPECT_TRUE(loop_->draining());
  EXPECT_TRUE(monitor_->draining());
  loop_->StartDrain("again", 2000);  // a second drain does not extend the first
  now_ = 1501;
  RunUntil(4499);
  EXPECT_FALSE(loop_->done());
  now_ = 4500;
  loop_->Tick(now_);
  EXPECT_TRUE(loop_->done());
}

// With an idle period (the daemon's 50 ms), the health step runs at it while no check is in
// flight or due: an idle host wakes 20 times a second, not 100; checks still run on time.
TEST_F(ControlLoopTest, IdleHealthPeriodWhenNoCheckIsDue) {
  ControlLoop::Settings s;
  s.idle_health_period_ms = 50;
  MakeLoop(s);
  RunUntil(1999);
  EXPECT_GE(loop_->health_steps(), 20u);
  EXPECT_LE(loop_->health_steps(), 30u);  // 20 idle steps, plus 10 ms steps while checks run
  EXPECT_EQ(loop_->housekeeping_steps(), 10u);
  EXPECT_EQ(monitor_->NextCheckMs(now_) > now_, true);  // the checks ran and are not due
}

TEST_F(ControlLoopTest, DeadlineNeverPassesTheDrainEnd) {
  ControlLoop::Settings s;
  s.drain_ms = 5;
  s.health_period_ms = 1000;
  s.housekeeping_period_ms = 1000;
  MakeLoop(s);
  loop_->Tick(now_);
  loop_->StartDrain("test", now_);
  EXPECT_EQ(loop_->Tick(now_ + 1), now_ + 5);
}

TEST_F(ControlLoopTest, StopEndsAtOnceAndRunTimeEndsOnTime) {
  MakeLoop({});
  loop_->Tick(now_);
  loop_->Stop("test");
  EXPECT_TRUE(loop_->done());

  ControlLoop::Settings s;
  s.run_ms = 500;
  MakeLoop(s);
  RunUntil(now_ + 10000);
  EXPECT_TRUE(loop_->done());
  EXPECT_GE(now_, 1500u);
  EXPECT_LE(now_, 1600u);  // the housekeeping step after 500 ms ends it
}

TEST_F(ControlLoopTest, AppliedConfigurationIsFollowedAndHealthRunsAtOnce) {
  MakeLoop({});
  RunUntil(1100);
  const uint64_t steps = loop_->health_steps();
  control::Command add;
  add.kind = control::CommandKind::kBackendAdd;
  add.service = "10.100.0.1:80/tcp";
  add.backend = "127.0.0.23";
  auto r = plane_->Apply(add);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(monitor_->backends().contains(control::BackendRef{"10.100.0.1:80/tcp", 3}));
  EXPECT_EQ(loop_->Tick(now_), now_ + 10);  // the health step runs now, not a period later
  EXPECT_EQ(loop_->health_steps(), steps + 1);
}

TEST_F(ControlLoopTest, NewCheckedBackendIsNeverPublishedBeforeItIsProven) {
  MakeLoop({});
  RunUntil(1100);
  published_.clear();
  control::Command add;
  add.kind = control::CommandKind::kBackendAdd;
  add.service = "10.100.0.2:80/tcp";
  add.backend = "127.0.0.24";
  auto r = plane_->Apply(add);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_FALSE(published_.empty());
  for (const auto& snap : published_) {
    for (const auto& svc : snap->services()) {
      if (svc->key.port != 80 || svc->key.vip.ToString() != "10.100.0.2") continue;
      EXPECT_FALSE(svc->table.has_value())
          << "generation " << snap->generation() << ": an unproven backend has Maglev slots";
    }
  }
  EXPECT_TRUE(plane_->unhealthy().contains(control::BackendRef{"10.100.0.2:80/tcp", 1}));
}

}  // namespace
}  // namespace ecmplb::daemon
