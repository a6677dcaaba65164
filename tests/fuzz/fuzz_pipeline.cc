// fuzz_pipeline: libFuzzer target for frame parsing and the whole per-burst pipeline.
//
// Input: one flags byte, then frames, each a 2-byte big-endian length and that many bytes (the
// last one may be cut short by the end of the input), at most kBurstSize frames.
//   flags bit 0: trust IPv4 header checksums (else verify; random bytes rarely pass)
//   flags bit 1: accept any destination MAC (promiscuous port)
//   flags bit 2: only 8 bytes of headroom (tunnels cannot encapsulate: drop_no_headroom)
//   flags bit 3 (with bit 2 clear): 40 bytes of headroom (an IPv4 outer header fits, an IPv6
//     one for GRE and GUE does not)
// Each frame is parsed alone, then the burst goes through a real dataplane::Pipeline (fresh
// connection table per input, so every input is reproducible alone) against a fixed snapshot
// built by control::SnapshotBuilder: twice (the second pass finds the flows the first
// inserted), then housekeeping far in the future (expiry). Each frame sits in its own heap
// buffer of exactly headroom + length bytes, so AddressSanitizer sees any access outside it.
// Invariants (abort on violation):
//   - the verdict counters (kPipelineVerdicts, dataplane/counters.h) plus the frames held
//     (later fragments waiting for their first one) advance by exactly the number of frames,
//     and per verdict: kTx (of the burst and of the held frames it released) by forward_dr +
//     forward_gre + forward_ipip + forward_gue + icmp_frag_needed_sent, kException by
//     exception; a released frame is forwarded or dropped;
//   - a kTx frame stays inside its buffer (data within headroom..end, headroom consistent)
//     and parses again as a well-formed frame;
//   - after the housekeeping, no frame is held (each was released, dropped).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <new>
#include <span>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "dataplane/counters.h"
#include "dataplane/neighbor_table.h"
#include "dataplane/packet/parse.h"
#include "dataplane/pipeline.h"

namespace {

using namespace ecmplb::dataplane;

constexpr char kConfig[] = R"({
  "host": {"address": "10.0.0.11", "prefix_length": 24, "gateway": "10.0.0.1", "mtu": 1400,
           "address6": "2001:db8:a::11", "gateway6": "2001:db8:a::1"},
  "conntrack": {"capacity": 1024},
  "services": [
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "dr", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"},
                  {"id": 3, "address": "10.0.0.23", "weight": 0}]},
    {"vip": "10.100.0.1", "port": 53, "protocol": "udp", "forward": "gre", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "192.168.7.22"}]},
    {"vip": "10.100.0.2", "port": 443, "protocol": "tcp", "forward": "gre", "hash": "source-ip",
     "table_size": 251, "backends": [{"id": 1, "address": "10.0.0.24"}]},
    {"vip": "10.100.0.3", "port": 80, "protocol": "tcp", "forward": "dr", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.25"}]},
    {"vip": "10.100.0.3", "port": 53, "protocol": "udp", "forward": "ipip", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.26"}]},
    {"vip": "10.100.0.3", "port": 443, "protocol": "tcp", "forward": "gue", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.27"}, {"id": 2, "address": "192.168.7.28"}]},
    {"vip": "2001:db8::1", "port": 80, "protocol": "tcp", "forward": "gue", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.29"}]},
    {"vip": "2001:db8::1", "port": 443, "protocol": "tcp", "forward": "dr", "table_size": 251,
     "backends": [{"id": 1, "address": "2001:db8::21"}, {"id": 2, "address": "2001:db8::22"}]},
    {"vip": "2001:db8::1", "port": 53, "protocol": "udp", "forward": "dr", "table_size": 251,
     "backends": []},
    {"vip": "2001:db8::2", "port": 53, "protocol": "udp", "forward": "gue", "table_size": 251,
     "backends": [{"id": 1, "address": "2001:db8:a::31"}, {"id": 2, "address": "2001:db8:9::32"}]},
    {"vip": "10.100.0.4", "port": 80, "protocol": "tcp", "forward": "gre", "table_size": 251,
     "backends": [{"id": 1, "address": "2001:db8:a::33"}]},
    {"vip": "10.100.0.4", "port": 53, "protocol": "udp", "forward": "ipip", "table_size": 251,
     "backends": [{"id": 1, "address": "2001:db8:a::34"}]}
  ]})";

const MacAddr kPortMac = {{0x02, 0, 0, 0, 0, 0x01}};

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_pipeline: invariant violated: %s\n", what);
  std::abort();
}

