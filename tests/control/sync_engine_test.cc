// SyncEngine (control/sync_engine.h): two LB hosts' engines wired back to back in memory:
// what one host's workers queue reaches the other's peer table under the other's own
// indexes; every forged, replayed, misdirected or unusable message or entry is refused and
// counted; a moved flow keeps its backend through the second host's pipeline; heartbeats and
// heals; bulk copies (whole, bound to their request, newest assignment kept); and the UDP and
// TCP transports on loopback.
#include "control/sync_engine.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/sync_bulk.h"
#include "control/snapshot_builder.h"
#include "dataplane/flow_hash.h"
#include "dataplane/pipeline.h"
#include "tests/dataplane/packet_builder.h"

namespace ecmplb::control {
namespace {

using conntrack::FlowState;
using dataplane::IpAddr;
using dataplane::testing::Ip;
using dataplane::testing::Mac;

constexpr char kKeys[] =
    "1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
    "2 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\n";

// Host A lists backends 10.0.0.21-23 as ids 1-3; host B lists the same addresses under other
// ids and weights, so a synced entry must travel by address, not by id.
Config HostConfigFor(const char* address, bool reordered) {
  const char* backends =
      reordered ? R"([{"id": 7, "address": "10.0.0.23"}, {"id": 8, "address": "10.0.0.21", "weight": 3},
                      {"id": 9, "address": "10.0.0.22"}])"
                : R"([{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"},
                      {"id": 3, "address": "10.0.0.23"}])";
  // Loopback hosts (the transport tests) need the backends in their subnet: 127.0.0.0/1.
  const bool loopback = std::string(address).starts_with("127.");
  auto c = ParseConfig(std::string(R"({"host": {"address": ")") + address +
                       R"(", "prefix_length": )" + (loopback ? "1" : "24") + R"(},
    "services": [{"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "backends": )" +
                       backends + "}]}");
  EXPECT_TRUE(c.ok()) << c.status();
  return *c;
}

struct FakeClock {
  uint32_t now_s = 1000;
  uint64_t ticks = 5'000'000'000;
  uint64_t now_ms = 1'000'000;
  SyncEngine::Clock clock() {
    return {[this] { return now_s; }, [this] { return ticks; }, 1'000'000'000,
            [this] { return now_ms; }};
  }
};

struct Sent {
  IpAddr peer;
  std::vector<uint8_t> bytes;
};

// One LB host: config, snapshot, a worker's table and ring, the peer table, the engine.
struct Host {
  Host(const char* address, const char* peer, bool reordered, FakeClock* clock,
       const char* keys = kKeys, size_t peer_capacity = 4096)
      : config(HostConfigFor(address, reordered)), builder(Mac("02:00:00:00:00:01")) {
    snap = std::move(*builder.Build(config));
    conntrack::Options o;
    o.capacity = 4096;
    table = *conntrack::Table::Create(o);
    o.capacity = peer_capacity;
    peer_table = *conntrack::Table::Create(o);
    ring = std::make_unique<dataplane::SyncRing>(256);
    SyncEngine::Settings s;
    s.local = Ip(address);
    s.peers = {Ip(peer)};
    s.refresh_s = 30;
    s.epoch = 100;
    engine = std::make_unique<SyncEngine>(
        s, *sync::ParseKeyText(keys), std::vector<SyncEngine::Worker>{{ring.get(), table.get()}},
        peer_table.get(), clock->clock(),
        [this](const IpAddr& p, std::span<const uint8_t> d) {
          sent.push_back({p, std::vector<uint8_t>(d.begin(), d.end())});
          return true;
        });
  }
  const dataplane::Service& svc() const {
    return *snap->Find(Ip("10.100.0.1"), 80, inet::ip_proto::kTcp);
  }
  conntrack::FlowKey Key(uint16_t sport, const char* client = "192.0.2.7") const {
    dataplane::FlowTuple t;
    t.family = 4;
    t.proto = inet::ip_proto::kTcp;
    t.sport = sport;
    t.dport = 80;
    t.src = Ip(client);
    t.dst = Ip("10.100.0.1");
    return dataplane::PlaceFlow(svc(), t).key;
  }
  uint32_t IdOf(const char* backend) const {
    for (const auto& b : svc().backends) {
      if (b.addr == Ip(backend)) return b.id;
    }
    return 0;
  }
  // What a worker queues when flow `sport` becomes established on backend `backend`.
  void Queue(uint16_t sport, const char* backend, uint32_t time_s, uint64_t ticks,
             FlowState state = FlowState::kEstablished) {
    dataplane::SyncEvent ev;
    ev.key = Key(sport);
    ev.backend_id = IdOf(backend);
    ev.time_s = time_s;
    ev.ticks = ticks;
    ev.state = state;
    ASSERT_TRUE(ring->Push(ev));
  }
  uint64_t Rejected(SyncReject r) const {
    return engine->stats().rejected[static_cast<size_t>(r)];
  }

