// Tests of ecmplb-gen's flow model: flow id <-> tuple bijection, client nets, service text,
// the next-hop MAC rule, queue steering and the expected backend.
#include "bench/gen/traffic_model.h"

#include <gtest/gtest.h>

#include "dataplane/flow_hash.h"
#include "tests/gen/gen_fixture.h"

namespace ecmplb::gen {
namespace {

using testing::MakeModel;
using testing::TestConfig;
using testing::TestModelOptions;

IpAddr Ip(const char* s) {
  return *IpAddr::Parse(s);
}

TEST(ClientNetTest, ParsesAndMasks) {
  auto v4 = ParseClientNet("198.18.3.7/15");
  ASSERT_TRUE(v4.ok()) << v4.status();
  EXPECT_EQ(v4->base, Ip("198.18.0.0"));
  EXPECT_EQ(v4->prefix, 15);
  EXPECT_EQ(v4->addrs, (1u << 17) - 2);
  auto v6 = ParseClientNet("2001:db8:c::1/64");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->base, Ip("2001:db8:c::"));
  auto v6s = ParseClientNet("2001:db8:c::ff/120");
  ASSERT_TRUE(v6s.ok());
  EXPECT_EQ(v6s->base, Ip("2001:db8:c::"));
  EXPECT_EQ(v6s->addrs, 255u);
}

TEST(ClientNetTest, RefusesBadInput) {
  for (const char* bad : {"198.18.0.0", "198.18.0.0/31", "198.18.0.0/7", "x/16", "10.0.0.0/1a",
                          "2001:db8::/48", "2001:db8::/127"}) {
    auto r = ParseClientNet(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_NE(r.status().message().find("--client-net"), std::string::npos);
    }
  }
}

TEST(ServiceTextTest, Parses) {
  auto a = ParseServiceText("10.0.0.1:80/tcp");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->vip, Ip("10.0.0.1"));
  EXPECT_EQ(a->port, 80);
  EXPECT_EQ(a->proto, inet::ip_proto::kTcp);
  auto b = ParseServiceText("[2001:db8::1]:443/udp");
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(b->vip, Ip("2001:db8::1"));
  EXPECT_EQ(b->proto, inet::ip_proto::kUdp);
  for (const char* bad : {"10.0.0.1:80", "10.0.0.1/tcp", "10.0.0.1:0/tcp", "10.0.0.1:70000/tcp",
                          "10.0.0.1:80/sctp", "nope:80/tcp"}) {
    EXPECT_FALSE(ParseServiceText(bad).ok()) << bad;
  }
}

TEST(NeighborMacTest, FixedRule) {
  EXPECT_EQ(NeighborMac(Ip("10.0.0.21")).ToString(), "02:00:0a:00:00:15");
  EXPECT_EQ(NeighborMac(Ip("2001:db8::aa:bbcc:ddee")).ToString(), "02:aa:bb:cc:dd:ee");
}

TEST(TrafficModelTest, ServicesFramesAndNeighbors) {
  auto m = MakeModel();
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->num_services(), 5u);
  EXPECT_EQ(m->service(0).name, "10.100.0.1:80/tcp");
  EXPECT_EQ(m->service(0).forward, dataplane::ForwardMode::kDr);
  EXPECT_EQ(m->service(1).forward, dataplane::ForwardMode::kGre);
  EXPECT_EQ(m->service(0).frame_len, 60);  // 64 on the wire
  EXPECT_EQ(m->service(1).frame_len, 60);
  EXPECT_EQ(m->service(3).frame_len, 74);  // IPv6 TCP: 14 + 40 + 20
  EXPECT_EQ(m->service(4).frame_len, 70);  // IPv6 UDP: 14 + 40 + 8 + 8
  // The off-link GRE backends' next hop is the gateway.
  EXPECT_EQ(m->service(2).next_hop[0], Ip("10.0.0.1"));
  EXPECT_EQ(m->service(2).next_hop_mac[1], NeighborMac(Ip("10.0.0.1")));
  std::vector<std::string> n;
  for (const Neighbor& x : m->Neighbors()) {
    n.push_back(x.addr.ToString() + " " + x.mac.ToString());
  }
  EXPECT_EQ(
      n, (std::vector<std::string>{"10.0.0.1 02:00:0a:00:00:01", "10.0.0.21 02:00:0a:00:00:15",
                                   "10.0.0.22 02:00:0a:00:00:16", "10.0.0.23 02:00:0a:00:00:17",
                                   "10.0.0.24 02:00:0a:00:00:18", "10.0.0.31 02:00:0a:00:00:1f",
                                   "10.0.0.32 02:00:0a:00:00:20", "10.0.0.41 02:00:0a:00:00:29",
                                   "10.0.0.42 02:00:0a:00:00:2a", "2001:db8::21 02:00:00:00:00:21",
                                   "2001:db8::22 02:00:00:00:00:22"}));
}

