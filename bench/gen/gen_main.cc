// gen_main.cc: ecmplb-gen, the DPDK traffic generator and checker (the thin DPDK layer around
// the pure library of bench/gen: model, frames, checker, summary).
//
//   ecmplb-gen [EAL options] -- --config FILE --dst-mac MAC [options]   (--help for all)
//
// Sets up one DPDK port with --queues TX/RX queue pairs, sends the model's frames and checks
// what comes back. One lcore (EAL -l N): a single loop alternating a TX burst per queue and RX
// bursts per queue (up to 2 RX bursts a queue per TX burst, so the loop sends no faster than it
// can check). Two or more lcores: TX on the main lcore, RX and checking on the next one.
// --help and --neighbors are handled before EAL initialisation (no EAL options needed).
// With --flood-share, each queue's schedule mixes prebuilt flood frames (flood.h) into the test
// frames; they are counted apart (per kind), never as test packets.
//
// Exit status: 0 run completed, no check errors; 2 run completed with check errors
// (wrong_backend, moved, corrupt or unknown frames); 1 bad option or set-up failure (one line
// on stderr saying what to change).
//
// Fast path (both loops): burst APIs, mbufs from the pool in bulk, no allocation, lock,
// syscall or log per packet; progress once a second on stderr.
#include <rte_cycles.h>
#include <rte_eal.h>
#include <rte_ethdev.h>
#include <rte_launch.h>
#include <rte_lcore.h>
#include <rte_log.h>
#include <rte_mbuf.h>
#include <rte_mempool.h>
#include <rte_prefetch.h>

#include <atomic>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/gen/checker.h"
#include "bench/gen/flood.h"
#include "bench/gen/frame_builder.h"
#include "bench/gen/options.h"
#include "bench/gen/pcap_writer.h"
#include "bench/gen/schedule.h"
#include "bench/gen/summary.h"
#include "bench/gen/traffic_model.h"
#include "control/config.h"

namespace ecmplb::gen {
namespace {

constexpr uint16_t kBurst = 32;
// Single-lcore loop: RX bursts per queue per TX burst. 1 lets a standing queue build up in the
// RX ring (~160 us of latency, frames dropped by the peer); 4 costs ~10% of throughput.
constexpr int kRxBurstsPerTurn = 2;

volatile std::sig_atomic_t g_signal = 0;
void OnSignal(int) {
  g_signal = 1;
}

int Fail(const std::string& msg, bool eal_up) {
  std::fprintf(stderr, "ecmplb-gen: %s\n", msg.c_str());
  if (eal_up) rte_eal_cleanup();
  return 1;
}

// TSC -> nanoseconds since start (the timestamp clock; the same TSC on every core).
struct Clock {
  uint64_t tsc0 = 0;
  uint64_t hz = 1;
  uint64_t mult = 0;  // ns per tick, << 32
  void Init() {
    hz = rte_get_tsc_hz();
    tsc0 = rte_rdtsc();
    mult = static_cast<uint64_t>((static_cast<unsigned __int128>(1'000'000'000) << 32) / hz);
  }
  uint64_t Ns(uint64_t tsc) const {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(tsc - tsc0) * mult) >> 32);
  }
  double Seconds(uint64_t a, uint64_t b) const {
    return static_cast<double>(b - a) / static_cast<double>(hz);
  }
};

// Pending::kind of a test frame (flood frames: their FloodKind).
constexpr uint8_t kTestFrame = 0xFF;

// Frames built but refused by the driver (ring full), sent first on the queue's next turn
// (their timestamps then include the wait: the generator's own queueing counts as latency).
struct Pending {
  rte_mbuf* m[kBurst];
  uint16_t len[kBurst];
  uint8_t kind[kBurst];  // kTestFrame, or the flood frame's FloodKind
  uint16_t n = 0;
};

struct Run {
  // Set up before the loops start; read-only afterwards.
  const TrafficModel* model = nullptr;
  const GenOptions* opt = nullptr;
  uint16_t port = 0;
  uint16_t queues = 1;         // TX queues (the flows' queues)
  uint16_t rx_queues = 1;      // RX queues (>= queues)
  uint16_t next_tx_queue = 0;  // the queue a TX turn starts with (rotates: a rate-limited
                               // turn's budget is often one burst, which must not always go
                               // to queue 0)
  rte_mempool* pool = nullptr;
  Clock clock;
  uint64_t wall_ns0 = 0;
  bool progress = false;

