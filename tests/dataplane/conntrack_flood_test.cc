// The connection table under flood, through the pipeline (what users see): a SYN flood and a
// spoofed-ACK flood, each of 10x the table's capacity in distinct forged flows, beside
// established flows and legitimate connections started during the flood, with a pool change
// in the middle of it. Asserted: every established flow keeps its backend; no packet of a
// legitimate connection ever goes to another backend than its first (that backend would
// answer with a reset); legitimate connections started during the flood are tracked at the
// end (the share is printed; target >= 99%). Each test prints one line with its figures.
#include <gtest/gtest.h>

#include <arpa/inet.h>

#include <cstdio>
#include <cstring>
#include <optional>
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
  size_t legit_established = 0;  // ... of which established
  size_t legit_packets = 0;     // packets of established and legitimate flows
  size_t wrong_backend = 0;     // ... forwarded to another backend than the flow's first
  size_t lost = 0;              // ... whose flow had lost its entry (or its backend) before
  size_t half_open_lost = 0;    // handshakes whose SYN's entry was gone when the ACK came
  uint64_t evictions = 0;
  uint64_t untracked = 0;       // conntrack_untracked: forwarded without an entry
};

struct Conn {
  std::string client;
  uint16_t port = 0;
  IpAddr backend;           // where its first packet went
  uint32_t backend_id = 0;  // the table's id of it
  size_t ack_at = 0;        // flood index of the handshake's ACK (legitimate connections)
  bool acked = false;
  conntrack::FlowKey key;   // as the worker tracks it
};

// The worker's key of a connection to VIP 10.100.0.1:80/tcp (service index `service`).
conntrack::FlowKey KeyOf(const Conn& c, uint16_t service) {
  const IpAddr src = Ip(c.client), dst = Ip("10.100.0.1");
  uint32_t s, d;
  std::memcpy(&s, src.bytes.data(), 4);
  std::memcpy(&d, dst.bytes.data(), 4);
  return conntrack::FlowKey::V4(s, d, htons(c.port), htons(80), inet::ip_proto::kTcp, service);
}

// The service index of VIP 10.100.0.1:80/tcp, from the entry of a flow to it.
uint16_t ServiceOf(Host& h, uint16_t port) {
  uint16_t service = 0xffff;
  h.table().ForEach([&](const conntrack::FlowSnapshot& s) {
    if (s.key.sport == htons(port)) service = s.key.service;
    return service == 0xffff;
  });
  EXPECT_NE(service, 0xffff);
  return service;
}

// Opens a connection with its SYN: where it went, and its entry.
Conn Open(Host& h, std::string client, uint16_t port, uint16_t* service, uint32_t now) {
  Conn c;
  c.client = std::move(client);
  c.port = port;
  std::vector<uint8_t> out;
  EXPECT_EQ(h.Run(Syn(c.port, c.client.c_str()), &out, now), Verdict::kTx);
  c.backend = h.BackendOf(out);
  if (*service == 0xffff) *service = ServiceOf(h, port);
  c.key = KeyOf(c, *service);
  const std::optional<conntrack::FlowSnapshot> e = h.table().Peek(c.key);
  EXPECT_TRUE(e.has_value()) << c.client << ":" << port;
  if (e.has_value()) c.backend_id = e->backend_id;
  return c;
}

// Whether the table tracks the connection, with its first backend.
bool Tracked(Host& h, const Conn& c, conntrack::FlowState* state = nullptr) {
  const std::optional<conntrack::FlowSnapshot> s = h.table().Peek(c.key);
  if (!s.has_value() || s->backend_id != c.backend_id) return false;
  if (state != nullptr) *state = s->state;
  return true;
}

