// Tests of the exception path's policy: which packets are the priority kinds (validated:
// TTL rules, the host's subnet, backends' addresses), which are unsolicited, the token
// buckets (per worker per kind, one host-wide budget shared by workers), and the pipeline
// under a flood: OSPF, BFD and ARP for the host still reach the kernel while the flood is cut
// to the budget and counted.
#include "dataplane/exception_policy.h"

#include <gtest/gtest.h>

#include <memory>
#include <vector>

#include "control/config.h"
#include "control/snapshot_builder.h"
#include "dataplane/pipeline.h"
#include "tests/dataplane/packet_builder.h"

namespace ecmplb::dataplane {
namespace {

using testing::Ip;
using testing::Mac;
using testing::PacketBuilder;

const MacAddr kPortMac = Mac("02:00:00:00:00:01");
const MacAddr kRouterMac = Mac("02:00:00:00:00:fe");

std::unique_ptr<const Snapshot> MakeSnapshot(const char* exception_json = "{}") {
  auto c = control::ParseConfig(std::string(R"({
    "host": {"address": "10.0.0.11", "prefix_length": 24, "exception": )") +
                                exception_json + R"(},
    "services": [
      {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "dr",
       "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"}]}
    ]})");
  EXPECT_TRUE(c.ok()) << c.status();
  control::SnapshotBuilder b(kPortMac);
  auto s = b.Build(*c);
  EXPECT_TRUE(s.ok()) << s.status();
  return std::move(*s);
}

ExceptionClass Classify(const std::vector<uint8_t>& f, const Snapshot& snap) {
  ParsedPacket p;
  const ParseResult r = Parse(f, &p);
  return ClassifyException(f, r, p, snap);
}

std::vector<uint8_t> Arp(const char* target) {
  std::vector<uint8_t> payload(28, 0);
  payload[1] = 1;     // Ethernet
  payload[2] = 0x08;  // IPv4
  payload[4] = 6;
  payload[5] = 4;
  payload[7] = 1;  // request
  const IpAddr t = Ip(target);
  std::copy(t.bytes.begin(), t.bytes.begin() + 4, payload.begin() + 24);
  return PacketBuilder()
      .Eth(kRouterMac, Mac("ff:ff:ff:ff:ff:ff"))
      .RawEtherType(0x0806)
      .Payload(payload)
      .Build();
}

std::vector<uint8_t> Ospf(const char* src, uint8_t ttl) {
  return PacketBuilder()
      .Eth(kRouterMac, Mac("01:00:5e:00:00:05"))
      .Ipv4(Ip(src), Ip("224.0.0.5"))
      .Ttl(ttl)
      .Proto(89)
      .PayloadSize(40)
      .Build();
}

std::vector<uint8_t> Bfd(const char* src, uint8_t ttl) {
  return PacketBuilder()
      .Eth(kRouterMac, kPortMac)
      .Ipv4(Ip(src), Ip("10.0.0.11"))
      .Ttl(ttl)
      .Udp(49152, 3784)
      .PayloadSize(24)
      .Build();
}

std::vector<uint8_t> TcpToHost(const char* src, uint16_t sport, uint16_t dport, uint8_t flags) {
  return PacketBuilder()
      .Eth(kRouterMac, kPortMac)
      .Ipv4(Ip(src), Ip("10.0.0.11"))
      .Tcp(sport, dport, flags)
      .Build();
}

std::vector<uint8_t> UdpToHost(const char* src, uint16_t sport, uint16_t dport) {
  return PacketBuilder()
      .Eth(kRouterMac, kPortMac)
      .Ipv4(Ip(src), Ip("10.0.0.11"))
      .Udp(sport, dport)
      .PayloadSize(40)
      .Build();
}

std::vector<uint8_t> Ping(const char* dst) {
  return PacketBuilder()
      .Eth(kRouterMac, kPortMac)
      .Ipv4(Ip("198.51.100.9"), Ip(dst))
      .Icmp(8, 0)
      .Build();
}

