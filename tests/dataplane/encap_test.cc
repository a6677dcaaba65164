// Golden-packet tests for dataplane/packet/encap.h: DR rewrite, GRE, IPIP and
// GUE encapsulation (IPv4/IPv6 inner, VLAN, padding) and the ICMP too-big
// builders. Expected headers are written out as hex where it pins the wire
// format; checksums are also checked with a naive sum written here.
#include "dataplane/packet/encap.h"

#include <vector>

#include "dataplane/packet/parse.h"
#include "gtest/gtest.h"
#include "tests/dataplane/packet_builder.h"

namespace ecmplb::dataplane {
namespace {

using testing::FromHex;
using testing::Ip;
using testing::Mac;
using testing::PacketBuilder;
using testing::ToHex;

const IpAddr kClient = Ip("198.51.100.7");
const IpAddr kVip = Ip("203.0.113.10");
const IpAddr kClient6 = Ip("2001:db8:1::7");
const IpAddr kVip6 = Ip("2001:db8:f::10");
const MacAddr kRouterMac = Mac("02:00:00:00:00:07");
const MacAddr kPortMac = Mac("52:54:00:ab:cd:ef");
const MacAddr kNextHopMac = Mac("52:54:00:12:34:56");
const MacAddr kBackendMac = Mac("02:00:00:00:01:05");

GreTunnel Tunnel() {
  return GreTunnel{kPortMac, kNextHopMac, Ip("10.0.0.10"), Ip("10.0.1.5")};
}

// Naive one's-complement sum, independent of checksum.h.
uint16_t NaiveSum(const uint8_t* p, size_t n, uint32_t s = 0) {
  for (size_t i = 0; i < n; i += 2) {
    s += uint32_t{p[i]} << 8;
    if (i + 1 < n) s += p[i + 1];
    while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  }
  return static_cast<uint16_t>(s);
}

std::vector<uint8_t> Slice(const std::vector<uint8_t>& v, size_t from, size_t len) {
  return std::vector<uint8_t>(v.begin() + from, v.begin() + from + len);
}

ParsedPacket MustParse(const std::vector<uint8_t>& f) {
  ParsedPacket p;
  EXPECT_EQ(Parse(f, &p), ParseResult::kOk);
  return p;
}

// The client's SYN to the VIP.
PacketBuilder Syn() {
  return PacketBuilder()
      .Eth(kRouterMac, kPortMac)
      .Ipv4(kClient, kVip)
      .Tos(0x28)
      .Ttl(61)
      .Id(0x1C46)
      .Df(true)
      .Tcp(40000, 80, inet::tcp_flag::kSyn);
}

// Frame with `headroom` bytes in front, as DPDK prepend leaves it.
std::vector<uint8_t> WithHeadroom(const std::vector<uint8_t>& frame,
                                  size_t headroom = kGreOverhead) {
  std::vector<uint8_t> buf(headroom + frame.size(), 0xEE);
  std::copy(frame.begin(), frame.end(), buf.begin() + headroom);
  return buf;
}

TEST(DrTest, OnlyTheMacsChange) {
  const auto frame = Syn().PayloadSize(20).Build();
  auto out = frame;
  RewriteDr(out, kPortMac, kBackendMac);
  const auto want_l2 = FromHex("02 00 00 00 01 05  52 54 00 ab cd ef  08 00");
  EXPECT_EQ(Slice(out, 0, 14), want_l2) << ToHex(Slice(out, 0, 14));
  EXPECT_EQ(Slice(out, 12, out.size() - 12), Slice(frame, 12, frame.size() - 12));

  std::vector<uint8_t> tiny(11, 0xAA);
  RewriteDr(tiny, kPortMac, kBackendMac);
  EXPECT_EQ(tiny, std::vector<uint8_t>(11, 0xAA));
}

TEST(GreTest, GoldenIpv4) {
  const auto frame = Syn().Build();
  const auto inner = Syn().BuildIp();
  ASSERT_EQ(inner.size(), 40u);
  const ParsedPacket p = MustParse(frame);
  auto buf = WithHeadroom(frame);
  const size_t n = EncapGre(buf, p, Tunnel());
  ASSERT_EQ(n, 14u + 24u + 40u);
  ASSERT_EQ(n, buf.size());

  auto want = FromHex(
      // Ethernet: next hop <- port, IPv4
      "52 54 00 12 34 56  52 54 00 ab cd ef  08 00"
      // IPv4: v4 IHL 5, TOS 0x28 (inner), len 64, id 0, DF, TTL 64, GRE,
      // checksum 0x2559, 10.0.0.10 -> 10.0.1.5
      "45 28 00 40  00 00 40 00  40 2f 25 59  0a 00 00 0a  0a 00 01 05"
      // GRE: no flags, version 0, protocol IPv4
      "00 00 08 00");
  want.insert(want.end(), inner.begin(), inner.end());
  EXPECT_EQ(buf, want) << "got\n" << ToHex(buf) << "\nwant\n" << ToHex(want);
  EXPECT_EQ(NaiveSum(buf.data() + 14, 20), 0xFFFF);

  // The result parses as a GRE packet to the backend.
  const ParsedPacket outer = MustParse(buf);
  EXPECT_EQ(outer.proto, inet::ip_proto::kGre);
  EXPECT_EQ(outer.src, Ip("10.0.0.10"));
  EXPECT_EQ(outer.dst, Ip("10.0.1.5"));
  EXPECT_EQ(outer.ip_total_len, 64u);
}

TEST(GreTest, GoldenIpv4WithVlanKeepsTag) {
  const auto frame = Syn().Vlan(0x2064).Build();
  const auto inner = Syn().BuildIp();
  const ParsedPacket p = MustParse(frame);
  auto buf = WithHeadroom(frame);
  const size_t n = EncapGre(buf, p, Tunnel());
  ASSERT_EQ(n, 18u + 24u + 40u);
  auto want = FromHex(
      "52 54 00 12 34 56  52 54 00 ab cd ef  81 00 20 64  08 00"
      "45 28 00 40  00 00 40 00  40 2f 25 59  0a 00 00 0a  0a 00 01 05"
      "00 00 08 00");
  want.insert(want.end(), inner.begin(), inner.end());
  EXPECT_EQ(buf, want) << "got\n" << ToHex(buf) << "\nwant\n" << ToHex(want);
}

TEST(GreTest, DfClearCopiesInnerId) {
  const auto frame = Syn().Df(false).Id(0x7777).Tos(0).PayloadSize(100).Build();
  const ParsedPacket p = MustParse(frame);
  auto buf = WithHeadroom(frame);
  const size_t n = EncapGre(buf, p, Tunnel());
  ASSERT_EQ(n, 14u + 24u + 140u);
  EXPECT_EQ(Slice(buf, 14, 10), FromHex("45 00 00 a4  77 77 00 00  40 2f"));
  EXPECT_EQ(NaiveSum(buf.data() + 14, 20), 0xFFFF);
  const ParsedPacket outer = MustParse(buf);
  EXPECT_FALSE(outer.dont_fragment);
  EXPECT_EQ(outer.ip_id, 0x7777);
}

TEST(GreTest, Ipv6Inner) {
  const auto frame = PacketBuilder()
                         .Eth(kRouterMac, kPortMac)
                         .Ipv6(kClient6, kVip6)
                         .Tos(0xB8)
                         .Tcp(50000, 443, inet::tcp_flag::kAck)
                         .PayloadSize(100)
                         .Build();
  const auto inner = Slice(frame, 14, frame.size() - 14);
  ASSERT_EQ(inner.size(), 160u);
  const ParsedPacket p = MustParse(frame);
  auto buf = WithHeadroom(frame);
  const size_t n = EncapGre(buf, p, Tunnel());
  ASSERT_EQ(n, 14u + 24u + 160u);
  // Outer total 184 = 0xb8, TOS = inner traffic class, DF set, GRE 0x86dd.
  EXPECT_EQ(Slice(buf, 0, 14), FromHex("52 54 00 12 34 56  52 54 00 ab cd ef  08 00"));
  EXPECT_EQ(Slice(buf, 14, 10), FromHex("45 b8 00 b8  00 00 40 00  40 2f"));
  EXPECT_EQ(Slice(buf, 26, 8), FromHex("0a 00 00 0a  0a 00 01 05"));
  EXPECT_EQ(NaiveSum(buf.data() + 14, 20), 0xFFFF);
  EXPECT_EQ(Slice(buf, 34, 4), FromHex("00 00 86 dd"));
  EXPECT_EQ(Slice(buf, 38, 160), inner);
}

TEST(IpipTest, GoldenIpv4) {
  const auto frame = Syn().Build();
  const auto inner = Syn().BuildIp();
  const ParsedPacket p = MustParse(frame);
  auto buf = WithHeadroom(frame, kIpipOverhead);
  const GreTunnel t = Tunnel();
  const size_t n = EncapIpip(buf, p, t.src_mac, t.dst_mac, t.tunnel_src, t.backend);
  ASSERT_EQ(n, 14u + 20u + 40u);
  ASSERT_EQ(n, buf.size());
  auto want = FromHex(
      "52 54 00 12 34 56  52 54 00 ab cd ef  08 00"
      // IPv4: TOS 0x28 (inner), len 60, id 0, DF, TTL 64, protocol 4 (IPv4 in IP),
      // checksum 0x2588, 10.0.0.10 -> 10.0.1.5; the inner packet right after
      "45 28 00 3c  00 00 40 00  40 04 25 88  0a 00 00 0a  0a 00 01 05");
  want.insert(want.end(), inner.begin(), inner.end());
  EXPECT_EQ(buf, want) << "got\n" << ToHex(buf) << "\nwant\n" << ToHex(want);
  EXPECT_EQ(NaiveSum(buf.data() + 14, 20), 0xFFFF);
}

TEST(IpipTest, Ipv6InnerIsProtocol41) {
  const auto frame = PacketBuilder()
                         .Eth(kRouterMac, kPortMac)
                         .Ipv6(kClient6, kVip6)
                         .Tos(0xB8)
                         .Tcp(50000, 443, inet::tcp_flag::kAck)
                         .PayloadSize(100)
                         .Build();
  const auto inner = Slice(frame, 14, frame.size() - 14);
  const ParsedPacket p = MustParse(frame);
  auto buf = WithHeadroom(frame, kIpipOverhead);
  const GreTunnel t = Tunnel();
  const size_t n = EncapIpip(buf, p, t.src_mac, t.dst_mac, t.tunnel_src, t.backend);
  ASSERT_EQ(n, 14u + 20u + 160u);
  EXPECT_EQ(Slice(buf, 14, 20),
            FromHex("45 b8 00 b4  00 00 40 00  40 29 24 5b  0a 00 00 0a  0a 00 01 05"));
  EXPECT_EQ(Slice(buf, 34, 160), inner);
}

TEST(GueTest, GoldenIpv4) {
  const auto frame = Syn().Vlan(0x2064).Build();
  const auto inner = Syn().BuildIp();
  const ParsedPacket p = MustParse(frame);
  auto buf = WithHeadroom(frame, kGueOverhead);
  const GreTunnel t = Tunnel();
  const size_t n =
      EncapGue(buf, p, t.src_mac, t.dst_mac, t.tunnel_src, t.backend, 0xC123, kGueDefaultPort);
  ASSERT_EQ(n, 18u + 28u + 40u);
  ASSERT_EQ(n, buf.size());
  auto want = FromHex(
      "52 54 00 12 34 56  52 54 00 ab cd ef  81 00 20 64  08 00"
      // IPv4: len 68, protocol 17, checksum 0x2573
      "45 28 00 44  00 00 40 00  40 11 25 73  0a 00 00 0a  0a 00 01 05"
      // UDP: 0xc123 -> 6080, length 48, checksum 0 (IPv4 outer); the inner packet follows
      "c1 23 17 c0  00 30 00 00");
  want.insert(want.end(), inner.begin(), inner.end());
  EXPECT_EQ(buf, want) << "got\n" << ToHex(buf) << "\nwant\n" << ToHex(want);
  EXPECT_EQ(NaiveSum(buf.data() + 18, 20), 0xFFFF);
  // It parses as UDP from the tunnel source to the backend's GUE port.
  const ParsedPacket outer = MustParse(buf);
  EXPECT_EQ(outer.proto, inet::ip_proto::kUdp);
  EXPECT_EQ(outer.dport, kGueDefaultPort);
}

// IPv6 outer headers (an IPv6 backend): GRE over IPv6 (RFC 7676) with IPv4 inside, IPv6 in
// IPv6 (RFC 2473), GUE over IPv6 with its full UDP checksum (RFC 6935), flow label from the
// flow hash.
const IpAddr kTunnelSrc6 = Ip("2001:db8:a::10");
const IpAddr kBackend6 = Ip("2001:db8:b::5");

TEST(Ipv6OuterTest, GoldenGreWithIpv4Inside) {
  const auto frame = Syn().Build();
  const auto inner = Syn().BuildIp();
  const ParsedPacket p = MustParse(frame);
  auto buf = WithHeadroom(frame, TunnelOverhead(dataplane::Tunnel::kGre, true));
  const size_t n =
      EncapGre(buf, p, kPortMac, kNextHopMac, kTunnelSrc6, kBackend6, 0x00000000000ABCDEULL);
  ASSERT_EQ(n, 14u + 44u + 40u);
  ASSERT_EQ(n, buf.size());
  auto want = FromHex(
      "52 54 00 12 34 56  52 54 00 ab cd ef  86 dd"
      // IPv6: traffic class 0x28 (inner TOS), flow label 0xabcde, payload 44, next header 47,
      // hop limit 64, 2001:db8:a::10 -> 2001:db8:b::5
      "62 8a bc de  00 2c 2f 40"
      "20 01 0d b8 00 0a 00 00 00 00 00 00 00 00 00 10"
      "20 01 0d b8 00 0b 00 00 00 00 00 00 00 00 00 05"
      // GRE: no flags, protocol IPv4
      "00 00 08 00");
  want.insert(want.end(), inner.begin(), inner.end());
  EXPECT_EQ(buf, want) << "got\n" << ToHex(buf) << "\nwant\n" << ToHex(want);
  const ParsedPacket outer = MustParse(buf);
  EXPECT_EQ(outer.family, 6);
  EXPECT_EQ(outer.proto, inet::ip_proto::kGre);
}

TEST(Ipv6OuterTest, IpipSixInSixIsNextHeader41AndFourInSixIs4) {
  const auto frame6 = PacketBuilder()
                          .Eth(kRouterMac, kPortMac)
                          .Ipv6(kClient6, kVip6)
                          .Tcp(50000, 443, inet::tcp_flag::kAck)
                          .PayloadSize(20)
                          .Build();
  for (const auto& frame : {frame6, Syn().Build()}) {
    const ParsedPacket p = MustParse(frame);
    auto buf = WithHeadroom(frame, TunnelOverhead(dataplane::Tunnel::kIpip, true));
    const size_t n = EncapIpip(buf, p, kPortMac, kNextHopMac, kTunnelSrc6, kBackend6, 7);
    ASSERT_EQ(n, frame.size() + 40u);
    const ParsedPacket outer = MustParse(buf);
    EXPECT_EQ(outer.family, 6);
    EXPECT_EQ(outer.proto, p.family == 6 ? inet::ip_proto::kIpv6 : inet::ip_proto::kIpip);
    EXPECT_EQ(outer.dst, kBackend6);
    EXPECT_EQ(outer.ip_total_len, 40u + p.ip_total_len);
    EXPECT_EQ(Slice(buf, 14 + 40, frame.size() - 14), Slice(frame, 14, frame.size() - 14));
  }
}

TEST(Ipv6OuterTest, GueOverIpv6CarriesAFullUdpChecksum) {
  const auto frame = PacketBuilder()
                         .Eth(kRouterMac, kPortMac)
                         .Ipv6(kClient6, kVip6)
                         .Udp(5353, 53)
                         .PayloadSize(333)
                         .Build();
  const ParsedPacket p = MustParse(frame);
  auto buf = WithHeadroom(frame, TunnelOverhead(dataplane::Tunnel::kGue, true));
  const size_t n = EncapGue(buf, p, kPortMac, kNextHopMac, kTunnelSrc6, kBackend6, 0xC456,
                            kGueDefaultPort, 99);
  ASSERT_EQ(n, frame.size() + 48u);
  const ParsedPacket outer = MustParse(buf);
  EXPECT_EQ(outer.family, 6);
  EXPECT_EQ(outer.proto, inet::ip_proto::kUdp);
  EXPECT_EQ(outer.sport, 0xC456);
  EXPECT_EQ(outer.dport, kGueDefaultPort);
  const size_t udp_len = 8 + p.ip_total_len;
  EXPECT_EQ(LoadBe16(buf.data() + 14 + 40 + 4), udp_len);
  EXPECT_NE(LoadBe16(buf.data() + 14 + 40 + 6), 0) << "a zero checksum over IPv6 is refused";
  // The pseudo-header sum plus the UDP segment (header, inner packet) verifies: all ones.
  uint32_t pseudo = 0;
  for (size_t i = 0; i < 16; i += 2) {
    pseudo += LoadBe16(kTunnelSrc6.bytes.data() + i) + LoadBe16(kBackend6.bytes.data() + i);
  }
  pseudo += static_cast<uint32_t>(udp_len) + inet::ip_proto::kUdp;
  EXPECT_EQ(NaiveSum(buf.data() + 14 + 40, udp_len, pseudo), 0xFFFF);
  // The flow label is the flow hash's, the same for every packet of the flow.
  EXPECT_EQ(LoadBe32(buf.data() + 14) & 0xFFFFF, 99u);
  // Mixed families are refused: an IPv6 backend needs an IPv6 source.
  auto again = WithHeadroom(frame, TunnelOverhead(dataplane::Tunnel::kGue, true));
  EXPECT_EQ(EncapGue(again, p, kPortMac, kNextHopMac, Ip("10.0.0.10"), kBackend6, 0xC456,
                     kGueDefaultPort, 99),
            0u);
}

TEST(GueTest, SourcePortFromTheFlowHash) {
  EXPECT_EQ(GueSourcePort(0), 0xC000);
  EXPECT_EQ(GueSourcePort(0xFFFFFFFFFFFFFFFFULL), 0xFFFF);
  EXPECT_EQ(GueSourcePort(0x0000123400000000ULL), 0xC000 | 0x1234);
  EXPECT_EQ(GueSourcePort(0x00000000FFFFFFFFULL), 0xC000);  // the hash's high half decides
}

TEST(TunnelTest, OverheadsAndRefusals) {
  EXPECT_EQ(TunnelOverhead(dataplane::Tunnel::kGre), 24u);
  EXPECT_EQ(TunnelOverhead(dataplane::Tunnel::kIpip), 20u);
  EXPECT_EQ(TunnelOverhead(dataplane::Tunnel::kGue), 28u);
  EXPECT_EQ(TunnelOverhead(dataplane::Tunnel::kGre, true), 44u);
  EXPECT_EQ(TunnelOverhead(dataplane::Tunnel::kIpip, true), 40u);
  EXPECT_EQ(TunnelOverhead(dataplane::Tunnel::kGue, true), 48u);
  EXPECT_TRUE(TunnelExceedsMtu(1473, kGueOverhead, 1500));
  EXPECT_FALSE(TunnelExceedsMtu(1472, kGueOverhead, 1500));
  EXPECT_EQ(TunnelInnerMtu(1500, kIpipOverhead), 1480);
  // Too little room in front: nothing written.
  const auto frame = Syn().Build();
  const ParsedPacket p = MustParse(frame);
  auto buf = WithHeadroom(frame, kIpipOverhead);
  const auto before = buf;
  const GreTunnel t = Tunnel();
  EXPECT_EQ(EncapGue(buf, p, t.src_mac, t.dst_mac, t.tunnel_src, t.backend, 0xC000, 6080), 0u);
  EXPECT_EQ(buf, before);
  EXPECT_EQ(EncapIpip(buf, p, t.src_mac, t.dst_mac, t.tunnel_src, Ip("2001:db8::1")), 0u);
  EXPECT_EQ(buf, before);
}

TEST(GreTest, TrailingPaddingIsLeftForTheCallerToTrim) {
  const auto frame = Syn().Padding(6).Build();  // 54 + 6 = 60 bytes
  const auto inner = Syn().BuildIp();
  const ParsedPacket p = MustParse(frame);
  auto buf = WithHeadroom(frame);
  const size_t n = EncapGre(buf, p, Tunnel());
  ASSERT_EQ(n, 14u + 24u + 40u);
  EXPECT_EQ(buf.size(), n + 6);
  EXPECT_EQ(Slice(buf, 16, 2), FromHex("00 40"));  // outer total length 64
  EXPECT_EQ(Slice(buf, 38, 40), inner);
}

TEST(GreTest, RefusesWithoutTouchingTheBuffer) {
  const auto frame = Syn().Build();
  const ParsedPacket p = MustParse(frame);
  const auto pristine = WithHeadroom(frame);

  auto buf = pristine;
  buf.pop_back();  // one byte short of the inner packet
  EXPECT_EQ(EncapGre(buf, p, Tunnel()), 0u);
  EXPECT_EQ(buf, Slice(pristine, 0, pristine.size() - 1));

  buf = pristine;
  GreTunnel v6 = Tunnel();
  v6.backend = kVip6;
  EXPECT_EQ(EncapGre(buf, p, v6), 0u);
  EXPECT_EQ(buf, pristine);

  ParsedPacket arp;
  const auto arp_frame = PacketBuilder().RawEtherType(0x0806).PayloadSize(28).Build();
  ASSERT_EQ(Parse(arp_frame, &arp), ParseResult::kNotIp);
  auto arp_buf = WithHeadroom(arp_frame);
  EXPECT_EQ(EncapGre(arp_buf, arp, Tunnel()), 0u);
  EXPECT_EQ(arp_buf, WithHeadroom(arp_frame));
}

TEST(GreTest, MtuHelpers) {
  EXPECT_EQ(kGreOverhead, 24u);
  EXPECT_FALSE(GreExceedsMtu(1476, 1500));
  EXPECT_TRUE(GreExceedsMtu(1477, 1500));
  EXPECT_FALSE(GreExceedsMtu(40, 64));
  EXPECT_TRUE(GreExceedsMtu(41, 64));
  EXPECT_EQ(GreInnerMtu(1500), 1476);
  EXPECT_EQ(GreInnerMtu(9000), 8976);
  EXPECT_EQ(GreInnerMtu(24), 0);
}

// --- ICMP fragmentation needed ---------------------------------------------

PacketBuilder BigDfSegment(size_t payload) {
  return PacketBuilder()
      .Eth(kRouterMac, kPortMac)
      .Ipv4(kClient, kVip)
      .Df(true)
      .Ttl(60)
      .Tcp(40000, 80, inet::tcp_flag::kAck)
      .PayloadSize(payload);
}

void ExpectFragNeeded(const std::vector<uint8_t>& out, size_t n,
                      const std::vector<uint8_t>& offending_ip, size_t l2, uint16_t mtu) {
  ASSERT_LE(n, out.size());
  const size_t quote = std::min<size_t>(offending_ip.size(), 548);
  ASSERT_EQ(n, l2 + 28 + quote);
  EXPECT_EQ(Slice(out, 0, 12), FromHex("02 00 00 00 00 07  52 54 00 ab cd ef"));
  std::vector<uint8_t> frame(out.begin(), out.begin() + n);
  ParsedPacket p;
  ASSERT_EQ(Parse(frame, &p, IpChecksumMode::kVerify), ParseResult::kOk);
  EXPECT_EQ(p.l2_len, l2);
  EXPECT_EQ(p.src, kVip);
  EXPECT_EQ(p.dst, kClient);
  EXPECT_EQ(p.ttl, 64);
  EXPECT_FALSE(p.dont_fragment);
  EXPECT_EQ(p.proto, inet::ip_proto::kIcmp);
  EXPECT_EQ(p.ip_total_len, 28 + quote);
  EXPECT_LE(p.ip_total_len, 576u);
  EXPECT_EQ(p.icmp_type, 3);
  EXPECT_EQ(p.icmp_code, 4);
  const uint8_t* icmp = out.data() + l2 + 20;
  EXPECT_EQ(NaiveSum(out.data() + l2, 20), 0xFFFF);
  EXPECT_EQ(NaiveSum(icmp, 8 + quote), 0xFFFF);  // ICMP checksum
  EXPECT_EQ(LoadBe16(icmp + 4), 0);              // unused
  EXPECT_EQ(LoadBe16(icmp + 6), mtu);            // next-hop MTU
  EXPECT_EQ(Slice(out, l2 + 28, quote), Slice(offending_ip, 0, quote));
}

TEST(IcmpFragNeededTest, GoldenSmallPacketHeaders) {
  const auto frame = BigDfSegment(0).Tcp(40000, 80, inet::tcp_flag::kSyn).Build();
  const ParsedPacket p = MustParse(frame);
  std::vector<uint8_t> out(200, 0);
  const size_t n = BuildIcmpFragNeeded(out, frame, p, kPortMac, 1476);
  ASSERT_EQ(n, 14u + 20u + 8u + 40u);
  // Ethernet back to the sender, IPv4 TOS 0xc0, len 68, no DF, TTL 64,
  // ICMP, checksum 0x13b4, VIP -> client.
  EXPECT_EQ(Slice(out, 0, 34), FromHex("02 00 00 00 00 07  52 54 00 ab cd ef  08 00"
                                       "45 c0 00 44  00 00 00 00  40 01 13 b4"
                                       "cb 00 71 0a  c6 33 64 07"))
      << ToHex(Slice(out, 0, 34));
  EXPECT_EQ(out[34], 3);
  EXPECT_EQ(out[35], 4);
  EXPECT_EQ(Slice(out, 38, 4), FromHex("00 00 05 c4"));  // MTU 1476
  ExpectFragNeeded(out, n, Slice(frame, 14, 40), 14, 1476);
}

TEST(IcmpFragNeededTest, InPlaceQuotesAtMost548Bytes) {
  const auto frame = BigDfSegment(1460).Build();
  const auto ip = Slice(frame, 14, frame.size() - 14);
  ASSERT_EQ(ip.size(), 1500u);
  const ParsedPacket p = MustParse(frame);
  auto buf = frame;
  const size_t n = BuildIcmpFragNeeded(buf, buf, p, kPortMac, 1476);
  ExpectFragNeeded(buf, n, ip, 14, 1476);
  EXPECT_EQ(n, 14u + 576u);

  // Same bytes as building into a separate buffer.
  std::vector<uint8_t> out(n, 0);
  ASSERT_EQ(BuildIcmpFragNeeded(out, frame, p, kPortMac, 1476), n);
  EXPECT_EQ(out, Slice(buf, 0, n));

  // The quote is the reply's flow reversed back: steering it finds VIP->client.
  ParsedPacket reply;
  ASSERT_EQ(Parse(out, &reply), ParseResult::kOk);
  FlowTuple t;
  ASSERT_EQ(ParseIcmpErrorFlow(out, reply, &t), ParseResult::kOk);
  EXPECT_EQ(t.src, kVip);
  EXPECT_EQ(t.sport, 80);
  EXPECT_EQ(t.dst, kClient);
  EXPECT_EQ(t.dport, 40000);
}

TEST(IcmpFragNeededTest, VlanAndPaddingAndOverlap) {
  const auto frame = BigDfSegment(30).Vlan(0x0123).Padding(4).Build();
  const auto ip = Slice(frame, 18, frame.size() - 18 - 4);
  const ParsedPacket p = MustParse(frame);
  // Output buffer starting 10 bytes into the input: overlapping, not equal.
  std::vector<uint8_t> buf(frame.size() + 200, 0);
  std::copy(frame.begin(), frame.end(), buf.begin());
  std::span<uint8_t> out(buf.data() + 10, buf.size() - 10);
  const size_t n = BuildIcmpFragNeeded(out, std::span<const uint8_t>(buf.data(), frame.size()), p,
                                       kPortMac, 1400);
  std::vector<uint8_t> got(out.begin(), out.end());
  ExpectFragNeeded(got, n, ip, 18, 1400);
  EXPECT_EQ(Slice(got, 12, 4), FromHex("81 00 01 23"));
}

TEST(IcmpFragNeededTest, RefusesWhatMustNotBeAnswered) {
  std::vector<uint8_t> out(1600, 0x5A);
  const auto pristine = out;
  auto refuse = [&](const std::vector<uint8_t>& frame, const char* what) {
    ParsedPacket p;
    ASSERT_EQ(Parse(frame, &p), ParseResult::kOk) << what;
    EXPECT_EQ(BuildIcmpFragNeeded(out, frame, p, kPortMac, 1476), 0u) << what;
    EXPECT_EQ(out, pristine) << what;
  };
  refuse(BigDfSegment(0).FragOffset(10).Proto(6).PayloadSize(600).Build(), "non-first fragment");
  refuse(PacketBuilder()
             .Ipv4(Ip("192.0.2.1"), kVip)
             .IcmpError(3, 4, 1400, BigDfSegment(100).BuildIp())
             .Build(),
         "an icmp error");
  refuse(PacketBuilder().Ipv6(kClient6, kVip6).Udp(1, 2).Build(), "ipv6");
  for (const char* src : {"0.0.0.0", "127.0.0.1", "224.0.0.5", "239.1.2.3", "255.255.255.255"}) {
    refuse(BigDfSegment(1460).Ipv4(Ip(src), kVip).Build(), src);
  }
  for (const char* src : {"1.0.0.1", "126.255.255.254", "128.0.0.1", "223.255.255.254"}) {
    const auto f = BigDfSegment(100).Ipv4(Ip(src), kVip).Build();
    std::vector<uint8_t> reply(600);
    EXPECT_EQ(BuildIcmpFragNeeded(reply, f, MustParse(f), kPortMac, 1476), 14u + 28u + 140u) << src;
  }

  // Too small an output buffer.
  const auto frame = BigDfSegment(1460).Build();
  const ParsedPacket p = MustParse(frame);
  std::vector<uint8_t> small(14 + 576 - 1, 0x5A);
  EXPECT_EQ(BuildIcmpFragNeeded(small, frame, p, kPortMac, 1476), 0u);
  EXPECT_EQ(small, std::vector<uint8_t>(14 + 576 - 1, 0x5A));

  // An echo request may be answered.
  const auto echo = PacketBuilder()
                        .Eth(kRouterMac, kPortMac)
                        .Ipv4(kClient, kVip)
                        .Df(true)
                        .Icmp(8, 0)
                        .PayloadSize(1472)
                        .Build();
  const ParsedPacket e = MustParse(echo);
  EXPECT_EQ(BuildIcmpFragNeeded(out, echo, e, kPortMac, 1476), 14u + 576u);
}

// --- ICMPv6 packet too big ---------------------------------------------------

TEST(Icmpv6PacketTooBigTest, InPlaceQuotesAtMost1232Bytes) {
  const auto frame = PacketBuilder()
                         .Eth(kRouterMac, kPortMac)
                         .Vlan(0x0064)
                         .Ipv6(kClient6, kVip6)
                         .Tcp(50000, 443, inet::tcp_flag::kAck)
                         .PayloadSize(1440)
                         .Build();
  const auto ip = Slice(frame, 18, frame.size() - 18);
  ASSERT_EQ(ip.size(), 1500u);
  const ParsedPacket p = MustParse(frame);
  auto buf = frame;
  const size_t n = BuildIcmpv6PacketTooBig(buf, buf, p, kPortMac, 1476);
  ASSERT_EQ(n, 18u + 1280u);
  EXPECT_EQ(Slice(buf, 0, 18), FromHex("02 00 00 00 00 07  52 54 00 ab cd ef  81 00 00 64  86 dd"));
  // IPv6: version 6, payload 1240 (0x04d8), ICMPv6, hop limit 64.
  EXPECT_EQ(Slice(buf, 18, 8), FromHex("60 00 00 00  04 d8 3a 40"));
  std::vector<uint8_t> frame_out(buf.begin(), buf.begin() + n);
  const ParsedPacket r = MustParse(frame_out);
  EXPECT_EQ(r.src, kVip6);
  EXPECT_EQ(r.dst, kClient6);
  EXPECT_EQ(r.icmp_type, 2);
  EXPECT_EQ(r.icmp_code, 0);
  const uint8_t* icmp = buf.data() + 18 + 40;
  EXPECT_EQ(LoadBe32(icmp + 4), 1476u);
  EXPECT_EQ(Slice(buf, 18 + 48, 1232), Slice(ip, 0, 1232));
  // Checksum with the IPv6 pseudo-header, summed naively.
  uint32_t s = NaiveSum(kVip6.bytes.data(), 16);
  s = NaiveSum(kClient6.bytes.data(), 16, s);
  s += 1240 + inet::ip_proto::kIcmpv6;
  EXPECT_EQ(NaiveSum(icmp, 1240, s), 0xFFFF);

  // Refusals: IPv4 input and ICMPv6 errors.
  std::vector<uint8_t> out(1400, 0);
  const auto v4 = BigDfSegment(10).Build();
  EXPECT_EQ(BuildIcmpv6PacketTooBig(out, v4, MustParse(v4), kPortMac, 1280), 0u);
  const auto err = PacketBuilder().Ipv6(kClient6, kVip6).IcmpError(1, 0, 0, ip, 200).Build();
  EXPECT_EQ(BuildIcmpv6PacketTooBig(out, err, MustParse(err), kPortMac, 1280), 0u);
  for (const char* src : {"::", "::1", "ff02::1"}) {
    const auto bad = PacketBuilder()
                         .Ipv6(Ip(src), kVip6)
                         .Tcp(1, 443, inet::tcp_flag::kAck)
                         .PayloadSize(1440)
                         .Build();
    EXPECT_EQ(BuildIcmpv6PacketTooBig(out, bad, MustParse(bad), kPortMac, 1280), 0u) << src;
  }
  // A unicast source just below the refused ranges is answered.
  const auto ok = PacketBuilder().Ipv6(Ip("::2"), kVip6).Tcp(1, 443, inet::tcp_flag::kAck).Build();
  EXPECT_NE(BuildIcmpv6PacketTooBig(out, ok, MustParse(ok), kPortMac, 1280), 0u);
}

}  // namespace
}  // namespace ecmplb::dataplane
