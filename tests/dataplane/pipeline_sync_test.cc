// The pipeline's half of flow sync: which flows it queues for the peers (and within which
// limits), and how a flow first seen mid-stream finds its backend in the peer table.
#include <gtest/gtest.h>

#include <vector>

#include "dataplane/flow_hash.h"
#include "dataplane/sync_ring.h"
#include "tests/dataplane/pipeline_host.h"

namespace ecmplb::dataplane {
namespace {

using conntrack::FlowState;
using pipeline_testing::BaseConfig;
using pipeline_testing::Host;
using pipeline_testing::Syn;
using testing::Ip;

constexpr uint8_t kAck = 0x10, kSyn = 0x02, kFin = 0x01, kRst = 0x04;
constexpr uint32_t kNow = 100;

std::vector<SyncEvent> Drain(SyncRing& ring) {
  std::vector<SyncEvent> out(ring.capacity());
  out.resize(ring.Pop(out));
  return out;
}

// The connection-table key of client port `sport` to 10.100.0.1:80 (TCP).
conntrack::FlowKey KeyOf(const Host& h, uint16_t sport, const char* client = "192.0.2.7") {
  const Service* svc = h.snap().Find(Ip("10.100.0.1"), 80, inet::ip_proto::kTcp);
  EXPECT_NE(svc, nullptr);
  FlowTuple t;
  t.family = 4;
  t.proto = inet::ip_proto::kTcp;
  t.sport = sport;
  t.dport = 80;
  t.src = Ip(client);
  t.dst = Ip("10.100.0.1");
  return PlaceFlow(*svc, t).key;
}

TEST(PipelineSyncTest, QueuesAFlowOnceItIsEstablished) {
  SyncRing ring(64);
  PipelineOptions o;
  o.sync_out = &ring;
  Host h(BaseConfig(), true, 4096, o);
  ASSERT_EQ(h.Run(Syn(1000)), Verdict::kTx);
  EXPECT_TRUE(Drain(ring).empty()) << "a SYN alone is not synced (a SYN flood stays local)";
  std::vector<uint8_t> out;
  ASSERT_EQ(h.Run(Syn(1000, "192.0.2.7", "10.100.0.1", 80, kAck), &out), Verdict::kTx);
  auto ev = Drain(ring);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].key, KeyOf(h, 1000));
  EXPECT_EQ(ev[0].state, FlowState::kEstablished);
  EXPECT_EQ(ev[0].reason, SyncReason::kEstablished);
  EXPECT_EQ(ev[0].time_s, kNow);
  auto local = h.table().Peek(KeyOf(h, 1000));
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(ev[0].backend_id, local->backend_id);
  // Further packets of an established flow queue nothing; its FIN does.
  h.Run(Syn(1000, "192.0.2.7", "10.100.0.1", 80, kAck));
  EXPECT_TRUE(Drain(ring).empty());
  h.Run(Syn(1000, "192.0.2.7", "10.100.0.1", 80, kFin | kAck));
  ev = Drain(ring);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].reason, SyncReason::kClosing);
  EXPECT_EQ(ev[0].state, FlowState::kClosing);
  EXPECT_EQ(h.Count(Counter::sync_queued), 2u);
}

TEST(PipelineSyncTest, HalfOpenAndProbationaryFlowsAreNotSynced) {
  SyncRing ring(64);
  PipelineOptions o;
  o.sync_out = &ring;
  Host h(BaseConfig(), true, 4096, o);
  // SYN then RST: never established, nothing for the peers.
  h.Run(Syn(1001));
  h.Run(Syn(1001, "192.0.2.7", "10.100.0.1", 80, kRst));
  // A bare ACK (mid-stream): probationary until it proves itself 2 s later.
  h.Run(Syn(1002, "192.0.2.7", "10.100.0.1", 80, kAck), nullptr, kNow);
  h.Run(Syn(1002, "192.0.2.7", "10.100.0.1", 80, kAck), nullptr, kNow + 1);
  EXPECT_TRUE(Drain(ring).empty());
  h.Run(Syn(1002, "192.0.2.7", "10.100.0.1", 80, kAck), nullptr, kNow + 2);
  auto ev = Drain(ring);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].key, KeyOf(h, 1002));
  EXPECT_EQ(ev[0].reason, SyncReason::kEstablished);
}

TEST(PipelineSyncTest, ARepickIsQueuedWithTheNewBackend) {
  SyncRing ring(64);
  PipelineOptions o;
  o.sync_out = &ring;
  control::Config c = BaseConfig();
  Host h(c, true, 4096, o);
  h.Run(Syn(1003));
  h.Run(Syn(1003, "192.0.2.7", "10.100.0.1", 80, kAck));
  const uint32_t old_id = h.table().Peek(KeyOf(h, 1003))->backend_id;
  Drain(ring);
  // Remove the flow's backend from the service.
  auto& bes = c.services[0].backends;
  std::erase_if(bes, [&](const control::BackendConfig& b) { return b.id == old_id; });
  h.Apply(c);
  h.ResolveAll();
  h.Run(Syn(1003, "192.0.2.7", "10.100.0.1", 80, kAck));
  auto ev = Drain(ring);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].reason, SyncReason::kRepick);
  EXPECT_NE(ev[0].backend_id, old_id);
  EXPECT_EQ(ev[0].backend_id, h.table().Peek(KeyOf(h, 1003))->backend_id);
}

