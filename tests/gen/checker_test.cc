// Tests of ecmplb-gen's checker: frames forwarded by the real ecmplb pipeline (a snapshot from
// the same config) are ok; a wrong MAC, a flipped byte, a flow seen at two backends, foreign
// and non-test frames are each counted as such; loopback mode; sampling; latency; and no read
// out of bounds on truncated or random input.
#include "bench/gen/checker.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "bench/gen/frame_builder.h"
#include "dataplane/packet/checksum.h"
#include "dataplane/packet/encap.h"
#include "tests/gen/gen_fixture.h"

namespace ecmplb::gen {
namespace {

using testing::Balancer;
using testing::MakeModel;
using testing::TestConfig;
using testing::TestModelOptions;

std::vector<uint8_t> Frame(const TrafficModel& m, uint64_t flow, uint32_t seq, uint32_t ts) {
  std::vector<uint8_t> f(2048);
  f.resize(BuildFrame(m, flow, seq, ts, f.data()));
  return f;
}

class CheckerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = MakeModel();
    ASSERT_NE(model_, nullptr);
  }
  std::vector<uint8_t> Forwarded(uint64_t flow, uint32_t seq, uint32_t ts) {
    auto out = lb_.Forward(Frame(*model_, flow, seq, ts));
    EXPECT_FALSE(out.empty()) << "ecmplb dropped flow " << flow;
    return out;
  }

  std::unique_ptr<const TrafficModel> model_;
  Balancer lb_{TestConfig()};
};

TEST_F(CheckerTest, FramesForwardedByEcmplbAreOk) {
  Checker c(*model_, CheckerOptions{});
  for (uint64_t flow = 0; flow < 2000; ++flow) {
    const uint32_t ts = static_cast<uint32_t>(flow * 1000);
    EXPECT_EQ(c.Check(Forwarded(flow, 1, ts), ts + 5000), Verdict::kOk)
        << "flow " << flow << " service " << model_->service(model_->ServiceOf(flow)).name;
  }
  // New flows (SYNs) too.
  for (uint64_t flow = model_->flows(); flow < model_->flows() + 500; ++flow) {
    EXPECT_EQ(c.Check(Forwarded(flow, 0, 0), 1), Verdict::kOk) << flow;
  }
  EXPECT_EQ(c.counts().ok, 2500u);
  EXPECT_EQ(c.counts().checked, 2500u);
  EXPECT_EQ(c.counts().errors(), 0u);
  EXPECT_EQ(c.latency().count(), 2500u);
  EXPECT_EQ(c.latency().min(), 1u);
  EXPECT_EQ(c.latency().max(), 5000u);
}

TEST_F(CheckerTest, GreOuterHeaderChecked) {
  Checker c(*model_, CheckerOptions{});
  auto f = Forwarded(1, 1, 1);  // service 1: GRE, on-link backends
  ASSERT_EQ(f.size(), 60u + dataplane::kGreOverhead);
  EXPECT_EQ(f[14 + 9], inet::ip_proto::kGre);
  EXPECT_EQ(c.Check(f, 2), Verdict::kOk);
  // Outer source address must be the tunnel source.
  auto bad = Forwarded(6, 1, 1);
  bad[14 + 12 + 3] ^= 1;
  bad[14 + 10] = 0;
  bad[14 + 11] = 0;
  dataplane::StoreBe16(bad.data() + 24, dataplane::Ipv4HeaderChecksum(
                                            std::span<const uint8_t>(bad.data() + 14, 20)));
  EXPECT_EQ(c.Check(bad, 2), Verdict::kCorrupt);
  // Off-link backend (service 2): outer MAC is the gateway's.
  auto off = Forwarded(2, 1, 1);
  EXPECT_EQ(dataplane::MacAddr::FromBytes(off.data()), NeighborMac(*IpAddr::Parse("10.0.0.1")));
  EXPECT_EQ(c.Check(off, 2), Verdict::kOk);
}