TEST(ExceptionPolicyTest, PriorityKindsAreValidated) {
  auto snap = MakeSnapshot();
  EXPECT_EQ(Classify(Arp("10.0.0.11"), *snap), ExceptionClass::kArp);
  EXPECT_EQ(Classify(Arp("10.0.0.99"), *snap), ExceptionClass::kOther);  // not ours
  EXPECT_EQ(Classify(Ospf("10.0.0.1", 1), *snap), ExceptionClass::kOspf);
  EXPECT_EQ(Classify(Ospf("10.0.0.1", 64), *snap), ExceptionClass::kOther);     // routed
  EXPECT_EQ(Classify(Ospf("198.51.100.1", 1), *snap), ExceptionClass::kOther);  // off-segment
  EXPECT_EQ(Classify(Bfd("10.0.0.1", 255), *snap), ExceptionClass::kBfd);
  EXPECT_EQ(Classify(Bfd("10.0.0.1", 254), *snap), ExceptionClass::kUnsolicited);  // GTSM
  EXPECT_EQ(Classify(Bfd("198.51.100.1", 255), *snap), ExceptionClass::kUnsolicited);
  // Health-check replies: from a backend, not a bare SYN.
  EXPECT_EQ(Classify(TcpToHost("10.0.0.21", 80, 40000, 0x12), *snap), ExceptionClass::kHealthReply);
  EXPECT_EQ(Classify(TcpToHost("10.0.0.22", 80, 40001, 0x14), *snap), ExceptionClass::kHealthReply);
  EXPECT_EQ(Classify(TcpToHost("10.0.0.21", 80, 40000, 0x02), *snap), ExceptionClass::kUnsolicited);
  // UDP and DNS checks' replies: any UDP from a backend's address to the host's.
  EXPECT_EQ(Classify(UdpToHost("10.0.0.21", 53, 40000), *snap), ExceptionClass::kHealthReply);
  EXPECT_EQ(Classify(UdpToHost("10.0.0.99", 53, 40000), *snap), ExceptionClass::kUnsolicited);
  EXPECT_EQ(Classify(TcpToHost("10.0.0.1", 179, 40000, 0x12), *snap), ExceptionClass::kBgp);
  EXPECT_EQ(Classify(TcpToHost("10.0.0.1", 40000, 179, 0x02), *snap), ExceptionClass::kBgp);
}

TEST(ExceptionPolicyTest, EtcdAnswersInFleetModeArePriority) {
  auto c = control::ParseConfig(R"({
    "host": {"address": "10.0.0.11", "prefix_length": 24},
    "fleet": {"endpoints": ["http://10.0.0.30:2379", "https://10.0.5.1:2479/", "http://etcd.example:2379"],
              "cluster": "c", "cache_file": "/tmp/c"}})");
  ASSERT_TRUE(c.ok()) << c.status();
  control::SnapshotBuilder b(kPortMac);
  auto snap = b.Build(*c);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(Classify(TcpToHost("10.0.0.30", 2379, 40000, 0x12), **snap), ExceptionClass::kFleet);
  EXPECT_EQ(Classify(TcpToHost("10.0.5.1", 2479, 40000, 0x10), **snap), ExceptionClass::kFleet);
  // Another port of the same address, or the port from elsewhere: unsolicited as before.
  EXPECT_EQ(Classify(TcpToHost("10.0.0.30", 2380, 40000, 0x12), **snap), ExceptionClass::kUnsolicited);
  EXPECT_EQ(Classify(TcpToHost("10.0.0.31", 2379, 40000, 0x12), **snap), ExceptionClass::kUnsolicited);
  EXPECT_EQ((*snap)->host().exception.fleet_endpoint_count, 2u);  // a name is not an address
}

TEST(ExceptionPolicyTest, UnsolicitedTrafficToTheHostUnlessAllowed) {
  auto snap = MakeSnapshot();
  EXPECT_EQ(Classify(TcpToHost("198.51.100.9", 1234, 22, 0x02), *snap),
            ExceptionClass::kUnsolicited);
  EXPECT_EQ(Classify(Ping("10.0.0.11"), *snap), ExceptionClass::kOther);
  EXPECT_EQ(Classify(Ping("10.100.0.1"), *snap), ExceptionClass::kOther);  // echo to a VIP
  auto allowed = MakeSnapshot(R"({"allow": ["tcp/22", "udp/123"]})");
  EXPECT_EQ(Classify(TcpToHost("198.51.100.9", 1234, 22, 0x02), *allowed), ExceptionClass::kOther);
  EXPECT_EQ(Classify(TcpToHost("198.51.100.9", 1234, 23, 0x02), *allowed),
            ExceptionClass::kUnsolicited);
  auto open = MakeSnapshot(R"({"drop_unsolicited": false})");
  EXPECT_EQ(Classify(TcpToHost("198.51.100.9", 1234, 22, 0x02), *open), ExceptionClass::kOther);
}

