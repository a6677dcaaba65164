// Tests of ecmplb-gen's flood mode: kind names and options (also as a --trials-from-stdin line
// would give them), each kind's frames (size, shape, destination, checksums, parsed by the
// dataplane's parser), the exact share, the checker counting flood and the answers to it as
// `other` (never as test traffic or an error), and the summary keeping loss about the test
// traffic.
#include "bench/gen/flood.h"

#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>
#include <vector>

#include "bench/gen/checker.h"
#include "bench/gen/frame_builder.h"
#include "bench/gen/options.h"
#include "bench/gen/schedule.h"
#include "bench/gen/summary.h"
#include "dataplane/packet/checksum.h"
#include "dataplane/packet/encap.h"
#include "dataplane/packet/parse.h"
#include "tests/gen/gen_fixture.h"

namespace ecmplb::gen {
namespace {

using dataplane::IpAddr;
using dataplane::LoadBe16;
using dataplane::LoadBe32;
using dataplane::ParsedPacket;
using dataplane::ParseResult;
using testing::Balancer;
using testing::kBalancerMac;
using testing::kGenMac;
using testing::MakeModel;
using testing::TestConfig;
using testing::TestModelOptions;

constexpr uint32_t kHost = 0x0a00000b;  // 10.0.0.11, the fixture's host.address

absl::StatusOr<GenOptions> ParseArgs(std::vector<const char*> args) {
  args.insert(args.begin(), "ecmplb-gen");
  return ParseGenOptions(static_cast<int>(args.size()), args.data());
}

FloodOptions Flood(std::vector<FloodKind> kinds, double share = 0.5) {
  FloodOptions f;
  f.share = share;
  f.kinds = std::move(kinds);
  return f;
}

std::unique_ptr<const FloodSet> MakeFlood(const TrafficModel& m, FloodOptions f) {
  auto s = FloodSet::Create(TestConfig(), m, std::move(f));
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? std::move(*s) : nullptr;
}

std::vector<uint8_t> Build(const FloodSet& s, size_t slot, uint32_t stream, uint64_t k) {
  std::vector<uint8_t> f(s.at(slot).len);  // exact size: ASan catches a write past it
  EXPECT_EQ(s.Build(slot, stream, k, f.data()), f.size());
  return f;
}

bool InFloodNet(const IpAddr& a) {
  return a.is_v4() && (a.v4_host() >> 8) == 0xCB0071;  // 203.0.113.0/24
}

void SwapMacs(std::vector<uint8_t>& f) {
  for (int i = 0; i < 6; ++i) std::swap(f[static_cast<size_t>(i)], f[static_cast<size_t>(i) + 6]);
}

CheckerOptions WithFloodNet(CheckerOptions c) {
  c.flood_net = *ParseClientNet(kDefaultFloodNet);
  return c;
}

TEST(FloodKindsTest, NamesListsAndAll) {
  auto all = ParseFloodKinds({});
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), kFloodKinds);
  for (size_t i = 0; i < kFloodKinds; ++i) EXPECT_EQ((*all)[i], static_cast<FloodKind>(i));
  auto some = ParseFloodKinds({"garbage,host-tcp", "nonvip", "host-tcp"});
  ASSERT_TRUE(some.ok());
  EXPECT_EQ(*some,
            (std::vector<FloodKind>{FloodKind::kGarbage, FloodKind::kHostTcp, FloodKind::kNonVip}));
  EXPECT_EQ(ParseFloodKinds({"icmp-echo", "all"})->size(), kFloodKinds);
  for (size_t i = 0; i < kFloodKinds; ++i) {
    const FloodKind k = static_cast<FloodKind>(i);
    EXPECT_EQ(*ParseFloodKinds({FloodKindName(k)}), std::vector<FloodKind>{k});
  }
  auto bad = ParseFloodKinds({"host-tcp,smurf"});
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--flood smurf"), std::string::npos);
}

