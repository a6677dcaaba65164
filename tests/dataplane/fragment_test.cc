// IP fragments: the per-worker fragment table (fragment_table.h) and the pipeline's decisions
// for fragmented datagrams: every fragment of a datagram reaches the backend its first
// fragment reached (the flow's Maglev backend), in any arrival order within the fragment
// timeout, on any LB host; what cannot be placed is held within a bound or dropped and
// counted; a fragment flood leaves other traffic alone.
#include "dataplane/fragment_table.h"

#include <gtest/gtest.h>

#include <vector>

#include "dataplane/flow_hash.h"
#include "dataplane/packet/parse.h"
#include "dataplane/pipeline.h"
#include "tests/dataplane/packet_builder.h"
#include "tests/dataplane/pipeline_host.h"
#include "tests/support/backends.h"
#include "tests/support/flows.h"

namespace ecmplb::dataplane {
namespace {

using namespace pipeline_testing;  // NOLINT: the harness
using testing::FragmentFrame;
using Frames = std::vector<std::vector<uint8_t>>;

FragmentKey Key(uint32_t id, const char* src = "192.0.2.7") {
  return FragmentKey::Of(Ip(src), Ip("10.100.0.1"), id, inet::ip_proto::kUdp);
}

TEST(FragmentTableTest, FindsWhatWasRecordedUntilItsTimeout) {
  FragmentTable t(64, 2);
  EXPECT_EQ(t.capacity(), 64u);
  EXPECT_EQ(t.Find(Key(1), 10), nullptr);
  EXPECT_FALSE(t.Record(Key(1), {.flow_hash = 77, .backend_id = 3, .dport = 53}, 10));
  const FragmentPlacement* p = t.Find(Key(1), 12);
  ASSERT_NE(p, nullptr);
  EXPECT_EQ(p->backend_id, 3u);
  EXPECT_EQ(p->dport, 53);
  EXPECT_EQ(p->flow_hash, 77u);
  EXPECT_EQ(t.Find(Key(1), 13), nullptr) << "past the timeout";
  // Another id, source or protocol is another datagram.
  EXPECT_EQ(t.Find(Key(2), 10), nullptr);
  EXPECT_EQ(t.Find(Key(1, "192.0.2.8"), 10), nullptr);
  EXPECT_EQ(t.Find(FragmentKey::Of(Ip("192.0.2.7"), Ip("10.100.0.1"), 1, inet::ip_proto::kTcp),
                   10),
            nullptr);
  // A record refreshes the entry and its placement.
  EXPECT_FALSE(t.Record(Key(1), {.flow_hash = 78, .backend_id = 4, .dport = 53}, 12));
  EXPECT_EQ(t.Find(Key(1), 14)->backend_id, 4u);
  EXPECT_EQ(FragmentTable(1, 2).capacity(), FragmentTable::kWays);
}

// A full table displaces its oldest entries and says so: the newest datagrams, whose later
// fragments are still to come, keep their places.
TEST(FragmentTableTest, AFullTableDisplacesTheOldest) {
  FragmentTable t(64, 5);
  size_t displaced = 0;
  for (uint32_t id = 0; id < 640; ++id) displaced += t.Record(Key(id), {.backend_id = id}, id / 64);
  EXPECT_GE(displaced, 640u - 64u);
  size_t found = 0, found_newest = 0;
  for (uint32_t id = 0; id < 640; ++id) {
    if (const FragmentPlacement* p = t.Find(Key(id), 9)) {
      EXPECT_EQ(p->backend_id, id);
      ++found;
      found_newest += id >= 576;
    }
  }
  // The table is full of live entries: each of its buckets kept its newest datagrams (none of
  // the first half survives), most of them from the last second.
  EXPECT_EQ(found, 64u);
  size_t found_old = 0;
  for (uint32_t id = 0; id < 320; ++id) found_old += t.Find(Key(id), 9) != nullptr;
  EXPECT_EQ(found_old, 0u);
  EXPECT_GT(found_newest, 32u);
}

// A UDP datagram of `payload` bytes on the flow client:sport -> vip:53, as one frame.
std::vector<uint8_t> Datagram(uint16_t sport, size_t payload, const char* client = "192.0.2.7",
                              const char* vip = "10.100.0.1") {
  PacketBuilder b;
  b.Eth(kRouterMac, kPortMac);
  if (Ip(client).is_v6()) {
    b.Ipv6(Ip(client), Ip(vip));
  } else {
    b.Ipv4(Ip(client), Ip(vip));
  }
  return b.Udp(sport, 53).PayloadSize(payload).Build();
}

// The configuration: BaseConfig's GRE UDP service on 10.100.0.1:53, plus an IPv6 DR UDP
// service on [2001:db8:f::1]:53.
control::Config FragmentConfig() {
  control::Config c = BaseConfig();
  auto six = control::ParseConfig(R"({
    "host": {"address": "10.0.0.11", "prefix_length": 24},
    "services": [{"vip": "2001:db8:f::1", "port": 53, "protocol": "udp", "forward": "dr",
       "backends": [{"id": 1, "address": "2001:db8:b::21"}, {"id": 2, "address": "2001:db8:b::22"},
                    {"id": 3, "address": "2001:db8:b::23"}]}]})");
  EXPECT_TRUE(six.ok()) << six.status();
  c.services.push_back(six->services[0]);
  return c;
}

// Where every LB host sends the flow of `frame` (a whole datagram): its service's Maglev pick.
IpAddr Expected(const Host& h, const std::vector<uint8_t>& frame) {
  ParsedPacket p;
  EXPECT_EQ(Parse(frame, &p), ParseResult::kOk);
  const Service* svc = h.snap().Find(p.dst, p.dport, p.proto);
  EXPECT_NE(svc, nullptr);
  const FlowPlacement pl = PlaceFlow(*svc, p.Flow());
  return svc->backends[svc->table->Lookup(pl.maglev_hash)].addr;
}

// The backend a forwarded frame went to: GRE's outer destination, or DR's MAC.
IpAddr SentTo(const control::Config& c, const std::vector<uint8_t>& out) {
  ParsedPacket p;
  EXPECT_EQ(Parse(out, &p), ParseResult::kOk);
  if (p.proto == inet::ip_proto::kGre) return p.dst;
  const MacAddr mac = MacAddr::FromBytes(out.data());
  for (const auto& s : c.services) {
    for (const auto& b : s.backends) {
      const IpAddr a = testing::Ip(b.address);
      if (BackendMac(a) == mac) return a;
    }
  }
  ADD_FAILURE() << "no backend has the MAC of the frame";
  return IpAddr{};
}

uint64_t VerdictSum(const Host& h) {
  uint64_t s = 0;
  for (Counter c : kPipelineVerdicts) s += h.Count(c);
  return s;
}
// Every frame given to the pipeline is counted once in a verdict, or held (counters.h).
void ExpectEveryFrameCounted(const Host& h, uint64_t frames) {
  EXPECT_EQ(VerdictSum(h) + h.Count(Counter::fragment_held) - h.Count(Counter::fragment_released),
            frames);
}

TEST(FragmentPipelineTest, EveryFragmentFollowsTheFirstInOneBurst) {
  const control::Config c = FragmentConfig();
  for (const char* client : {"192.0.2.7", "2001:db8:c::7"}) {
    SCOPED_TRACE(client);
    Host h(c);
    const char* vip = Ip(client).is_v6() ? "2001:db8:f::1" : "10.100.0.1";
    size_t frames = 0;
    for (uint16_t sport = 5000; sport < 5040; ++sport) {
      const auto whole = Datagram(sport, 4000, client, vip);
      const Frames pieces = FragmentFrame(whole, 1200, sport);
      ASSERT_EQ(pieces.size(), 4u);
      Frames out;
      const auto v = h.Burst(pieces, &out);
      frames += pieces.size();
      const IpAddr want = Expected(h, whole);
      for (size_t i = 0; i < pieces.size(); ++i) {
        ASSERT_EQ(v[i], Verdict::kTx) << "fragment " << i;
        EXPECT_EQ(SentTo(c, out[i]), want) << "fragment " << i;
      }
    }
    EXPECT_EQ(h.Count(Counter::fragment_forwarded), 40u * 3);
    EXPECT_EQ(h.Count(Counter::fragment_held), 0u);
    ExpectEveryFrameCounted(h, frames);
  }
}

// Out of order within a burst (later fragments before the first) and across bursts (held until
// the first comes, then handed back forwarded, in their order of arrival).
TEST(FragmentPipelineTest, LaterFragmentsBeforeTheFirstWaitForIt) {
  const control::Config c = FragmentConfig();
  for (const char* client : {"192.0.2.7", "2001:db8:c::7"}) {
    SCOPED_TRACE(client);
    Host h(c);
    const char* vip = Ip(client).is_v6() ? "2001:db8:f::1" : "10.100.0.1";
    const auto whole = Datagram(6000, 3000, client, vip);
    const IpAddr want = Expected(h, whole);
    Frames pieces = FragmentFrame(whole, 1024, 42);
    ASSERT_EQ(pieces.size(), 3u);
    // One burst, reversed.
    Frames out;
    auto v = h.Burst({pieces[2], pieces[1], pieces[0]}, &out);
    for (size_t i = 0; i < 3; ++i) {
      ASSERT_EQ(v[i], Verdict::kTx);
      EXPECT_EQ(SentTo(c, out[i]), want);
    }
    // Another datagram (id 43) of the same flow, across three bursts: last, middle, first.
    pieces = FragmentFrame(whole, 1024, 43);
    EXPECT_EQ(h.Burst({pieces[2]})[0], Verdict::kHeld);  // frame number 3
    EXPECT_EQ(h.Burst({pieces[1]}, nullptr, 101)[0], Verdict::kHeld);  // 4
    EXPECT_TRUE(h.TakeReleased().empty());
    EXPECT_EQ(h.pipeline().held(), 2u);
    v = h.Burst({pieces[0]}, &out, 102);
    ASSERT_EQ(v[0], Verdict::kTx);
    EXPECT_EQ(SentTo(c, out[0]), want);
    const auto released = h.TakeReleased();
    ASSERT_EQ(released.size(), 2u);
    EXPECT_EQ(released[0].number, 3u);
    EXPECT_EQ(released[1].number, 4u);
    for (const auto& r : released) {
      ASSERT_EQ(r.verdict, Verdict::kTx);
      EXPECT_EQ(SentTo(c, r.bytes), want);
    }
    EXPECT_EQ(h.pipeline().held(), 0u);
    EXPECT_EQ(h.Count(Counter::fragment_held), 2u);
    EXPECT_EQ(h.Count(Counter::fragment_released), 2u);
    EXPECT_EQ(h.Count(Counter::fragment_forwarded), 4u);
    ExpectEveryFrameCounted(h, 6);
  }
}

// Many later fragments before their first one: released in their order of arrival, also
// across TakeReleased's chunks.
TEST(FragmentPipelineTest, HeldFragmentsLeaveInTheirOrderOfArrival) {
  const control::Config c = FragmentConfig();
  Host h(c);
  const auto whole = Datagram(6100, 7000);
  const Frames pieces = FragmentFrame(whole, 1000, 77);
  ASSERT_EQ(pieces.size(), 8u);
  for (size_t k = 1; k < pieces.size(); ++k) {
    ASSERT_EQ(h.Burst({pieces[k]})[0], Verdict::kHeld);  // frame number k - 1
  }
  ASSERT_EQ(h.Burst({pieces[0]})[0], Verdict::kTx);
  const auto released = h.TakeReleased();  // in chunks of 4
  ASSERT_EQ(released.size(), 7u);
  for (size_t k = 0; k < released.size(); ++k) {
    EXPECT_EQ(released[k].number, k);
    ASSERT_EQ(released[k].verdict, Verdict::kTx);
    EXPECT_EQ(SentTo(c, released[k].bytes), Expected(h, whole));
  }
}

// IPv6 with a destination-options header after the fragment header: a later fragment names
// that header (60), not UDP, and still follows its first fragment.
TEST(FragmentPipelineTest, Ipv6LaterFragmentsNamingAnExtensionHeaderFollowTheFirst) {
  const control::Config c = FragmentConfig();
  Host h(c);
  const auto first = PacketBuilder()
                         .Eth(kRouterMac, kPortMac)
                         .Ipv6(Ip("2001:db8:c::7"), Ip("2001:db8:f::1"))
                         .Ipv6Fragment(0, true, 0xABCD)
                         .Ipv6Extension(inet::ip_proto::kIpv6DestOptions, 8)
                         .Udp(6200, 53)
                         .PayloadSize(64)
                         .Build();
  const auto later = PacketBuilder()
                         .Eth(kRouterMac, kPortMac)
                         .Ipv6(Ip("2001:db8:c::7"), Ip("2001:db8:f::1"))
                         .Ipv6Fragment(10, false, 0xABCD)
                         .Proto(inet::ip_proto::kIpv6DestOptions)
                         .PayloadSize(40)
                         .Build();
  ParsedPacket p;
  ASSERT_EQ(Parse(later, &p), ParseResult::kOk);
  ASSERT_EQ(p.proto, inet::ip_proto::kIpv6DestOptions);
  Frames out;
  // The later one first (held), then the first one: both at the flow's backend.
  ASSERT_EQ(h.Burst({later})[0], Verdict::kHeld);
  ASSERT_EQ(h.Burst({first}, &out)[0], Verdict::kTx);
  const auto released = h.TakeReleased();
  ASSERT_EQ(released.size(), 1u);
  ASSERT_EQ(released[0].verdict, Verdict::kTx);
  EXPECT_EQ(SentTo(c, released[0].bytes), SentTo(c, out[0]));
  EXPECT_EQ(h.Count(Counter::fragment_forwarded), 1u);
}

// The fragments of one datagram reach the same backend on every LB host, whichever order each
// host sees them in, and the same backend as the flow's unfragmented packets.
TEST(FragmentPipelineTest, EveryHostPlacesADatagramAlike) {
  const control::Config c = FragmentConfig();
  Host a(c), b(c), whole_host(c);
  for (uint16_t sport = 7000; sport < 7100; ++sport) {
    const auto whole = Datagram(sport, 2500);
    Frames out;
    ASSERT_EQ(whole_host.Burst({Datagram(sport, 100)}, &out)[0], Verdict::kTx);
    const IpAddr want = SentTo(c, out[0]);
    const Frames pieces = FragmentFrame(whole, 1000, sport);
    ASSERT_EQ(pieces.size(), 3u);
    // Host a: in order, one burst. Host b: the last fragment first, in a burst of its own.
    auto v = a.Burst(pieces, &out);
    for (size_t i = 0; i < 3; ++i) {
      ASSERT_EQ(v[i], Verdict::kTx);
      EXPECT_EQ(SentTo(c, out[i]), want);
    }
    ASSERT_EQ(b.Burst({pieces[2]})[0], Verdict::kHeld);
    v = b.Burst({pieces[0], pieces[1]}, &out);
    for (size_t i = 0; i < 2; ++i) {
      ASSERT_EQ(v[i], Verdict::kTx);
      EXPECT_EQ(SentTo(c, out[i]), want);
    }
    const auto released = b.TakeReleased();
    ASSERT_EQ(released.size(), 1u);
    EXPECT_EQ(SentTo(c, released[0].bytes), want);
  }
}

TEST(FragmentPipelineTest, HeldFragmentsTimeOutAndTheHoldIsBounded) {
  PipelineOptions o;
  o.fragment_hold = 4;
  o.fragment_timeout_s = 2;
  Host h(FragmentConfig(), true, 4096, o);
  Frames orphans;
  for (uint32_t id = 1; id <= 6; ++id) orphans.push_back(FragmentFrame(Datagram(8000, 3000), 1024, id)[1]);
  const auto v = h.Burst(orphans);
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(v[i], Verdict::kHeld);
  EXPECT_EQ(v[4], Verdict::kDrop);
  EXPECT_EQ(v[5], Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::fragment_hold_full), 2u);
  h.pipeline().Housekeeping(102);  // 2 s: still within the timeout
  EXPECT_TRUE(h.TakeReleased().empty());
  h.pipeline().Housekeeping(103);
  const auto released = h.TakeReleased();
  ASSERT_EQ(released.size(), 4u);
  for (const auto& r : released) EXPECT_EQ(r.verdict, Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::fragment_timeout), 4u);
  EXPECT_EQ(h.pipeline().held(), 0u);
  ExpectEveryFrameCounted(h, 6);
  // The first fragment of a timed-out datagram still goes to its backend (and its own later
  // fragments after it too).
  const Frames pieces = FragmentFrame(Datagram(8000, 3000), 1024, 1);
  const auto w = h.Burst(pieces, nullptr, 103);
  for (Verdict x : w) EXPECT_EQ(x, Verdict::kTx);
  // ReleaseHeld gives everything back before a worker stops.
  h.Burst({FragmentFrame(Datagram(8000, 3000), 1024, 99)[2]}, nullptr, 104);
  h.pipeline().ReleaseHeld();
  EXPECT_EQ(h.TakeReleased().size(), 1u);
  ExpectEveryFrameCounted(h, 6 + 3 + 1);
}