TEST(ExceptionPolicyTest, SyncMessagesOnlyFromConfiguredPeers) {
  auto c = control::ParseConfig(R"({
    "host": {"address": "10.0.0.11", "prefix_length": 24, "exception": {"allow": ["udp/7400"]}},
    "sync": {"peers": ["10.0.0.12", "10.0.0.13"], "key_file": "/etc/ecmplb/sync.key"}})");
  ASSERT_TRUE(c.ok()) << c.status();
  control::SnapshotBuilder b(kPortMac);
  auto snap = b.Build(*c);
  ASSERT_TRUE(snap.ok());
  auto udp = [](const char* src, uint16_t dport) {
    return PacketBuilder()
        .Eth(kRouterMac, kPortMac)
        .Ipv4(Ip(src), Ip("10.0.0.11"))
        .Udp(7400, dport)
        .PayloadSize(100)
        .Build();
  };
  EXPECT_EQ(Classify(udp("10.0.0.12", 7400), **snap), ExceptionClass::kSync);
  EXPECT_EQ(Classify(udp("10.0.0.13", 7400), **snap), ExceptionClass::kSync);
  // Not a peer: dropped in the worker even though the port is allowlisted.
  EXPECT_EQ(Classify(udp("10.0.0.14", 7400), **snap), ExceptionClass::kUnsolicited);
  EXPECT_EQ(Classify(udp("198.51.100.9", 7400), **snap), ExceptionClass::kUnsolicited);
  // Bulk sync on TCP: a peer asking (to our port) or answering (from its port), peers only.
  auto tcp = [](const char* src, uint16_t sport, uint16_t dport) {
    return TcpToHost(src, sport, dport, 0x10);  // ACK
  };
  EXPECT_EQ(Classify(tcp("10.0.0.12", 40001, 7400), **snap), ExceptionClass::kSync);
  EXPECT_EQ(Classify(tcp("10.0.0.13", 7400, 40002), **snap), ExceptionClass::kSync);
  EXPECT_EQ(Classify(tcp("10.0.0.14", 40001, 7400), **snap), ExceptionClass::kUnsolicited);
  EXPECT_EQ(Classify(tcp("198.51.100.9", 7400, 40002), **snap), ExceptionClass::kUnsolicited);
  // Sync off: the port is only what the allowlist says.
  auto off = MakeSnapshot(R"({"allow": ["udp/7400"]})");
  EXPECT_EQ(Classify(udp("10.0.0.12", 7400), *off), ExceptionClass::kOther);
}

