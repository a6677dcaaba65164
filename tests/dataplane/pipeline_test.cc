// Tests of the per-burst forwarding pipeline on byte buffers: verdicts, DR, GRE, IPIP and GUE
// output, connection tracking across backend changes, ICMP steering and frag-needed, counters,
// and the property ECMP relies on: two LB hosts with the same configuration pick the same
// backend for every flow.
#include "dataplane/pipeline.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <vector>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "dataplane/flow_hash.h"
#include "dataplane/packet/encap.h"
#include "dataplane/packet/parse.h"
#include "tests/dataplane/packet_builder.h"
#include "tests/dataplane/pipeline_host.h"
#include "tests/support/backends.h"
#include "tests/support/flows.h"

namespace ecmplb::dataplane {
namespace {

using namespace pipeline_testing;  // NOLINT: the harness

// A DF UDP datagram from 192.0.2.7:sport to the UDP service 10.100.0.1:53.
std::vector<uint8_t> DfUdp(uint16_t sport, size_t payload) {
  return PacketBuilder()
      .Eth(kRouterMac, kPortMac)
      .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
      .Df(true)
      .Udp(sport, 53)
      .PayloadSize(payload)
      .Build();
}

TEST(PipelineTest, DrRewritesOnlyTheMacs) {
  Host h(BaseConfig());
  auto in = Syn(40000);
  std::vector<uint8_t> out;
  ASSERT_EQ(h.Run(in, &out), Verdict::kTx);
  ASSERT_EQ(out.size(), in.size());
  IpAddr be = h.BackendOf(out);
  EXPECT_EQ(MacAddr::FromBytes(out.data()), BackendMac(be));
  EXPECT_EQ(MacAddr::FromBytes(out.data() + 6), kPortMac);
  EXPECT_TRUE(std::equal(in.begin() + 12, in.end(), out.begin() + 12));
  EXPECT_EQ(h.Count(Counter::forward_dr), 1u);
  EXPECT_EQ(h.Count(Counter::conntrack_insert), 1u);
  EXPECT_EQ(h.counters().services[0].packets.Get(), 1u);
}

TEST(PipelineTest, GreEncapsulatesToTheBackend) {
  Host h(BaseConfig());
  auto in = PacketBuilder()
                .Eth(kRouterMac, kPortMac)
                .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
                .Udp(5555, 53)
                .PayloadSize(40)
                .Build();
  std::vector<uint8_t> out;
  ASSERT_EQ(h.Run(in, &out), Verdict::kTx);
  ASSERT_EQ(out.size(), in.size() + kGreOverhead);
  ParsedPacket p;
  ASSERT_EQ(Parse(out, &p), ParseResult::kOk);
  EXPECT_EQ(p.proto, inet::ip_proto::kGre);
  EXPECT_EQ(p.src, Ip("10.0.0.11"));  // tunnel source defaults to the host address
  EXPECT_EQ(MacAddr::FromBytes(out.data()), BackendMac(p.dst));
  // The inner packet is untouched.
  EXPECT_TRUE(std::equal(in.begin() + 14, in.end(), out.begin() + 14 + kGreOverhead));
  EXPECT_EQ(h.Count(Counter::forward_gre), 1u);
}

// IPIP and GUE (the UDP service of BaseConfig switched to them): the outer header, the inner
// packet untouched, the forward counter; GUE's source port is the same for every packet of a
// flow, in 49152..65535, and its destination is host.gue_port.
TEST(PipelineTest, IpipAndGueEncapsulateToTheBackend) {
  for (const control::ForwardMode mode : {control::ForwardMode::kIpip, control::ForwardMode::kGue}) {
    control::Config c = BaseConfig();
    c.services[1].forward = mode;
    c.host.gue_port = 5555;
    Host h(c);
    const bool gue = mode == control::ForwardMode::kGue;
    const size_t overhead = gue ? kGueOverhead : kIpipOverhead;
    std::set<uint16_t> sports;
    for (uint16_t client_port : {5555, 5556, 5555}) {
      auto in = PacketBuilder()
                    .Eth(kRouterMac, kPortMac)
                    .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
                    .Udp(client_port, 53)
                    .PayloadSize(40)
                    .Build();
      std::vector<uint8_t> out;
      ASSERT_EQ(h.Run(in, &out), Verdict::kTx);
      ASSERT_EQ(out.size(), in.size() + overhead);
      ParsedPacket p;
      ASSERT_EQ(Parse(out, &p), ParseResult::kOk);
      EXPECT_EQ(p.proto, gue ? inet::ip_proto::kUdp : inet::ip_proto::kIpip);
      EXPECT_EQ(p.src, Ip("10.0.0.11"));
      EXPECT_EQ(MacAddr::FromBytes(out.data()), BackendMac(p.dst));
      EXPECT_TRUE(std::equal(in.begin() + 14, in.end(), out.begin() + 14 + overhead));
      if (gue) {
        EXPECT_EQ(p.dport, 5555);
        EXPECT_GE(p.sport, 0xC000);
        sports.insert(p.sport);
      }
    }
    EXPECT_EQ(h.Count(gue ? Counter::forward_gue : Counter::forward_ipip), 3u);
    EXPECT_EQ(h.Count(Counter::forward_gre), 0u);
    if (gue) {
      EXPECT_EQ(sports.size(), 2u) << "one source port per flow";
    }
  }
}

// IPv6 backends of a tunnel service get an IPv6 outer header from host.address6 (GRE, IPIP,
// GUE; IPv4 or IPv6 inside), the same flow label for every packet of a flow; the MTU they
// leave is 20 bytes smaller.
TEST(PipelineTest, Ipv6TunnelBackendsGetAnIpv6OuterHeader) {
  for (const control::ForwardMode mode :
       {control::ForwardMode::kGre, control::ForwardMode::kIpip, control::ForwardMode::kGue}) {
    control::Config c = BaseConfig();
    c.host.address6 = "2001:db8:a::11";
    c.services[1].forward = mode;
    c.services[1].backends = {{.id = 1, .address = "2001:db8:a::21"},
                              {.id = 2, .address = "2001:db8:a::22"}};
    Host h(c);
    const size_t overhead = mode == control::ForwardMode::kGre    ? 44
                            : mode == control::ForwardMode::kIpip ? 40
                                                                  : 48;
    std::set<uint32_t> labels;
    for (int k = 0; k < 2; ++k) {
      auto in = DfUdp(5555, 40);
      std::vector<uint8_t> out;
      ASSERT_EQ(h.Run(in, &out), Verdict::kTx);
      ASSERT_EQ(out.size(), in.size() + overhead);
      ParsedPacket p;
      ASSERT_EQ(Parse(out, &p), ParseResult::kOk);
      EXPECT_EQ(p.family, 6);
      EXPECT_EQ(p.src, Ip("2001:db8:a::11"));
      EXPECT_TRUE(p.dst == Ip("2001:db8:a::21") || p.dst == Ip("2001:db8:a::22"));
      EXPECT_EQ(MacAddr::FromBytes(out.data()), BackendMac(p.dst));
      EXPECT_TRUE(std::equal(in.begin() + 14, in.end(), out.begin() + 14 + overhead));
      labels.insert(LoadBe32(out.data() + 14) & 0xFFFFF);
    }
    EXPECT_EQ(labels.size(), 1u) << "one flow label per flow";
    // Too big for the IPv6 outer header: the inner MTU is 1500 - overhead.
    auto big = DfUdp(5556, 1500 - overhead - 28 + 1);
    std::vector<uint8_t> reply;
    ASSERT_EQ(h.Run(big, &reply), Verdict::kTx);
    ParsedPacket icmp;
    ASSERT_EQ(Parse(reply, &icmp), ParseResult::kOk);
    EXPECT_EQ(icmp.proto, inet::ip_proto::kIcmp);
    EXPECT_EQ(LoadBe16(reply.data() + 14 + 20 + 6), 1500 - overhead);
  }
}

// A DF packet that no longer fits once encapsulated gets the MTU its tunnel leaves.
TEST(PipelineTest, TunnelTooBigAnswersWithItsOwnMtu) {
  for (const control::ForwardMode mode : {control::ForwardMode::kIpip, control::ForwardMode::kGue}) {
    control::Config c = BaseConfig();
    c.services[1].forward = mode;
    Host h(c);
    const size_t overhead = mode == control::ForwardMode::kGue ? kGueOverhead : kIpipOverhead;
    auto fits = DfUdp(5555, 1500 - overhead - 28);
    EXPECT_EQ(h.Run(fits), Verdict::kTx);
    auto big = DfUdp(5555, 1500 - overhead - 28 + 1);
    std::vector<uint8_t> out;
    ASSERT_EQ(h.Run(big, &out), Verdict::kTx);
    ParsedPacket p;
    ASSERT_EQ(Parse(out, &p), ParseResult::kOk);
    EXPECT_EQ(p.icmp_type, 3);
    EXPECT_EQ(p.icmp_code, 4);
    EXPECT_EQ(LoadBe16(out.data() + p.l4_offset + 6), 1500 - overhead);
    EXPECT_EQ(h.Count(Counter::icmp_frag_needed_sent), 1u);
  }
}

TEST(PipelineTest, NonVipTrafficGoesToTheKernel) {
  Host h(BaseConfig());
  auto ospf = PacketBuilder()
                  .Eth(kRouterMac, Mac("01:00:5e:00:00:05"))
                  .Ipv4(Ip("10.0.0.1"), Ip("224.0.0.5"))
                  .Proto(89)
                  .PayloadSize(40)
                  .Build();
  auto arp = PacketBuilder()
                 .Eth(kRouterMac, Mac("ff:ff:ff:ff:ff:ff"))
                 .RawEtherType(0x0806)
                 .PayloadSize(28)
                 .Build();
  auto to_host = PacketBuilder()
                     .Eth(kRouterMac, kPortMac)
                     .Ipv4(Ip("10.0.0.1"), Ip("10.0.0.11"))
                     .Tcp(179, 40000, 0x12)
                     .Build();
  auto ping_vip = PacketBuilder()
                      .Eth(kRouterMac, kPortMac)
                      .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
                      .Icmp(8, 0)
                      .Build();
  EXPECT_EQ(h.Run(ospf), Verdict::kException);
  EXPECT_EQ(h.Run(arp), Verdict::kException);
  EXPECT_EQ(h.Run(to_host), Verdict::kException);
  EXPECT_EQ(h.Run(ping_vip), Verdict::kException);
  EXPECT_EQ(h.Count(Counter::exception), 4u);
}

TEST(PipelineTest, DropsAreCountedByReason) {
  Host h(BaseConfig());
  EXPECT_EQ(h.Run(Syn(1000, "192.0.2.7", "10.100.0.1", 8080)), Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::drop_vip_no_service), 1u);
  auto frag = PacketBuilder()
                  .Eth(kRouterMac, kPortMac)
                  .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
                  .FragOffset(10)
                  .Proto(6)
                  .PayloadSize(100)
                  .Build();
  // A later fragment whose first fragment has not come waits for it (fragment_test.cc).
  EXPECT_EQ(h.Run(frag), Verdict::kHeld);
  EXPECT_EQ(h.Count(Counter::fragment_held), 1u);
  auto bad = Syn(1000);
  bad[14] = 0x46;  // IHL 6 but no options: the checksum no longer matches
  EXPECT_EQ(h.Run(bad), Verdict::kDrop);
  auto truncated = Syn(1000);
  truncated.resize(30);
  EXPECT_EQ(h.Run(truncated), Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::drop_parse), 2u);
  EXPECT_EQ(h.counters().parse[static_cast<size_t>(ParseResult::kTruncatedIp)].Get(), 1u);
}