  Config config;
  SnapshotBuilder builder;
  std::unique_ptr<const dataplane::Snapshot> snap;
  std::unique_ptr<conntrack::Table> table, peer_table;
  std::unique_ptr<dataplane::SyncRing> ring;
  std::unique_ptr<SyncEngine> engine;
  std::vector<Sent> sent;
};

class SyncEngineTest : public ::testing::Test {
 protected:
  void Deliver(Host& from, Host& to) {
    for (const Sent& s : from.sent) to.engine->Receive(Ip(from.config.host.address.c_str()), s.bytes, *to.snap);
    from.sent.clear();
  }
  FakeClock clock_;
  Host a_{"10.0.0.11", "10.0.0.12", false, &clock_};
  Host b_{"10.0.0.12", "10.0.0.11", true, &clock_};
};

TEST_F(SyncEngineTest, QueuedFlowsReachThePeerTableByIdentity) {
  a_.Queue(1000, "10.0.0.23", clock_.now_s - 2, clock_.ticks - 3'000'000);
  a_.Queue(1001, "10.0.0.21", clock_.now_s, clock_.ticks);
  a_.engine->Tick(*a_.snap);
  ASSERT_EQ(a_.sent.size(), 1u) << "both flows in one message";
  EXPECT_EQ(a_.sent[0].peer, Ip("10.0.0.12"));
  EXPECT_EQ(a_.engine->stats().entries_sent, 2u);
  EXPECT_EQ(a_.engine->stats().lag_ms, 3u);
  Deliver(a_, b_);
  EXPECT_EQ(b_.engine->stats().messages_accepted, 1u);
  EXPECT_EQ(b_.engine->stats().entries_applied, 2u);
  auto f = b_.peer_table->Peek(b_.Key(1000));
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->backend_id, 7u) << "10.0.0.23 is id 7 on host B";
  EXPECT_EQ(f->state, FlowState::kSynced);
  EXPECT_EQ(f->last_seen, clock_.now_s - 2) << "the age travels, not the time";
  EXPECT_EQ(b_.peer_table->Peek(b_.Key(1001))->backend_id, 8u);
  // Nothing received is sent on (B sends only its heartbeat: an empty message).
  b_.engine->Tick(*b_.snap);
  EXPECT_EQ(b_.engine->stats().entries_sent, 0u);
  EXPECT_EQ(b_.engine->stats().heartbeats_sent, 1u);
}

// The cost on the wire: 1,000 IPv4 flows queued in one tick, sent to one peer.
TEST_F(SyncEngineTest, BytesPerFlow) {
  // Four ticks of 250 flows each (the test's rings hold 256).
  for (int round = 0; round < 4; ++round) {
    for (uint16_t p = 0; p < 250; ++p) {
      a_.Queue(static_cast<uint16_t>(10000 + round * 250 + p), "10.0.0.21", clock_.now_s,
               clock_.ticks);
    }
    a_.engine->Tick(*a_.snap);
  }
  const SyncStats& s = a_.engine->stats();
  ASSERT_EQ(s.entries_sent, 1000u);
  // Messages of up to kMaxEntriesPerBody entries of 28 bytes, plus 70 bytes of header, nonce,
  // count and tag; on the wire 42 bytes more (Ethernet, IPv4, UDP) per datagram.
  const uint64_t per_msg = conntrack::sync::kMaxEntriesPerBody;
  EXPECT_EQ(s.messages_sent, 4 * ((250 + per_msg - 1) / per_msg));
  EXPECT_EQ(s.bytes_sent, 1000 * 28 + s.messages_sent * 70);
  const double udp = static_cast<double>(s.bytes_sent) / 1000.0;
  const double wire = static_cast<double>(s.bytes_sent + 42 * s.messages_sent) / 1000.0;
  std::printf("sync bytes per IPv4 flow and peer: %.1f (UDP payload), %.1f (on the wire); "
              "%lu messages of up to %lu flows\n",
              udp, wire, static_cast<unsigned long>(s.messages_sent),
              static_cast<unsigned long>(per_msg));
}