TEST(FloodOptionsTest, ParsedAndDerived) {
  auto o = ParseArgs({"--config", "c", "--dst-mac", "02:00:00:00:00:01"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->flood_share, 0.0);
  EXPECT_EQ(o->flood_net, "203.0.113.0/24");
  EXPECT_FALSE(ToCheckerOptions(*o)->flood_net.base.is_v4());  // no flood: checker as before

  o = ParseArgs({"--config", "c", "--dst-mac", "02:00:00:00:00:01", "--flood-share", "0.25",
                 "--flood", "host-tcp,icmp-echo", "--flood", "garbage", "--flood-net",
                 "192.0.2.0/24"});
  ASSERT_TRUE(o.ok()) << o.status();
  auto f = ToFloodOptions(*o);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->share, 0.25);
  EXPECT_EQ(f->kinds, (std::vector<FloodKind>{FloodKind::kHostTcp, FloodKind::kIcmpEcho,
                                              FloodKind::kGarbage}));
  EXPECT_EQ(f->net.base.ToString(), "192.0.2.0");
  auto c = ToCheckerOptions(*o);
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->flood_net.base.ToString(), "192.0.2.0");
  EXPECT_EQ(c->flood_net.prefix, 24);

  EXPECT_FALSE(ParseArgs({"--config", "c", "--dst-mac", "x", "--flood-share", "1.5"}).ok());
  EXPECT_FALSE(ParseArgs({"--config", "c", "--dst-mac", "x", "--flood", "ping"}).ok());
  o = ParseArgs({"--config", "c", "--dst-mac", "x", "--flood-share", "0.1", "--flood-net",
                 "2001:db8:f::/64"});
  ASSERT_TRUE(o.ok());
  EXPECT_FALSE(ToFloodOptions(*o).ok());
  EXPECT_FALSE(ToCheckerOptions(*o).ok());
}

// --trials-from-stdin parses the command line followed by the trial's line: a trial's
// --flood-share overrides the command line's, its --flood kinds add to them.
TEST(FloodOptionsTest, TrialLineOverrides) {
  auto o = ParseArgs({"--config", "c", "--dst-mac", "02:00:00:00:00:01", "--flood-share", "0.1",
                      "--rate", "1000", "--flood-share", "0.3", "--flood", "nonvip"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->flood_share, 0.3);
  EXPECT_EQ(ToFloodOptions(*o)->kinds, std::vector<FloodKind>{FloodKind::kNonVip});
  EXPECT_EQ(o->rate, 1000.0);
  o = ParseArgs({"--config", "c", "--dst-mac", "02:00:00:00:00:01", "--json", "--rate", "5",
                 "--service", "10.0.0.1:80/tcp", "--json", "--rate", "7", "--service",
                 "10.0.0.2:80/tcp"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->rate, 7.0);
  EXPECT_EQ(o->services.size(), 2u);
  o = ParseArgs({"--config", "c", "--dst-mac", "02:00:00:00:00:01", "--flood", "host-udp",
                 "--flood-share", "0", "--flood-share", "0.5", "--flood", "garbage"});
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->flood_share, 0.5);
  EXPECT_EQ(ToFloodOptions(*o)->kinds,
            (std::vector<FloodKind>{FloodKind::kHostUdp, FloodKind::kGarbage}));
}

class FloodTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = MakeModel();
    ASSERT_NE(model_, nullptr);
  }
  std::unique_ptr<const TrafficModel> model_;
};

TEST_F(FloodTest, TemplatesTakeTheKindsInTurn) {
  auto s = MakeFlood(*model_, Flood({}));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->size() % kFloodKinds, 0u);
  EXPECT_GE(s->size(), kFloodTemplates);
  for (size_t i = 0; i < s->size(); ++i) {
    EXPECT_EQ(s->at(i).kind, static_cast<FloodKind>(i % kFloodKinds)) << i;
  }
  auto two = MakeFlood(*model_, Flood({FloodKind::kGarbage, FloodKind::kHostUdp}));
  ASSERT_NE(two, nullptr);
  EXPECT_EQ(two->size(), kFloodTemplates);
  EXPECT_EQ(two->at(0).kind, FloodKind::kGarbage);
  EXPECT_EQ(two->at(1).kind, FloodKind::kHostUdp);
}