TEST(PipelineTest, FramesForAnotherMacAreDroppedUnlessPromiscuous) {
  Host h(BaseConfig());
  auto other = PacketBuilder()
                   .Eth(kRouterMac, Mac("02:00:00:00:00:99"))
                   .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
                   .Tcp(1, 80, 0x02)
                   .Build();
  EXPECT_EQ(h.Run(other), Verdict::kDrop);
  auto other_arp = PacketBuilder()
                       .Eth(kRouterMac, Mac("02:00:00:00:00:99"))
                       .RawEtherType(0x0806)
                       .PayloadSize(28)
                       .Build();
  EXPECT_EQ(h.Run(other_arp), Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::drop_other_mac), 2u);
  // Broadcast and multicast are still ours.
  auto bcast = PacketBuilder()
                   .Eth(kRouterMac, Mac("ff:ff:ff:ff:ff:ff"))
                   .RawEtherType(0x0806)
                   .PayloadSize(28)
                   .Build();
  EXPECT_EQ(h.Run(bcast), Verdict::kException);
  // A promiscuous port forwards whatever the destination MAC.
  conntrack::Options o;
  o.capacity = 1024;
  auto t = *conntrack::Table::Create(o);
  WorkerCounters c;
  PipelineOptions po;
  po.accept_any_mac = true;
  Pipeline p(t.get(), &c, &h.neighbors(), po);
  std::vector<uint8_t> buf(128 + other.size());
  std::copy(other.begin(), other.end(), buf.begin() + 128);
  Frame f{buf.data() + 128, static_cast<uint32_t>(other.size()), 128};
  Verdict v;
  p.Process(h.snap(), std::span<Frame>(&f, 1), 1, std::span<Verdict>(&v, 1));
  EXPECT_EQ(v, Verdict::kTx);
}