  // TX side (TX lcore).
  std::vector<QueueSchedule> sched;
  std::unique_ptr<const FloodSet> flood;  // null: no flood
  std::vector<FloodSchedule> flood_sched;
  std::vector<QueueStats> txq;
  std::vector<Pending> pending;
  uint64_t tx_packets = 0;  // every frame sent, test and flood (--rate and --count count these)
  uint64_t tx_test_packets = 0, tx_test_bytes = 0;
  FloodCounts flood_counts;
  uint64_t tx_start = 0, tx_end = 0;
  double rate_per_tick = 0;  // packets per TSC tick, 0: unlimited
  uint64_t count = 0;
  uint64_t deadline = 0;  // TSC, 0: none
  PcapWriter pcap;
  std::unique_ptr<uint8_t[]> pcap_stage;  // copies of one burst's frames until sent

  // RX side (RX lcore).
  std::unique_ptr<Checker> checker;
  std::vector<uint64_t> rxq;

  // Between the two lcores.
  std::atomic<bool> tx_done{false};
  std::atomic<uint64_t> drain_until{0};  // TSC, valid once tx_done
  std::atomic<uint64_t> rx_seen{0}, rx_errors{0};
};

// Sends up to one burst on queue q; returns the number of frames sent.
uint16_t TxBurst(Run& r, uint16_t q, uint16_t want, uint64_t now) {
  Pending& p = r.pending[q];
  if (p.n == 0) {
    if (want == 0 || rte_pktmbuf_alloc_bulk(r.pool, p.m, want) != 0) return 0;
    const uint32_t ts = static_cast<uint32_t>(r.clock.Ns(now));
    QueueSchedule& s = r.sched[q];
    FloodSchedule& fs = r.flood_sched[q];
    uint16_t n = 0;
    for (; n < want; ++n) {
      uint8_t* d = rte_pktmbuf_mtod(p.m[n], uint8_t*);
      size_t len;
      if (fs.Due()) {
        FloodKind kind;
        len = fs.Build(d, &kind);
        p.kind[n] = static_cast<uint8_t>(kind);
      } else {
        uint64_t flow;
        uint32_t seq;
        if (!s.Next(&flow, &seq)) break;
        len = BuildFrame(*r.model, flow, seq, ts, d);
        p.kind[n] = kTestFrame;
      }
      p.m[n]->data_len = static_cast<uint16_t>(len);
      p.m[n]->pkt_len = static_cast<uint32_t>(len);
      p.len[n] = static_cast<uint16_t>(len);
    }
    if (n < want) rte_pktmbuf_free_bulk(p.m + n, want - n);
    p.n = n;
    if (n == 0) return 0;
  }
  const uint16_t n = p.n;
  const bool capture = r.pcap.wants_more();
  if (capture) {
    for (uint16_t i = 0; i < n; ++i) {
      std::memcpy(r.pcap_stage.get() + size_t{i} * 2048, rte_pktmbuf_mtod(p.m[i], uint8_t*),
                  p.len[i]);
    }
  }
  const uint16_t sent = rte_eth_tx_burst(r.port, q, p.m, n);
  QueueStats& qs = r.txq[q];
  uint64_t bytes = 0;
  uint16_t test = 0;
  for (uint16_t i = 0; i < sent; ++i) {
    if (p.kind[i] == kTestFrame) {
      ++test;
      bytes += p.len[i];
    } else {
      r.flood_counts.Add(static_cast<FloodKind>(p.kind[i]), p.len[i]);
    }
  }
  if (capture) {
    const uint64_t t = r.wall_ns0 + r.clock.Ns(now);
    for (uint16_t i = 0; i < sent; ++i) {
      r.pcap.Write(std::span<const uint8_t>(r.pcap_stage.get() + size_t{i} * 2048, p.len[i]), t);
    }
  }
  if (sent < n) {
    std::memmove(p.m, p.m + sent, sizeof(p.m[0]) * (n - sent));
    std::memmove(p.len, p.len + sent, sizeof(p.len[0]) * (n - sent));
    std::memmove(p.kind, p.kind + sent, sizeof(p.kind[0]) * (n - sent));
    ++qs.tx_partial_bursts;
  }
  p.n = static_cast<uint16_t>(n - sent);
  qs.tx_packets += test;
  qs.tx_bytes += bytes;
  qs.tx_flood_packets += sent - test;
  r.tx_packets += sent;
  r.tx_test_packets += test;
  r.tx_test_bytes += bytes;
  return sent;
}

// Frees the frames still waiting (end of the run).
void DropPending(Run& r) {
  for (Pending& p : r.pending) {
    if (p.n) rte_pktmbuf_free_bulk(p.m, p.n);
    p.n = 0;
  }
}

// One TX turn over all queues; returns false once sending is over.
bool TxTurn(Run& r, uint64_t now) {
  if (r.tx_start == 0) r.tx_start = now;
  if (g_signal || (r.deadline != 0 && now >= r.deadline) ||
      (r.count != 0 && r.tx_packets >= r.count)) {
    return false;
  }
  uint64_t budget = ~uint64_t{0};
  if (r.rate_per_tick > 0) {
    const double allowed = r.rate_per_tick * static_cast<double>(now - r.tx_start) + 1;
    budget = allowed > static_cast<double>(r.tx_packets)
                 ? static_cast<uint64_t>(allowed) - r.tx_packets
                 : 0;
  }
  if (r.count != 0) budget = std::min(budget, r.count - r.tx_packets);
  // Rate-limited: send whole bursts (tiny bursts cost the driver more than they save), except
  // for the last packets of a --count run.
  if (r.rate_per_tick > 0 && budget < kBurst && (r.count == 0 || budget < r.count - r.tx_packets)) {
    r.tx_end = now;
    return true;
  }
  for (uint16_t i = 0; i < r.queues && budget > 0; ++i) {
    const uint16_t q = static_cast<uint16_t>((r.next_tx_queue + i) % r.queues);
    const uint16_t want = static_cast<uint16_t>(std::min<uint64_t>(kBurst, budget));
    budget -= TxBurst(r, q, want, now);
  }
  r.next_tx_queue = static_cast<uint16_t>((r.next_tx_queue + 1) % r.queues);
  r.tx_end = now;
  return true;
}

// Receives and checks up to `bursts` bursts on queue q; returns the frames received.
uint32_t RxQueue(Run& r, uint16_t q, int bursts) {
  uint32_t total = 0;
  for (int b = 0; b < bursts; ++b) {
    rte_mbuf* m[kBurst];
    const uint16_t n = rte_eth_rx_burst(r.port, q, m, kBurst);
    if (n == 0) break;
    const uint32_t now = static_cast<uint32_t>(r.clock.Ns(rte_rdtsc()));
    for (uint16_t i = 0; i < n; ++i) {
      if (i + 1 < n) rte_prefetch0(rte_pktmbuf_mtod(m[i + 1], void*));
      r.checker->Check(
          std::span<const uint8_t>(rte_pktmbuf_mtod(m[i], const uint8_t*), m[i]->data_len), now);
    }
    rte_pktmbuf_free_bulk(m, n);
    r.rxq[q] += n;
    total += n;
    if (n < kBurst) break;
  }
  return total;
}

void PublishRx(Run& r) {
  r.rx_seen.store(r.checker->counts().rx_packets, std::memory_order_relaxed);
  r.rx_errors.store(r.checker->counts().errors(), std::memory_order_relaxed);
}

void Progress(Run& r, uint64_t now, uint64_t* next, uint64_t* last_tx, uint64_t* last_rx,
              uint64_t* last_t) {
  if (now < *next) return;
  const double dt = r.clock.Seconds(*last_t, now);
  const uint64_t rx = r.rx_seen.load(std::memory_order_relaxed);
  if (r.progress && dt > 0) {
    std::fprintf(stderr, "ecmplb-gen: %5.1f s  tx %.3f Mpps  rx %.3f Mpps  errors %llu\n",
                 r.clock.Seconds(r.tx_start, now),
                 static_cast<double>(r.tx_packets - *last_tx) / dt / 1e6,
                 static_cast<double>(rx - *last_rx) / dt / 1e6,
                 static_cast<unsigned long long>(r.rx_errors.load(std::memory_order_relaxed)));
  }
  *last_tx = r.tx_packets;
  *last_rx = rx;
  *last_t = now;
  *next = now + r.clock.hz;
}

int RxLcore(void* arg) {
  Run& r = *static_cast<Run*>(arg);
  for (;;) {
    uint32_t got = 0;
    for (uint16_t q = 0; q < r.rx_queues; ++q) got += RxQueue(r, q, 1);
    if (got) PublishRx(r);
    if (r.tx_done.load(std::memory_order_acquire) &&
        rte_rdtsc() >= r.drain_until.load(std::memory_order_relaxed)) {
      break;
    }
  }
  PublishRx(r);
  return 0;
}

void SingleLcoreLoop(Run& r) {
  uint64_t next = 0, last_tx = 0, last_rx = 0, last_t = rte_rdtsc();
  bool sending = true;
  uint64_t drain_until = 0;
  for (;;) {
    const uint64_t now = rte_rdtsc();
    if (sending && !TxTurn(r, now)) {
      sending = false;
      drain_until =
          now + static_cast<uint64_t>(r.opt->drain_ms * 1e-3 * static_cast<double>(r.clock.hz));
    }
    if (!sending && now >= drain_until) break;
    uint32_t got = 0;
    for (uint16_t q = 0; q < r.rx_queues; ++q) got += RxQueue(r, q, kRxBurstsPerTurn);
    if (got) PublishRx(r);
    if (next == 0) next = now + r.clock.hz;
    Progress(r, now, &next, &last_tx, &last_rx, &last_t);
  }
}

void TwoLcoreLoop(Run& r, unsigned rx_lcore) {
  rte_eal_remote_launch(RxLcore, &r, rx_lcore);
  uint64_t next = 0, last_tx = 0, last_rx = 0, last_t = rte_rdtsc();
  for (;;) {
    const uint64_t now = rte_rdtsc();
    if (!TxTurn(r, now)) break;
    if (next == 0) next = now + r.clock.hz;
    Progress(r, now, &next, &last_tx, &last_rx, &last_t);
  }
  r.drain_until.store(
      rte_rdtsc() + static_cast<uint64_t>(r.opt->drain_ms * 1e-3 * static_cast<double>(r.clock.hz)),
      std::memory_order_relaxed);
  r.tx_done.store(true, std::memory_order_release);
  rte_eal_wait_lcore(rx_lcore);
}

absl::Status SetUpPort(Run& r, const GenOptions& o) {
  const uint16_t port = o.port;
  if (!rte_eth_dev_is_valid_port(port)) {
    return absl::InvalidArgumentError(
        absl::StrCat("no DPDK port ", port,
                     ": give one with EAL's --vdev (e.g. net_memif0,role=client,socket=PATH)"));
  }
  rte_eth_dev_info info;
  if (rte_eth_dev_info_get(port, &info) != 0) {
    return absl::InternalError(absl::StrCat("port ", port, ": cannot read its device info"));
  }
  if (r.rx_queues > info.max_rx_queues || r.queues > info.max_tx_queues) {
    return absl::InvalidArgumentError(absl::StrCat("--queues ", r.queues, ": port ", port,
                                                   " has at most ", info.max_rx_queues, " RX and ",
                                                   info.max_tx_queues, " TX queues"));
  }
  const uint32_t want =
      o.mbufs != 0
          ? o.mbufs
          : std::max<uint32_t>(16383, uint32_t{r.rx_queues} * (o.rx_desc + o.tx_desc) * 2 + 4096);
  r.pool = rte_pktmbuf_pool_create(
      "gen_pool", want, 256, 0, RTE_MBUF_DEFAULT_BUF_SIZE,
      static_cast<int>(rte_eth_dev_socket_id(port) < 0 ? SOCKET_ID_ANY
                                                       : rte_eth_dev_socket_id(port)));
  if (r.pool == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot create a pool of ", want, " mbufs: ", rte_strerror(rte_errno),
                     " (give EAL more memory, e.g. -m 1024, or fewer --mbufs)"));
  }
  rte_eth_conf conf{};
  int rc = rte_eth_dev_configure(port, r.rx_queues, r.queues, &conf);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("port ", port, ": configure failed: ", rte_strerror(-rc)));
  }
  uint16_t rxd = o.rx_desc, txd = o.tx_desc;
  rte_eth_dev_adjust_nb_rx_tx_desc(port, &rxd, &txd);
  const int socket = rte_eth_dev_socket_id(port);
  for (uint16_t q = 0; q < r.rx_queues; ++q) {
    rc = rte_eth_rx_queue_setup(port, q, rxd, static_cast<unsigned>(socket), nullptr, r.pool);
    if (rc != 0) {
      return absl::InternalError(
          absl::StrCat("port ", port, ": RX queue ", q, " set-up failed: ", rte_strerror(-rc)));
    }
  }
  for (uint16_t q = 0; q < r.queues; ++q) {
    rc = rte_eth_tx_queue_setup(port, q, txd, static_cast<unsigned>(socket), nullptr);
    if (rc != 0) {
      return absl::InternalError(
          absl::StrCat("port ", port, ": TX queue ", q, " set-up failed: ", rte_strerror(-rc)));
    }
  }
  rc = rte_eth_dev_start(port);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("port ", port, ": start failed: ", rte_strerror(-rc),
                     " (memif client: start the memif server first, in the same network "
                     "namespace, with the same socket=)"));
  }
  rte_eth_promiscuous_enable(port);  // not every PMD has it; frames for backends' MACs come back
  // memif and friends come up when the peer connects.
  const uint64_t until =
      rte_get_timer_cycles() +
      static_cast<uint64_t>(o.link_wait_s * static_cast<double>(rte_get_timer_hz()));
  for (;;) {
    rte_eth_link link{};
    rte_eth_link_get_nowait(port, &link);
    if (link.link_status == RTE_ETH_LINK_UP) break;
    if (rte_get_timer_cycles() >= until) {
      return absl::UnavailableError(absl::StrCat(
          "port ", port, " link still down after ", o.link_wait_s,
          " s: is the peer running (memif server started first)? (or raise --link-wait)"));
    }
    rte_delay_ms(50);
  }
  return absl::OkStatus();
}