// Between a datagram's first fragment and its later ones, its backend or its service goes:
// the later fragments are dropped (another backend would get half a datagram), and counted.
TEST(FragmentPipelineTest, ABackendOrServiceGoneDropsTheRest) {
  control::Config c = FragmentConfig();
  Host h(c);
  const auto whole = Datagram(9000, 3000);
  const IpAddr be = Expected(h, whole);
  const Frames pieces = FragmentFrame(whole, 1024, 5);
  ASSERT_EQ(h.Burst({pieces[0]})[0], Verdict::kTx);
  control::Config less = c;
  auto& backends = less.services[1].backends;
  std::erase_if(backends, [&](const control::BackendConfig& b) { return Ip(b.address) == be; });
  h.Apply(less);
  EXPECT_EQ(h.Burst({pieces[1]})[0], Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::drop_no_backend), 1u);
  control::Config none = c;
  none.services.erase(none.services.begin() + 1);
  h.Apply(none);
  EXPECT_EQ(h.Burst({pieces[2]})[0], Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::drop_fragment), 1u);
  ExpectEveryFrameCounted(h, 3);
}

TEST(FragmentPipelineTest, TrackingOffDropsLaterFragments) {
  PipelineOptions o;
  o.fragment_capacity = 0;
  Host h(FragmentConfig(), true, 4096, o);
  const Frames pieces = FragmentFrame(Datagram(9100, 3000), 1024, 5);
  const auto v = h.Burst(pieces);
  EXPECT_EQ(v[0], Verdict::kTx);
  EXPECT_EQ(v[1], Verdict::kDrop);
  EXPECT_EQ(v[2], Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::drop_fragment), 2u);
  ExpectEveryFrameCounted(h, 3);
}