TEST(PipelineTest, UnresolvedNextHopDropsAndAsksForResolution) {
  Host h(BaseConfig(), /*resolve=*/false);
  EXPECT_EQ(h.Run(Syn(40000)), Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::drop_neighbor_unresolved), 1u);
  size_t asked = 0;
  for (const auto& [slot, addr] : h.builder().neighbor_slots())
    asked += h.neighbors().TakeRequest(slot);
  EXPECT_EQ(asked, 1u);
  h.ResolveAll();
  EXPECT_EQ(h.Run(Syn(40000)), Verdict::kTx);
}

TEST(PipelineTest, TrackedFlowsKeepTheirBackendAcrossChanges) {
  control::Config c = BaseConfig();
  Host h(c);
  std::map<uint16_t, IpAddr> first;
  for (uint16_t port = 1000; port < 1300; ++port) {
    std::vector<uint8_t> out;
    ASSERT_EQ(h.Run(Syn(port), &out), Verdict::kTx);
    first[port] = h.BackendOf(out);
    ASSERT_EQ(h.Run(Syn(port, "192.0.2.7", "10.100.0.1", 80, 0x10)),
              Verdict::kTx);  // ACK: established
  }
  // Add a backend, change a weight, drain another: every tracked flow stays.
  c.services[0].backends.push_back({4, "10.0.0.24", 0, 5});
  c.services[0].backends[0].weight = 3;
  c.services[0].backends[1].weight = 0;
  h.Apply(c);
  h.ResolveAll();
  for (auto& [port, be] : first) {
    std::vector<uint8_t> out;
    ASSERT_EQ(h.Run(Syn(port, "192.0.2.7", "10.100.0.1", 80, 0x10), &out), Verdict::kTx);
    EXPECT_EQ(h.BackendOf(out), be) << port;
  }
  // New flows never go to the drained backend.
  for (uint16_t port = 5000; port < 5300; ++port) {
    std::vector<uint8_t> out;
    ASSERT_EQ(h.Run(Syn(port), &out), Verdict::kTx);
    EXPECT_NE(h.BackendOf(out), Ip("10.0.0.22"));
  }
  // Delete backend 3: its flows move (and stay tracked), the others stay.
  c.services[0].backends.erase(c.services[0].backends.begin() + 2);
  h.Apply(c);
  uint64_t moved = 0;
  for (auto& [port, be] : first) {
    std::vector<uint8_t> out;
    ASSERT_EQ(h.Run(Syn(port, "192.0.2.7", "10.100.0.1", 80, 0x10), &out), Verdict::kTx);
    if (be == Ip("10.0.0.23")) {
      EXPECT_NE(h.BackendOf(out), be);
      ++moved;
    } else {
      EXPECT_EQ(h.BackendOf(out), be);
    }
  }
  EXPECT_GT(moved, 0u);
  EXPECT_EQ(h.Count(Counter::conntrack_repick), moved);
}