// IPv6 on the host (host.address6): OSPFv3 from a link-local address with hop limit 1,
// neighbour discovery only with hop limit 255, BFD from the host's IPv6 subnet or link-local,
// health replies from IPv6 backends, unsolicited TCP/UDP to address6 dropped.
TEST(ExceptionPolicyTest, Ipv6HostKindsAreValidated) {
  auto c = control::ParseConfig(R"({
    "host": {"address": "10.0.0.11", "address6": "2001:db8:a::11", "prefix_length6": 64},
    "services": [
      {"vip": "2001:db8:f::1", "port": 80, "protocol": "tcp", "forward": "dr",
       "backends": [{"id": 1, "address": "2001:db8:a::21"}]}]})");
  ASSERT_TRUE(c.ok()) << c.status();
  control::SnapshotBuilder b(kPortMac);
  auto snap = b.Build(*c);
  ASSERT_TRUE(snap.ok()) << snap.status();
  const Snapshot& s = **snap;
  auto v6 = [](const char* src, const char* dst, uint8_t hop_limit) {
    PacketBuilder pb;
    pb.Eth(kRouterMac, kPortMac).Ipv6(Ip(src), Ip(dst)).Ttl(hop_limit);
    return pb;
  };
  // OSPFv3 hellos: link-local source, hop limit 1.
  EXPECT_EQ(Classify(v6("fe80::1", "ff02::5", 1).Proto(89).PayloadSize(40).Build(), s),
            ExceptionClass::kOspf);
  EXPECT_EQ(Classify(v6("fe80::1", "ff02::5", 2).Proto(89).PayloadSize(40).Build(), s),
            ExceptionClass::kOther);
  EXPECT_EQ(Classify(v6("2001:db8:a::1", "ff02::5", 1).Proto(89).PayloadSize(40).Build(), s),
            ExceptionClass::kOther);
  // Neighbour solicitation / advertisement: hop limit 255 only.
  EXPECT_EQ(Classify(v6("fe80::1", "ff02::1:ff00:11", 255).Icmp(135, 0).PayloadSize(16).Build(), s),
            ExceptionClass::kNd);
  EXPECT_EQ(Classify(v6("2001:db8:a::21", "2001:db8:a::11", 255).Icmp(136, 0).PayloadSize(16)
                         .Build(),
                     s),
            ExceptionClass::kNd);
  EXPECT_EQ(Classify(v6("2001:db8:9::1", "2001:db8:a::11", 64).Icmp(135, 0).PayloadSize(16)
                         .Build(),
                     s),
            ExceptionClass::kOther);
  // BFD to address6: hop limit 255 from the subnet or a link-local address.
  EXPECT_EQ(Classify(v6("2001:db8:a::1", "2001:db8:a::11", 255).Udp(49152, 3784).PayloadSize(24)
                         .Build(),
                     s),
            ExceptionClass::kBfd);
  EXPECT_EQ(Classify(v6("fe80::1", "2001:db8:a::11", 255).Udp(49152, 3784).PayloadSize(24).Build(),
                     s),
            ExceptionClass::kBfd);
  EXPECT_EQ(Classify(v6("2001:db8:9::1", "2001:db8:a::11", 255).Udp(49152, 3784).PayloadSize(24)
                         .Build(),
                     s),
            ExceptionClass::kUnsolicited);
  // BFD sessions of OSPFv3 neighbours run between link-local addresses (the host's own
  // link-local address is the kernel's, unknown to the worker: any link-local destination).
  EXPECT_EQ(Classify(v6("fe80::1", "fe80::11", 255).Udp(49152, 3784).PayloadSize(24).Build(), s),
            ExceptionClass::kBfd);
  EXPECT_EQ(Classify(v6("fe80::1", "fe80::11", 254).Udp(49152, 3784).PayloadSize(24).Build(), s),
            ExceptionClass::kOther);
  EXPECT_EQ(Classify(v6("2001:db8:9::1", "fe80::11", 255).Udp(49152, 3784).PayloadSize(24).Build(),
                     s),
            ExceptionClass::kOther);
  // A health-check reply from an IPv6 backend; a SYN from anywhere else is unsolicited.
  EXPECT_EQ(Classify(v6("2001:db8:a::21", "2001:db8:a::11", 64).Tcp(80, 40000, 0x12).Build(), s),
            ExceptionClass::kHealthReply);
  EXPECT_EQ(Classify(v6("2001:db8:9::1", "2001:db8:a::11", 64).Tcp(40000, 22, 0x02).Build(), s),
            ExceptionClass::kUnsolicited);
  // Without address6, nothing is addressed to the host over IPv6.
  auto plain = MakeSnapshot();
  EXPECT_EQ(Classify(v6("2001:db8:9::1", "2001:db8:a::11", 64).Tcp(40000, 22, 0x02).Build(),
                     *plain),
            ExceptionClass::kOther);
}

TEST(ExceptionPolicyTest, BadAllowEntriesAreRefusedWithTheirPath) {
  auto c = control::ParseConfig(R"({"host": {"address": "10.0.0.11",
      "exception": {"allow": ["tcp/22", "ssh"]}}, "services": []})");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("host.exception.allow[1]"), std::string::npos)
      << c.status();
  c = control::ParseConfig(R"({"host": {"address": "10.0.0.11",
      "exception": {"rate": 5}}, "services": []})");
  ASSERT_FALSE(c.ok());
  EXPECT_NE(std::string(c.status().message()).find("host.exception.rate"), std::string::npos);
}

TEST(ExceptionPolicyTest, GcraAllowsTheBurstThenTheRate) {
  Gcra g;
  const uint64_t interval = 100, burst = 10 * interval;  // 11 at once, then one per 100 ticks
  int allowed = 0;
  for (int i = 0; i < 100; ++i) allowed += g.Take(5000, interval, burst);
  EXPECT_EQ(allowed, 11);
  allowed = 0;
  for (uint64_t t = 5000; t < 15000; ++t) allowed += g.Take(t, interval, burst);
  EXPECT_EQ(allowed, 99);  // at 5100, 5200, ..., 14900: one per 100 ticks once the burst is spent
}