TEST_F(SyncEngineTest, ForgedReplayedAndMisdirectedMessagesAreRefused) {
  a_.Queue(1000, "10.0.0.23", clock_.now_s, clock_.ticks);
  a_.engine->Tick(*a_.snap);
  ASSERT_EQ(a_.sent.size(), 1u);
  const std::vector<uint8_t> good = a_.sent[0].bytes;
  auto& e = *b_.engine;
  // Not a peer.
  e.Receive(Ip("10.0.0.99"), good, *b_.snap);
  EXPECT_EQ(b_.Rejected(SyncReject::not_peer), 1u);
  // Every single-byte change is refused.
  for (size_t i = 0; i < good.size(); ++i) {
    std::vector<uint8_t> bad = good;
    bad[i] ^= 0x40;
    e.Receive(Ip("10.0.0.11"), bad, *b_.snap);
  }
  // Truncated, oversized.
  e.Receive(Ip("10.0.0.11"), std::span<const uint8_t>(good.data(), 40), *b_.snap);
  std::vector<uint8_t> big(2000, 0);
  e.Receive(Ip("10.0.0.11"), big, *b_.snap);
  EXPECT_EQ(b_.Rejected(SyncReject::truncated), 1u);
  EXPECT_EQ(b_.Rejected(SyncReject::oversized), 1u);
  EXPECT_GT(b_.Rejected(SyncReject::forged), 0u);
  EXPECT_EQ(e.stats().entries_applied, 0u);
  EXPECT_EQ(b_.peer_table->Count(), 0u);
  // The genuine one, then its replay.
  e.Receive(Ip("10.0.0.11"), good, *b_.snap);
  EXPECT_EQ(e.stats().entries_applied, 1u);
  e.Receive(Ip("10.0.0.11"), good, *b_.snap);
  EXPECT_EQ(b_.Rejected(SyncReject::replayed), 1u);
  EXPECT_EQ(e.stats().entries_applied, 1u);
}

TEST_F(SyncEngineTest, AnotherKeyOrAnotherSenderIsRefused) {
  // A host with a key of the same id but other bytes: forged; with only an unknown id.
  FakeClock c;
  Host other{"10.0.0.11", "10.0.0.12", false, &c,
             "1 ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff\n"};
  other.Queue(1000, "10.0.0.23", c.now_s, c.ticks);
  other.engine->Tick(*other.snap);
  ASSERT_EQ(other.sent.size(), 1u);
  b_.engine->Receive(Ip("10.0.0.11"), other.sent[0].bytes, *b_.snap);
  EXPECT_EQ(b_.Rejected(SyncReject::forged), 1u);
  Host unknown{"10.0.0.11", "10.0.0.12", false, &c,
               "5 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"};
  unknown.Queue(1000, "10.0.0.23", c.now_s, c.ticks);
  unknown.engine->Tick(*unknown.snap);
  b_.engine->Receive(Ip("10.0.0.11"), unknown.sent[0].bytes, *b_.snap);
  EXPECT_EQ(b_.Rejected(SyncReject::unknown_key), 1u);
  // Authentic, but relayed from another configured peer's address: its sender id says A.
  Host b2{"10.0.0.12", "10.0.0.13", true, &clock_};
  a_.Queue(1000, "10.0.0.23", clock_.now_s, clock_.ticks);
  a_.engine->Tick(*a_.snap);
  b2.engine->Receive(Ip("10.0.0.13"), a_.sent[0].bytes, *b2.snap);
  EXPECT_EQ(b2.Rejected(SyncReject::wrong_sender), 1u);
  EXPECT_EQ(b2.peer_table->Count() + b_.peer_table->Count(), 0u);
}

TEST_F(SyncEngineTest, EntriesThisHostCannotUseAreCounted) {
  // Host B without backend 10.0.0.22, and with no service for 10.100.0.1:80 at all.
  Config c = b_.config;
  std::erase_if(c.services[0].backends,
                [](const BackendConfig& be) { return be.address == "10.0.0.22"; });
  auto snap_without = *b_.builder.Build(c);
  a_.Queue(1000, "10.0.0.22", clock_.now_s, clock_.ticks);
  a_.Queue(1001, "10.0.0.21", clock_.now_s, clock_.ticks);
  a_.engine->Tick(*a_.snap);
  b_.engine->Receive(Ip("10.0.0.11"), a_.sent[0].bytes, *snap_without);
  EXPECT_EQ(b_.Rejected(SyncReject::unknown_backend), 1u);
  EXPECT_EQ(b_.engine->stats().entries_applied, 1u);
  Config none = b_.config;
  none.services.clear();
  auto snap_none = *b_.builder.Build(none);
  a_.sent.clear();
  a_.Queue(1002, "10.0.0.21", clock_.now_s, clock_.ticks);
  a_.engine->Tick(*a_.snap);
  b_.engine->Receive(Ip("10.0.0.11"), a_.sent[0].bytes, *snap_none);
  EXPECT_EQ(b_.Rejected(SyncReject::unknown_service), 1u);
}