TEST(PipelineTest, UnhealthyBackendFlowsArePickedAgain) {
  control::Config c = BaseConfig();
  Host h(c);
  std::vector<uint8_t> out;
  uint16_t port = 2000;
  for (;; ++port) {
    ASSERT_EQ(h.Run(Syn(port), &out), Verdict::kTx);
    if (h.BackendOf(out) == Ip("10.0.0.21")) break;
  }
  h.Apply(c, {{c.services[0].Name(), 1}});
  ASSERT_EQ(h.Run(Syn(port, "192.0.2.7", "10.100.0.1", 80, 0x10), &out), Verdict::kTx);
  EXPECT_NE(h.BackendOf(out), Ip("10.0.0.21"));
}

TEST(PipelineTest, SorryBackendServesOnlyWhileNothingElseCan) {
  control::Config c = BaseConfig();
  c.services[0].sorry_backend = control::BackendConfig{control::kSorryBackendId, "10.0.0.99", 0, 1};
  Host h(c);
  std::vector<uint8_t> out;
  ASSERT_EQ(h.Run(Syn(6000), &out), Verdict::kTx);
  EXPECT_NE(h.BackendOf(out), Ip("10.0.0.99"));  // backends usable: the sorry backend idles
  const std::string name = c.services[0].Name();
  h.Apply(c, {{name, 1}, {name, 2}, {name, 3}});  // every backend failed
  h.ResolveAll();
  ASSERT_EQ(h.Run(Syn(6000, "192.0.2.7", "10.100.0.1", 80, 0x10), &out), Verdict::kTx);
  EXPECT_EQ(h.BackendOf(out), Ip("10.0.0.99"));  // the tracked flow moved to the sorry backend
  ASSERT_EQ(h.Run(Syn(6001), &out), Verdict::kTx);
  EXPECT_EQ(h.BackendOf(out), Ip("10.0.0.99"));
  h.Apply(c, {{name, 1}, {name, 3}});  // backend 2 is back
  ASSERT_EQ(h.Run(Syn(6001, "192.0.2.7", "10.100.0.1", 80, 0x10), &out), Verdict::kTx);
  EXPECT_EQ(h.BackendOf(out), Ip("10.0.0.22"));  // and takes the sorry backend's flows
  ASSERT_EQ(h.Run(Syn(6002), &out), Verdict::kTx);
  EXPECT_EQ(h.BackendOf(out), Ip("10.0.0.22"));
}