// Two workers draw on one host-wide budget: together they get the budget, not twice it.
TEST(ExceptionPolicyTest, WorkersShareOneHostWideBudget) {
  ExceptionPolicy p;
  p.rate_pps = 1000;
  p.burst = 100;
  SharedTokenBucket shared;
  const uint64_t hz = 1'000'000;
  ExceptionLimiter a(&shared, hz), b(&shared, hz);
  a.Configure(p);
  b.Configure(p);
  uint64_t passed = 0;
  // One second of a flood on both workers: 1000 pps + the burst (+ chunks in hand).
  for (uint64_t t = 0; t < hz; t += 10) {
    passed += a.Allow(ExceptionClass::kOther, hz + t);
    passed += b.Allow(ExceptionClass::kOther, hz + t);
  }
  EXPECT_GE(passed, 1000u);
  EXPECT_LE(passed, 1000u + 100u + 2 * 2 * ExceptionLimiter::kChunk);
  // Priority kinds do not draw on it: each has its own per-worker bound.
  int ospf = 0;
  for (uint64_t t = 0; t < 100; ++t) ospf += a.Allow(ExceptionClass::kOspf, 2 * hz + t * 1000);
  EXPECT_EQ(ospf, 100);
  EXPECT_FALSE(a.Allow(ExceptionClass::kUnsolicited, 3 * hz));
}

// The pipeline under a flood of pings and SYNs to the host: the flood is cut to the budget
// and counted; OSPF, BFD and ARP for the host keep reaching the kernel; every frame is
// counted once (exception, exception_rate_limited or drop_unsolicited).
TEST(ExceptionPolicyTest, FloodIsLimitedAndPriorityTrafficStillPasses) {
  auto snap = MakeSnapshot(R"({"rate_pps": 1000, "burst": 100, "priority_pps": 100})");
  conntrack::Options o;
  o.capacity = 4096;
  auto table = *conntrack::Table::Create(o);
  WorkerCounters counters;
  NeighborTable neighbors;
  PipelineOptions po;
  po.ticks_per_second = 1'000'000;
  Pipeline pipeline(table.get(), &counters, &neighbors, po);
  auto run = [&](const std::vector<uint8_t>& in, uint64_t ticks) {
    std::vector<uint8_t> buf(in);
    Frame f{buf.data(), static_cast<uint32_t>(buf.size()), 0};
    Verdict v;
    pipeline.SetTicks(ticks);
    pipeline.Process(*snap, std::span<Frame>(&f, 1), 100, std::span<Verdict>(&v, 1));
    return v;
  };
  const auto ping = Ping("10.0.0.11");
  const auto syn = TcpToHost("198.51.100.9", 1234, 8080, 0x02);
  int ospf_passed = 0, bfd_passed = 0, arp_passed = 0;
  uint64_t sent = 0;
  // 1 s of flood at 100,000 pps, with a hello, a BFD packet and an ARP every 10 ms.
  for (uint64_t t = 1'000'000; t < 2'000'000; t += 10) {
    run(t % 20 == 0 ? ping : syn, t);
    ++sent;
    if (t % 10'000 == 0) {
      ospf_passed += run(Ospf("10.0.0.1", 1), t) == Verdict::kException;
      bfd_passed += run(Bfd("10.0.0.1", 255), t) == Verdict::kException;
      arp_passed += run(Arp("10.0.0.11"), t) == Verdict::kException;
      sent += 3;
    }
  }
  EXPECT_EQ(ospf_passed, 100);
  EXPECT_EQ(bfd_passed, 100);
  EXPECT_EQ(arp_passed, 100);
  EXPECT_EQ(counters.Get(Counter::drop_unsolicited), 50000u);  // every SYN
  const uint64_t pings_passed = counters.Get(Counter::exception) - 300;
  EXPECT_GE(pings_passed, 1000u);
  EXPECT_LE(pings_passed, 1100u + 2 * ExceptionLimiter::kChunk);
  EXPECT_EQ(counters.Get(Counter::exception_priority), 300u);
  EXPECT_EQ(counters.Get(Counter::exception) + counters.Get(Counter::exception_rate_limited) +
                counters.Get(Counter::exception_priority_limited) +
                counters.Get(Counter::drop_unsolicited),
            sent);
}

}  // namespace
}  // namespace ecmplb::dataplane
