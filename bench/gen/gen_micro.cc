// gen_micro: ns per frame of ecmplb-gen's per-packet work without DPDK: building a frame
// (BuildFrame) and checking it (Checker::Check, loopback and balancer mode over frames the
// real ecmplb pipeline forwarded), and building a flood frame (FloodSchedule::Build, all kinds
// in turn). Thread CPU time; one core.
//
//   gen_micro [--flows N] [--size B] [--packets N]
#include <time.h>

#include <cstdio>
#include <memory>
#include <vector>

#include <CLI/CLI.hpp>

#include "bench/gen/checker.h"
#include "bench/gen/flood.h"
#include "bench/gen/frame_builder.h"
#include "bench/gen/traffic_model.h"
#include "control/config.h"

namespace {

double CpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

constexpr const char* kConfig = R"({
  "host": {"address": "10.0.0.11", "prefix_length": 24, "announce": false},
  "services": [
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "dr",
     "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"},
                  {"id": 3, "address": "10.0.0.23"}, {"id": 4, "address": "10.0.0.24"}]}]})";

}  // namespace

int main(int argc, char** argv) {
  using namespace ecmplb::gen;  // NOLINT
  uint64_t flows = 100000, packets = 5'000'000;
  uint32_t size = 64;
  CLI::App app{"gen_micro: ecmplb-gen's per-frame build and check cost"};
  app.add_option("--flows", flows);
  app.add_option("--size", size);
  app.add_option("--packets", packets);
  CLI11_PARSE(app, argc, argv);
  auto config = ecmplb::control::ParseConfig(kConfig);
  ModelOptions o;
  o.flows = flows;
  o.frame_size = size;
  o.src_mac = MacAddr{{2, 0, 0, 0, 0, 2}};
  o.dst_mac = MacAddr{{2, 0, 0, 0, 0, 1}};
  auto model = TrafficModel::Create(*config, o);
  if (!model.ok()) {
    std::fprintf(stderr, "gen_micro: %s\n", std::string(model.status().message()).c_str());
    return 1;
  }
  const TrafficModel& m = **model;
  constexpr size_t kRing = 256;  // frames kept (warm in cache, as a just-received burst)
  std::vector<uint8_t> buf(kRing * 2048);
  std::vector<uint16_t> len(kRing);
  double t0 = CpuNs();
  for (uint64_t i = 0; i < packets; ++i) {
    const size_t k = i % kRing;
    len[k] = static_cast<uint16_t>(BuildFrame(m, i % flows, static_cast<uint32_t>(i / flows),
                                              static_cast<uint32_t>(i), buf.data() + k * 2048));
  }
  const double build = (CpuNs() - t0) / static_cast<double>(packets);
  // Loopback: swap MACs of the kept frames, then check them over and over.
  for (size_t k = 0; k < kRing; ++k) {
    uint8_t* f = buf.data() + k * 2048;
    uint8_t t[6];
    std::memcpy(t, f, 6);
    std::memcpy(f, f + 6, 6);
    std::memcpy(f + 6, t, 6);
  }
  Checker loop(m, CheckerOptions{.mode = ExpectMode::kLoopback});
  t0 = CpuNs();
  for (uint64_t i = 0; i < packets; ++i) {
    const size_t k = i % kRing;
    loop.Check(std::span<const uint8_t>(buf.data() + k * 2048, len[k]), 0);
  }
  const double check = (CpuNs() - t0) / static_cast<double>(packets);
  // Balancer mode: DR to the expected backend's MAC (Maglev lookup per frame).
  for (size_t k = 0; k < kRing; ++k) {
    uint8_t* f = buf.data() + k * 2048;
    std::memcpy(f + 6, f, 6);
  }
  Checker bal(m, CheckerOptions{.check_src_mac = false});
  t0 = CpuNs();
  for (uint64_t i = 0; i < packets; ++i) {
    const size_t k = i % kRing;
    bal.Check(std::span<const uint8_t>(buf.data() + k * 2048, len[k]), 0);
  }
  const double check_lb = (CpuNs() - t0) / static_cast<double>(packets);
  FloodOptions fo;
  fo.share = 1.0;
  auto flood = FloodSet::Create(*config, m, fo);
  if (!flood.ok()) {
    std::fprintf(stderr, "gen_micro: %s\n", std::string(flood.status().message()).c_str());
    return 1;
  }
  FloodSchedule fs(flood->get(), 0);
  FloodKind kind;
  t0 = CpuNs();
  for (uint64_t i = 0; i < packets; ++i) fs.Build(buf.data() + (i % kRing) * 2048, &kind);
  const double build_flood = (CpuNs() - t0) / static_cast<double>(packets);
  std::printf(
      "build %.1f ns/frame, check loopback %.1f ns/frame (ok %llu), check balancer-mode %.1f "
      "ns/frame, build flood %.1f ns/frame\n",
      build, check, static_cast<unsigned long long>(loop.counts().ok), check_lb, build_flood);
  return 0;
}