TEST(PipelineTest, ServiceWithoutUsableBackendDrops) {
  control::Config c = BaseConfig();
  for (auto& b : c.services[0].backends) b.weight = 0;
  Host h(c);
  EXPECT_EQ(h.Run(Syn(3000)), Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::drop_no_backend), 1u);
}

TEST(PipelineTest, SourceIpHashIgnoresPorts) {
  Host h(BaseConfig());
  std::set<uint32_t> backends;
  for (uint16_t port = 1000; port < 1100; ++port) {
    std::vector<uint8_t> out;
    ASSERT_EQ(h.Run(Syn(port, "198.51.100.9", "10.100.0.2", 443), &out), Verdict::kTx);
    backends.insert(h.BackendOf(out).v4_host());
  }
  EXPECT_EQ(backends.size(), 1u);
}

TEST(PipelineTest, IcmpErrorFollowsItsFlow) {
  Host h(BaseConfig());
  std::vector<uint8_t> out;
  ASSERT_EQ(h.Run(Syn(41000), &out), Verdict::kTx);
  IpAddr be = h.BackendOf(out);
  // A router on the return path could not forward the backend's reply (VIP -> client).
  auto reply = PacketBuilder()
                   .Ipv4(Ip("10.100.0.1"), Ip("192.0.2.7"))
                   .Df(true)
                   .Tcp(80, 41000, 0x12)
                   .PayloadSize(1400)
                   .BuildIp();
  auto icmp = PacketBuilder()
                  .Eth(kRouterMac, kPortMac)
                  .Ipv4(Ip("203.0.113.1"), Ip("10.100.0.1"))
                  .IcmpError(3, 4, 1400, reply)
                  .Build();
  ASSERT_EQ(h.Run(icmp, &out), Verdict::kTx);
  EXPECT_EQ(MacAddr::FromBytes(out.data()), BackendMac(be));
  EXPECT_EQ(h.Count(Counter::icmp_error_steered), 1u);
  // An error about a packet of no service is dropped.
  auto other =
      PacketBuilder().Ipv4(Ip("10.100.0.1"), Ip("192.0.2.7")).Tcp(8080, 41000, 0x12).BuildIp();
  auto icmp2 = PacketBuilder()
                   .Eth(kRouterMac, kPortMac)
                   .Ipv4(Ip("203.0.113.1"), Ip("10.100.0.1"))
                   .IcmpError(3, 4, 1400, other)
                   .Build();
  EXPECT_EQ(h.Run(icmp2), Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::drop_icmp_unmatched), 1u);
}

TEST(PipelineTest, GreTooBigWithDfAnswersFragNeeded) {
  Host h(BaseConfig());
  auto in = PacketBuilder()
                .Eth(kRouterMac, kPortMac)
                .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
                .Df(true)
                .Udp(5555, 53)
                .PayloadSize(1500 - 28)
                .Build();
  std::vector<uint8_t> out;
  ASSERT_EQ(h.Run(in, &out), Verdict::kTx);
  ParsedPacket p;
  ASSERT_EQ(Parse(out, &p), ParseResult::kOk);
  EXPECT_EQ(p.proto, inet::ip_proto::kIcmp);
  EXPECT_EQ(p.icmp_type, 3);
  EXPECT_EQ(p.icmp_code, 4);
  EXPECT_EQ(p.dst, Ip("192.0.2.7"));
  EXPECT_EQ(LoadBe16(out.data() + p.l4_offset + 6), 1500 - kGreOverhead);
  EXPECT_EQ(MacAddr::FromBytes(out.data()), kRouterMac);
  EXPECT_EQ(h.Count(Counter::icmp_frag_needed_sent), 1u);
  // Without DF the packet is dropped and counted.
  auto nodf = PacketBuilder()
                  .Eth(kRouterMac, kPortMac)
                  .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
                  .Udp(5555, 53)
                  .PayloadSize(1500 - 28)
                  .Build();
  EXPECT_EQ(h.Run(nodf), Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::drop_too_big), 1u);
}