// Every kind, at several sizes and with a VLAN tag: the frame size of the test frames, the
// dataplane's parser takes it (kOk, checksum verified), the right destination, a flood-net
// source, and a correct L4/ICMP checksum.
TEST_F(FloodTest, EachKindHasTheRightSizeShapeAndChecksums) {
  for (uint32_t size : {64u, 65u, 200u, 1518u}) {
    for (bool vlan : {false, true}) {
      ModelOptions mo = TestModelOptions();
      mo.frame_size = size;
      if (vlan) mo.vlan = 42;
      auto m = MakeModel(mo);
      ASSERT_NE(m, nullptr);
      auto s = MakeFlood(*m, Flood({}));
      ASSERT_NE(s, nullptr);
      const size_t want_len = m->service(0).frame_len;  // IPv4 TCP test frames
      EXPECT_EQ(want_len, size - kFcsLen);
      std::map<FloodKind, size_t> seen;
      std::set<uint32_t> icmp_dst, nonvip_dst;
      std::set<uint8_t> nonvip_proto;
      std::set<uint16_t> dports;
      for (uint64_t k = 0; k < 2 * s->size(); ++k) {
        const size_t slot = k % s->size();
        const FloodTemplate& t = s->at(slot);
        auto f = Build(*s, slot, 3, k);
        SCOPED_TRACE(::testing::Message() << "size " << size << " vlan " << vlan << " kind "
                                          << FloodKindName(t.kind) << " k " << k);
        ASSERT_EQ(f.size(), want_len);
        ++seen[t.kind];
        EXPECT_EQ(std::memcmp(f.data(), kBalancerMac.bytes.data(), 6), 0);
        EXPECT_EQ(std::memcmp(f.data() + 6, kGenMac.bytes.data(), 6), 0);
        const size_t l3 = vlan ? 18 : 14;
        EXPECT_EQ(LoadBe16(f.data() + l3 - 2), dataplane::ether_type::kIpv4);
        if (vlan) {
          EXPECT_EQ(LoadBe16(f.data() + 14) & 0x0FFF, 42);
        }
        ParsedPacket p;
        const ParseResult pr = dataplane::Parse(f, &p);
        if (t.kind == FloodKind::kGarbage) {
          EXPECT_TRUE(InFloodNet(IpAddr::V4FromBytes(f.data() + l3 + 12)));
          continue;  // any result, but parsed without crashing (ASan)
        }
        ASSERT_EQ(pr, ParseResult::kOk) << dataplane::ParseResultName(pr);
        EXPECT_EQ(p.has_vlan, vlan);
        EXPECT_EQ(p.family, 4);
        EXPECT_EQ(p.ip_end(), f.size());  // the IP packet fills the frame exactly
        EXPECT_TRUE(InFloodNet(p.src)) << p.src.ToString();
        EXPECT_EQ(p.ip_id, static_cast<uint16_t>(k));
        EXPECT_TRUE(p.has_l4);
        std::span<const uint8_t> l4(f.data() + p.l4_offset, f.size() - p.l4_offset);
        if (p.proto == inet::ip_proto::kIcmp) {
          EXPECT_EQ(dataplane::InternetChecksum(l4), 0);
        } else {
          EXPECT_EQ(dataplane::L4Checksum(p.src, p.dst, p.proto, l4), 0);
          EXPECT_NE(LoadBe16(l4.data() + (p.proto == inet::ip_proto::kTcp ? 16 : 6)), 0);
        }
        switch (t.kind) {
          case FloodKind::kHostTcp:
            EXPECT_EQ(p.proto, inet::ip_proto::kTcp);
            EXPECT_EQ(p.dst.v4_host(), kHost);
            EXPECT_EQ(p.tcp_flags, inet::tcp_flag::kSyn);
            dports.insert(p.dport);
            break;
          case FloodKind::kHostUdp:
            EXPECT_EQ(p.proto, inet::ip_proto::kUdp);
            EXPECT_EQ(p.dst.v4_host(), kHost);
            EXPECT_EQ(LoadBe16(l4.data() + 4), l4.size());
            break;
          case FloodKind::kIcmpEcho:
            EXPECT_EQ(p.proto, inet::ip_proto::kIcmp);
            EXPECT_EQ(p.icmp_type, 8);
            EXPECT_EQ(p.icmp_code, 0);
            icmp_dst.insert(p.dst.v4_host());
            break;
          case FloodKind::kNonVip: {
            const uint32_t d = p.dst.v4_host();
            nonvip_dst.insert(d);
            nonvip_proto.insert(p.proto);
            EXPECT_GE(d, kHost + 100);
            EXPECT_LE(d, kHost + 200);
            if (p.proto == inet::ip_proto::kTcp) {
              EXPECT_EQ(p.tcp_flags, inet::tcp_flag::kSyn);
            }
            break;
          }
          case FloodKind::kGarbage:
            break;
        }
      }
      EXPECT_EQ(seen.size(), kFloodKinds);
      // The host and every IPv4 VIP of the config.
      EXPECT_EQ(icmp_dst, (std::set<uint32_t>{kHost, 0x0a640001, 0x0a640002, 0x0a640003}));
      EXPECT_EQ(nonvip_proto, (std::set<uint8_t>{inet::ip_proto::kTcp, inet::ip_proto::kUdp}));
      EXPECT_GT(nonvip_dst.size(), 20u);
      EXPECT_GT(dports.size(), 50u);  // pseudo-random destination ports
    }
  }
}