// A flood of fragments at ten times the table's capacity (first fragments of datagrams that
// never finish, and later fragments of datagrams that never started) beside ordinary flows:
// every ordinary packet is forwarded to its backend, and a well-ordered fragmented datagram
// in the middle of the flood still arrives whole.
TEST(FragmentPipelineTest, AFragmentFloodLeavesOtherTrafficAlone) {
  PipelineOptions o;
  o.fragment_capacity = 64;
  o.fragment_hold = 16;
  const control::Config c = FragmentConfig();
  Host h(c, true, 4096, o);
  Host reference(c);
  size_t frames = 0, ordinary = 0, legit = 0;
  for (uint32_t round = 0; round < 40; ++round) {
    Frames burst;
    // 16 flood fragments: 640 datagrams' first fragments and 640 orphans in all.
    for (uint32_t k = 0; k < 8; ++k) {
      const uint32_t n = round * 8 + k;
      const auto junk = Datagram(static_cast<uint16_t>(20000 + n % 1000), 1500,
                                 n % 2 ? "198.51.100.9" : "198.51.100.10");
      const Frames pieces = FragmentFrame(junk, 1024, 10000 + n);
      burst.push_back(pieces[0]);
      burst.push_back(FragmentFrame(junk, 1024, 60000 + n)[1]);
    }
    // 8 ordinary packets (TCP and whole UDP datagrams) and, every fourth round, a
    // fragmented datagram in order.
    for (uint32_t k = 0; k < 8; ++k) {
      const uint16_t sport = static_cast<uint16_t>(30000 + round * 8 + k);
      burst.push_back(k % 2 ? Syn(sport) : Datagram(sport, 200));
    }
    const size_t first_legit = burst.size();
    std::vector<uint8_t> legit_whole;
    if (round % 4 == 0) {
      legit_whole = Datagram(static_cast<uint16_t>(40000 + round), 2000);
      for (auto& piece : FragmentFrame(legit_whole, 1024, 70000 + round)) burst.push_back(piece);
    }
    Frames out, want;
    const auto v = h.Burst(burst, &out, 100 + round / 8);
    frames += burst.size();
    for (size_t i = 16; i < first_legit; ++i) {
      ASSERT_EQ(v[i], Verdict::kTx) << "ordinary packet " << i << " in round " << round;
      reference.Burst({burst[i]}, &want);
      EXPECT_EQ(out[i], want[0]);
      ++ordinary;
    }
    if (!legit_whole.empty()) {
      const IpAddr be = Expected(h, legit_whole);
      for (size_t i = first_legit; i < burst.size(); ++i) {
        ASSERT_EQ(v[i], Verdict::kTx);
        EXPECT_EQ(SentTo(c, out[i]), be);
        ++legit;
      }
    }
    h.TakeReleased();
  }
  EXPECT_EQ(ordinary, 40u * 8);
  EXPECT_EQ(legit, 10u * 2);
  EXPECT_GT(h.Count(Counter::fragment_table_full), 0u);
  EXPECT_GT(h.Count(Counter::fragment_hold_full), 0u);
  EXPECT_LE(h.pipeline().held(), 16u);
  ExpectEveryFrameCounted(h, frames);
}

}  // namespace
}  // namespace ecmplb::dataplane
