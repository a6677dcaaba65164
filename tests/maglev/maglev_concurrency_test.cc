// Concurrent readers of one immutable maglev::Table (run under TSan).
#include <atomic>
#include <random>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "maglev/maglev.h"

namespace ecmplb::maglev {
namespace {

TEST(MaglevConcurrencyTest, ManyThreadsReadOneTable) {
  std::vector<Backend> b;
  for (uint32_t i = 0; i < 64; ++i) {
    b.push_back({BackendId::V4({10, 1, 0, static_cast<uint8_t>(i)}, 80), 1 + i % 3});
  }
  absl::StatusOr<Table> built = Table::Build(b);
  ASSERT_TRUE(built.ok()) << built.status();
  const Table& table = *built;
  std::atomic<uint64_t> mismatches{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&table, &mismatches, t] {
      std::mt19937_64 rng(t);
      uint64_t hashes[32];
      uint32_t out[32];
      uint64_t bad = 0;
      for (int round = 0; round < 2000; ++round) {
        for (uint64_t& h : hashes) h = rng();
        table.LookupBurst(hashes, out);
        for (int i = 0; i < 32; ++i) {
          if (out[i] != table.Lookup(hashes[i]) || out[i] >= 64) ++bad;
        }
      }
      mismatches.fetch_add(bad);
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0u);
}

}  // namespace
}  // namespace ecmplb::maglev