TEST_F(FloodTest, NonVipAvoidsTheHostVipsAndNextHops) {
  auto s = MakeFlood(*model_, Flood({FloodKind::kNonVip}));
  ASSERT_NE(s, nullptr);
  ASSERT_FALSE(s->nonvip_addrs().empty());
  for (uint32_t a : s->nonvip_addrs()) {
    const IpAddr addr = IpAddr::V4(a);
    EXPECT_EQ(a >> 8, 0x0a0000u) << addr.ToString();  // in 10.0.0.0/24
    EXPECT_NE(a, kHost);
    EXPECT_NE(a, 0x0a00000cu);  // tunnel source
    EXPECT_NE(a, 0x0a0000ffu);  // broadcast
    EXPECT_FALSE(model_->snapshot().IsVip(addr));
    for (const auto& svc : model_->snapshot().services()) {
      for (const auto& be : svc->backends) EXPECT_NE(be.addr, addr);
    }
    for (const Neighbor& n : model_->Neighbors()) EXPECT_NE(n.addr, addr);
  }
}

TEST_F(FloodTest, PerPacketFieldsVaryAndAreDeterministic) {
  auto s = MakeFlood(*model_, Flood({FloodKind::kHostTcp}));
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(Build(*s, 7, 1, 1234), Build(*s, 7, 1, 1234));
  EXPECT_NE(Build(*s, 7, 1, 1234), Build(*s, 7, 1, 1235));
  EXPECT_NE(Build(*s, 7, 1, 1234), Build(*s, 7, 2, 1234));  // queues differ
  // The schedule cycles through the templates.
  FloodSchedule fs(s.get(), 0);
  std::vector<uint8_t> buf(2048);
  FloodKind kind;
  for (size_t i = 0; i < 3 * s->size(); ++i) {
    EXPECT_EQ(fs.Build(buf.data(), &kind), s->at(0).len);
    EXPECT_EQ(kind, FloodKind::kHostTcp);
  }
  EXPECT_EQ(fs.built(), 3 * s->size());
}

TEST_F(FloodTest, ShareIsExactOverTime) {
  for (double share : {0.0, 0.001, 0.1, 0.25, 1.0 / 3, 0.5, 0.9, 1.0}) {
    auto s = MakeFlood(*model_, Flood({}, share));
    ASSERT_NE(s, nullptr);
    FloodSchedule fs(s.get(), 0);
    uint64_t flood = 0;
    for (uint64_t n = 1; n <= 100'000; ++n) {
      flood += fs.Due();
      if (n % 1000 == 0) {
        EXPECT_NEAR(static_cast<double>(flood), share * static_cast<double>(n), 1.0)
            << "share " << share << " after " << n;
      }
    }
  }
  FloodSchedule none(nullptr, 0);
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(none.Due());
}

TEST_F(FloodTest, BadFloodNetsAreRefused) {
  auto with_net = [&](const char* cidr) {
    FloodOptions f = Flood({});
    f.net = *ParseClientNet(cidr);
    return FloodSet::Create(TestConfig(), *model_, f).status();
  };
  EXPECT_TRUE(with_net("192.0.2.0/24").ok());
  const absl::Status client = with_net("198.18.128.0/24");  // inside the test clients' /15
  ASSERT_FALSE(client.ok());
  EXPECT_NE(client.message().find("--client-net"), std::string::npos);
  EXPECT_FALSE(with_net("198.0.0.0/8").ok());      // holds the test clients
  EXPECT_FALSE(with_net("10.0.0.0/24").ok());      // holds the host
  EXPECT_FALSE(with_net("10.100.0.0/30").ok());    // holds a VIP
  EXPECT_FALSE(with_net("192.168.5.0/24").ok());   // holds a backend
  EXPECT_FALSE(with_net("2001:db8:f::/64").ok());  // not IPv4
}

