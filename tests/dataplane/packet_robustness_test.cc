// Robustness of the packet code against hostile input: every truncation of a
// set of valid frames, and seeded random byte mutations (a bounded number).
// Each input lives in its own exactly-sized heap buffer so the
// AddressSanitizer build (suite 'asan') reports any read past the end; the
// test itself checks the parser's invariants and that the builders never
// claim more bytes than they were given.
#include <algorithm>
#include <memory>
#include <random>
#include <vector>

#include "dataplane/packet/encap.h"
#include "dataplane/packet/parse.h"
#include "gtest/gtest.h"
#include "tests/dataplane/packet_builder.h"

namespace ecmplb::dataplane {
namespace {

using testing::Ip;
using testing::Mac;
using testing::PacketBuilder;

std::vector<std::vector<uint8_t>> ValidFrames() {
  const IpAddr c4 = Ip("198.51.100.7");
  const IpAddr v4 = Ip("203.0.113.10");
  const IpAddr c6 = Ip("2001:db8:1::7");
  const IpAddr v6 = Ip("2001:db8:f::10");
  const auto reply4 =
      PacketBuilder().Ipv4(v4, c4).Ipv4Options(4).Tcp(80, 4000, 0x10).PayloadSize(64).BuildIp();
  const auto reply6 = PacketBuilder().Ipv6(v6, c6).Udp(53, 5353).PayloadSize(64).BuildIp();
  return {
      PacketBuilder().Ipv4(c4, v4).Df(true).Tcp(4000, 80, 0x02).Build(),
      PacketBuilder()
          .Vlan(100)
          .Ipv4(c4, v4)
          .Ipv4Options(12)
          .Tcp(1, 2, 0x18)
          .TcpOptions(12)
          .PayloadSize(30)
          .Build(),
      PacketBuilder().Ipv4(c4, v4).Udp(5, 6).PayloadSize(3).Padding(20).Build(),
      PacketBuilder().Ipv4(c4, v4).Mf(true).Udp(5, 6).PayloadSize(40).Build(),
      PacketBuilder().Ipv4(c4, v4).FragOffset(3).Proto(17).PayloadSize(20).Build(),
      PacketBuilder().Ipv4(c4, v4).Icmp(8, 0).PayloadSize(16).Build(),
      PacketBuilder().Ipv4(Ip("192.0.2.1"), v4).IcmpError(3, 4, 1400, reply4).Build(),
      PacketBuilder().Vlan(7).Ipv6(c6, v6).Tcp(1, 443, 0x02).TcpOptions(20).Build(),
      PacketBuilder().Ipv6(c6, v6).Udp(1, 53).PayloadSize(9).Build(),
      PacketBuilder().Ipv6(Ip("2001:db8::1"), v6).IcmpError(2, 0, 1280, reply6).Build(),
      PacketBuilder()
          .Ipv6(c6, v6)
          .Ipv6Extension(inet::ip_proto::kHopByHop, 8)
          .Ipv6Extension(inet::ip_proto::kIpv6Routing, 24)
          .Ipv6Fragment(0, true, 9)
          .Udp(1, 53)
          .PayloadSize(9)
          .Build(),
      PacketBuilder().Ipv6(c6, v6).Ipv6Fragment(3, true, 9).Proto(17).PayloadSize(24).Build(),
      PacketBuilder().RawEtherType(0x0806).PayloadSize(28).Build(),
  };
}

const MacAddr kMac = Mac("52:54:00:ab:cd:ef");

// Runs everything on one input held in an exactly-sized allocation.
void Exercise(const uint8_t* data, size_t len) {
  std::unique_ptr<uint8_t[]> owned(new uint8_t[len == 0 ? 1 : len]);
  std::copy(data, data + len, owned.get());
  const std::span<const uint8_t> frame(owned.get(), len);

  for (IpChecksumMode mode : {IpChecksumMode::kVerify, IpChecksumMode::kTrust}) {
    ParsedPacket p;
    const ParseResult r = Parse(frame, &p, mode);
    ASSERT_LT(static_cast<int>(r), static_cast<int>(ParseResult::kCount));
    // The fast path agrees with the general parser on every input.
    ParsedPacket g;
    ASSERT_EQ(internal::ParseGeneric(frame, &g, mode), r);
    if (r == ParseResult::kOk || r == ParseResult::kNotIp) {
      ASSERT_TRUE(g == p);
    }
    if (r != ParseResult::kOk) continue;
    // Invariants of a successful parse.
    ASSERT_TRUE(p.family == 4 || p.family == 6);
    ASSERT_LE(p.ip_end(), len);
    ASSERT_EQ(size_t{p.l4_offset}, size_t{p.l3_offset} + p.ip_header_len);
    ASSERT_LE(size_t{p.l4_offset}, p.ip_end());
    if (p.has_l4 && p.proto == inet::ip_proto::kTcp) {
      ASSERT_LE(size_t{p.l4_offset} + 20, p.ip_end());
    }
    if (p.has_l4) {
      ASSERT_LE(size_t{p.l4_offset} + 8, p.ip_end());
    }

    FlowTuple t;
    const ParseResult icmp = ParseIcmpErrorFlow(frame, p, &t);
    ASSERT_LT(static_cast<int>(icmp), static_cast<int>(ParseResult::kCount));

    // GRE into exactly headroom + frame.
    {
      std::unique_ptr<uint8_t[]> buf(new uint8_t[kGreOverhead + len]);
      std::copy(frame.begin(), frame.end(), buf.get() + kGreOverhead);
      const GreTunnel tunnel{kMac, kMac, IpAddr::V4(0x0A00000A), IpAddr::V4(0x0A000105)};
      const size_t n = EncapGre(std::span(buf.get(), kGreOverhead + len), p, tunnel);
      ASSERT_LE(n, kGreOverhead + len);
    }
    // ICMP builders in place on an exact copy, and into a small buffer.
    {
      std::unique_ptr<uint8_t[]> buf(new uint8_t[len]);
      std::copy(frame.begin(), frame.end(), buf.get());
      const std::span<uint8_t> io(buf.get(), len);
      size_t n = p.family == 4 ? BuildIcmpFragNeeded(io, io, p, kMac, 1476)
                               : BuildIcmpv6PacketTooBig(io, io, p, kMac, 1476);
      ASSERT_LE(n, len);
      std::unique_ptr<uint8_t[]> small(new uint8_t[100]);
      const std::span<uint8_t> out(small.get(), 100);
      n = p.family == 4 ? BuildIcmpFragNeeded(out, frame, p, kMac, 1476)
                        : BuildIcmpv6PacketTooBig(out, frame, p, kMac, 1476);
      ASSERT_LE(n, 100u);
    }
  }
  {
    std::unique_ptr<uint8_t[]> buf(new uint8_t[len == 0 ? 1 : len]);
    std::copy(frame.begin(), frame.end(), buf.get());
    RewriteDr(std::span(buf.get(), len), kMac, kMac);
  }
}

TEST(PacketRobustnessTest, EveryTruncationOfValidFrames) {
  for (const auto& f : ValidFrames()) {
    ParsedPacket p;
    const ParseResult full = Parse(f, &p);
    ASSERT_TRUE(full == ParseResult::kOk || full == ParseResult::kNotIp);
    for (size_t len = 0; len <= f.size(); ++len) {
      Exercise(f.data(), len);
      if (::testing::Test::HasFatalFailure()) {
        FAIL() << "truncated to " << len << " of " << f.size();
      }
    }
  }
}

TEST(PacketRobustnessTest, SeededRandomMutations) {
  std::mt19937 rng(20261122);
  constexpr int kIterationsPerFrame = 10000;
  for (const auto& base : ValidFrames()) {
    for (int i = 0; i < kIterationsPerFrame; ++i) {
      std::vector<uint8_t> f = base;
      const int edits = 1 + static_cast<int>(rng() % 4);
      for (int e = 0; e < edits; ++e) {
        // Mostly the headers (first 80 bytes), where the lengths live.
        const size_t span = (rng() % 4 != 0) ? std::min<size_t>(f.size(), 80) : f.size();
        f[rng() % span] = static_cast<uint8_t>(rng());
      }
      if (rng() % 4 == 0) f.resize(rng() % (f.size() + 1));
      if (rng() % 8 == 0) f.resize(f.size() + rng() % 16, 0);
      Exercise(f.data(), f.size());
      if (::testing::Test::HasFatalFailure()) {
        FAIL() << "mutation " << i << ": " << testing::ToHex(f);
      }
    }
  }
}

}  // namespace
}  // namespace ecmplb::dataplane