// A run's problem before it sends: one line on stderr (and, in --json mode, an error object).
int TrialFail(const std::string& msg) {
  std::fprintf(stderr, "ecmplb-gen: %s\n", msg.c_str());
  return 1;
}

// One run (send, receive, check, summary) on the port `setup` brought up.
int Trial(const Run& setup, const GenOptions& o, const control::Config& config,
          const CheckerOptions& checker_opt) {
  auto run = std::make_unique<Run>();
  Run& r = *run;
  r.opt = &o;
  r.port = setup.port;
  r.queues = setup.queues;
  r.rx_queues = setup.rx_queues;
  r.pool = setup.pool;
  rte_ether_addr mac;
  rte_eth_macaddr_get(o.port, &mac);
  auto mopt = ToModelOptions(o, MacAddr::FromBytes(mac.addr_bytes));
  if (!mopt.ok()) return TrialFail(std::string(mopt.status().message()));
  auto model = TrafficModel::Create(config, *mopt);
  if (!model.ok()) return TrialFail(std::string(model.status().message()));
  r.model = model->get();
  char name[RTE_ETH_NAME_MAX_LEN] = "?";
  rte_eth_dev_get_name_by_port(o.port, name);

  if (o.flood_share > 0) {
    auto fopt = ToFloodOptions(o);
    if (!fopt.ok()) return TrialFail(std::string(fopt.status().message()));
    auto flood = FloodSet::Create(config, *r.model, *fopt);
    if (!flood.ok()) return TrialFail(std::string(flood.status().message()));
    r.flood = std::move(*flood);
  }
  auto groups = GroupFlowsByQueue(*r.model);
  for (uint16_t q = 0; q < r.queues; ++q) {
    r.sched.emplace_back(*r.model, q, std::move(groups[q]), o.new_share);
    r.flood_sched.emplace_back(r.flood.get(), q);
  }
  r.txq.assign(r.queues, QueueStats{});
  r.pending.resize(r.queues);
  r.rxq.assign(r.rx_queues, 0);
  r.checker = std::make_unique<Checker>(*r.model, checker_opt);
  if (!o.pcap.empty()) {
    if (absl::Status st = r.pcap.Open(o.pcap, EffectivePcapCount(o)); !st.ok()) {
      return TrialFail(std::string(st.message()));
    }
    r.pcap_stage.reset(new uint8_t[size_t{kBurst} * 2048]);
  }
  timespec wall;
  clock_gettime(CLOCK_REALTIME, &wall);
  r.wall_ns0 =
      static_cast<uint64_t>(wall.tv_sec) * 1'000'000'000 + static_cast<uint64_t>(wall.tv_nsec);
  r.clock.Init();
  r.count = o.count;
  const double duration = EffectiveDuration(o);
  r.rate_per_tick = o.rate / static_cast<double>(r.clock.hz);
  r.progress = duration >= 2.0 || (o.count != 0 && (o.rate == 0 || o.count / o.rate >= 2.0));

  const uint64_t start = rte_rdtsc();
  if (duration > 0) {
    r.deadline = start + static_cast<uint64_t>(duration * static_cast<double>(r.clock.hz));
  }
  const unsigned rx_lcore = rte_get_next_lcore(rte_lcore_id(), 1, 0);
  const bool two = rx_lcore < RTE_MAX_LCORE;
  if (two) {
    TwoLcoreLoop(r, rx_lcore);
  } else {
    SingleLcoreLoop(r);
  }
  const uint64_t end = rte_rdtsc();
  DropPending(r);

  RunResult res;
  res.tx_seconds = r.clock.Seconds(r.tx_start, r.tx_end);
  res.total_seconds = r.clock.Seconds(start, end);
  res.tx_packets = r.tx_test_packets;
  res.tx_bytes = r.tx_test_bytes;
  res.flood = r.flood_counts;
  for (const QueueSchedule& s : r.sched) res.new_flows += s.new_flows();
  res.queues = r.txq;
  res.queues.resize(r.rx_queues);
  for (uint16_t q = 0; q < r.rx_queues; ++q) res.queues[q].rx_packets = r.rxq[q];
  res.check = r.checker->counts();
  res.latency = r.checker->latency();
  rte_eth_stats st{};
  if (rte_eth_stats_get(o.port, &st) == 0) {
    res.port =
        PortStats{st.ipackets, st.opackets, st.imissed, st.ierrors, st.oerrors, st.rx_nombuf};
  }
  res.lcores = two ? 2 : 1;
  res.port_name = name;
  if (r.pcap.is_open()) {
    res.pcap_path = r.pcap.path();
    res.pcap_frames = r.pcap.records();
    if (absl::Status ps = r.pcap.Close(); !ps.ok()) {
      std::fprintf(stderr, "ecmplb-gen: %s\n", std::string(ps.message()).c_str());
    }
  }
  if (o.json) {
    std::printf("%s\n", SummaryJson(o, *r.model, checker_opt, res).dump().c_str());
  } else {
    std::printf("%s", SummaryText(o, *r.model, checker_opt, res).c_str());
  }
  std::fflush(stdout);
  return res.check.errors() != 0 ? 2 : 0;
}