// One packet of a connection whose handshake completed: its entry must still be there, and
// the packet must go to the connection's first backend.
void Send(Host& h, const Conn& c, uint8_t flags, uint32_t now, FloodFigures* f) {
  if (!Tracked(h, c)) ++f->lost;
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
  constexpr size_t kLegitEvery = 40;     // flood packets between two new legitimate connections
  constexpr size_t kHandshakeRtt = 400;  // flood packets between a SYN and its ACK: 10 in flight
  constexpr size_t kDataEvery = 8;       // flood packets between two packets of real flows
  constexpr uint32_t kStart = 100, kSpan = 20;  // the flood lasts 20 s of tracker time

  control::Config config = BaseConfig();
  Host h(config, true, kCapacity);
  std::mt19937_64 rng(kind == FloodKind::kSyn ? 1 : 2);
  FloodFigures f;
  uint16_t service = 0xffff;

  // Established flows: a whole handshake each.
  std::vector<Conn> established;
  for (size_t i = 0; i < kEstablished; ++i) {
    Conn c = Open(h, absl::StrCat("192.0.3.", 1 + i % 250), static_cast<uint16_t>(20000 + i),
                  &service, kStart);
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
      Conn c = Open(h, absl::StrCat("192.0.2.", 1 + j % 250), static_cast<uint16_t>(10000 + j),
                    &service, now);
      c.ack_at = i + kHandshakeRtt;
      legit.push_back(std::move(c));
    }
    for (Conn& c : legit) {  // handshakes complete one RTT later
      if (c.ack_at != i) continue;
      // The ACK finds the SYN's entry (or, displaced meanwhile, gets a new one).
      if (!Tracked(h, c)) ++f.half_open_lost;
      std::vector<uint8_t> out;
      ++f.legit_packets;
      if (h.Run(Syn(c.port, c.client.c_str(), "10.100.0.1", 80, kAckFlag), &out, now) !=
              Verdict::kTx ||
          h.BackendOf(out) != c.backend) {
        ++f.wrong_backend;
      }
      c.acked = true;
    }
    if (i % kDataEvery == 0) {  // data: the real flows in turn
      const size_t n = established.size() + legit.size();
      const size_t k = next_data++ % n;
      if (k < established.size()) {
        Send(h, established[k], kAckFlag, now, &f);
      } else if (legit[k - established.size()].acked) {
        Send(h, legit[k - established.size()], kAckFlag, now, &f);
      }
    }
  }

  // After the flood, before any further packet: who is still tracked, with its backend.
  f.forged = kForged;
  f.legit = legit.size();
  for (const Conn& c : established) {
    conntrack::FlowState st;
    if (Tracked(h, c, &st) && st == conntrack::FlowState::kEstablished) ++f.established_kept;
  }
  for (const Conn& c : legit) {
    conntrack::FlowState st;
    if (!Tracked(h, c, &st)) continue;
    ++f.legit_tracked;
    if (st == conntrack::FlowState::kEstablished) ++f.legit_established;
  }
  // Then one more packet of every real flow.
  const uint32_t end = kStart + kSpan;
  for (const Conn& c : established) Send(h, c, kAckFlag, end, &f);
  for (const Conn& c : legit) {
    if (c.acked) Send(h, c, kAckFlag, end, &f);
  }
  f.evictions = h.table().stats().evictions;
  f.untracked = h.Count(Counter::conntrack_untracked);
  return f;
}

void Report(const char* name, const FloodFigures& f) {
  std::printf(
      "%s: %zu forged flows (10x capacity); established kept %zu/%zu; legitimate connections "
      "started during the flood tracked %zu/%zu (%.1f%%; established %zu), half-open entries "
      "lost before their ACK %zu; packets of real flows that found no entry %zu, sent to "
      "another backend %zu, of %zu; evictions %llu; untracked %llu\n",
      name, f.forged, f.established_kept, f.established, f.legit_tracked, f.legit,
      100.0 * static_cast<double>(f.legit_tracked) / static_cast<double>(f.legit),
      f.legit_established, f.half_open_lost, f.lost, f.wrong_backend, f.legit_packets,
      static_cast<unsigned long long>(f.evictions),
      static_cast<unsigned long long>(f.untracked));
}

void ExpectHeld(const FloodFigures& f) {
  EXPECT_EQ(f.established_kept, f.established);
  EXPECT_EQ(f.wrong_backend, 0u);
  EXPECT_EQ(f.lost, 0u);
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