TEST(TrafficModelTest, SelectsServices) {
  ModelOptions o = TestModelOptions();
  o.proto = ProtoFilter::kUdp;
  auto m = MakeModel(o);
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(m->num_services(), 2u);
  o.proto = ProtoFilter::kMix;
  o.services = {*ParseServiceText("[2001:db8::1]:443/tcp")};
  m = MakeModel(o);
  ASSERT_NE(m, nullptr);
  ASSERT_EQ(m->num_services(), 1u);
  EXPECT_EQ(m->service(0).name, "[2001:db8::1]:443/tcp");
  o.services = {*ParseServiceText("10.9.9.9:80/tcp")};
  auto bad = TrafficModel::Create(TestConfig(), o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--service 10.9.9.9:80/tcp"), std::string::npos);
}

TEST(TrafficModelTest, FlowIdBijection) {
  auto m = MakeModel();
  ASSERT_NE(m, nullptr);
  std::vector<uint64_t> ids;
  for (uint64_t f = 0; f < 5000; ++f) ids.push_back(f);
  for (uint64_t f : {uint64_t{64511}, uint64_t{64512}, uint64_t{1} << 32, m->capacity() - 1}) {
    ids.push_back(f);
  }
  for (uint64_t f : ids) {
    const dataplane::FlowTuple t = m->Tuple(f);
    const GenService& s = m->service(m->ServiceOf(f));
    EXPECT_EQ(t.dst, s.key.vip);
    EXPECT_EQ(t.dport, s.key.port);
    EXPECT_EQ(t.proto, s.key.proto);
    EXPECT_GE(t.sport, kFirstPort);
    uint64_t back = ~uint64_t{0};
    ASSERT_TRUE(m->FlowOf(t.family, t.src.bytes.data(), t.sport, &back)) << f;
    EXPECT_EQ(back, f);
  }
  // Flow 0 is the first address after the network address, port 1024.
  EXPECT_EQ(m->Tuple(0).src, Ip("198.18.0.1"));
  EXPECT_EQ(m->Tuple(0).sport, 1024);
  EXPECT_EQ(m->Tuple(3).src, Ip("2001:db8:c::1"));
  EXPECT_EQ(m->Tuple(64512 * 5).src, Ip("198.18.0.6"));
  EXPECT_EQ(m->Tuple(64512 * 5).sport, 1024);
}

TEST(TrafficModelTest, FlowOfRefusesForeignTuples) {
  auto m = MakeModel();
  ASSERT_NE(m, nullptr);
  uint64_t f;
  const dataplane::FlowTuple t = m->Tuple(0);                               // IPv4
  EXPECT_FALSE(m->FlowOf(4, t.src.bytes.data(), 80, &f));                   // port below 1024
  EXPECT_FALSE(m->FlowOf(4, Ip("198.18.0.0").bytes.data(), 2000, &f));      // network address
  EXPECT_FALSE(m->FlowOf(4, Ip("198.20.0.1").bytes.data(), 2000, &f));      // outside
  EXPECT_FALSE(m->FlowOf(4, Ip("198.19.255.255").bytes.data(), 2000, &f));  // broadcast
  EXPECT_FALSE(m->FlowOf(6, Ip("2001:db8:d::1").bytes.data(), 2000, &f));
  EXPECT_FALSE(m->FlowOf(5, t.src.bytes.data(), 2000, &f));
  // 198.18.0.1:1027 is flow 3, whose service is IPv6: not a valid IPv4 flow.
  EXPECT_FALSE(m->FlowOf(4, t.src.bytes.data(), 1027, &f));
}

TEST(TrafficModelTest, CapacityChecked) {
  ModelOptions o = TestModelOptions(100'000);
  o.client_v4 = *ParseClientNet("198.18.0.0/30");  // 2 addresses: 129024 ids
  o.proto = ProtoFilter::kUdp;                     // an IPv4 and an IPv6 service
  auto m = TrafficModel::Create(TestConfig(), o);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ((*m)->capacity(), 2u * kPortsPerAddr);
  EXPECT_EQ((*m)->NextNew((*m)->capacity() - 1), 100'000u);
  o.flows = 200'000;
  auto bad = TrafficModel::Create(TestConfig(), o);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("--client-net"), std::string::npos);
}

TEST(TrafficModelTest, QueueSteering) {
  ModelOptions o = TestModelOptions();
  o.queues = 4;
  auto m = MakeModel(o);
  ASSERT_NE(m, nullptr);
  for (uint64_t f = 0; f < 100; ++f) EXPECT_EQ(m->QueueOf(f), f % 4);
  o.steering = Steering::kSoftRss;
  m = MakeModel(o);
  std::vector<int> per_queue(4);
  for (uint64_t f = 0; f < 4000; ++f) ++per_queue[m->QueueOf(f)];
  for (int n : per_queue) EXPECT_GT(n, 700);  // roughly even
}

TEST(TrafficModelTest, ExpectedBackendIsMaglevs) {
  auto m = MakeModel();
  ASSERT_NE(m, nullptr);
  std::vector<int> hits(4);
  for (uint64_t f = 0; f < 4000; f += 5) {  // service 0 only
    const int32_t b = m->ExpectedBackend(f);
    const dataplane::Service& s = *m->service(0).dp;
    EXPECT_EQ(
        b, static_cast<int32_t>(s.table->Lookup(dataplane::PlaceFlow(s, m->Tuple(f)).maglev_hash)));
    ASSERT_GE(b, 0);
    ASSERT_LT(b, 4);
    ++hits[static_cast<size_t>(b)];
  }
  for (int h : hits) EXPECT_GT(h, 100);
}

}  // namespace
}  // namespace ecmplb::gen