TEST_F(SyncEngineTest, ALateCopyNeverMakesAFlowOlder) {
  a_.Queue(1000, "10.0.0.23", clock_.now_s, clock_.ticks);
  a_.engine->Tick(*a_.snap);
  Deliver(a_, b_);
  // A refresh that was read 30 s ago arrives late (or datagrams out of order).
  a_.Queue(1000, "10.0.0.23", clock_.now_s - 30, clock_.ticks);
  a_.engine->Tick(*a_.snap);
  Deliver(a_, b_);
  EXPECT_EQ(b_.peer_table->Peek(b_.Key(1000))->last_seen, clock_.now_s);
  EXPECT_EQ(b_.engine->stats().entries_applied, 2u);
  // A closing copy always applies: the flow now lives the closing timeout only.
  a_.Queue(1000, "10.0.0.23", clock_.now_s, clock_.ticks, FlowState::kClosing);
  a_.engine->Tick(*a_.snap);
  Deliver(a_, b_);
  const auto& to = b_.peer_table->timeouts();
  EXPECT_EQ(clock_.now_s - b_.peer_table->Peek(b_.Key(1000))->last_seen,
            to.tcp_established - to.tcp_closing);
}

TEST_F(SyncEngineTest, AClosingFlowLivesOnlyForTheClosingTimeout) {
  a_.Queue(1000, "10.0.0.23", clock_.now_s - 5, clock_.ticks, FlowState::kClosing);
  a_.engine->Tick(*a_.snap);
  Deliver(a_, b_);
  auto f = b_.peer_table->Peek(b_.Key(1000));
  ASSERT_TRUE(f.has_value());
  const auto& to = b_.peer_table->timeouts();
  // Expires when the closing timeout (counted from its last packet) runs out.
  EXPECT_EQ(clock_.now_s - f->last_seen, 5 + to.tcp_established - to.tcp_closing);
}

// A copy dated back (a closing flow, or one last seen long ago) meets a full window of the
// peer table: it is refused, and displaces none of the live synced flows there (it once took
// their slots: judged at the copy's last-seen time, every flow seen since looked expired;
// found by fuzz_sync_message).
TEST_F(SyncEngineTest, ACopyDatedBackDisplacesNoLiveSyncedFlow) {
  // B's peer table of capacity 1: 3 buckets, one window of 15 slots for every flow.
  Host b{"10.0.0.12", "10.0.0.11", true, &clock_, kKeys, /*peer_capacity=*/1};
  const uint16_t slots =
      static_cast<uint16_t>(b.peer_table->bucket_count() * conntrack::Table::kSlotsPerBucket);
  ASSERT_EQ(slots, 15u);
  for (uint16_t p = 0; p < slots; ++p) {
    a_.Queue(7000 + p, "10.0.0.21", clock_.now_s, clock_.ticks);
  }
  a_.engine->Tick(*a_.snap);
  Deliver(a_, b);
  ASSERT_EQ(b.peer_table->Count(), slots);
  a_.Queue(7100, "10.0.0.22", clock_.now_s, clock_.ticks, FlowState::kClosing);
  a_.Queue(7101, "10.0.0.22", clock_.now_s - 500, clock_.ticks);
  a_.engine->Tick(*a_.snap);
  Deliver(a_, b);
  EXPECT_EQ(b.Rejected(SyncReject::table_full), 2u);
  EXPECT_EQ(b.engine->stats().entries_applied, slots);
  EXPECT_EQ(b.peer_table->Count(), slots);
  for (uint16_t p = 0; p < slots; ++p) {
    const auto f = b.peer_table->Peek(b.Key(7000 + p));
    ASSERT_TRUE(f.has_value()) << "flow " << 7000 + p << " lost";
    EXPECT_EQ(f->backend_id, b.IdOf("10.0.0.21"));
  }
}

TEST_F(SyncEngineTest, RefreshResendsFlowsActiveWithinThePeriod) {
  // Flows in host A's worker table: one active 10 s ago, one idle for 100 s, one half-open.
  a_.table->InsertSynced(a_.Key(2000), a_.IdOf("10.0.0.21"), clock_.now_s - 10);
  conntrack::EntryRef r = a_.table->Lookup(a_.Key(2000), clock_.now_s);
  a_.table->Touch(r, 0x10, clock_.now_s - 10);  // established
  a_.table->Insert(a_.Key(2001), a_.IdOf("10.0.0.22"), 0x02, clock_.now_s);  // SYN only
  a_.table->Insert(a_.Key(2002), a_.IdOf("10.0.0.22"), 0x02, clock_.now_s - 100);
  r = a_.table->Lookup(a_.Key(2002), clock_.now_s - 100);
  a_.table->Touch(r, 0x10, clock_.now_s - 100);  // established, idle since
  // One walk of the whole table takes refresh_s (30 s) of 10 ms ticks.
  for (int i = 0; i < 3000; ++i) a_.engine->Tick(*a_.snap);
  EXPECT_EQ(a_.engine->stats().refreshed, 1u);
  Deliver(a_, b_);
  EXPECT_TRUE(b_.peer_table->Peek(b_.Key(2000)).has_value());
  EXPECT_FALSE(b_.peer_table->Peek(b_.Key(2001)).has_value());
  EXPECT_FALSE(b_.peer_table->Peek(b_.Key(2002)).has_value());
}

