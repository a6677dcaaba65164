// sync_lag_bench: flow sync's lag, entry created -> applied on a peer (issue 15), measured
// end to end in one process so that both ends read the same clock:
//
//   producer thread  -- a worker: queues a SyncEvent (a flow became established) into its
//                       lock-free ring at --rate flows/s, stamped with the time;
//   host A thread    -- the daemon's control thread: SyncEngine::Tick every --tick-ms (drain,
//                       seal, send), UDP from 127.0.0.1:PORT;
//   host B thread    -- the peer's control thread: receives on 127.0.0.2:PORT, opens, applies to
//                       its peer table, then looks each flow up there (in creation order) and
//                       records now - created.
//
// The daemon's path, minus the wire: ring -> engine -> XChaCha20-Poly1305 -> UDP -> kernel ->
// socket -> engine -> peer table. Prints p50/p99/max per rate; --json for one object.
//
//   ./build/bench/sync/sync_lag_bench --rates 10000,100000 --seconds 5
#include <arpa/inet.h>
#include <poll.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "control/sync_engine.h"
#include "control/sync_wire.h"
#include "dataplane/sync_ring.h"

namespace {

using namespace ecmplb;  // NOLINT
using Clock = std::chrono::steady_clock;

uint64_t NowNs() {
  return static_cast<uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count());
}

constexpr char kKeys[] = "1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n";

control::Config HostConfig(const char* address) {
  auto c = control::ParseConfig(std::string(R"({"host": {"address": ")") + address +
                                R"(", "prefix_length": 1},
      "conntrack": {"capacity": 2000000},
      "services": [{"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "backends": [
        {"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"},
        {"id": 3, "address": "10.0.0.23"}]}]})");
  if (!c.ok()) {
    std::fprintf(stderr, "sync_lag_bench: %s\n", std::string(c.status().message()).c_str());
    std::exit(1);
  }
  return *c;
}

conntrack::FlowKey KeyOf(uint64_t i, uint16_t slot) {
  const uint32_t client = htonl(0xc6120000u | static_cast<uint32_t>(i / 60000));  // 198.18/15
  const uint16_t sport = htons(static_cast<uint16_t>(1024 + i % 60000));
  return conntrack::FlowKey::V4(client, htonl(0x0a640001u), sport, htons(80), 6, slot);
}

struct Host {
  explicit Host(const char* address)
      : config(HostConfig(address)), builder(dataplane::MacAddr{{2, 0, 0, 0, 0, 1}}) {
    snap = std::move(*builder.Build(config));
    conntrack::Options o;
    o.capacity = 2'000'000;
    table = *conntrack::Table::Create(o);
    peer = *conntrack::Table::Create(o);
  }
  control::Config config;
  control::SnapshotBuilder builder;
  std::unique_ptr<const dataplane::Snapshot> snap;
  std::unique_ptr<conntrack::Table> table, peer;
};

struct Result {
  uint64_t rate = 0, flows = 0, applied = 0, lost = 0;
  double p50_ms = 0, p99_ms = 0, max_ms = 0;
  std::string rejected;  // by the peer, by reason
  uint64_t unsendable = 0, send_errors = 0;
};