struct Fixed {
  std::unique_ptr<const Snapshot> snap;
  NeighborTable neighbors;
};

// Built once: the snapshot and the neighbour table (every next hop resolved but the one of
// 10.0.0.25, whose service then drops as drop_neighbor_unresolved).
Fixed& Get() {
  static Fixed* fixed = [] {
    auto* f = new Fixed;
    auto config = ecmplb::control::ParseConfig(kConfig);
    if (!config.ok()) {
      std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
      Fail("fixed config does not parse");
    }
    ecmplb::control::SnapshotBuilder builder(kPortMac);
    auto snap = builder.Build(*config);
    if (!snap.ok()) {
      std::fprintf(stderr, "%s\n", snap.status().ToString().c_str());
      Fail("fixed snapshot does not build");
    }
    f->snap = std::move(*snap);
    const IpAddr unresolved = IpAddr::V4(0x0a000019);  // 10.0.0.25
    for (const auto& [slot, addr] : builder.neighbor_slots()) {
      if (addr == unresolved) continue;
      const uint8_t mac[6] = {
          0x02, 0xbe, 0, 0, static_cast<uint8_t>(slot >> 8), static_cast<uint8_t>(slot)};
      f->neighbors.Set(slot, mac);
    }
    return f;
  }();
  return *fixed;
}