TEST(PipelineSyncTest, RateLimitAndAFullRingAreCounted) {
  {
    SyncRing ring(4);  // capacity 4
    PipelineOptions o;
    o.sync_out = &ring;
    Host h(BaseConfig(), true, 4096, o);
    for (uint16_t p = 2000; p < 2006; ++p) {
      h.Run(Syn(p));
      h.Run(Syn(p, "192.0.2.7", "10.100.0.1", 80, kAck));
    }
    EXPECT_EQ(h.Count(Counter::sync_queued), 4u);
    EXPECT_EQ(h.Count(Counter::sync_ring_full), 2u);
    EXPECT_EQ(Drain(ring).size(), 4u);
  }
  {
    SyncRing ring(1024);
    PipelineOptions o;
    o.sync_out = &ring;
    o.sync_rate = 100;  // a burst of 64 events after the first; the clock stands still here
    Host h(BaseConfig(), true, 4096, o);
    for (uint16_t p = 3000; p < 3100; ++p) {
      h.Run(Syn(p));
      h.Run(Syn(p, "192.0.2.7", "10.100.0.1", 80, kAck));
    }
    EXPECT_EQ(h.Count(Counter::sync_queued), 65u);
    EXPECT_EQ(h.Count(Counter::sync_rate_limited), 35u);
    EXPECT_EQ(ring.size(), 65u);
  }
}

// The peer table: a flow first seen here mid-stream takes a synced entry's backend.
class PeerTableTest : public ::testing::Test {
 protected:
  PeerTableTest() {
    conntrack::Options po;
    po.capacity = 1024;
    peer_ = *conntrack::Table::Create(po);
    PipelineOptions o;
    o.peer_table = peer_.get();
    host_ = std::make_unique<Host>(BaseConfig(), true, 4096, o);
  }
  // A client port whose Maglev pick is not backend `id` (so a synced entry naming `id` shows).
  uint16_t PortNotPlacedOn(uint32_t id) {
    Host plain(BaseConfig());
    for (uint16_t p = 4000;; ++p) {
      plain.Run(Syn(p));
      if (plain.table().Peek(KeyOf(plain, p))->backend_id != id) return p;
    }
  }
  std::unique_ptr<conntrack::Table> peer_;
  std::unique_ptr<Host> host_;
};

TEST_F(PeerTableTest, AMovedFlowKeepsThePeersBackend) {
  Host& h = *host_;
  const uint16_t port = PortNotPlacedOn(3);
  ASSERT_EQ(peer_->InsertSynced(KeyOf(h, port), 3, kNow - 10), conntrack::InsertResult::kInserted);
  std::vector<uint8_t> out;
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(h.Run(Syn(port, "192.0.2.7", "10.100.0.1", 80, kAck), &out), Verdict::kTx);
    EXPECT_EQ(h.BackendOf(out), Ip("10.0.0.23")) << "packet " << i;
  }
  EXPECT_EQ(h.Count(Counter::sync_peer_hit), 1u);
  EXPECT_EQ(h.Count(Counter::conntrack_hit), 2u) << "later packets find the local entry";
  auto local = h.table().Peek(KeyOf(h, port));
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(local->backend_id, 3u);
  EXPECT_EQ(local->state, FlowState::kEstablished) << "synced, then seen here";
}

TEST_F(PeerTableTest, ASynIgnoresThePeerTable) {
  Host& h = *host_;
  const uint16_t port = PortNotPlacedOn(3);
  peer_->InsertSynced(KeyOf(h, port), 3, kNow);
  std::vector<uint8_t> out;
  h.Run(Syn(port, "192.0.2.7", "10.100.0.1", 80, kSyn), &out);
  EXPECT_NE(h.BackendOf(out), Ip("10.0.0.23"));
  EXPECT_EQ(h.Count(Counter::sync_peer_hit) + h.Count(Counter::sync_peer_miss) +
                h.Count(Counter::sync_peer_stale),
            0u);
}

TEST_F(PeerTableTest, StaleOrUnknownEntriesFallBackToMaglev) {
  Host& h = *host_;
  const uint16_t expired = PortNotPlacedOn(3);
  // Older than the established timeout (900 s) at kNow + 1000.
  peer_->InsertSynced(KeyOf(h, expired), 3, kNow);
  std::vector<uint8_t> out;
  h.Run(Syn(expired, "192.0.2.7", "10.100.0.1", 80, kAck), &out, kNow + 1000);
  EXPECT_NE(h.BackendOf(out), Ip("10.0.0.23"));
  // A synced entry naming a backend id this host does not have.
  const uint16_t removed = PortNotPlacedOn(3) + 1;
  peer_->InsertSynced(KeyOf(h, removed), 9, kNow + 1000);
  h.Run(Syn(removed, "192.0.2.7", "10.100.0.1", 80, kAck), &out, kNow + 1000);
  EXPECT_EQ(h.Count(Counter::sync_peer_stale), 2u);
  // No entry at all.
  h.Run(Syn(5999, "192.0.2.7", "10.100.0.1", 80, kAck), &out, kNow + 1000);
  EXPECT_EQ(h.Count(Counter::sync_peer_miss), 1u);
  EXPECT_EQ(h.Count(Counter::sync_peer_hit), 0u);
}

}  // namespace
}  // namespace ecmplb::dataplane