// Every flood frame, through the checker as the peer would return it: never test traffic,
// never an error.
TEST_F(FloodTest, CheckerCountsFloodAndItsAnswersAsOther) {
  auto s = MakeFlood(*model_, Flood({}));
  ASSERT_NE(s, nullptr);
  Checker loop(*model_, WithFloodNet(CheckerOptions{.mode = ExpectMode::kLoopback}));
  Checker bal(*model_, WithFloodNet(CheckerOptions{}));
  for (uint64_t k = 0; k < 4 * s->size(); ++k) {
    auto f = Build(*s, k % s->size(), 0, k);
    EXPECT_EQ(bal.Check(f, 0), Verdict::kOther) << k;  // as sent
    SwapMacs(f);
    EXPECT_EQ(loop.Check(f, 0), Verdict::kOther) << k;  // as testpmd macswap returns it
  }
  // The host's answers: a RST to a flood source, an ICMP echo reply, ICMP port unreachable.
  const IpAddr host = IpAddr::V4(kHost), client = IpAddr::V4(0xCB007107);
  std::vector<uint8_t> rst(60, 0);
  size_t l2 = dataplane::internal::WriteL2(rst.data(), kGenMac, kBalancerMac, false, 0,
                                           dataplane::ether_type::kIpv4);
  dataplane::internal::WriteIpv4Header(rst.data() + l2, 0, 40, 0, true, 64, inet::ip_proto::kTcp,
                                       host, client);
  dataplane::StoreBe16(rst.data() + l2 + 20, 22);    // from the SYN's destination port
  dataplane::StoreBe16(rst.data() + l2 + 22, 4000);  // to its source port
  rst[l2 + 32] = 0x50;
  rst[l2 + 33] = inet::tcp_flag::kRst | inet::tcp_flag::kAck;
  EXPECT_EQ(bal.Check(rst, 0), Verdict::kOther);
  std::vector<uint8_t> reply = rst;
  reply[l2 + 9] = inet::ip_proto::kIcmp;
  reply[l2 + 20] = 0;  // echo reply
  EXPECT_EQ(bal.Check(reply, 0), Verdict::kOther);
  EXPECT_EQ(bal.counts().errors(), 0u);
  EXPECT_EQ(bal.counts().test_packets(), 0u);
  EXPECT_EQ(loop.counts().errors(), 0u);
  EXPECT_EQ(loop.counts().test_packets(), 0u);
  // Without a flood net (no --flood-share) the checker is as before: ICMP is other, and so is
  // anything from the balancer's own address (its kernel), but a TCP frame from elsewhere that
  // is not one of our flows is unknown (an error). That is why flood needs the net.
  Checker plain(*model_, CheckerOptions{});
  EXPECT_EQ(plain.Check(reply, 0), Verdict::kOther);
  EXPECT_EQ(plain.Check(rst, 0), Verdict::kOther);
  std::vector<uint8_t> relayed = rst;
  relayed[l2 + 15] ^= 0x40;  // another source on the segment
  EXPECT_EQ(plain.Check(relayed, 0), Verdict::kUnknown);
}

// The real ecmplb pipeline takes the flood: whatever it sends out for it (nothing to a backend,
// the exception path is not in the fixture) is `other` too, and the test frames in between
// still check ok.
TEST_F(FloodTest, ThroughEcmplbTestFramesStayOkAndFloodIsNeverTestTraffic) {
  auto s = MakeFlood(*model_, Flood({}, 0.3));
  ASSERT_NE(s, nullptr);
  Balancer lb(TestConfig());
  Checker c(*model_, WithFloodNet(CheckerOptions{}));
  auto groups = GroupFlowsByQueue(*model_);
  QueueSchedule sched(*model_, 0, groups[0], 0.05);
  FloodSchedule fs(s.get(), 0);
  FloodCounts flood;
  uint64_t test = 0, forwarded_flood = 0;
  std::vector<uint8_t> buf(2048);
  for (int i = 0; i < 5000; ++i) {
    std::vector<uint8_t> f;
    if (fs.Due()) {
      FloodKind kind;
      f.assign(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(fs.Build(buf.data(), &kind)));
      flood.Add(kind, f.size());
      auto out = lb.Forward(f);
      if (!out.empty()) {
        ++forwarded_flood;
        EXPECT_EQ(c.Check(out, 0), Verdict::kOther) << FloodKindName(kind);
      }
    } else {
      uint64_t flow;
      uint32_t seq;
      ASSERT_TRUE(sched.Next(&flow, &seq));
      f.resize(BuildFrame(*model_, flow, seq, 0, buf.data()));
      std::copy(buf.begin(), buf.begin() + static_cast<ptrdiff_t>(f.size()), f.begin());
      ++test;
      auto out = lb.Forward(f);
      ASSERT_FALSE(out.empty());
      EXPECT_EQ(c.Check(out, 1), Verdict::kOk);
    }
  }
  EXPECT_EQ(flood.total_packets(), 1500u);  // exactly 30%
  EXPECT_EQ(test, 3500u);
  EXPECT_EQ(forwarded_flood, 0u);  // ecmplb forwards no flood frame to a backend
  EXPECT_EQ(c.counts().test_packets(), test);
  EXPECT_EQ(c.counts().ok, test);
  EXPECT_EQ(c.counts().errors(), 0u);
  for (size_t k = 0; k < kFloodKinds; ++k) EXPECT_EQ(flood.packets[k], 300u) << k;
}

