// Microbenchmarks for maglev::Table: build time by table size and backend
// count, and lookup cost over random flow hashes.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <random>
#include <vector>

#include "maglev/maglev.h"
#include "tests/support/backends.h"

namespace ecmplb::maglev {
namespace {

// Args: table size M, backend count N, weighted (0: all 1; 1: 1 + i % 10).
void BM_Build(benchmark::State& state) {
  const uint32_t m = static_cast<uint32_t>(state.range(0));
  const uint32_t n = static_cast<uint32_t>(state.range(1));
  std::vector<Backend> b = test_support::NumberedBackends(n);
  if (state.range(2) != 0) {
    for (uint32_t i = 0; i < n; ++i) b[i].weight = 1 + i % 10;
  }
  for (auto _ : state) {
    absl::StatusOr<Table> t = Table::Build(b, m);
    if (!t.ok()) {
      state.SkipWithError("build failed");
      break;
    }
    benchmark::DoNotOptimize(t->entries().data());
  }
}
BENCHMARK(BM_Build)
    ->ArgNames({"M", "N", "weighted"})
    ->Args({65537, 10, 0})
    ->Args({65537, 100, 0})
    ->Args({65537, 1000, 0})
    ->Args({65537, 1000, 1})
    ->Args({655373, 1000, 0})
    ->Unit(benchmark::kMicrosecond);

constexpr size_t kHashes = 1 << 16;

std::vector<uint64_t> RandomHashes() {
  std::mt19937_64 rng(1);
  std::vector<uint64_t> h(kHashes);
  for (uint64_t& x : h) x = rng();
  return h;
}

// Args: table size M. One Lookup per item; hashes are random so slots are
// random (the table is 2 bytes a slot: 128 KiB at 65537, 1.3 MiB at
// 655373).
void BM_Lookup(benchmark::State& state) {
  const uint32_t m = static_cast<uint32_t>(state.range(0));
  const std::vector<Backend> b = test_support::NumberedBackends(1000);
  absl::StatusOr<Table> t = Table::Build(b, m);
  const std::vector<uint64_t> hashes = RandomHashes();
  size_t i = 0;
  uint64_t sum = 0;
  for (auto _ : state) {
    sum += t->Lookup(hashes[i]);
    i = (i + 1) & (kHashes - 1);
  }
  benchmark::DoNotOptimize(sum);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Lookup)->ArgName("M")->Arg(65537)->Arg(655373);

// Args: table size M. Bursts of 32 flows, as a worker looks them up.
void BM_LookupBurst32(benchmark::State& state) {
  const uint32_t m = static_cast<uint32_t>(state.range(0));
  const std::vector<Backend> b = test_support::NumberedBackends(1000);
  absl::StatusOr<Table> t = Table::Build(b, m);
  const std::vector<uint64_t> hashes = RandomHashes();
  uint32_t out[32];
  size_t i = 0;
  for (auto _ : state) {
    t->LookupBurst(std::span<const uint64_t>(hashes).subspan(i, 32), out);
    benchmark::DoNotOptimize(out);
    i = (i + 32) & (kHashes - 1);
  }
  state.SetItemsProcessed(state.iterations() * 32);
}
BENCHMARK(BM_LookupBurst32)->ArgName("M")->Arg(65537)->Arg(655373);

}  // namespace
}  // namespace ecmplb::maglev

BENCHMARK_MAIN();
