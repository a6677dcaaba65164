// scale_bench: the control plane as services and backends grow (issue 19). For each size
// (services x backends per service) it generates the configuration as JSON and measures:
//
//   parse      ParseConfig of the JSON text (validation included): a whole-config load's first half
//   build      ControlPlane::Create: every Maglev table, the snapshot, publication
//   memory     heap added by parse + build (config, control plane, snapshot, tables), per service
//   change     one `backend set` on one service through ControlPlane::Apply (median), and the
//              time until the worker thread runs with the new snapshot and passed a quiescent
//              state after it (the real SnapshotPublisher, rte_rcu_qsbr): "pickup"
//   del, add   `service del` of a service from the middle of the list and `service add` of a
//              new one (median), each to the last worker's pickup
//   addr       `backend add` of a new address to one service and its `backend del` (median)
//   follow     what the daemon's health monitor does after a change (every service has a TCP
//              check): one service (HealthMonitor::SetService, after a command; JSON
//              monitor_follow_one_ms) and the whole configuration (SetConfig, after a whole-config
//              change; monitor_follow_all_ms)
//   save       SaveConfigFile of the whole configuration (what a change pays when saving)
//   all        one ApplyConfig that changes every service (every backend's weight)
//
// Services are VIPs 198.18.0.0/15 x 8 ports; backends come from a pool of 60,000 addresses
// on the host's /8 (services share backends, as at an edge); table sizes are what `service
// add --expected-backends B` chooses (Maglev::SizeFor(B)), or 65,537 with --default-tables.
//
//   ./build/bench/scale/scale_bench --services 100,1000,10000 --backends 2,8,100
#include <malloc.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "control/config.h"
#include "control/control_plane.h"
#include "control/health_monitor.h"
#include "dataplane/dpdk/publisher.h"
#include "maglev/maglev.h"

