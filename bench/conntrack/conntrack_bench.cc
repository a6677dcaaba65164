// Connection tracker microbenchmarks: lookup hit/miss (single and bulk of 32)
// at 10K (in cache), 1M and 10M tracked flows, the per-packet hit path (bulk
// lookup + Touch), insert rate, bytes per flow, and the machine's memory
// floor for the same access pattern.
//   conntrack_bench --benchmark_repetitions=5
//       --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <map>
#include <memory>
#include <vector>

#include "conntrack/conntrack.h"
#include "tests/support/flows.h"

namespace ecmplb::conntrack {
namespace {

constexpr size_t kPool = 1 << 16;  // keys cycled through per benchmark
constexpr size_t kBurst = Table::kMaxBurst;

using test_support::Mix32;

// Flow i: a distinct client address and port towards one VIP:80.
FlowKey BenchKey(uint32_t i) {
  return FlowKey::V4(0x0a000000u + i, 0x0100a8c0u, static_cast<uint16_t>(Mix32(i)), 0x5000,
                     inet::ip_proto::kTcp, 1);
}

struct Fixture {
  std::unique_ptr<Table> table;
  std::vector<FlowKey> hits;    // tracked keys, random order
  std::vector<FlowKey> misses;  // never inserted
};

// Tables are built once per size and shared by the benchmarks.
Fixture& Get(size_t flows) {
  static std::map<size_t, Fixture>* cache = new std::map<size_t, Fixture>();
  auto it = cache->find(flows);
  if (it != cache->end()) return it->second;
  Fixture& f = (*cache)[flows];
  Options o;
  o.capacity = flows;
  f.table = std::move(Table::Create(o)).value();
  for (uint32_t i = 0; i < flows; ++i) {
    f.table->Insert(BenchKey(i), i, inet::tcp_flag::kAck, 0);
  }
  uint32_t r = 1;
  while (f.hits.size() < kPool) {
    r = Mix32(r + 0x9e3779b9u);
    const FlowKey k = BenchKey(r % flows);
    if (f.table->Lookup(k, 1).found()) f.hits.push_back(k);
  }
  for (uint32_t i = 0; i < kPool; ++i) {
    f.misses.push_back(BenchKey(static_cast<uint32_t>(flows) + i));
  }
  return f;
}

void SetCounters(benchmark::State& state, const Table& t, size_t keys) {
  state.SetItemsProcessed(static_cast<int64_t>(keys));
  // CPU time per key (printed with an SI prefix, e.g. "40.1ns").
  state.counters["per_key"] = benchmark::Counter(
      static_cast<double>(keys), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["bytes_per_flow"] =
      static_cast<double>(t.memory_bytes()) / static_cast<double>(t.capacity());
  state.counters["flows"] = static_cast<double>(t.Count());
}

// args: flows, bulk (0: one Lookup per key, 1: LookupBulk of 32), hit (0/1)
void BM_Lookup(benchmark::State& state) {
  Fixture& f = Get(static_cast<size_t>(state.range(0)));
  const bool bulk = state.range(1) != 0;
  const std::vector<FlowKey>& pool = state.range(2) ? f.hits : f.misses;
  Table& t = *f.table;
  EntryRef refs[kBurst];
  size_t pos = 0;
  size_t keys = 0;
  size_t found = 0;
  for (auto _ : state) {
    std::span<const FlowKey> burst(&pool[pos], kBurst);
    pos = (pos + kBurst) & (kPool - 1);
    if (bulk) {
      t.LookupBulk(burst, 1, refs);
    } else {
      for (size_t i = 0; i < kBurst; ++i) refs[i] = t.Lookup(burst[i], 1);
    }
    for (const EntryRef& r : refs) found += r.found();
    benchmark::DoNotOptimize(refs);
    keys += kBurst;
  }
  if (found != (state.range(2) ? keys : 0)) state.SkipWithError("bad result");
  SetCounters(state, t, keys);
}

// Per-packet hit path of the dataplane: bulk lookup, then Touch every hit.
// The clock advances one second every 1024 bursts (so Touch writes now and
// then, as it would at line rate) and stays below the 900 s established
// timeout of the flows inserted at time 0.
void BM_LookupBulkTouch(benchmark::State& state) {
  Fixture& f = Get(static_cast<size_t>(state.range(0)));
  Table& t = *f.table;
  EntryRef refs[kBurst];
  size_t pos = 0;
  size_t keys = 0;
  static uint64_t bursts = 0;  // shared by repetitions: time never goes back
  for (auto _ : state) {
    std::span<const FlowKey> burst(&f.hits[pos], kBurst);
    pos = (pos + kBurst) & (kPool - 1);
    const uint32_t now = static_cast<uint32_t>(std::min<uint64_t>(800, 1 + ++bursts / 1024));
    t.LookupBulk(burst, now, refs);
    for (EntryRef& r : refs) {
      if (!t.Touch(r, inet::tcp_flag::kAck, now)) state.SkipWithError("miss");
    }
    keys += kBurst;
  }
  SetCounters(state, t, keys);
}

// Inserts `flows` new flows into an empty table of that capacity (80% of its
// slots): insert rate on a filling table.
void BM_Insert(benchmark::State& state) {
  const size_t flows = static_cast<size_t>(state.range(0));
  Options o;
  o.capacity = flows;
  size_t keys = 0;
  size_t full = 0;
  std::unique_ptr<Table> t;
  for (auto _ : state) {
    state.PauseTiming();
    t.reset();
    t = std::move(Table::Create(o)).value();
    state.ResumeTiming();
    for (uint32_t i = 0; i < flows; ++i) {
      full += t->Insert(BenchKey(i), i, inet::tcp_flag::kSyn, 0) == InsertResult::kFull;
    }
    keys += flows;
  }
  SetCounters(state, *t, keys);
  state.counters["full_ratio"] = static_cast<double>(full) / keys;
}

// Machine floor for comparison: the memory traffic of a bulk lookup alone.
// Random 128-byte blocks of a buffer as large as the table, 32 at a time,
// both lines prefetched, then one load from each line.
void BM_MemoryFloor(benchmark::State& state) {
  Options o;
  o.capacity = static_cast<size_t>(state.range(0));
  const size_t blocks = Table::MemoryNeeded(o) / Table::kBucketBytes;
  std::vector<uint64_t> mem(blocks * Table::kBucketBytes / sizeof(uint64_t), 1);
  uint32_t r = 7;
  uint64_t sum = 0;
  size_t keys = 0;
  for (auto _ : state) {
    size_t idx[kBurst];
    for (size_t i = 0; i < kBurst; ++i) {
      r = Mix32(r + 0x9e3779b9u);
      idx[i] = (static_cast<uint64_t>(r) * blocks) >> 32;
      __builtin_prefetch(&mem[idx[i] * 16]);
      __builtin_prefetch(&mem[idx[i] * 16 + 8]);
    }
    for (size_t i = 0; i < kBurst; ++i) {
      sum += mem[idx[i] * 16 + 1] + mem[idx[i] * 16 + 9];
    }
    keys += kBurst;
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(static_cast<int64_t>(keys));
  state.counters["per_key"] = benchmark::Counter(
      static_cast<double>(keys), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

BENCHMARK(BM_Lookup)
    ->ArgNames({"flows", "bulk", "hit"})
    ->ArgsProduct({{10'000, 1'000'000, 10'000'000}, {0, 1}, {1, 0}});
BENCHMARK(BM_MemoryFloor)->ArgNames({"flows"})->Arg(1'000'000)->Arg(10'000'000);
BENCHMARK(BM_LookupBulkTouch)->ArgNames({"flows"})->Arg(1'000'000)->Arg(10'000'000);
BENCHMARK(BM_Insert)->ArgNames({"flows"})->Arg(1'000'000)->Iterations(3)->Unit(
    benchmark::kMillisecond);

}  // namespace
}  // namespace ecmplb::conntrack

BENCHMARK_MAIN();