// The whole path: host A's pipeline establishes a flow; host B, whose Maglev table differs
// (other weights), forwards the moved flow's next packets to host A's backend.
TEST_F(SyncEngineTest, AMovedFlowKeepsItsBackendThroughThePeersPipeline) {
  dataplane::NeighborTable na, nb;
  for (const auto& [slot, addr] : a_.builder.neighbor_slots()) {
    uint8_t mac[6] = {0x02, 0xbe, 0, 0, 0, addr.bytes[3]};
    na.Set(slot, mac);
  }
  for (const auto& [slot, addr] : b_.builder.neighbor_slots()) {
    uint8_t mac[6] = {0x02, 0xbe, 0, 0, 0, addr.bytes[3]};
    nb.Set(slot, mac);
  }
  dataplane::WorkerCounters ca, cb;
  dataplane::PipelineOptions oa, ob;
  oa.sync_out = a_.ring.get();
  ob.peer_table = b_.peer_table.get();
  dataplane::Pipeline pa(a_.table.get(), &ca, &na, oa), pb(b_.table.get(), &cb, &nb, ob);
  auto run = [](dataplane::Pipeline& p, const dataplane::Snapshot& s, uint16_t sport,
                uint8_t flags, uint32_t now) {
    auto in = dataplane::testing::PacketBuilder()
                  .Eth(Mac("02:00:00:00:00:fe"), Mac("02:00:00:00:00:01"))
                  .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
                  .Tcp(sport, 80, flags)
                  .Build();
    std::vector<uint8_t> buf(128 + in.size());
    std::copy(in.begin(), in.end(), buf.begin() + 128);
    dataplane::Frame f{buf.data() + 128, static_cast<uint32_t>(in.size()), 128};
    dataplane::Verdict v;
    p.Process(s, std::span<dataplane::Frame>(&f, 1), now, std::span<dataplane::Verdict>(&v, 1));
    return v == dataplane::Verdict::kTx ? f.data[5] : 0;  // backend MAC's last byte
  };
  int moved = 0, kept = 0;
  for (uint16_t port = 3000; port < 3100; ++port) {
    const uint8_t on_a = run(pa, *a_.snap, port, 0x02, clock_.now_s);
    ASSERT_EQ(run(pa, *a_.snap, port, 0x10, clock_.now_s), on_a);
    // Without sync, host B would place the flow by its own table.
    const dataplane::Service& sb = b_.svc();
    const auto placed = dataplane::PlaceFlow(sb, [&] {
      dataplane::FlowTuple t;
      t.family = 4;
      t.proto = 6;
      t.sport = port;
      t.dport = 80;
      t.src = Ip("192.0.2.7");
      t.dst = Ip("10.100.0.1");
      return t;
    }());
    moved += sb.backends[sb.table->Lookup(placed.maglev_hash)].addr.bytes[3] != on_a;
  }
  a_.engine->Tick(*a_.snap);
  Deliver(a_, b_);
  EXPECT_EQ(b_.engine->stats().entries_applied, 100u);
  ASSERT_GT(moved, 0) << "host B's table must place some flows elsewhere, or nothing is tested";
  for (uint16_t port = 3000; port < 3100; ++port) {
    const uint8_t on_a = a_.table->Peek(a_.Key(port)).has_value()
                             ? a_.svc().backends[a_.svc().PositionOf(
                                   a_.table->Peek(a_.Key(port))->backend_id)].addr.bytes[3]
                             : 0;
    kept += run(pb, *b_.snap, port, 0x10, clock_.now_s) == on_a;
  }
  EXPECT_EQ(kept, 100) << moved << " of 100 flows would have moved to another backend";
  EXPECT_EQ(cb.Get(dataplane::Counter::sync_peer_hit), 100u);
}

// An established flow in `h`'s worker table.
void Establish(Host& h, uint16_t sport, const char* backend, uint32_t now) {
  h.table->Insert(h.Key(sport), h.IdOf(backend), 0x02, now);
  conntrack::EntryRef r = h.table->Lookup(h.Key(sport), now);
  h.table->Touch(r, 0x10, now);
}