// IPIP and GUE (the two GRE UDP services switched to them, IPv4 and IPv6 inside): every
// forwarded frame checks; a changed outer byte is corrupt.
TEST(CheckerTunnelTest, IpipAndGueOuterHeadersChecked) {
  for (const control::ForwardMode mode : {control::ForwardMode::kIpip, control::ForwardMode::kGue}) {
    control::Config config = TestConfig();
    config.services[1].forward = mode;
    config.services[4].forward = mode;
    config.host.gue_port = 7777;
    auto model = MakeModel(TestModelOptions(), config);
    ASSERT_NE(model, nullptr);
    Balancer lb(config);
    Checker c(*model, CheckerOptions{});
    const size_t overhead =
        mode == control::ForwardMode::kGue ? dataplane::kGueOverhead : dataplane::kIpipOverhead;
    for (uint64_t flow = 0; flow < 200; ++flow) {
      auto f = lb.Forward(Frame(*model, flow, 1, 1));
      ASSERT_FALSE(f.empty()) << flow;
      EXPECT_EQ(c.Check(f, 2), Verdict::kOk) << "flow " << flow;
    }
    auto f = lb.Forward(Frame(*model, 1, 2, 1));  // service 1
    ASSERT_EQ(f.size(), 60u + overhead);
    EXPECT_EQ(f[14 + 9], mode == control::ForwardMode::kGue ? inet::ip_proto::kUdp
                                                              : inet::ip_proto::kIpip);
    auto g = lb.Forward(Frame(*model, 4, 2, 1));  // service 4: IPv6 inside
    if (mode == control::ForwardMode::kIpip) {
      EXPECT_EQ(g[14 + 9], inet::ip_proto::kIpv6);
    }
    if (mode == control::ForwardMode::kGue) {
      EXPECT_EQ(dataplane::LoadBe16(f.data() + 14 + 22), 7777);
      f[14 + 25] ^= 1;  // UDP length
      EXPECT_EQ(c.Check(f, 2), Verdict::kCorrupt);
    } else {
      f[14 + 8] ^= 1;  // TTL (and so the checksum)
      EXPECT_EQ(c.Check(f, 2), Verdict::kCorrupt);
    }
  }
}

TEST_F(CheckerTest, WrongBackendMovedCorrupt) {
  Checker c(*model_, CheckerOptions{});
  const uint64_t flow = 10;  // service 0: DR, 4 backends
  const int32_t want = model_->ExpectedBackend(flow);
  const MacAddr other = model_->service(0).next_hop_mac[static_cast<size_t>((want + 1) % 4)];
  // First seen at a wrong backend.
  auto f = Forwarded(flow, 1, 1);
  std::copy(other.bytes.begin(), other.bytes.end(), f.begin());
  EXPECT_EQ(c.Check(f, 2), Verdict::kWrongBackend);
  // Then at the expected one: moved (first seen wins).
  EXPECT_EQ(c.Check(Forwarded(flow, 2, 1), 2), Verdict::kMoved);

  // A flow first ok, then elsewhere: moved.
  EXPECT_EQ(c.Check(Forwarded(15, 1, 1), 2), Verdict::kOk);
  auto g = Forwarded(15, 2, 1);
  const int32_t w15 = model_->ExpectedBackend(15);
  const MacAddr o15 = model_->service(0).next_hop_mac[static_cast<size_t>((w15 + 1) % 4)];
  std::copy(o15.bytes.begin(), o15.bytes.end(), g.begin());
  EXPECT_EQ(c.Check(g, 2), Verdict::kMoved);

  // A MAC that is no backend's: wrong backend.
  auto h = Forwarded(20, 1, 1);
  h[5] ^= 0x80;
  EXPECT_EQ(c.Check(h, 2), Verdict::kWrongBackend);

  // Any flipped byte after the MACs: corrupt (source MAC, TOS, sequence number, payload); a
  // flipped destination address or port makes it no flow of ours (unknown), a flipped
  // EtherType no IP at all (other).
  struct Flip {
    size_t at;
    Verdict v;
  };
  for (Flip x :
       {Flip{6, Verdict::kCorrupt}, Flip{12, Verdict::kOther}, Flip{15, Verdict::kCorrupt},
        Flip{30, Verdict::kUnknown}, Flip{36, Verdict::kUnknown}, Flip{40, Verdict::kCorrupt},
        Flip{50, Verdict::kCorrupt}, Flip{59, Verdict::kCorrupt}}) {
    auto y = Forwarded(25, 1, 1);
    y[x.at] ^= 0x01;
    EXPECT_EQ(c.Check(y, 2), x.v) << "byte " << x.at;
  }
  EXPECT_EQ(c.counts().wrong_backend, 2u);
  EXPECT_EQ(c.counts().moved, 2u);
  EXPECT_EQ(c.counts().corrupt, 5u);
  EXPECT_EQ(c.counts().unknown, 2u);
  EXPECT_EQ(c.counts().other, 1u);
}