namespace {

using namespace ecmplb;  // NOLINT
using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

// Heap in use (malloc's view: freed memory of an earlier size does not count).
double HeapKib() {
  const struct mallinfo2 m = mallinfo2();
  return static_cast<double>(m.uordblks + m.hblkhd) / 1024;
}

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

constexpr size_t kPool = 60000;

std::string BackendAddr(size_t k) {
  k %= kPool;
  return absl::StrCat("10.", 1 + k / 65536, ".", k / 256 % 256, ".", k % 256);
}

std::string ConfigJson(size_t services, size_t per, bool default_tables) {
  nlohmann::json svcs = nlohmann::json::array();
  const uint32_t table =
      default_tables ? maglev::kDefaultTableSize : maglev::Table::SizeFor(static_cast<uint32_t>(per));
  for (size_t i = 0; i < services; ++i) {
    const size_t v = i / 8;
    nlohmann::json bes = nlohmann::json::array();
    for (size_t b = 0; b < per; ++b) {
      bes.push_back({{"id", b + 1}, {"address", BackendAddr(i * 7 + b)}});
    }
    svcs.push_back({{"vip", absl::StrCat("198.", 18 + v / 65536, ".", v / 256 % 256, ".", v % 256)},
                    {"port", 80 + i % 8},
                    {"protocol", "tcp"},
                    {"table_size", table},
                    {"health_check", {{"type", "tcp"}}},
                    {"backends", std::move(bes)}});
  }
  nlohmann::json c = {{"host", {{"address", "10.0.0.11"}, {"prefix_length", 8}}},
                      {"conntrack", {{"capacity", 4096}}},
                      {"services", std::move(svcs)}};
  return c.dump();
}

struct Row {
  size_t services, per;
  double json_mib, validate_ms, copy_ms, parse_ms, build_ms, kib_per_service, change_ms, pickup_ms,
      del_ms, add_ms, addr_ms, monitor_ms, monitor_all_ms, save_ms, all_ms;
  size_t rebuilt_one, rebuilt_all;
};

Row Measure(size_t services, size_t per, bool default_tables, int changes, int worker_cpu) {
  Row r{};
  r.services = services;
  r.per = per;
  const std::string text = ConfigJson(services, per, default_tables);
  r.json_mib = static_cast<double>(text.size()) / (1 << 20);

  auto publisher = dataplane::SnapshotPublisher::Create(1);
  if (!publisher.ok()) std::exit(1);
  dataplane::SnapshotPublisher* pub = publisher->get();
  std::atomic<uint64_t> seen{0};
  std::atomic<bool> stop{false};
  // The worker: runs with the current snapshot (a lookup per "burst"), reports its generation
  // after the quiescent state that follows it.
  std::thread worker([&] {
    if (worker_cpu >= 0) {
      cpu_set_t set;
      CPU_ZERO(&set);
      CPU_SET(worker_cpu, &set);
      sched_setaffinity(0, sizeof(set), &set);
    }
    pub->Online(0);
    uint64_t sink = 0;
    while (!stop.load(std::memory_order_relaxed)) {
      const dataplane::Snapshot* s = pub->Current();
      uint64_t g = 0;
      if (s != nullptr) {
        g = s->generation();
        sink += s->services().size();
      }
      pub->Quiescent(0);
      seen.store(g, std::memory_order_release);
    }
    pub->Offline(0);
    if (sink == 42) std::printf(" ");
  });

  const double heap0 = HeapKib();
  auto t0 = Clock::now();
  auto config = control::ParseConfig(text);
  r.parse_ms = MsSince(t0);
  if (!config.ok()) {
    std::fprintf(stderr, "scale_bench: %s\n", std::string(config.status().message()).c_str());
    std::exit(1);
  }
  t0 = Clock::now();
  (void)control::Validate(*config);
  r.validate_ms = MsSince(t0);
  t0 = Clock::now();
  control::Config copy = *config;
  r.copy_ms = MsSince(t0);
  t0 = Clock::now();
  auto cp = control::ControlPlane::Create(
      *config, dataplane::MacAddr{},
      [pub](std::unique_ptr<const dataplane::Snapshot> s) { pub->Publish(std::move(s)); }, {});
  r.build_ms = MsSince(t0);
  if (!cp.ok()) {
    std::fprintf(stderr, "scale_bench: %s\n", std::string(cp.status().message()).c_str());
    std::exit(1);
  }
  pub->Reclaim();
  // The configuration (parsed) and the control plane (its copy, the builder, the snapshot and
  // every Maglev table), per service.
  r.kib_per_service = (HeapKib() - heap0) / static_cast<double>(services);

  // One service at a time.
  std::vector<double> change, pickup;
  for (int k = 0; k < changes; ++k) {
    const size_t i = (static_cast<size_t>(k) * 7919) % services;
    const control::ServiceConfig& s = (*cp)->config().services[i];
    control::Command c;
    c.kind = control::CommandKind::kBackendSet;
    c.service = s.Name();
    c.backend = s.backends[0].address;
    c.weight = s.backends[0].weight == 1 ? 2 : 1;
    t0 = Clock::now();
    auto res = (*cp)->Apply(c);
    const double applied = MsSince(t0);
    if (!res.ok()) {
      std::fprintf(stderr, "scale_bench: %s\n", std::string(res.status().message()).c_str());
      std::exit(1);
    }
    while (seen.load(std::memory_order_acquire) < res->generation) {
    }
    pickup.push_back(MsSince(t0));
    change.push_back(applied);
    r.rebuilt_one = res->services_rebuilt;
    pub->Reclaim();
  }
  r.change_ms = Median(change);
  r.pickup_ms = Median(pickup);

  // What the daemon's control loop does after each change, once it is published: the health
  // monitor follows the configuration (every service has a TCP check).
  {
    control::HealthMonitor monitor(nullptr, 1, 500, [](const std::string&) {});
    monitor.SetConfig((*cp)->config(), 0);
    std::vector<double> whole, one;
    for (int k = 0; k < 5; ++k) {
      t0 = Clock::now();
      monitor.SetConfig((*cp)->config(), 1);
      whole.push_back(MsSince(t0));
    }
    for (int k = 0; k < changes; ++k) {
      const control::ServiceConfig& s =
          (*cp)->config().services[(static_cast<size_t>(k) * 7919) % services];
      t0 = Clock::now();
      monitor.SetService(s.Name(), &s, 2);
      one.push_back(MsSince(t0));
    }
    r.monitor_all_ms = Median(whole);
    r.monitor_ms = Median(one);
  }

  char dir[] = "/tmp/scale_bench_XXXXXX";
  if (mkdtemp(dir) != nullptr) {
    const std::string path = std::string(dir) + "/config.json";
    std::vector<double> saves;
    for (int k = 0; k < 3; ++k) {
      t0 = Clock::now();
      (void)control::SaveConfigFile((*cp)->config(), path);
      saves.push_back(MsSince(t0));
    }
    r.save_ms = Median(saves);
    unlink(path.c_str());
    rmdir(dir);
  }

  control::Config all = (*cp)->config();
  for (auto& s : all.services) {
    for (auto& b : s.backends) b.weight = b.weight == 3 ? 4 : 3;
  }
  t0 = Clock::now();
  auto res = (*cp)->ApplyConfig(std::move(all));
  r.all_ms = MsSince(t0);
  r.rebuilt_all = res.ok() ? res->services_rebuilt : 0;
  pub->Reclaim();

  // A service removed (from the middle of the list) and one added (at its end), to the last
  // worker's pickup.
  auto timed = [&](const control::Command& c) {
    t0 = Clock::now();
    auto res = (*cp)->Apply(c);
    if (!res.ok()) {
      std::fprintf(stderr, "scale_bench: %s\n", std::string(res.status().message()).c_str());
      std::exit(1);
    }
    while (seen.load(std::memory_order_acquire) < res->generation) {
    }
    const double ms = MsSince(t0);
    pub->Reclaim();
    return ms;
  };
  std::vector<double> dels, adds;
  for (int k = 0; k < changes; ++k) {
    control::Command del;
    del.kind = control::CommandKind::kServiceDel;
    del.service = (*cp)->config().services[(static_cast<size_t>(k) * 7919) % (services - 1)].Name();
    dels.push_back(timed(del));
    control::Command add;
    add.kind = control::CommandKind::kServiceAdd;
    add.service = absl::StrCat("203.0.113.", k % 250, ":", 9000 + k / 250, "/tcp");
    add.expected_backends = static_cast<uint32_t>(per);
    adds.push_back(timed(add));
  }
  r.del_ms = Median(dels);
  r.add_ms = Median(adds);
  // A backend with a new address added to one service, then removed (the address set and
  // the next hops change).
  std::vector<double> addrs;
  for (int k = 0; k < changes; ++k) {
    control::Command add;
    add.kind = control::CommandKind::kBackendAdd;
    add.service = (*cp)->config().services[(static_cast<size_t>(k) * 7919) % (services / 2)].Name();
    add.backend = absl::StrCat("10.250.", k / 250, ".", 1 + k % 250);
    addrs.push_back(timed(add));
    control::Command del = add;
    del.kind = control::CommandKind::kBackendDel;
    addrs.push_back(timed(del));
  }
  r.addr_ms = Median(addrs);

  stop = true;
  worker.join();
  return r;
}

std::vector<size_t> Sizes(const std::string& list) {
  std::vector<size_t> out;
  size_t pos = 0;
  while (pos < list.size()) {
    size_t comma = list.find(',', pos);
    if (comma == std::string::npos) comma = list.size();
    out.push_back(std::stoul(list.substr(pos, comma - pos)));
    pos = comma + 1;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"scale_bench: control-plane cost as services and backends grow"};
  std::string services = "100,1000,10000", backends = "2,8,100";
  int changes = 21, worker_cpu = 1;
  bool default_tables = false, json = false;
  app.add_option("--services", services, "service counts, comma-separated");
  app.add_option("--backends", backends, "backends per service, comma-separated");
  app.add_option("--changes", changes, "single-service changes per size (median reported)");
  app.add_option("--worker-cpu", worker_cpu, "CPU of the worker thread (-1: any)");
  app.add_flag("--default-tables", default_tables, "every table 65,537 slots (no table_size)");
  app.add_flag("--json", json, "one JSON object per size");
  CLI11_PARSE(app, argc, argv);
  if (!json) {
    std::printf("%8s %5s %7s %8s %8s %9s %9s %9s %8s %8s %8s %9s %8s %8s %7s\n", "services",
                "b/svc", "json_MiB", "parse_ms", "build_ms", "KiB/svc", "change_ms", "pickup_ms",
                "del_ms", "add_ms", "addr_ms", "follow_ms", "save_ms", "all_ms", "rebuilt");
  }
  for (size_t s : Sizes(services)) {
    for (size_t b : Sizes(backends)) {
      if (s * b > control::kMaxBackendsPerHost) continue;
      Row r = Measure(s, b, default_tables, changes, worker_cpu);
      if (json) {
        std::printf("%s\n", nlohmann::json{{"services", r.services},
                                           {"backends_per_service", r.per},
                                           {"json_mib", r.json_mib},
                                           {"parse_ms", r.parse_ms},
                                           {"validate_ms", r.validate_ms},
                                           {"copy_ms", r.copy_ms},
                                           {"build_ms", r.build_ms},
                                           {"kib_per_service", r.kib_per_service},
                                           {"change_ms", r.change_ms},
                                           {"pickup_ms", r.pickup_ms},
                                           {"service_del_ms", r.del_ms},
                                           {"service_add_ms", r.add_ms},
                                           {"backend_addr_ms", r.addr_ms},
                                           {"monitor_follow_one_ms", r.monitor_ms},
                                           {"monitor_follow_all_ms", r.monitor_all_ms},
                                           {"save_ms", r.save_ms},
                                           {"change_all_ms", r.all_ms},
                                           {"rebuilt_one", r.rebuilt_one},
                                           {"rebuilt_all", r.rebuilt_all}}
                                .dump()
                                .c_str());
      } else {
        std::printf(
            "%8zu %5zu %7.1f %8.1f %8.1f %9.1f %9.3f %9.3f %8.3f %8.3f %8.3f %9.3f %8.1f %8.1f "
            "%3zu/%zu\n",
            r.services, r.per, r.json_mib, r.parse_ms, r.build_ms, r.kib_per_service, r.change_ms,
            r.pickup_ms, r.del_ms, r.add_ms, r.addr_ms, r.monitor_ms, r.save_ms, r.all_ms,
            r.rebuilt_one, r.rebuilt_all);
      }
      std::fflush(stdout);
    }
  }
  return 0;
}
