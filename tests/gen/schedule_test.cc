// Tests of ecmplb-gen's per-queue schedule: flows grouped by queue, the exact new-flow share,
// new ids unused before and on the right queue, established cycles.
#include "bench/gen/schedule.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "tests/gen/gen_fixture.h"

namespace ecmplb::gen {
namespace {

using testing::MakeModel;
using testing::TestModelOptions;

TEST(ScheduleTest, GroupsPartitionTheFlows) {
  ModelOptions o = TestModelOptions(1000);
  o.queues = 3;
  o.steering = Steering::kSoftRss;
  auto m = MakeModel(o);
  ASSERT_NE(m, nullptr);
  auto g = GroupFlowsByQueue(*m);
  ASSERT_EQ(g.size(), 3u);
  size_t total = 0;
  for (uint16_t q = 0; q < 3; ++q) {
    for (uint32_t f : g[q]) EXPECT_EQ(m->QueueOf(f), q);
    total += g[q].size();
  }
  EXPECT_EQ(total, 1000u);
}

TEST(ScheduleTest, NewShareAndIds) {
  for (Steering st : {Steering::kFlowId, Steering::kSoftRss}) {
    ModelOptions o = TestModelOptions(100);
    o.queues = 2;
    o.steering = st;
    auto m = MakeModel(o);
    ASSERT_NE(m, nullptr);
    auto g = GroupFlowsByQueue(*m);
    std::set<uint64_t> seen_new;
    for (uint16_t q = 0; q < 2; ++q) {
      const size_t est = g[q].size();
      QueueSchedule s(*m, q, g[q], 0.25);
      uint64_t new_count = 0;
      std::map<uint64_t, uint32_t> last_seq;
      for (int i = 0; i < 4000; ++i) {
        uint64_t flow;
        uint32_t seq;
        ASSERT_TRUE(s.Next(&flow, &seq));
        EXPECT_EQ(m->QueueOf(flow), q);
        if (m->is_new(flow)) {
          ++new_count;
          EXPECT_TRUE(seen_new.insert(flow).second) << "new flow id used twice: " << flow;
        } else {
          // Established flows: seq = completed cycles, so it grows by one per visit.
          auto it = last_seq.find(flow);
          if (it != last_seq.end()) {
            EXPECT_EQ(seq, it->second + 1);
          }
          last_seq[flow] = seq;
        }
      }
      EXPECT_EQ(new_count, 1000u);  // exactly a quarter
      EXPECT_EQ(s.new_flows(), 1000u);
      EXPECT_EQ(last_seq.size(), est);
    }
  }
}

TEST(ScheduleTest, OnlyNewOrOnlyEstablished) {
  auto m = MakeModel(TestModelOptions(10));
  ASSERT_NE(m, nullptr);
  auto g = GroupFlowsByQueue(*m);
  QueueSchedule all_new(*m, 0, g[0], 1.0);
  QueueSchedule none_new(*m, 0, g[0], 0.0);
  for (int i = 0; i < 100; ++i) {
    uint64_t f;
    uint32_t seq;
    ASSERT_TRUE(all_new.Next(&f, &seq));
    EXPECT_TRUE(m->is_new(f));
    ASSERT_TRUE(none_new.Next(&f, &seq));
    EXPECT_FALSE(m->is_new(f));
  }
  QueueSchedule empty(*m, 0, {}, 0.0);
  uint64_t f;
  uint32_t seq;
  EXPECT_FALSE(empty.Next(&f, &seq));
}

}  // namespace
}  // namespace ecmplb::gen