TEST_F(CheckerTest, OtherAndUnknown) {
  Checker c(*model_, CheckerOptions{});
  // ARP.
  std::vector<uint8_t> arp(60, 0);
  arp[12] = 0x08;
  arp[13] = 0x06;
  EXPECT_EQ(c.Check(arp, 0), Verdict::kOther);
  // OSPF (IPv4 protocol 89) and ICMP.
  auto f = Frame(*model_, 0, 1, 1);
  f[14 + 9] = inet::ip_proto::kOspf;
  EXPECT_EQ(c.Check(f, 0), Verdict::kOther);
  f[14 + 9] = inet::ip_proto::kIcmp;
  EXPECT_EQ(c.Check(f, 0), Verdict::kOther);
  // TCP from a foreign client.
  auto g = Forwarded(0, 1, 1);
  g[14 + 12] = 10;
  EXPECT_EQ(c.Check(g, 0), Verdict::kUnknown);
  // From the balancer's own address (10.0.0.11: its kernel's flow sync or health checks).
  auto h = Frame(*model_, 0, 1, 1);  // plain IPv4 (the flow may be a GRE service's)
  const uint8_t host[4] = {10, 0, 0, 11};
  std::copy(host, host + 4, h.begin() + 14 + 12);
  EXPECT_EQ(c.Check(h, 0), Verdict::kOther);
  // A frame that ecmplb did not forward (as sent): the source MAC is not the balancer's.
  EXPECT_EQ(c.Check(Frame(*model_, 30, 1, 1), 0), Verdict::kCorrupt);
  // Without the source MAC check: the destination MAC is no backend's.
  Checker lax(*model_, CheckerOptions{.check_src_mac = false});
  EXPECT_EQ(lax.Check(Frame(*model_, 30, 1, 1), 0), Verdict::kWrongBackend);
  EXPECT_EQ(c.counts().other, 4u);
  EXPECT_EQ(c.counts().test_packets(), 2u);
}

TEST_F(CheckerTest, Loopback) {
  Checker c(*model_, CheckerOptions{.mode = ExpectMode::kLoopback});
  for (uint64_t flow = 0; flow < 50; ++flow) {
    auto f = Frame(*model_, flow, 3, 4);
    uint8_t tmp[6];
    std::copy(f.begin(), f.begin() + 6, tmp);
    std::copy(f.begin() + 6, f.begin() + 12, f.begin());
    std::copy(tmp, tmp + 6, f.begin() + 6);
    EXPECT_EQ(c.Check(f, 10), Verdict::kOk) << flow;
  }
  EXPECT_EQ(c.Check(Frame(*model_, 0, 3, 4), 10), Verdict::kWrongBackend);  // not swapped
  EXPECT_EQ(c.counts().ok, 50u);
}

TEST_F(CheckerTest, Sampling) {
  Checker c(*model_, CheckerOptions{.sample = 4});
  for (uint64_t flow = 0; flow < 100; ++flow) c.Check(Forwarded(flow, 1, 1), 2);
  EXPECT_EQ(c.counts().checked, 25u);
  EXPECT_EQ(c.counts().ok, 25u);
  EXPECT_EQ(c.counts().sampled_out, 75u);
  EXPECT_EQ(c.counts().rx_packets, 100u);
}

TEST_F(CheckerTest, LatencyWrapsModulo32Bits) {
  Checker c(*model_, CheckerOptions{});
  EXPECT_EQ(c.Check(Forwarded(0, 1, 0xFFFFFF00u), 0x100), Verdict::kOk);
  EXPECT_EQ(c.latency().max(), 0x200u);
}

TEST_F(CheckerTest, TruncatedAndRandomInputNeverReadOutOfBounds) {
  Checker c(*model_, CheckerOptions{});
  std::vector<std::vector<uint8_t>> valid;
  for (uint64_t flow = 0; flow < 5; ++flow) valid.push_back(Forwarded(flow, 1, 1));
  for (const auto& v : valid) {
    for (size_t n = 0; n < v.size(); ++n) {
      // An exact-size heap copy: ASan catches any read past it.
      std::vector<uint8_t> t(v.begin(), v.begin() + static_cast<ptrdiff_t>(n));
      const Verdict r = c.Check(t, 0);
      EXPECT_NE(r, Verdict::kOk) << n;
    }
  }
  std::mt19937 rng(12345);
  for (int i = 0; i < 20000; ++i) {
    std::vector<uint8_t> x;
    if (i % 2 == 0) {
      x.resize(rng() % 200);
      for (auto& b : x) b = static_cast<uint8_t>(rng());
    } else {
      x = valid[static_cast<size_t>(i) % valid.size()];
      for (int k = 0; k < 3; ++k) x[rng() % x.size()] = static_cast<uint8_t>(rng());
      x.resize(rng() % (x.size() + 1));
    }
    c.Check(x, 0);
  }
  EXPECT_EQ(c.counts().rx_packets,
            c.counts().other + c.counts().unknown + c.counts().checked + c.counts().sampled_out);
}

}  // namespace
}  // namespace ecmplb::gen
