// pipeline_bench: throughput of the real per-burst worker code (dataplane::Pipeline) on one
// core, over pre-built 64-byte frames spread across many distinct flows, compared in the same
// run with a plain loop that only swaps MAC addresses over the same frames (the l3fwd/testpmd
// "macswap" floor). No generator cost inside the timed passes.
//
//   pipeline_bench [--flows N] [--passes P] [--services S] [--json]
//
// Cases: dr-established, gre-established (every flow tracked, ACK packets), dr-new-flows
// (every packet a SYN of a flow never seen: conntrack miss + Maglev + insert/evict),
// dr-handshake (a SYN then an ACK per new flow: the ACK makes it established) and
// dr-handshake-sync (the same with flow sync on: each established flow is queued for the
// peers; compare the two for sync's cost on the fast path); with --services S also
// dr-established-spread (S services configured, the same flows spread over all of them:
// compare with dr-established for what a large service index costs per packet).
// Prints Mpps and ns per packet (median over passes, thread CPU time) and the ratio to the
// plain loop.
#include <algorithm>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "dataplane/packet/checksum.h"
#include "dataplane/packet/headers.h"
#include "dataplane/pipeline.h"

namespace ecmplb::dataplane {
namespace {

constexpr size_t kHeadroom = 128;
constexpr size_t kFrameLen = 60;  // 64 on the wire with the FCS
constexpr size_t kStride = 192;   // headroom + frame, cache-line multiple

struct Packets {
  std::unique_ptr<uint8_t[]> mem;
  size_t count = 0;
  uint8_t* frame(size_t i) { return mem.get() + i * kStride + kHeadroom; }
};

// TCP packets client -> VIP:port, one per flow (client address and port vary).
Packets BuildPackets(size_t flows, uint32_t vip, uint16_t dport, uint8_t proto, uint8_t tcp_flags) {
  Packets p;
  p.count = flows;
  p.mem.reset(new uint8_t[flows * kStride]());
  for (size_t i = 0; i < flows; ++i) {
    uint8_t* f = p.frame(i);
    const uint8_t dst_mac[6] = {0x02, 0, 0, 0, 0, 0x01}, src_mac[6] = {0x02, 0, 0, 0, 0, 0xfe};
    std::memcpy(f, dst_mac, 6);
    std::memcpy(f + 6, src_mac, 6);
    StoreBe16(f + 12, ether_type::kIpv4);
    uint8_t* ip = f + 14;
    ip[0] = 0x45;
    StoreBe16(ip + 2, 40);
    StoreBe16(ip + 6, kIpv4FlagDf);
    ip[8] = 64;
    ip[9] = proto;
    StoreBe32(ip + 12, 0xC6120000u + static_cast<uint32_t>(i / 50000));  // 198.18.x.y
    StoreBe32(ip + 16, vip);
    uint8_t* l4 = ip + 20;
    StoreBe16(l4, static_cast<uint16_t>(1024 + i % 50000));
    StoreBe16(l4 + 2, dport);
    if (proto == inet::ip_proto::kTcp) {
      l4[12] = 0x50;
      l4[13] = tcp_flags;
    } else {
      StoreBe16(l4 + 4, 20);
    }
    StoreBe16(ip + 10, 0);
    StoreBe16(ip + 10, Ipv4HeaderChecksum(std::span<const uint8_t>(ip, 20)));
  }
  return p;
}

// A handshake per flow: bursts of 32 SYNs each followed by a burst of the same 32 flows'
// ACKs (the ACK makes the flow established: with flow sync on, it is queued for the peers).
Packets BuildHandshakes(size_t flows, uint32_t vip, uint16_t dport) {
  Packets syn = BuildPackets(flows, vip, dport, inet::ip_proto::kTcp, inet::tcp_flag::kSyn);
  Packets ack = BuildPackets(flows, vip, dport, inet::ip_proto::kTcp, inet::tcp_flag::kAck);
  Packets p;
  p.count = 2 * flows;
  p.mem.reset(new uint8_t[p.count * kStride]());
  size_t j = 0;
  for (size_t base = 0; base < flows; base += kBurstSize) {
    const size_t n = std::min(kBurstSize, flows - base);
    for (size_t k = 0; k < n; ++k, ++j) std::memcpy(p.frame(j) - kHeadroom, syn.frame(base + k) - kHeadroom, kStride);
    for (size_t k = 0; k < n; ++k, ++j) std::memcpy(p.frame(j) - kHeadroom, ack.frame(base + k) - kHeadroom, kStride);
  }
  return p;
}

// Thread CPU time: this machine is shared (2 cores, other processes), so wall time would
// mostly measure the scheduler. Both the pipeline and the baseline are timed the same way.
double CpuNs() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e9 + static_cast<double>(ts.tv_nsec);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

constexpr uint8_t kPortMac[6] = {0x02, 0, 0, 0, 0, 0x01};

// ns per packet of one pass of `fn` over all packets in bursts of 32. Every frame gets the
// port's MAC as destination again first (a GRE pass leaves outer-header bytes where the
// original Ethernet header was); both the pipeline and the baseline pay for it.
template <typename Fn>
double TimePass(Packets& pk, Fn&& fn) {
  Frame frames[kBurstSize];
  const double t0 = CpuNs();
  for (size_t base = 0; base < pk.count; base += kBurstSize) {
    size_t n = std::min(kBurstSize, pk.count - base);
    for (size_t k = 0; k < n; ++k) {
      uint8_t* f = pk.frame(base + k);
      std::memcpy(f, kPortMac, 6);
      frames[k] = Frame{f, kFrameLen, kHeadroom};
    }
    fn(std::span<Frame>(frames, n));
  }
  return (CpuNs() - t0) / static_cast<double>(pk.count);
}

void MacSwap(std::span<Frame> frames) {
  for (Frame& f : frames) {
    uint8_t tmp[6];
    std::memcpy(tmp, f.data, 6);
    std::memcpy(f.data, f.data + 6, 6);
    std::memcpy(f.data + 6, tmp, 6);
  }
}

struct Result {
  std::string name;
  double ns;
  double baseline_ns;
  uint64_t forwarded;
  uint64_t packets;
};

}  // namespace
}  // namespace ecmplb::dataplane

