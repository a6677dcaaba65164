// SpscRing (dataplane/sync_ring.h): order, bounds, and one producer and one consumer thread
// running at once (run under ThreadSanitizer too).
#include "dataplane/sync_ring.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <thread>
#include <vector>

namespace ecmplb::dataplane {
namespace {

TEST(SpscRingTest, CapacityIsAPowerOfTwo) {
  EXPECT_EQ(SpscRing<int>(0).capacity(), 2u);
  EXPECT_EQ(SpscRing<int>(5).capacity(), 8u);
  EXPECT_EQ(SpscRing<int>(1024).capacity(), 1024u);
}

TEST(SpscRingTest, FifoUntilFullThenRefuses) {
  SpscRing<int> r(4);
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(r.Push(i));
  EXPECT_FALSE(r.Push(99)) << "full";
  EXPECT_EQ(r.size(), 4u);
  int out[3];
  ASSERT_EQ(r.Pop(out), 3u);
  EXPECT_EQ(out[0], 0);
  EXPECT_EQ(out[2], 2);
  // Wraps around the array.
  for (int i = 4; i < 7; ++i) EXPECT_TRUE(r.Push(i));
  EXPECT_FALSE(r.Push(99));
  int rest[8];
  ASSERT_EQ(r.Pop(rest), 4u);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(rest[i], 3 + i);
  EXPECT_EQ(r.Pop(rest), 0u);
  EXPECT_EQ(r.size(), 0u);
}

TEST(SpscRingTest, CarriesSyncEvents) {
  SyncRing r(8);
  SyncEvent e;
  e.key = conntrack::FlowKey::V4(0x0100000a, 0x0200000a, 0x1234, 0x5000, 6, 3);
  e.backend_id = 7;
  e.time_s = 42;
  e.state = conntrack::FlowState::kClosing;
  e.reason = SyncReason::kClosing;
  ASSERT_TRUE(r.Push(e));
  SyncEvent out[2];
  ASSERT_EQ(r.Pop(out), 1u);
  EXPECT_EQ(out[0].key, e.key);
  EXPECT_EQ(out[0].backend_id, 7u);
  EXPECT_EQ(out[0].time_s, 42u);
  EXPECT_EQ(out[0].state, conntrack::FlowState::kClosing);
}

// One producer, one consumer: every pushed value arrives once, in order; refused pushes are
// retried by the producer (the worker would count and drop them instead).
TEST(SpscRingTest, TwoThreadsSeeEveryValueInOrder) {
  constexpr uint64_t kN = 200000;
  SpscRing<uint64_t> r(64);
  uint64_t refused = 0;
  std::thread producer([&] {
    for (uint64_t i = 0; i < kN;) {
      if (r.Push(i)) {
        ++i;
      } else {
        ++refused;
        std::this_thread::yield();
      }
    }
  });
  uint64_t next = 0, bad = 0;
  std::vector<uint64_t> buf(16);
  while (next < kN) {
    const size_t n = r.Pop(buf);
    for (size_t i = 0; i < n; ++i) bad += buf[i] != next++;
    if (n == 0) std::this_thread::yield();
  }
  producer.join();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(next, kN);
  EXPECT_EQ(r.size(), 0u);
}

}  // namespace
}  // namespace ecmplb::dataplane