TEST(PipelineTest, NoHeadroomForGreIsCounted) {
  Host h(BaseConfig());
  auto in = PacketBuilder()
                .Eth(kRouterMac, kPortMac)
                .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
                .Udp(5555, 53)
                .Build();
  std::vector<uint8_t> buf = in;
  Frame f{buf.data(), static_cast<uint32_t>(buf.size()), 0};
  Verdict v;
  conntrack::Options o;
  o.capacity = 1024;
  auto t = *conntrack::Table::Create(o);
  Pipeline p(t.get(), &h.counters(), &h.neighbors());
  p.Process(h.snap(), std::span<Frame>(&f, 1), 1, std::span<Verdict>(&v, 1));
  EXPECT_EQ(v, Verdict::kDrop);
  EXPECT_EQ(h.Count(Counter::drop_no_headroom), 1u);
}

// Two LB hosts whose configurations list services and backends in different orders (and so
// number their counter and neighbour slots differently) send every flow to the same backend.
// This is what keeps connections alive when the router's ECMP moves them between hosts.
TEST(PipelineTest, EveryHostPicksTheSameBackend) {
  control::Config a = BaseConfig();
  control::Config b = BaseConfig();
  std::reverse(b.services.begin(), b.services.end());
  for (auto& s : b.services) std::reverse(s.backends.begin(), s.backends.end());
  Host ha(a), hb(b);
  std::map<uint32_t, int> spread;
  for (uint32_t i = 0; i < 3000; ++i) {
    char client[32];
    std::snprintf(client, sizeof(client), "198.18.%u.%u", (i / 250) % 250, i % 250 + 1);
    auto pkt = Syn(static_cast<uint16_t>(10000 + i), client);
    std::vector<uint8_t> oa, ob;
    ASSERT_EQ(ha.Run(pkt, &oa), Verdict::kTx);
    ASSERT_EQ(hb.Run(pkt, &ob), Verdict::kTx);
    ASSERT_EQ(ha.BackendOf(oa), hb.BackendOf(ob)) << client;
    ++spread[ha.BackendOf(oa).v4_host()];
  }
  ASSERT_EQ(spread.size(), 3u);
  for (auto& [be, n] : spread) EXPECT_NEAR(n, 1000, 150) << be;
}

// The backend the pipeline picks for a new flow (from the connection table's hash of the key,
// reused as the Maglev hash) is the one PlaceFlow (dataplane/flow_hash.h) names, which
// `ecmplbctl lookup` and other LB hosts compute: 5-tuple and source-IP services, IPv4 and IPv6.
TEST(PipelineTest, NewFlowPickMatchesPlaceFlow) {
  control::Config c = BaseConfig();
  control::ServiceConfig v6;
  v6.vip = "2001:db8::10";
  v6.port = 443;
  v6.backends = {{1, "2001:db8::21", 0, 1}, {2, "2001:db8::22", 0, 1}, {3, "2001:db8::23", 0, 1}};
  c.services.push_back(v6);
  Host h(c);
  struct Case {
    const char* vip;
    uint16_t port;
  };
  int checked = 0;
  for (const Case& k :
       {Case{"10.100.0.1", 80}, Case{"10.100.0.2", 443}, Case{"2001:db8::10", 443}}) {
    const IpAddr vip = Ip(k.vip);
    const Service* svc = h.snap().Find(vip, k.port, inet::ip_proto::kTcp);
    ASSERT_NE(svc, nullptr) << k.vip;
    std::set<uint32_t> picked;
    for (uint32_t i = 0; i < 200; ++i) {
      char client[64];
      if (vip.is_v4()) {
        std::snprintf(client, sizeof(client), "198.18.%u.%u", i / 200, i % 200 + 1);
      } else {
        std::snprintf(client, sizeof(client), "2001:db8:1::%x", i + 1);
      }
      const uint16_t sport = static_cast<uint16_t>(20000 + 7 * i);
      PacketBuilder b;
      b.Eth(kRouterMac, kPortMac);
      if (vip.is_v4()) {
        b.Ipv4(Ip(client), vip).Df(true);
      } else {
        b.Ipv6(Ip(client), vip);
      }
      std::vector<uint8_t> out;
      ASSERT_EQ(h.Run(b.Tcp(sport, k.port, 0x02).Build(), &out), Verdict::kTx);
      const FlowTuple flow = test_support::FlowOf(client, sport, k.vip, k.port);
      const BackendEntry& want =
          svc->backends[svc->table->Lookup(PlaceFlow(*svc, flow).maglev_hash)];
      ASSERT_EQ(MacAddr::FromBytes(out.data()), BackendMac(want.addr)) << k.vip << " " << client;
      picked.insert(want.id);
      ++checked;
    }
    EXPECT_GT(picked.size(), 1u) << k.vip;
  }
  EXPECT_EQ(checked, 600);
}