// A's answer to B's bulk request, message by message.
std::vector<std::vector<uint8_t>> Answer(Host& server, const char* asker,
                                         const std::vector<uint8_t>& request) {
  BulkCursor c;
  EXPECT_FALSE(server.engine->OpenBulkRequest(Ip(asker), request, &c).has_value());
  std::vector<std::vector<uint8_t>> out;
  for (std::vector<uint8_t> m; server.engine->NextBulkMessage(&c, *server.snap, &m); m.clear()) {
    out.push_back(m);
  }
  return out;
}

TEST_F(SyncEngineTest, ABulkCopyCarriesEveryEstablishedAndRelayedFlow) {
  for (uint16_t p = 0; p < 300; ++p) Establish(a_, 5000 + p, "10.0.0.22", clock_.now_s - 1);
  a_.table->Insert(a_.Key(6000), a_.IdOf("10.0.0.21"), 0x02, clock_.now_s);  // SYN only
  // A flow A learned from a third host: relayed in the copy.
  a_.peer_table->InsertSynced(a_.Key(6001), a_.IdOf("10.0.0.23"), clock_.now_s - 4);
  BulkFetch fetch;
  std::vector<uint8_t> req;
  b_.engine->MakeBulkRequest(0, &fetch, &req);
  ASSERT_FALSE(req.empty());
  const auto answer = Answer(a_, "10.0.0.12", req);
  ASSERT_GE(answer.size(), 8u) << "301 flows need at least 7 chunks, then the end marker";
  for (size_t i = 0; i < answer.size(); ++i) {
    EXPECT_EQ(b_.engine->ReceiveBulkMessage(&fetch, answer[i], *b_.snap),
              i + 1 == answer.size() ? BulkStep::kDone : BulkStep::kMore)
        << "message " << i;
  }
  EXPECT_EQ(fetch.entries, 301u);
  EXPECT_EQ(b_.engine->stats().bulk_fetches_done, 1u);
  EXPECT_EQ(a_.engine->stats().bulk_requests_served, 1u);
  EXPECT_EQ(b_.peer_table->Count(), 301u);
  EXPECT_EQ(b_.peer_table->Peek(b_.Key(5000))->backend_id, b_.IdOf("10.0.0.22"));
  EXPECT_EQ(b_.peer_table->Peek(b_.Key(6001))->backend_id, b_.IdOf("10.0.0.23"));
  EXPECT_EQ(b_.peer_table->Peek(b_.Key(6001))->last_seen, clock_.now_s - 4);
  EXPECT_FALSE(b_.peer_table->Peek(b_.Key(6000)).has_value()) << "half-open flows stay home";
}

TEST_F(SyncEngineTest, BulkRequestsAndAnswersAreBoundAndInOrder) {
  Establish(a_, 5000, "10.0.0.22", clock_.now_s);
  BulkFetch fetch, other;
  std::vector<uint8_t> req, req2;
  b_.engine->MakeBulkRequest(0, &fetch, &req);
  BulkCursor c;
  // From an address that is not a peer, or a peer that did not sign it.
  EXPECT_EQ(a_.engine->OpenBulkRequest(Ip("10.0.0.99"), req, &c), SyncReject::not_peer);
  std::vector<uint8_t> forged = req;
  forged.back() ^= 1;
  EXPECT_EQ(a_.engine->OpenBulkRequest(Ip("10.0.0.12"), forged, &c), SyncReject::forged);
  const auto answer = Answer(a_, "10.0.0.12", req);
  EXPECT_EQ(a_.engine->OpenBulkRequest(Ip("10.0.0.12"), req, &c), SyncReject::replayed);
  // An answer message of another request, out of order, or forged: refused, the fetch over.
  b_.engine->MakeBulkRequest(0, &other, &req2);
  EXPECT_EQ(b_.engine->ReceiveBulkMessage(&other, answer[0], *b_.snap), BulkStep::kRefused);
  EXPECT_EQ(b_.Rejected(SyncReject::bad_bulk), 1u);
  BulkFetch skip = fetch;
  EXPECT_EQ(b_.engine->ReceiveBulkMessage(&skip, answer[1], *b_.snap), BulkStep::kRefused);
  EXPECT_EQ(b_.Rejected(SyncReject::bad_bulk), 2u);
  std::vector<uint8_t> bad = answer[0];
  bad[bad.size() / 2] ^= 0x40;
  BulkFetch f3 = fetch;
  EXPECT_EQ(b_.engine->ReceiveBulkMessage(&f3, bad, *b_.snap), BulkStep::kRefused);
  EXPECT_EQ(b_.Rejected(SyncReject::forged), 1u);
  EXPECT_EQ(b_.peer_table->Count(), 0u);
  // The right fetch takes it whole.
  EXPECT_EQ(b_.engine->ReceiveBulkMessage(&fetch, answer[0], *b_.snap), BulkStep::kMore);
  EXPECT_EQ(b_.engine->ReceiveBulkMessage(&fetch, answer[1], *b_.snap), BulkStep::kDone);
  EXPECT_EQ(b_.engine->ReceiveBulkMessage(&fetch, answer[1], *b_.snap), BulkStep::kRefused);
  EXPECT_EQ(b_.peer_table->Count(), 1u);
}