TEST_F(FloodTest, GarbageNeverCrashesTheChecker) {
  auto s = MakeFlood(*model_, Flood({FloodKind::kGarbage}));
  ASSERT_NE(s, nullptr);
  Checker with(*model_, WithFloodNet(CheckerOptions{}));
  Checker without(*model_, CheckerOptions{});
  std::mt19937 rng(7);
  for (size_t slot = 0; slot < s->size(); ++slot) {
    auto f = Build(*s, slot, 0, slot);
    EXPECT_EQ(with.Check(f, 0), Verdict::kOther);
    without.Check(f, 0);
    for (size_t n = 0; n < f.size(); n += 7) {  // truncated: exact-size copies for ASan
      std::vector<uint8_t> t(f.begin(), f.begin() + static_cast<ptrdiff_t>(n));
      with.Check(t, 0);
      without.Check(t, 0);
    }
    f[14 + rng() % 12] = static_cast<uint8_t>(rng());
    with.Check(f, 0);
  }
  EXPECT_EQ(without.counts().ok, 0u);
  EXPECT_EQ(with.counts().ok, 0u);
}

TEST_F(FloodTest, SummaryKeepsLossAboutTheTestTraffic) {
  GenOptions o;
  o.flood_share = 0.2;
  o.flood = {"host-tcp,garbage"};
  RunResult r;
  r.tx_seconds = 1.0;
  r.tx_packets = 800;
  r.tx_bytes = 800 * 60;
  r.flood.Add(FloodKind::kHostTcp, 60);
  for (int i = 0; i < 199; ++i) r.flood.Add(i % 2 ? FloodKind::kHostTcp : FloodKind::kGarbage, 60);
  r.check.rx_packets = 790 + 50;  // 790 test frames back, 50 RSTs
  r.check.other = 50;
  r.check.checked = r.check.ok = 790;
  const nlohmann::json j = SummaryJson(o, *model_, CheckerOptions{}, r);
  EXPECT_EQ(j["tx"]["packets"], 800u);
  EXPECT_EQ(j["tx"]["bytes"], 48000u);
  EXPECT_DOUBLE_EQ(j["tx"]["mpps"].get<double>(), 800e-6);
  EXPECT_EQ(j["tx"]["total_packets"], 1000u);
  EXPECT_EQ(j["tx"]["total_bytes"], 60000u);
  EXPECT_DOUBLE_EQ(j["tx"]["total_mpps"].get<double>(), 1000e-6);
  EXPECT_EQ(j["rx"]["test_packets"], 790u);
  EXPECT_EQ(j["loss"]["packets"], 10);
  EXPECT_DOUBLE_EQ(j["loss"]["ratio"].get<double>(), 10.0 / 800);
  EXPECT_EQ(j["check"]["other"], 50u);
  EXPECT_EQ(j["check"]["errors"], 0u);
  EXPECT_EQ(j["flood"]["packets"], 200u);
  EXPECT_EQ(j["flood"]["bytes"], 12000u);
  EXPECT_EQ(j["flood"]["per_kind"]["host-tcp"]["packets"], 100u);
  EXPECT_EQ(j["flood"]["per_kind"]["garbage"]["packets"], 100u);
  EXPECT_EQ(j["flood"]["per_kind"].size(), 2u);
  EXPECT_EQ(j["options"]["flood_share"], 0.2);
  EXPECT_EQ(j["options"]["flood"], nlohmann::json::array({"host-tcp", "garbage"}));
  const std::string text = SummaryText(o, *model_, CheckerOptions{}, r);
  EXPECT_NE(text.find("flood 200 packets"), std::string::npos) << text;
  EXPECT_NE(text.find("loss 10 packets"), std::string::npos) << text;
  // No flood: the keys are there, zero.
  const nlohmann::json none = SummaryJson(GenOptions{}, *model_, CheckerOptions{}, RunResult{});
  EXPECT_EQ(none["flood"]["packets"], 0u);
  EXPECT_TRUE(none["flood"]["per_kind"].empty());
}

}  // namespace
}  // namespace ecmplb::gen
