// The connection table under flood, through the pipeline (what users see): a SYN flood and a
// spoofed-ACK flood, each of 10x the table's capacity in distinct forged flows, beside
// established flows and legitimate connections started during the flood, with a pool change
// in the middle of it. Asserted: every established flow keeps its backend; no packet of a
// legitimate connection ever goes to another backend than its first (that backend would
// answer with a reset); legitimate connections started during the flood are tracked at the
// end (the share is printed; target >= 99%). Each test prints one line with its figures.
#include <gtest/gtest.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/dataplane/pipeline_host.h"

namespace ecmplb::dataplane {
namespace {

using namespace pipeline_testing;  // NOLINT: the harness

constexpr uint8_t kSynFlag = 0x02;
constexpr uint8_t kAckFlag = 0x10;

enum class FloodKind { kSyn, kSpoofedAck };

struct FloodFigures {
  size_t forged = 0;            // distinct forged flows sent
  size_t established = 0;       // flows established before the flood
  size_t established_kept = 0;  // ... still tracked with their backend after it
  size_t legit = 0;             // connections started during the flood
  size_t legit_tracked = 0;     // ... tracked at the end
  size_t legit_packets = 0;     // packets of established and legitimate flows
  size_t wrong_backend = 0;     // ... forwarded to another backend than the flow's first
  uint64_t evictions = 0;
  uint64_t untracked = 0;       // conntrack_untracked: forwarded without an entry
};

struct Conn {
  std::string client;
  uint16_t port = 0;
  IpAddr backend;
  size_t ack_at = 0;  // flood index of the handshake's ACK (legitimate connections)
};

// One packet of a tracked connection: forwarded, and to the connection's first backend.
void Send(Host& h, const Conn& c, uint8_t flags, uint32_t now, FloodFigures* f) {
  std::vector<uint8_t> out;
  ++f->legit_packets;
  if (h.Run(Syn(c.port, c.client.c_str(), "10.100.0.1", 80, flags), &out, now) != Verdict::kTx ||
      h.BackendOf(out) != c.backend) {
    ++f->wrong_backend;
  }
}

FloodFigures RunFlood(FloodKind kind) {
  constexpr size_t kCapacity = 4096;
  constexpr size_t kForged = 10 * kCapacity;
  constexpr size_t kEstablished = kCapacity / 4;
  constexpr size_t kLegitEvery = 64;    // flood packets between two new legitimate connections
  constexpr size_t kHandshakeRtt = 48;  // flood packets between a SYN and its ACK
  constexpr size_t kDataEvery = 8;      // flood packets between two packets of real flows
  constexpr uint32_t kStart = 100, kSpan = 20;  // the flood lasts 20 s of tracker time

  control::Config config = BaseConfig();
  Host h(config, true, kCapacity);
  std::mt19937_64 rng(kind == FloodKind::kSyn ? 1 : 2);
  FloodFigures f;

  // Established flows: a whole handshake each.
  std::vector<Conn> established;
  for (size_t i = 0; i < kEstablished; ++i) {
    Conn c{absl::StrCat("192.0.3.", 1 + i % 250), static_cast<uint16_t>(20000 + i), {}, 0};
    std::vector<uint8_t> out;
    EXPECT_EQ(h.Run(Syn(c.port, c.client.c_str()), &out, kStart), Verdict::kTx);
    c.backend = h.BackendOf(out);
    Send(h, c, kAckFlag, kStart, &f);
    established.push_back(std::move(c));
  }
  f.established = established.size();

  std::vector<Conn> legit;
  size_t next_data = 0;
  for (size_t i = 0; i < kForged; ++i) {
    const uint32_t now = kStart + static_cast<uint32_t>(i * kSpan / kForged);
    // A forged flow: a random client in 198.18.0.0/15 and a random port, seen once.
    const uint32_t r = static_cast<uint32_t>(rng());
    const std::string src =
        absl::StrCat("198.", 18 + (r >> 31), ".", (r >> 8) & 0xff, ".", r & 0xff);
    const uint16_t sport = static_cast<uint16_t>(1024 + (rng() % 64000));
    h.Run(Syn(sport, src.c_str(), "10.100.0.1", 80,
              kind == FloodKind::kSyn ? kSynFlag : kAckFlag),
          nullptr, now);

    if (i == kForged / 2) {  // the pool changes during the flood: a backend joins
      config.services[0].backends.push_back({4, "10.0.0.24", 0, 1});
      h.Apply(config);
      h.ResolveAll();
    }
    if (i % kLegitEvery == 0) {  // a legitimate connection starts
      const size_t j = legit.size();
      Conn c{absl::StrCat("192.0.2.", 1 + j % 250), static_cast<uint16_t>(10000 + j), {},
             i + kHandshakeRtt};
      std::vector<uint8_t> out;
      EXPECT_EQ(h.Run(Syn(c.port, c.client.c_str()), &out, now), Verdict::kTx);
      c.backend = h.BackendOf(out);
      legit.push_back(std::move(c));
    }
    for (const Conn& c : legit) {  // handshakes complete one RTT later
      if (c.ack_at == i) Send(h, c, kAckFlag, now, &f);
    }
    if (i % kDataEvery == 0) {  // data: the real flows in turn
      const size_t n = established.size() + legit.size();
      const size_t k = next_data++ % n;
      if (k < established.size()) {
        Send(h, established[k], kAckFlag, now, &f);
      } else if (legit[k - established.size()].ack_at <= i) {
        Send(h, legit[k - established.size()], kAckFlag, now, &f);
      }
    }
  }

  // After the flood: one more packet of every real flow, then who is tracked.
  const uint32_t end = kStart + kSpan;
  for (const Conn& c : established) Send(h, c, kAckFlag, end, &f);
  for (const Conn& c : legit) Send(h, c, kAckFlag, end, &f);
  f.forged = kForged;
  f.legit = legit.size();
  h.table().ForEach([&](const conntrack::FlowSnapshot& s) {
    if (s.key.addr[0] == 192 && s.key.addr[1] == 0 && s.key.addr[2] == 2) ++f.legit_tracked;
    if (s.key.addr[0] == 192 && s.key.addr[1] == 0 && s.key.addr[2] == 3) ++f.established_kept;
    return true;
  });
  f.evictions = h.table().stats().evictions;
  f.untracked = h.Count(Counter::conntrack_untracked);
  return f;
}

void Report(const char* name, const FloodFigures& f) {
  std::printf(
      "%s: %zu forged flows (10x capacity); established kept %zu/%zu; legitimate connections "
      "started during the flood tracked %zu/%zu (%.1f%%); packets of real flows to another "
      "backend %zu of %zu; evictions %llu; untracked %llu\n",
      name, f.forged, f.established_kept, f.established, f.legit_tracked, f.legit,
      100.0 * static_cast<double>(f.legit_tracked) / static_cast<double>(f.legit),
      f.wrong_backend, f.legit_packets, static_cast<unsigned long long>(f.evictions),
      static_cast<unsigned long long>(f.untracked));
}

void ExpectHeld(const FloodFigures& f) {
  EXPECT_EQ(f.established_kept, f.established);
  EXPECT_EQ(f.wrong_backend, 0u);
  EXPECT_GE(f.legit_tracked * 100, f.legit * 99);
  EXPECT_GT(f.evictions, f.forged / 2);  // the flood really filled the table
}

TEST(ConntrackFloodTest, SynFloodOfTenTimesCapacity) {
  const FloodFigures f = RunFlood(FloodKind::kSyn);
  Report("SYN flood", f);
  ExpectHeld(f);
}

TEST(ConntrackFloodTest, SpoofedAckFloodOfTenTimesCapacity) {
  const FloodFigures f = RunFlood(FloodKind::kSpoofedAck);
  Report("spoofed-ACK flood", f);
  ExpectHeld(f);
}

}  // namespace
}  // namespace ecmplb::dataplane