uint64_t Sum(const WorkerCounters& c, std::initializer_list<Counter> which) {
  uint64_t s = 0;
  for (Counter k : which) s += c.Get(k);
  return s;
}
uint64_t SumVerdicts(const WorkerCounters& c) {
  uint64_t s = 0;
  for (Counter k : kPipelineVerdicts) s += c.Get(k);
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Fixed& fixed = Get();
  const uint8_t flags = data[0];
  const IpChecksumMode mode = (flags & 1) ? IpChecksumMode::kTrust : IpChecksumMode::kVerify;
  const uint32_t headroom = (flags & 4) ? 8 : (flags & 8) ? 40 : 128;

  // Split into frames.
  std::vector<std::span<const uint8_t>> in;
  size_t pos = 1;
  while (pos + 2 <= size && in.size() < kBurstSize) {
    size_t len = (size_t{data[pos]} << 8) | data[pos + 1];
    pos += 2;
    if (len > size - pos) len = size - pos;
    in.emplace_back(data + pos, len);
    pos += len;
  }
  if (in.empty()) return 0;

  // Each frame alone through the parser (and the ICMP quote parser when it applies).
  for (auto frame : in) {
    ParsedPacket p;
    ParseResult r = Parse(frame, &p, mode);
    if (static_cast<size_t>(r) >= static_cast<size_t>(ParseResult::kCount)) Fail("parse result");
    if (r == ParseResult::kOk) {
      if (p.ip_end() > frame.size()) Fail("parsed IP packet past the frame");
      if (p.has_l4 && p.l4_offset > p.ip_end()) Fail("L4 offset past the IP packet");
      if (IsSteerableIcmpError(p)) {
        FlowTuple t;
        (void)ParseIcmpErrorFlow(frame, p, &t);
      }
    }
  }

  // A fresh table per input, in memory reused across inputs (Create initialises every bucket;
  // the owning Create's 2 MiB aligned allocation per input would dominate the run time).
  ecmplb::conntrack::Options o;
  o.capacity = 1024;
  static const size_t table_bytes = ecmplb::conntrack::Table::MemoryNeeded(o);
  static std::byte* table_mem = new (std::align_val_t(64)) std::byte[table_bytes];
  auto table = ecmplb::conntrack::Table::Create(o, std::span<std::byte>(table_mem, table_bytes));
  if (!table.ok()) Fail("connection table");
  static WorkerCounters* counters = new WorkerCounters;
  PipelineOptions po;
  po.ip_checksum = mode;
  po.accept_any_mac = (flags & 2) != 0;
  Pipeline pipeline(table->get(), counters, &fixed.neighbors, po);

  const size_t n = in.size();
  // Both passes' buffers live to the end: a held frame (a later fragment) of the first pass
  // may be released, and rewritten, by the second.
  std::vector<std::vector<uint8_t>> bufs(2 * n);
  std::array<Frame, kBurstSize> frames;
  std::array<Verdict, kBurstSize> verdicts;
  // A forwarded frame stays within its buffer and parses.
  auto check_tx = [&](const Frame& f) {
    const auto& buf = bufs[reinterpret_cast<uintptr_t>(f.cookie)];
    const uint8_t* begin = buf.data();
    const uint8_t* end = begin + buf.size();
    if (f.data < begin || f.data > end) Fail("tx frame starts outside its buffer");
    if (f.headroom != static_cast<uint32_t>(f.data - begin)) Fail("tx headroom inconsistent");
    if (f.len > static_cast<size_t>(end - f.data)) Fail("tx frame ends outside its buffer");
    ParsedPacket p;
    if (Parse(std::span<const uint8_t>(f.data, f.len), &p, mode) != ParseResult::kOk)
      Fail("tx frame does not parse");
  };
  auto tx_counters = [&] {
    return Sum(*counters, {Counter::forward_dr, Counter::forward_gre, Counter::forward_ipip,
                           Counter::forward_gue, Counter::icmp_frag_needed_sent});
  };
  auto held_counters = [&] {
    return counters->Get(Counter::fragment_held) - counters->Get(Counter::fragment_released);
  };
  for (uint32_t pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < n; ++i) {
      auto& buf = bufs[pass * n + i];
      buf.resize(headroom + in[i].size());
      std::copy(in[i].begin(), in[i].end(), buf.begin() + headroom);
      frames[i] = Frame{buf.data() + headroom, static_cast<uint32_t>(in[i].size()), headroom,
                        reinterpret_cast<void*>(uintptr_t{pass * n + i})};
    }
    const uint64_t before = SumVerdicts(*counters);
    const uint64_t held_before = held_counters();
    const uint64_t tx_before = tx_counters();
    const uint64_t exc_before = counters->Get(Counter::exception);
    pipeline.Process(*fixed.snap, std::span<Frame>(frames.data(), n), 100 + pass,
                     std::span<Verdict>(verdicts.data(), n));
    // Every frame in one verdict counter, or held (counters.h).
    if (SumVerdicts(*counters) - before + held_counters() - held_before != n)
      Fail("verdict counters != frames");
    uint64_t tx = 0, exc = 0;
    for (size_t i = 0; i < n; ++i) {
      if (verdicts[i] == Verdict::kException) ++exc;
      if (verdicts[i] != Verdict::kTx) continue;
      ++tx;
      check_tx(frames[i]);
    }
    std::array<Frame, kBurstSize> released;
    std::array<Verdict, kBurstSize> released_verdicts;
    while (size_t r = pipeline.TakeReleased(released, released_verdicts)) {
      for (size_t i = 0; i < r; ++i) {
        if (released_verdicts[i] == Verdict::kTx) {
          ++tx;
          check_tx(released[i]);
        } else if (released_verdicts[i] != Verdict::kDrop) {
          Fail("a released frame is neither forwarded nor dropped");
        }
      }
    }
    if (tx_counters() - tx_before != tx) Fail("kTx verdicts != tx counters");
    if (counters->Get(Counter::exception) - exc_before != exc) Fail("kException != exception");
  }
  // Past the fragment timeout every held frame is released, dropped.
  pipeline.Housekeeping(100000);
  std::array<Frame, kBurstSize> rest;
  std::array<Verdict, kBurstSize> rest_verdicts;
  while (size_t r = pipeline.TakeReleased(rest, rest_verdicts)) {
    for (size_t i = 0; i < r; ++i) {
      if (rest_verdicts[i] != Verdict::kDrop) Fail("a timed-out frame was not dropped");
    }
  }
  if (pipeline.held() != 0 || held_counters() != 0) Fail("frames still held after the timeout");
  return 0;
}