// The snapshot's IPv4 index (and the IPv6 map) find every service and nothing else.
TEST(SnapshotTest, FindsEveryServiceAndOnlyThose) {
  control::Config c = BaseConfig();
  c.services.clear();
  for (int i = 0; i < 200; ++i) {
    control::ServiceConfig s;
    s.vip = "10.100." + std::to_string(i / 50) + "." + std::to_string(i % 50 + 1);
    s.port = static_cast<uint16_t>(80 + i % 3);
    s.protocol = i % 2 ? control::Protocol::kUdp : control::Protocol::kTcp;
    s.backends.push_back({1, "10.0.0.21", 0, 1});
    c.services.push_back(s);
  }
  control::ServiceConfig v6;
  v6.vip = "2001:db8::10";
  v6.port = 443;
  v6.backends.push_back({1, "2001:db8::21", 0, 1});
  c.services.push_back(v6);
  control::SnapshotBuilder b(kPortMac);
  auto snap = b.Build(c);
  ASSERT_TRUE(snap.ok()) << snap.status();
  for (const auto& s : c.services) {
    uint8_t proto = static_cast<uint8_t>(s.protocol);
    const Service* found = (*snap)->Find(Ip(s.vip), s.port, proto);
    ASSERT_NE(found, nullptr) << s.Name();
    EXPECT_EQ(found->key.port, s.port);
    EXPECT_EQ(found->key.vip, Ip(s.vip));
    EXPECT_TRUE((*snap)->IsVip(Ip(s.vip)));
    EXPECT_EQ((*snap)->Find(Ip(s.vip), static_cast<uint16_t>(s.port + 100), proto), nullptr);
    EXPECT_EQ(
        (*snap)->Find(Ip(s.vip), s.port, proto == 6 ? 17 : 6) == nullptr,
        c.FindService(s.vip, s.port,
                      proto == 6 ? control::Protocol::kUdp : control::Protocol::kTcp) == nullptr);
  }
  EXPECT_FALSE((*snap)->IsVip(Ip("10.100.9.9")));
  EXPECT_FALSE((*snap)->IsVip(Ip("2001:db8::11")));
  EXPECT_EQ((*snap)->Find(Ip("10.0.0.11"), 80, 6), nullptr);
}

TEST(PipelineTest, Ipv6DrFlowsAreTrackedAndKeepTheirBackend) {
  control::Config c = BaseConfig();
  control::ServiceConfig v6;
  v6.vip = "2001:db8::10";
  v6.port = 443;
  v6.backends = {{1, "2001:db8::21", 0, 1}, {2, "2001:db8::22", 0, 1}};
  c.services.push_back(v6);
  Host h(c);
  auto pkt = [](uint16_t sport, uint8_t flags) {
    return PacketBuilder()
        .Eth(kRouterMac, kPortMac)
        .Ipv6(Ip("2001:db8:1::7"), Ip("2001:db8::10"))
        .Tcp(sport, 443, flags)
        .Build();
  };
  std::set<std::string> macs;
  for (uint16_t port = 3000; port < 3100; ++port) {
    std::vector<uint8_t> out, again;
    ASSERT_EQ(h.Run(pkt(port, 0x02), &out), Verdict::kTx);
    ASSERT_EQ(h.Run(pkt(port, 0x10), &again), Verdict::kTx);
    EXPECT_EQ(MacAddr::FromBytes(out.data()), MacAddr::FromBytes(again.data()));
    EXPECT_EQ(MacAddr::FromBytes(out.data() + 6), kPortMac);
    macs.insert(MacAddr::FromBytes(out.data()).ToString());
  }
  EXPECT_EQ(macs.size(), 2u);  // both backends used
  EXPECT_EQ(h.Count(Counter::conntrack_insert), 100u);
  EXPECT_EQ(h.Count(Counter::conntrack_hit), 100u);
}