int Main(int argc, char** argv) {
  // Split at "--": EAL's options before it, ours after (without "--": all ours, EAL none).
  int split = -1;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--") == 0) {
      split = i;
      break;
    }
  }
  std::vector<const char*> app_args{"ecmplb-gen"};
  for (int i = split < 0 ? 1 : split + 1; i < argc; ++i) app_args.push_back(argv[i]);
  const int eal_argc = split < 0 ? 1 : split;

  auto parsed = ParseGenOptions(static_cast<int>(app_args.size()), app_args.data());
  if (!parsed.ok()) return Fail(std::string(parsed.status().message()), false);
  GenOptions& o = *parsed;
  if (o.help) {
    std::printf("%s", o.help_text.c_str());
    return 0;
  }
  auto config = control::LoadConfigFile(o.config);
  if (!config.ok()) {
    return Fail(absl::StrCat("--config ", o.config, ": ", config.status().message()), false);
  }
  auto checker_opt = ToCheckerOptions(o);
  if (!checker_opt.ok()) return Fail(std::string(checker_opt.status().message()), false);
  if (o.neighbors) {
    auto mopt = ToModelOptions(o, MacAddr{});
    if (!mopt.ok()) return Fail(std::string(mopt.status().message()), false);
    auto model = TrafficModel::Create(*config, *mopt);
    if (!model.ok()) return Fail(std::string(model.status().message()), false);
    for (const Neighbor& n : (*model)->Neighbors()) {
      std::printf("%s %s\n", n.addr.ToString().c_str(), n.mac.ToString().c_str());
    }
    return 0;
  }

  // EAL logs to stdout by default: keep stdout for the summary (--json: the only output).
  rte_openlog_stream(stderr);
  std::vector<char*> eal_argv(argv, argv + eal_argc);
  eal_argv.push_back(nullptr);
  if (rte_eal_init(eal_argc, eal_argv.data()) < 0) {
    return Fail(absl::StrCat("EAL initialisation failed: ", rte_strerror(rte_errno),
                             " (check the EAL options before --)"),
                false);
  }
  std::signal(SIGINT, OnSignal);
  std::signal(SIGTERM, OnSignal);

  if (!rte_eth_dev_is_valid_port(o.port)) {
    return Fail(absl::StrCat("no DPDK port ", o.port,
                             ": give one with EAL's --vdev (e.g. "
                             "net_memif0,role=client,socket=/run/x.sock)"),
                true);
  }
  // The port, set up once (every trial of --trials-from-stdin runs on this connection).
  Run setup;
  setup.port = o.port;
  setup.queues = o.queues;
  setup.rx_queues = o.rx_queues != 0 ? std::max(o.rx_queues, o.queues) : o.queues;
  if (absl::Status st = SetUpPort(setup, o); !st.ok()) return Fail(std::string(st.message()), true);
  int rc = 0;
  if (!o.trials_from_stdin) {
    rc = Trial(setup, o, *config, *checker_opt);
  } else {
    std::string line;
    while (rc != 1 && !g_signal && std::getline(std::cin, line)) {
      std::vector<std::string> extra = absl::StrSplit(line, ' ', absl::SkipWhitespace());
      std::vector<const char*> args = app_args;
      for (const std::string& a : extra) args.push_back(a.c_str());
      auto t = ParseGenOptions(static_cast<int>(args.size()), args.data());
      if (!t.ok() || t->queues != o.queues || t->rx_queues != o.rx_queues || t->port != o.port) {
        std::fprintf(stderr, "ecmplb-gen: trial '%s' refused: %s\n", line.c_str(),
                     t.ok() ? "--queues, --rx-queues and --port are fixed by the first set-up"
                            : std::string(t.status().message()).c_str());
        std::printf("{\"error\": \"bad trial options\"}\n");
        std::fflush(stdout);
        continue;
      }
      t->json = true;
      t->trials_from_stdin = false;
      auto tconfig = control::LoadConfigFile(t->config);
      auto tcheck = ToCheckerOptions(*t);
      if (!tconfig.ok() || !tcheck.ok()) {
        std::fprintf(
            stderr, "ecmplb-gen: trial '%s' refused: %s\n", line.c_str(),
            std::string((tconfig.ok() ? tcheck.status() : tconfig.status()).message()).c_str());
        std::printf("{\"error\": \"bad trial config\"}\n");
        std::fflush(stdout);
        continue;
      }
      rc = std::max(rc, Trial(setup, *t, *tconfig, *tcheck));
    }
  }
  rte_eth_dev_stop(o.port);
  rte_eth_dev_close(o.port);
  rte_eal_cleanup();
  return rc;
}

}  // namespace
}  // namespace ecmplb::gen

int main(int argc, char** argv) {
  return ecmplb::gen::Main(argc, argv);
}