Result RunOnce(uint64_t rate, double seconds, uint64_t tick_ms, uint16_t port) {
  Host a("127.0.0.1"), b("127.0.0.2");
  dataplane::SyncRing ring(65536);
  auto sa = control::SyncSocket::Open(dataplane::IpAddr::V4(0x7f000001), port);
  auto sb = control::SyncSocket::Open(dataplane::IpAddr::V4(0x7f000002), port);
  if (!sa.ok() || !sb.ok()) {
    std::fprintf(stderr, "sync_lag_bench: %s\n",
                 std::string((sa.ok() ? sb.status() : sa.status()).message()).c_str());
    std::exit(1);
  }
  control::SyncEngine::Clock clock{[] { return static_cast<uint32_t>(NowNs() / 1'000'000'000); },
                                   NowNs, 1'000'000'000, [] { return NowNs() / 1'000'000; }};
  control::SyncEngine::Settings s;
  s.local = dataplane::IpAddr::V4(0x7f000001);
  s.peers = {dataplane::IpAddr::V4(0x7f000002)};
  s.tick_ms = tick_ms;
  s.epoch = 1;
  control::SyncSocket* sock_a = sa->get();
  control::SyncEngine ea(s, *control::sync::ParseKeyText(kKeys), {{&ring, nullptr}}, nullptr,
                         clock, [sock_a](const dataplane::IpAddr& p, std::span<const uint8_t> d) {
                           return sock_a->Send(p, d);
                         });
  s.local = dataplane::IpAddr::V4(0x7f000002);
  s.peers = {dataplane::IpAddr::V4(0x7f000001)};
  control::SyncEngine eb(s, *control::sync::ParseKeyText(kKeys), {}, b.peer.get(), clock,
                         [](const dataplane::IpAddr&, std::span<const uint8_t>) { return true; });
  const uint16_t slot_a = static_cast<uint16_t>(a.snap->services()[0]->counter_slot);
  const uint16_t slot_b = static_cast<uint16_t>(b.snap->services()[0]->counter_slot);

  const uint64_t total = static_cast<uint64_t>(static_cast<double>(rate) * seconds);
  std::vector<std::atomic<uint64_t>> created(total);
  std::atomic<uint64_t> produced{0};
  std::atomic<bool> stop{false};

  std::thread producer([&] {
    // Paced in 1 ms steps (a worker's flows arrive in bursts too); sleeps between them, so the
    // three threads share the machine's cores like the daemon's lcores and control thread.
    const uint64_t t0 = NowNs();
    uint64_t i = 0;
    while (i < total) {
      const uint64_t due = std::min<uint64_t>(total, (NowNs() - t0) * rate / 1'000'000'000 + 1);
      for (; i < due; ++i) {
        dataplane::SyncEvent ev;
        ev.key = KeyOf(i, slot_a);
        ev.backend_id = 1 + static_cast<uint32_t>(i % 3);
        ev.time_s = clock.now_s();
        ev.ticks = NowNs();
        created[i].store(ev.ticks, std::memory_order_relaxed);
        while (!ring.Push(ev)) std::this_thread::yield();
        produced.store(i + 1, std::memory_order_release);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  std::thread host_a([&] {
    while (!stop.load()) {
      ea.Tick(*a.snap);
      std::this_thread::sleep_for(std::chrono::milliseconds(tick_ms));
    }
  });
  std::vector<double> lag_ms;
  lag_ms.reserve(total);
  Result r;
  r.rate = rate;
  r.flows = total;
  uint64_t next = 0;
  std::vector<uint8_t> seen(total, 0);
  const uint64_t give_up = NowNs() + static_cast<uint64_t>((seconds + 3) * 1e9);
  while (next < total && NowNs() < give_up) {
    pollfd pfd{(*sb)->fd(), POLLIN, 0};
    poll(&pfd, 1, 5);
    (*sb)->ReceiveAll(256, [&](const dataplane::IpAddr& from, std::span<const uint8_t> d) {
      eb.Receive(from, d, *b.snap);
    });
    // Flows not yet seen, oldest first (a bounded window: a lost one does not hold the others).
    const uint64_t have = produced.load(std::memory_order_acquire);
    const uint64_t now = NowNs();  // after `have`: every flow counted was created before it
    for (uint64_t k = next; k < have && k < next + 50'000; ++k) {
      if (seen[k]) continue;
      if (b.peer->Peek(KeyOf(k, slot_b)).has_value()) {
        lag_ms.push_back(static_cast<double>(now - created[k].load()) / 1e6);
        seen[k] = 1;
      } else if (now - created[k].load() > 1'000'000'000) {
        ++r.lost;  // not there after a second
        seen[k] = 1;
      }
    }
    while (next < have && seen[next]) ++next;
  }
  stop.store(true);
  producer.join();
  host_a.join();
  r.applied = lag_ms.size();
  for (size_t i = 0; i < control::kSyncRejects; ++i) {
    if (eb.stats().rejected[i] != 0) {
      r.rejected += control::SyncRejectName(static_cast<control::SyncReject>(i));
      r.rejected += "=" + std::to_string(eb.stats().rejected[i]) + " ";
    }
  }
  r.unsendable = ea.stats().unsendable;
  r.send_errors = ea.stats().send_errors;
  for (uint64_t k = next; k < total; ++k) r.lost += !seen[k];
  std::sort(lag_ms.begin(), lag_ms.end());
  if (!lag_ms.empty()) {
    r.p50_ms = lag_ms[lag_ms.size() / 2];
    r.p99_ms = lag_ms[std::min(lag_ms.size() - 1, lag_ms.size() * 99 / 100)];
    r.max_ms = lag_ms.back();
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"flow sync lag, entry created -> applied on a peer, over UDP on loopback"};
  std::vector<uint64_t> rates = {10'000, 100'000};
  double seconds = 5;
  uint64_t tick_ms = 10;
  uint16_t port = 47410;
  bool json_out = false;
  app.add_option("--rates", rates, "flows per second, one run each")->delimiter(',');
  app.add_option("--seconds", seconds, "length of each run")->check(CLI::Range(0.5, 600.0));
  app.add_option("--tick-ms", tick_ms, "the sender's tick period (the daemon's: 10)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--port", port, "UDP port on 127.0.0.1 and 127.0.0.2");
  app.add_flag("--json", json_out, "one JSON object");
  CLI11_PARSE(app, argc, argv);
  nlohmann::json out = nlohmann::json::array();
  for (uint64_t rate : rates) {
    if (rate == 0 || rate > 2'000'000) {
      std::fprintf(stderr, "sync_lag_bench: --rates: each must be 1..2000000\n");
      return 2;
    }
    const Result r = RunOnce(rate, seconds, tick_ms, port);
    if (json_out) {
      out.push_back({{"rate", r.rate}, {"flows", r.flows}, {"applied", r.applied},
                     {"lost", r.lost}, {"p50_ms", r.p50_ms}, {"p99_ms", r.p99_ms},
                     {"max_ms", r.max_ms}, {"rejected", r.rejected},
                     {"unsendable", r.unsendable}, {"send_errors", r.send_errors}});
    } else {
      std::printf("%8lu flows/s: %lu flows, %lu applied on the peer, %lu lost; created -> applied "
                  "p50 %.2f ms, p99 %.2f ms, max %.2f ms (tick %lu ms)\n",
                  static_cast<unsigned long>(r.rate), static_cast<unsigned long>(r.flows),
                  static_cast<unsigned long>(r.applied), static_cast<unsigned long>(r.lost),
                  r.p50_ms, r.p99_ms, r.max_ms, static_cast<unsigned long>(tick_ms));
      if (r.lost != 0) {
        std::printf("          lost: rejected by the peer [%s], unsendable %lu, send errors %lu\n",
                    r.rejected.c_str(), static_cast<unsigned long>(r.unsendable),
                    static_cast<unsigned long>(r.send_errors));
      }
    }
  }
  if (json_out) std::printf("%s\n", out.dump().c_str());
  return 0;
}