int main(int argc, char** argv) {
  using namespace ecmplb;             // NOLINT
  using namespace ecmplb::dataplane;  // NOLINT
  size_t flows = 1'000'000;
  int passes = 5;
  bool json = false;
  std::string only;
  CLI::App app{"pipeline_bench: per-core throughput of the ecmplb worker pipeline"};
  app.add_option("--flows", flows, "distinct flows (and pre-built frames)")
      ->check(CLI::Range(1024, 20'000'000));
  app.add_option("--passes", passes, "timed passes per case (the median is reported)")
      ->check(CLI::Range(1, 100));
  app.add_flag("--json", json, "print one JSON object instead of a table");
  size_t services = 1;
  app.add_option("--services", services,
                 "also run dr-established-spread: this many DR services configured (10 backends, "
                 "1,009-slot tables each), the established flows spread over all of them")
      ->check(CLI::Range(size_t{1}, size_t{65000}));
  app.add_option("--case", only,
                 "run only this case (dr-established, gre-established, dr-new-flows, dr-handshake, "
                 "dr-handshake-sync)");
  CLI11_PARSE(app, argc, argv);

  auto config = control::ParseConfig(R"({
    "host": {"address": "10.0.0.11", "prefix_length": 24},
    "services": [
      {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "dr",
       "backends": [{"address": "10.0.0.21"}, {"address": "10.0.0.22"}, {"address": "10.0.0.23"},
                    {"address": "10.0.0.24"}, {"address": "10.0.0.25"}, {"address": "10.0.0.26"},
                    {"address": "10.0.0.27"}, {"address": "10.0.0.28"}, {"address": "10.0.0.29"},
                    {"address": "10.0.0.30"}]},
      {"vip": "10.100.0.2", "port": 80, "protocol": "tcp", "forward": "gre",
       "backends": [{"address": "10.0.0.21"}, {"address": "10.0.0.22"}, {"address": "10.0.0.23"},
                    {"address": "10.0.0.24"}, {"address": "10.0.0.25"}, {"address": "10.0.0.26"},
                    {"address": "10.0.0.27"}, {"address": "10.0.0.28"}, {"address": "10.0.0.29"},
                    {"address": "10.0.0.30"}]}]})");
  if (!config.ok()) {
    std::fprintf(stderr, "pipeline_bench: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  MacAddr port_mac;
  port_mac.bytes = {0x02, 0, 0, 0, 0, 0x01};
  control::SnapshotBuilder builder(port_mac);
  auto snap = builder.Build(*config);
  if (!snap.ok()) {
    std::fprintf(stderr, "pipeline_bench: %s\n", std::string(snap.status().message()).c_str());
    return 1;
  }
  // The same configuration plus services - 1 DR services 10.101.x.y:80 (same backends).
  control::Config many_config = *config;
  for (size_t k = 1; k < services; ++k) {
    control::ServiceConfig extra = config->services[0];
    extra.vip = "10.101." + std::to_string((k - 1) / 256) + "." + std::to_string((k - 1) % 256);
    extra.table_size = 1009;
    many_config.services.push_back(std::move(extra));
  }
  control::SnapshotBuilder many_builder(port_mac);
  auto many = many_builder.Build(many_config);
  if (!many.ok()) {
    std::fprintf(stderr, "pipeline_bench: %s\n", std::string(many.status().message()).c_str());
    return 1;
  }
  auto neighbors = std::make_unique<NeighborTable>();
  for (const auto& [slot, addr] : builder.neighbor_slots()) {
    uint8_t mac[6] = {0x02, 0xbe, 0, 0, 0, addr.bytes[3]};
    neighbors->Set(slot, mac);
  }

  std::vector<Result> results;
  // sync: flow sync on (a sync ring that the process drains when half full, as the sync
  // engine would on its own core: its pops are timed here, a pessimistic figure; and a peer
  // table looked up by non-SYN misses).
  auto run_case = [&](const std::string& name, Packets& pk, bool established, bool new_flows,
                      bool sync = false, const Snapshot* snapshot = nullptr) {
    const Snapshot& use = snapshot != nullptr ? *snapshot : **snap;
    if (!only.empty() && only != name) return;
    conntrack::Options o;
    o.capacity = flows + flows / 4;
    auto table = conntrack::Table::Create(o);
    auto peer = conntrack::Table::Create(o);
    if (!table.ok() || !peer.ok()) {
      std::fprintf(stderr, "pipeline_bench: %s\n", std::string(table.status().message()).c_str());
      std::exit(1);
    }
    auto counters = std::make_unique<WorkerCounters>();
    counters->EnsureSlots(use.service_slots(), use.backend_slots());
    SyncRing ring(4096);
    std::vector<SyncEvent> popped(ring.capacity());
    PipelineOptions po;
    if (sync) {
      po.sync_out = &ring;
      po.peer_table = peer->get();
    }
    Pipeline pipeline(table->get(), counters.get(), neighbors.get(), po);
    Verdict verdicts[kBurstSize];
    uint32_t now = 1;
    auto process = [&](std::span<Frame> f) {
      pipeline.Process(use, f, now, std::span<Verdict>(verdicts, f.size()));
      if (sync && ring.size() >= ring.capacity() / 2) ring.Pop(popped);
    };
    if (established) TimePass(pk, process);  // untimed warm-up: tracks every flow
    std::vector<double> ns, base;
    for (int p = 0; p < passes; ++p) {
      if (new_flows) {  // untimed: give every frame a source port never used before
        for (size_t i = 0; i < pk.count; ++i) {
          uint8_t* l4 = pk.frame(i) + 34;
          StoreBe16(l4, static_cast<uint16_t>(LoadBe16(l4) + 1));
          uint8_t* ip = pk.frame(i) + 14;
          StoreBe32(ip + 12, LoadBe32(ip + 12) + 0x100);  // and a new client address
          StoreBe16(ip + 10, 0);
          StoreBe16(ip + 10, Ipv4HeaderChecksum(std::span<const uint8_t>(ip, 20)));
        }
      }
      base.push_back(TimePass(pk, MacSwap));
      // Handshakes leave established flows: let the previous pass's expire.
      now += name.starts_with("dr-handshake") ? o.timeouts.tcp_established + 1 : 1;
      ns.push_back(TimePass(pk, process));
    }
    uint64_t fwd = counters->Get(Counter::forward_dr) + counters->Get(Counter::forward_gre);
    uint64_t processed =
        counters->Get(Counter::conntrack_hit) + counters->Get(Counter::conntrack_miss);
    uint64_t expected = pk.count * static_cast<uint64_t>(passes + (established ? 1 : 0));
    if (fwd != expected || processed != expected) {
      // A benchmark of packets that were not forwarded measures nothing: refuse to report it.
      std::fprintf(
          stderr,
          "pipeline_bench: %s forwarded %lu of %lu packets (%lu reached the connection table)\n",
          name.c_str(), static_cast<unsigned long>(fwd), static_cast<unsigned long>(expected),
          static_cast<unsigned long>(processed));
      std::exit(1);
    }
    // Every handshake queues its flow, but for the few whose SYN found its window full of
    // established flows (untracked, conntrack.h): refuse a run where sync did not happen.
    if (sync && (counters->Get(Counter::sync_queued) + counters->Get(Counter::sync_ring_full)) *
                        100 < pk.count / 2 * static_cast<uint64_t>(passes) * 99) {
      std::fprintf(stderr, "pipeline_bench: %s queued %lu flows for sync, expected about %lu\n",
                   name.c_str(), static_cast<unsigned long>(counters->Get(Counter::sync_queued)),
                   static_cast<unsigned long>(pk.count / 2 * passes));
      std::exit(1);
    }
    results.push_back({name, Median(ns), Median(base), fwd, processed});
  };

  Packets dr = BuildPackets(flows, 0x0a640001, 80, inet::ip_proto::kTcp, inet::tcp_flag::kAck);
  run_case("dr-established", dr, true, false);
  if (services > 1) {
    // The same flows, spread over every service: flow i goes to service i % services.
    for (size_t i = 0; i < dr.count; ++i) {
      const size_t k = i % services;
      if (k == 0) continue;
      uint8_t* ip = dr.frame(i) + 14;
      StoreBe32(ip + 16, 0x0a650000u + static_cast<uint32_t>(k - 1));
      StoreBe16(ip + 10, 0);
      StoreBe16(ip + 10, Ipv4HeaderChecksum(std::span<const uint8_t>(ip, 20)));
    }
    run_case("dr-established-spread", dr, true, false, false, many->get());
  }
  Packets gre = BuildPackets(flows, 0x0a640002, 80, inet::ip_proto::kTcp, inet::tcp_flag::kAck);
  run_case("gre-established", gre, true, false);
  dr = Packets();
  gre = Packets();
  Packets syn = BuildPackets(flows, 0x0a640001, 80, inet::ip_proto::kTcp, inet::tcp_flag::kSyn);
  run_case("dr-new-flows", syn, false, true);
  syn = Packets();
  Packets hs = BuildHandshakes(flows, 0x0a640001, 80);
  run_case("dr-handshake", hs, false, true);
  run_case("dr-handshake-sync", hs, false, true, true);

  if (json) {
    nlohmann::json j = {{"flows", flows}, {"passes", passes}, {"frame_bytes", kFrameLen + 4}};
    for (const auto& r : results) {
      j["cases"].push_back({{"case", r.name},
                            {"mpps", 1e3 / r.ns},
                            {"ns_per_packet", r.ns},
                            {"macswap_mpps", 1e3 / r.baseline_ns},
                            {"ratio_to_macswap", r.baseline_ns / r.ns}});
    }
    std::printf("%s\n", j.dump().c_str());
    return 0;
  }
  std::printf(
      "pipeline_bench: %zu flows, 64-byte frames, bursts of %zu, median of %d passes, one core\n",
      flows, kBurstSize, passes);
  std::printf("%-16s %10s %10s %14s %10s\n", "case", "Mpps", "ns/pkt", "macswap Mpps", "ratio");
  for (const auto& r : results) {
    std::printf("%-16s %10.2f %10.1f %14.2f %10.3f\n", r.name.c_str(), 1e3 / r.ns, r.ns,
                1e3 / r.baseline_ns, r.baseline_ns / r.ns);
  }
  return 0;
}
