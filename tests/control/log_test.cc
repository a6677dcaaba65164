// Tests of the daemon's log (control/log.h): levels, the rate limit per kind and its reports
// of what it dropped, fields, and Sinks made of text-only functions.
#include "control/log.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace ecmplb::control::log {
namespace {

class LoggerTest : public ::testing::Test {
 protected:
  Logger Make(Level min, uint32_t burst, uint32_t per_minute) {
    Logger::Options o;
    o.min_level = min;
    o.burst = burst;
    o.per_minute = per_minute;
    return Logger(o, [this](const Event& e) { out_.push_back(e); }, [this] { return now_ms_; });
  }
  std::vector<Event> out_;
  uint64_t now_ms_ = 1000;
};

TEST_F(LoggerTest, LevelsBelowTheMinimumAreNotWritten) {
  Logger log = Make(Level::kNotice, 100, 100);
  log.Log({Level::kInfo, "daemon", "started", {}});
  log.Log({Level::kDebug, "check", "ok", {}});
  log.Log({Level::kNotice, "backend", "backend up", {{"BACKEND", "10.0.0.21"}}});
  log.Log({Level::kError, "reload", "refused", {}});
  ASSERT_EQ(out_.size(), 2u);
  EXPECT_EQ(out_[0].message, "backend up");
  EXPECT_EQ(out_[0].fields, (Fields{{"BACKEND", "10.0.0.21"}}));
  EXPECT_EQ(out_[1].level, Level::kError);
  EXPECT_EQ(log.dropped_total(), 0u);  // filtered is not dropped
}

TEST_F(LoggerTest, AFlappingBackendIsLimitedPerKindAndTheDropsAreReported) {
  Logger log = Make(Level::kInfo, 3, 60);  // 3 in a row, then one a second
  for (int i = 0; i < 10; ++i) log.Log({Level::kWarning, "backend", "down " + std::to_string(i), {}});
  log.Log({Level::kNotice, "announce", "withdraw", {}});  // another kind: its own budget
  ASSERT_EQ(out_.size(), 4u);
  EXPECT_EQ(out_[2].message, "down 2");
  EXPECT_EQ(out_[3].message, "withdraw");
  EXPECT_EQ(log.dropped_total(), 7u);
  now_ms_ += 1000;  // one token back
  log.Log({Level::kNotice, "backend", "up", {}});
  ASSERT_EQ(out_.size(), 5u);
  EXPECT_EQ(out_[4].message, "up (7 more like it dropped by the log's rate limit)");
  // Dropped again; Flush reports once the kind may log again, at the most severe level.
  log.Log({Level::kWarning, "backend", "down", {}});
  log.Log({Level::kNotice, "backend", "up", {}});
  log.Flush();
  EXPECT_EQ(out_.size(), 5u);  // no token yet
  now_ms_ += 1000;
  log.Flush();
  ASSERT_EQ(out_.size(), 6u);
  EXPECT_EQ(out_[5].message, "2 more 'backend' messages dropped by the log's rate limit");
  EXPECT_EQ(out_[5].level, Level::kWarning);
  EXPECT_EQ(out_[5].kind, "backend");
  log.Flush();
  EXPECT_EQ(out_.size(), 6u);  // reported once
}

TEST_F(LoggerTest, EachSubjectHasItsOwnBudget) {
  Logger log = Make(Level::kInfo, 2, 60);
  // A hundred backends down at once: each is logged.
  for (int id = 1; id <= 100; ++id) {
    log.Log({Level::kWarning, "backend", "down", {{"BACKEND_ID", std::to_string(id)}, {"REASON", "timeout"}}});
  }
  EXPECT_EQ(out_.size(), 100u);
  // One of them flapping (one message left of its burst of 2): limited on its own, its
  // report names it (REASON left out).
  for (int i = 0; i < 5; ++i) {
    log.Log({Level::kWarning, "backend", "down", {{"BACKEND_ID", "7"}, {"REASON", std::to_string(i)}}});
  }
  EXPECT_EQ(out_.size(), 101u);
  now_ms_ += 1000;
  log.Flush();
  ASSERT_EQ(out_.size(), 102u);
  EXPECT_EQ(out_.back().message, "4 more 'backend' messages dropped by the log's rate limit");
  EXPECT_EQ(out_.back().fields, (Fields{{"BACKEND_ID", "7"}}));
  // Start-up and operators' commands ("daemon") are never limited.
  for (int i = 0; i < 50; ++i) log.Log({Level::kInfo, "daemon", "line", {}});
  EXPECT_EQ(out_.size(), 152u);
}

TEST_F(LoggerTest, TheBucketRefillsUpToItsBurst) {
  Logger log = Make(Level::kInfo, 2, 60);
  now_ms_ += 3600 * 1000;  // an hour idle refills two tokens, not 3600
  for (int i = 0; i < 5; ++i) log.Log({Level::kInfo, "apply", "x", {}});
  EXPECT_EQ(out_.size(), 2u);
}

TEST(LogSinkTest, TextFunctionsAndEmptySinks) {
  std::vector<std::string> lines;
  Sink text = [&](const std::string& m) { lines.push_back(m); };
  text(Level::kWarning, "backend", "backend down", {{"REASON", "timeout"}});
  text("started");
  EXPECT_EQ(lines, (std::vector<std::string>{"backend down", "started"}));
  Sink none;
  none("nobody hears this");
  EXPECT_FALSE(static_cast<bool>(none));
  std::vector<Event> events;
  Sink full = [&](const Event& e) { events.push_back(e); };
  full("started");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, "daemon");
  EXPECT_EQ(events[0].level, Level::kInfo);
}

TEST(LogLevelTest, Names) {
  EXPECT_EQ(*ParseLevel("notice"), Level::kNotice);
  EXPECT_EQ(ParseLevel("verbose").status().message(),
            "unknown log level 'verbose' (error, warning, notice, info or debug)");
  EXPECT_STREQ(LevelName(Level::kWarning), "warning");
}

}  // namespace
}  // namespace ecmplb::control::log