TEST_F(SyncEngineTest, ABulkCopyKeepsTheNewestAssignment) {
  // B heard 1 s ago that flow 5000 is on 10.0.0.21; A's copy says 10.0.0.22, last seen 10 s
  // ago (A lost the flow to B's side since): B keeps its own. Flow 5001: A's copy is newer.
  b_.peer_table->InsertSynced(b_.Key(5000), b_.IdOf("10.0.0.21"), clock_.now_s - 1);
  b_.peer_table->InsertSynced(b_.Key(5001), b_.IdOf("10.0.0.21"), clock_.now_s - 20);
  Establish(a_, 5000, "10.0.0.22", clock_.now_s - 10);
  Establish(a_, 5001, "10.0.0.22", clock_.now_s - 2);
  BulkFetch fetch;
  std::vector<uint8_t> req;
  b_.engine->MakeBulkRequest(0, &fetch, &req);
  for (const auto& m : Answer(a_, "10.0.0.12", req)) b_.engine->ReceiveBulkMessage(&fetch, m, *b_.snap);
  EXPECT_TRUE(fetch.done);
  EXPECT_EQ(b_.peer_table->Peek(b_.Key(5000))->backend_id, b_.IdOf("10.0.0.21"));
  EXPECT_EQ(b_.peer_table->Peek(b_.Key(5001))->backend_id, b_.IdOf("10.0.0.22"));
  EXPECT_EQ(b_.Rejected(SyncReject::superseded), 1u);
}

TEST_F(SyncEngineTest, HeartbeatsKeepPeersAliveAndASilenceEndsInAHeal) {
  a_.engine->Tick(*a_.snap);  // nothing to send: a heartbeat
  EXPECT_EQ(a_.engine->stats().heartbeats_sent, 1u);
  a_.engine->Tick(*a_.snap);  // not again within a second
  EXPECT_EQ(a_.engine->stats().heartbeats_sent, 1u);
  EXPECT_EQ(b_.engine->SilentPeers(clock_.now_ms + 10000), 0u) << "never heard: not silent";
  Deliver(a_, b_);
  EXPECT_TRUE(b_.engine->PeerAlive(0, clock_.now_ms));
  EXPECT_EQ(b_.engine->SilentPeers(clock_.now_ms), 0u);
  EXPECT_TRUE(b_.engine->TakeHealedPeers().empty()) << "first contact is not a heal";
  clock_.now_ms += 5000;  // A's link is down for 5 s
  EXPECT_FALSE(b_.engine->PeerAlive(0, clock_.now_ms));
  EXPECT_EQ(b_.engine->SilentPeers(clock_.now_ms), 1u);  // peer 0
  a_.engine->Tick(*a_.snap);
  Deliver(a_, b_);
  EXPECT_EQ(b_.engine->SilentPeers(clock_.now_ms), 0u);
  EXPECT_EQ(b_.engine->TakeHealedPeers(), std::vector<size_t>{0});
  EXPECT_TRUE(b_.engine->TakeHealedPeers().empty()) << "reported once";
  EXPECT_EQ(b_.engine->stats().peer_heals, 1u);
}

TEST_F(SyncEngineTest, FleetBeaconsCarryTheAppliedVersionEverySecond) {
  a_.engine->Tick(*a_.snap);
  Deliver(a_, b_);
  EXPECT_TRUE(b_.engine->FleetBeacons(clock_.now_ms, 3000).empty()) << "no beacon set yet";
  a_.engine->SetFleetBeacon(conntrack::sync::FleetBeacon{42, 0xfeedULL, true});
  clock_.now_ms += 1000;
  a_.engine->Tick(*a_.snap);
  EXPECT_EQ(a_.engine->stats().beacons_sent, 1u);
  a_.engine->Tick(*a_.snap);
  EXPECT_EQ(a_.engine->stats().beacons_sent, 1u) << "once a second";
  // A forged copy (one byte flipped) is refused; the real one is taken.
  ASSERT_FALSE(a_.sent.empty());
  std::vector<uint8_t> forged = a_.sent.back().bytes;
  forged[forged.size() - 20] ^= 1;
  b_.engine->Receive(Ip("10.0.0.11"), forged, *b_.snap);
  EXPECT_TRUE(b_.engine->FleetBeacons(clock_.now_ms, 3000).empty());
  Deliver(a_, b_);
  auto heard = b_.engine->FleetBeacons(clock_.now_ms, 3000);
  ASSERT_EQ(heard.size(), 1u);
  EXPECT_EQ(heard[0].peer, Ip("10.0.0.11"));
  EXPECT_EQ(heard[0].beacon, (conntrack::sync::FleetBeacon{42, 0xfeedULL, true}));
  EXPECT_EQ(b_.engine->stats().beacons_received, 1u);
  // Old news is not news.
  EXPECT_TRUE(b_.engine->FleetBeacons(clock_.now_ms + 5000, 3000).empty());
}