// Frames over copies of `pkts`, each with 128 bytes of headroom, for one Process call.
struct Burst {
  explicit Burst(const std::vector<std::vector<uint8_t>>& pkts) {
    for (const auto& p : pkts) {
      bufs.emplace_back(128 + p.size());
      std::copy(p.begin(), p.end(), bufs.back().begin() + 128);
    }
    for (auto& b : bufs)
      frames.push_back(Frame{b.data() + 128, static_cast<uint32_t>(b.size() - 128), 128});
  }
  std::vector<std::vector<uint8_t>> bufs;
  std::vector<Frame> frames;
};

TEST(PipelineTest, BurstMixesVerdicts) {
  Host h(BaseConfig());
  std::vector<std::vector<uint8_t>> pkts;
  for (int i = 0; i < 32; ++i) {
    if (i % 4 == 0) {
      pkts.push_back(PacketBuilder()
                         .Eth(kRouterMac, kPortMac)
                         .Ipv4(Ip("10.0.0.1"), Ip("10.0.0.11"))
                         .Icmp(8, 0)
                         .Build());
    } else if (i % 4 == 1) {
      pkts.push_back(Syn(static_cast<uint16_t>(100 + i), "192.0.2.7", "10.100.0.1", 9999));
    } else {
      pkts.push_back(Syn(static_cast<uint16_t>(100 + i)));
    }
  }
  Burst burst(pkts);
  Frame* frames = burst.frames.data();
  Verdict v[32];
  conntrack::Options o;
  o.capacity = 1024;
  auto t = *conntrack::Table::Create(o);
  WorkerCounters c;
  Pipeline p(t.get(), &c, &h.neighbors());
  p.Process(h.snap(), std::span<Frame>(frames, 32), 5, std::span<Verdict>(v, 32));
  for (int i = 0; i < 32; ++i) {
    Verdict want = i % 4 == 0 ? Verdict::kException : i % 4 == 1 ? Verdict::kDrop : Verdict::kTx;
    EXPECT_EQ(v[i], want) << i;
  }
  EXPECT_EQ(c.Get(Counter::conntrack_insert), 16u);
}

// A new flow whose first packets share a burst is tracked once: the later packets find the
// entry the first one made (the pipeline skips the table's duplicate search only for a miss
// no earlier packet of the burst could have inserted).
TEST(PipelineTest, NewFlowRepeatedInABurstIsTrackedOnce) {
  Host h(BaseConfig());
  for (int round = 0; round < 2; ++round) {
    std::vector<std::vector<uint8_t>> pkts;
    std::set<uint16_t> distinct;
    for (int i = 0; i < 32; ++i) {
      // Ports repeat within the burst: 0, 1, 0, 3, 0, 5, ...; every third packet an ACK.
      const uint16_t sport =
          static_cast<uint16_t>(1000 * (round + 1) + (i % 2 ? i : 0) + (i % 8 == 6 ? -2 : 0));
      distinct.insert(sport);
      pkts.push_back(Syn(sport, "192.0.2.9", "10.100.0.1", 80, i % 3 ? 0x02 : 0x10));
    }
    Burst burst(pkts);
    Frame* frames = burst.frames.data();
    Verdict v[32];
    const size_t before = h.table().Count();
    Pipeline p(&h.table(), &h.counters(), &h.neighbors());
    p.Process(h.snap(), std::span<Frame>(frames, 32), 5, std::span<Verdict>(v, 32));
    EXPECT_EQ(h.table().Count() - before, distinct.size()) << "round " << round;
    std::map<uint16_t, std::vector<uint8_t>> mac_of;
    for (int i = 0; i < 32; ++i) {
      ASSERT_EQ(v[i], Verdict::kTx) << i;
      const uint16_t sport = LoadBe16(frames[i].data + 34);
      std::vector<uint8_t> mac(frames[i].data, frames[i].data + 6);
      auto [it, fresh] = mac_of.emplace(sport, mac);
      EXPECT_EQ(it->second, mac) << "flow " << sport << " split over two backends";
    }
    // Every packet's flow is found by a later packet.
    for (uint16_t sport : distinct) {
      std::vector<uint8_t> out;
      ASSERT_EQ(h.Run(Syn(sport, "192.0.2.9", "10.100.0.1", 80, 0x10), &out, 5), Verdict::kTx);
      EXPECT_EQ(std::vector<uint8_t>(out.begin(), out.begin() + 6), mac_of[sport]);
    }
  }
  EXPECT_EQ(h.Count(Counter::conntrack_untracked), 0u);
}

}  // namespace
}  // namespace ecmplb::dataplane