// The TCP transport on loopback: B's fetcher gets A's table from A's server.
TEST(SyncBulkTest, FetchOverTcpOnLoopback) {
  FakeClock clock;
  Host a{"127.0.0.1", "127.0.0.2", false, &clock};
  Host b{"127.0.0.2", "127.0.0.1", true, &clock};
  for (uint16_t p = 0; p < 2000; ++p) Establish(a, static_cast<uint16_t>(10000 + p), "10.0.0.21", clock.now_s);
  auto server = BulkServer::Listen(Ip("127.0.0.1"), 47401, a.engine.get());
  ASSERT_TRUE(server.ok()) << server.status();
  BulkFetcher fetcher(Ip("127.0.0.2"), 47401, {0}, b.engine.get(), clock.now_ms + 5000);
  for (int i = 0; i < 2000 && !fetcher.done(); ++i) {
    std::vector<pollfd> fds;
    (*server)->AppendPollFds(&fds);
    fetcher.AppendPollFds(&fds);
    poll(fds.data(), fds.size(), 10);
    (*server)->Poll(*a.snap, clock.now_ms);
    fetcher.Poll(*b.snap, clock.now_ms);
  }
  ASSERT_TRUE(fetcher.done());
  EXPECT_EQ(fetcher.answered(), 1u) << fetcher.Summary();
  EXPECT_EQ(fetcher.entries(), 2000u);
  EXPECT_EQ(b.peer_table->Count(), 2000u);
  EXPECT_EQ((*server)->stats().served, 1u);
  // No server: refused at once; the first host of a fleet does not wait for the deadline.
  BulkFetcher none(Ip("127.0.0.2"), 47402, {0}, b.engine.get(), clock.now_ms + 5000);
  for (int i = 0; i < 200 && !none.done(); ++i) {
    std::vector<pollfd> fds;
    none.AppendPollFds(&fds);
    poll(fds.data(), fds.size(), 10);
    none.Poll(*b.snap, clock.now_ms);
  }
  EXPECT_TRUE(none.done());
  EXPECT_EQ(none.answered(), 0u);
  EXPECT_NE(none.Summary().find("refused"), std::string::npos) << none.Summary();
  // A deadline ends a fetch that gets no answer.
  BulkFetcher late(Ip("127.0.0.2"), 47401, {0}, b.engine.get(), clock.now_ms);
  late.Poll(*b.snap, clock.now_ms);
  EXPECT_TRUE(late.done());
  EXPECT_NE(late.Summary().find("deadline"), std::string::npos) << late.Summary();
}

TEST(SyncSocketTest, DatagramsOnLoopback) {
  auto a = SyncSocket::Open(Ip("127.0.0.1"), 47400);
  auto b = SyncSocket::Open(Ip("127.0.0.2"), 47400);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  auto again = SyncSocket::Open(Ip("127.0.0.1"), 47400);
  EXPECT_FALSE(again.ok());
  const std::vector<uint8_t> msg = {1, 2, 3, 4};
  ASSERT_TRUE((*a)->Send(Ip("127.0.0.2"), msg));
  std::vector<uint8_t> got;
  IpAddr from;
  for (int i = 0; i < 100 && got.empty(); ++i) {
    (*b)->ReceiveAll(8, [&](const IpAddr& f, std::span<const uint8_t> d) {
      from = f;
      got.assign(d.begin(), d.end());
    });
    if (got.empty()) usleep(1000);
  }
  EXPECT_EQ(got, msg);
  EXPECT_EQ(from, Ip("127.0.0.1"));
  // An oversized datagram arrives clipped to one byte over the limit (refused as oversized).
  std::vector<uint8_t> big(3000, 7);
  ASSERT_TRUE((*a)->Send(Ip("127.0.0.2"), big));
  got.clear();
  for (int i = 0; i < 100 && got.empty(); ++i) {
    (*b)->ReceiveAll(8, [&](const IpAddr&, std::span<const uint8_t> d) {
      got.assign(d.begin(), d.end());
    });
    if (got.empty()) usleep(1000);
  }
  EXPECT_EQ(got.size(), conntrack::sync::kMaxDatagram + 1);
}

}  // namespace
}  // namespace ecmplb::control
