// Tests for dataplane/packet/parse.h: valid frames of every shape, every
// malformed-input reason, and ICMP error steering.
#include "dataplane/packet/parse.h"

#include <set>
#include <string>
#include <vector>

#include "dataplane/packet/checksum.h"
#include "gtest/gtest.h"
#include "tests/dataplane/packet_builder.h"

namespace ecmplb::dataplane {
namespace {

using testing::Ip;
using testing::Mac;
using testing::PacketBuilder;

const IpAddr kClient = Ip("198.51.100.7");
const IpAddr kVip = Ip("203.0.113.10");
const IpAddr kClient6 = Ip("2001:db8:1::7");
const IpAddr kVip6 = Ip("2001:db8:f::10");

ParseResult ParseOf(const std::vector<uint8_t>& f, ParsedPacket* p,
                    IpChecksumMode mode = IpChecksumMode::kVerify) {
  return Parse(f, p, mode);
}

// Sets frame[at] = value and, for an IPv4 frame, fixes the header checksum
// so the parser gets past it.
void SetByte(std::vector<uint8_t>& f, size_t at, uint8_t value, size_t l3 = kEthHeaderLen) {
  f[at] = value;
  if (LoadBe16(f.data() + l3 - 2) == ether_type::kIpv4) {
    const size_t ihl = size_t{static_cast<uint8_t>(f[l3] & 0x0F)} * 4;
    if (ihl >= 20 && l3 + ihl <= f.size()) {
      StoreBe16(f.data() + l3 + 10, Ipv4HeaderChecksum(std::span(f.data() + l3, ihl)));
    }
  }
}
void SetWord(std::vector<uint8_t>& f, size_t at, uint16_t value, size_t l3 = kEthHeaderLen) {
  f[at] = static_cast<uint8_t>(value >> 8);
  SetByte(f, at + 1, static_cast<uint8_t>(value), l3);
}

TEST(ParseTest, Ipv4Tcp) {
  const auto f = PacketBuilder()
                     .Eth(Mac("02:00:00:00:00:07"), Mac("52:54:00:ab:cd:ef"))
                     .Ipv4(kClient, kVip)
                     .Ttl(61)
                     .Tos(0x2A)
                     .Id(0x1234)
                     .Df(true)
                     .Tcp(40000, 80, inet::tcp_flag::kSyn)
                     .PayloadSize(10)
                     .Build();
  ParsedPacket p;
  ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk);
  EXPECT_EQ(p.l2_len, 14);
  EXPECT_FALSE(p.has_vlan);
  EXPECT_EQ(p.ether_type, ether_type::kIpv4);
  EXPECT_EQ(p.l3_offset, 14);
  EXPECT_EQ(p.family, 4);
  EXPECT_EQ(p.ip_header_len, 20);
  EXPECT_EQ(p.ip_total_len, 50u);
  EXPECT_EQ(p.ip_end(), f.size());
  EXPECT_EQ(p.src, kClient);
  EXPECT_EQ(p.dst, kVip);
  EXPECT_EQ(p.proto, inet::ip_proto::kTcp);
  EXPECT_TRUE(p.dont_fragment);
  EXPECT_FALSE(p.is_fragment);
  EXPECT_EQ(p.ttl, 61);
  EXPECT_EQ(p.tos, 0x2A);
  EXPECT_EQ(p.ip_id, 0x1234);
  EXPECT_EQ(p.l4_offset, 34);
  EXPECT_TRUE(p.has_l4);
  EXPECT_EQ(p.sport, 40000);
  EXPECT_EQ(p.dport, 80);
  EXPECT_EQ(p.tcp_flags, inet::tcp_flag::kSyn);

  const FlowTuple t = p.Flow();
  EXPECT_EQ(t.family, 4);
  EXPECT_EQ(t.proto, inet::ip_proto::kTcp);
  EXPECT_EQ(t.src, kClient);
  EXPECT_EQ(t.dst, kVip);
  EXPECT_EQ(t.sport, 40000);
  EXPECT_EQ(t.dport, 80);
}

TEST(ParseTest, VlanTagged) {
  const auto f = PacketBuilder()
                     .Vlan(0x6064)  // PCP 3, VID 100
                     .Ipv4(kClient, kVip)
                     .Udp(5000, 53)
                     .PayloadSize(3)
                     .Build();
  ParsedPacket p;
  ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk);
  EXPECT_TRUE(p.has_vlan);
  EXPECT_EQ(p.vlan_tci, 0x6064);
  EXPECT_EQ(p.l2_len, 18);
  EXPECT_EQ(p.l3_offset, 18);
  EXPECT_EQ(p.l4_offset, 38);
  EXPECT_EQ(p.proto, inet::ip_proto::kUdp);
  EXPECT_EQ(p.sport, 5000);
  EXPECT_EQ(p.dport, 53);
}

TEST(ParseTest, Ipv4OptionsAndTcpOptions) {
  for (size_t opts : {4, 20, 40}) {
    const auto f = PacketBuilder()
                       .Ipv4(kClient, kVip)
                       .Ipv4Options(opts)
                       .Tcp(1234, 443, inet::tcp_flag::kAck | inet::tcp_flag::kPsh)
                       .TcpOptions(12)
                       .PayloadSize(7)
                       .Build();
    ParsedPacket p;
    ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk) << opts;
    EXPECT_EQ(p.ip_header_len, 20 + opts);
    EXPECT_EQ(p.l4_offset, 14 + 20 + opts);
    EXPECT_EQ(p.ip_total_len, 20 + opts + 32 + 7);
    EXPECT_EQ(p.sport, 1234);
    EXPECT_EQ(p.dport, 443);
    EXPECT_EQ(p.tcp_flags, inet::tcp_flag::kAck | inet::tcp_flag::kPsh);
  }
}

TEST(ParseTest, TrailingPaddingIsIgnored) {
  // A 46-byte IP packet padded to the 60-byte Ethernet minimum and more.
  const auto f = PacketBuilder().Ipv4(kClient, kVip).Udp(1, 2).PayloadSize(1).Padding(31).Build();
  ParsedPacket p;
  ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk);
  EXPECT_EQ(p.ip_total_len, 29u);
  EXPECT_EQ(p.ip_end(), 14u + 29u);
  EXPECT_LT(p.ip_end(), f.size());
}

TEST(ParseTest, Ipv6TcpAndUdp) {
  const auto tcp = PacketBuilder()
                       .Ipv6(kClient6, kVip6)
                       .Ttl(33)
                       .Tos(0xB8)
                       .Tcp(50000, 443, inet::tcp_flag::kSyn)
                       .Build();
  ParsedPacket p;
  ASSERT_EQ(ParseOf(tcp, &p), ParseResult::kOk);
  EXPECT_EQ(p.family, 6);
  EXPECT_EQ(p.ether_type, ether_type::kIpv6);
  EXPECT_EQ(p.ip_header_len, 40);
  EXPECT_EQ(p.ip_total_len, 60u);
  EXPECT_EQ(p.src, kClient6);
  EXPECT_EQ(p.dst, kVip6);
  EXPECT_EQ(p.ttl, 33);
  EXPECT_EQ(p.tos, 0xB8);
  EXPECT_TRUE(p.dont_fragment);
  EXPECT_EQ(p.l4_offset, 54);
  EXPECT_EQ(p.sport, 50000);
  EXPECT_EQ(p.dport, 443);
  EXPECT_EQ(p.tcp_flags, inet::tcp_flag::kSyn);

  const auto udp = PacketBuilder().Ipv6(kClient6, kVip6).Udp(7, 9).PayloadSize(100).Build();
  ASSERT_EQ(ParseOf(udp, &p), ParseResult::kOk);
  EXPECT_EQ(p.proto, inet::ip_proto::kUdp);
  EXPECT_EQ(p.sport, 7);
  EXPECT_EQ(p.dport, 9);
  EXPECT_EQ(p.ip_total_len, 148u);
}

TEST(ParseTest, Ipv6ExtensionHeadersAreWalkedToTheTransport) {
  // Hop-by-hop first, then routing and destination options of various lengths.
  const auto f = PacketBuilder()
                     .Ipv6(kClient6, kVip6)
                     .Ipv6Extension(inet::ip_proto::kHopByHop, 8)
                     .Ipv6Extension(inet::ip_proto::kIpv6Routing, 24)
                     .Ipv6Extension(inet::ip_proto::kIpv6DestOptions, 16)
                     .Tcp(40000, 443, inet::tcp_flag::kSyn)
                     .Build();
  ParsedPacket p;
  ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk);
  EXPECT_EQ(p.proto, inet::ip_proto::kTcp);
  EXPECT_EQ(p.ip_header_len, 40 + 8 + 24 + 16);
  EXPECT_EQ(p.l4_offset, 14 + 40 + 48);
  EXPECT_TRUE(p.has_l4);
  EXPECT_EQ(p.sport, 40000);
  EXPECT_EQ(p.dport, 443);
  EXPECT_EQ(p.tcp_flags, inet::tcp_flag::kSyn);
  EXPECT_FALSE(p.is_fragment);
  EXPECT_EQ(p.ip_end(), f.size());
  // A protocol that is not an extension header ends the walk (no L4 fields for it).
  const auto g = PacketBuilder()
                     .Ipv6(kClient6, kVip6)
                     .Ipv6Extension(inet::ip_proto::kIpv6DestOptions, 8)
                     .Proto(inet::ip_proto::kIpv6NoNext)
                     .PayloadSize(8)
                     .Build();
  ASSERT_EQ(ParseOf(g, &p), ParseResult::kOk);
  EXPECT_EQ(p.proto, inet::ip_proto::kIpv6NoNext);
  EXPECT_FALSE(p.has_l4);
  EXPECT_EQ(p.l4_offset, 14 + 48);
}

TEST(ParseTest, Ipv6Fragments) {
  // First fragment: ports, the 32-bit identification, not the end of the datagram.
  const auto first = PacketBuilder()
                         .Ipv6(kClient6, kVip6)
                         .Ipv6Extension(inet::ip_proto::kIpv6DestOptions, 8)
                         .Ipv6Fragment(0, true, 0xCAFEF00D)
                         .Udp(5353, 53)
                         .PayloadSize(64)
                         .Build();
  ParsedPacket p;
  ASSERT_EQ(ParseOf(first, &p), ParseResult::kOk);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_FALSE(p.later_fragment());
  EXPECT_EQ(p.ip_id, 0xCAFEF00Du);
  EXPECT_EQ(p.proto, inet::ip_proto::kUdp);
  EXPECT_TRUE(p.has_l4);
  EXPECT_EQ(p.dport, 53);
  EXPECT_EQ(p.ip_header_len, 40 + 8 + 8);
  // A later fragment: the fragment header's next header, no transport header.
  const auto later = PacketBuilder()
                         .Ipv6(kClient6, kVip6)
                         .Ipv6Fragment(185, false, 0xCAFEF00D)
                         .Proto(inet::ip_proto::kUdp)
                         .PayloadSize(40)
                         .Build();
  ASSERT_EQ(ParseOf(later, &p), ParseResult::kOk);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_TRUE(p.later_fragment());
  EXPECT_EQ(p.frag_offset, 185);
  EXPECT_EQ(p.ip_id, 0xCAFEF00Du);
  EXPECT_EQ(p.proto, inet::ip_proto::kUdp);
  EXPECT_FALSE(p.has_l4);
  EXPECT_EQ(p.sport, 0);
  // An atomic fragment (offset 0, no more; RFC 6946) is a whole datagram.
  const auto atomic = PacketBuilder()
                          .Ipv6(kClient6, kVip6)
                          .Ipv6Fragment(0, false, 7)
                          .Tcp(1, 2, inet::tcp_flag::kAck)
                          .Build();
  ASSERT_EQ(ParseOf(atomic, &p), ParseResult::kOk);
  EXPECT_FALSE(p.is_fragment);
  EXPECT_EQ(p.ip_id, 0u);
  EXPECT_TRUE(p.has_l4);
  // FragmentFrame's pieces of one datagram: the first has the ports, the others none.
  const auto whole = PacketBuilder().Ipv6(kClient6, kVip6).Udp(5353, 53).PayloadSize(100).Build();
  const auto pieces = testing::FragmentFrame(whole, 48, 99);
  ASSERT_EQ(pieces.size(), 3u);
  for (size_t i = 0; i < pieces.size(); ++i) {
    ASSERT_EQ(ParseOf(pieces[i], &p), ParseResult::kOk) << i;
    EXPECT_TRUE(p.is_fragment);
    EXPECT_EQ(p.ip_id, 99u);
    EXPECT_EQ(p.has_l4, i == 0);
    EXPECT_EQ(p.frag_offset, i * 6);
  }
}

TEST(ParseTest, IcmpTypeAndCode) {
  const auto v4 =
      PacketBuilder().Ipv4(kClient, kVip).Icmp(8, 0, 0x00010002).PayloadSize(56).Build();
  ParsedPacket p;
  ASSERT_EQ(ParseOf(v4, &p), ParseResult::kOk);
  EXPECT_EQ(p.proto, inet::ip_proto::kIcmp);
  EXPECT_TRUE(p.has_l4);
  EXPECT_EQ(p.icmp_type, 8);
  EXPECT_EQ(p.icmp_code, 0);
  EXPECT_EQ(p.sport, 0);

  const auto v6 = PacketBuilder().Ipv6(kClient6, kVip6).Icmp(128, 0).Build();
  ASSERT_EQ(ParseOf(v6, &p), ParseResult::kOk);
  EXPECT_EQ(p.proto, inet::ip_proto::kIcmpv6);
  EXPECT_EQ(p.icmp_type, 128);

  // ICMPv6's number inside IPv4 (and ICMPv4's inside IPv6) is just another
  // protocol.
  const auto odd = PacketBuilder().Ipv4(kClient, kVip).Proto(58).Build();
  ASSERT_EQ(ParseOf(odd, &p), ParseResult::kOk);
  EXPECT_FALSE(p.has_l4);
}

TEST(ParseTest, OtherIpv4ProtocolHasNoPorts) {
  const auto f = PacketBuilder().Ipv4(kClient, kVip).Proto(inet::ip_proto::kOspf).Build();
  ParsedPacket p;
  ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk);
  EXPECT_EQ(p.proto, inet::ip_proto::kOspf);
  EXPECT_FALSE(p.has_l4);
  EXPECT_EQ(p.l4_offset, 34);
}

TEST(ParseTest, Fragments) {
  // First fragment: ports, even with a UDP length covering the whole
  // datagram.
  auto first = PacketBuilder().Ipv4(kClient, kVip).Mf(true).Udp(1000, 2000).PayloadSize(64).Build();
  SetWord(first, 14 + 20 + 4, 3000);  // UDP length of the whole datagram
  ParsedPacket p;
  ASSERT_EQ(ParseOf(first, &p), ParseResult::kOk);
  EXPECT_TRUE(p.is_fragment);
  EXPECT_EQ(p.frag_offset, 0);
  EXPECT_TRUE(p.has_l4);
  EXPECT_EQ(p.sport, 1000);
  EXPECT_EQ(p.dport, 2000);

  // Non-first fragments carry no L4 header: no ports, whatever the bytes.
  for (bool mf : {true, false}) {
    const auto later = PacketBuilder()
                           .Ipv4(kClient, kVip)
                           .Mf(mf)
                           .FragOffset(9)
                           .Proto(inet::ip_proto::kUdp)
                           .PayloadSize(3)
                           .Build();
    ASSERT_EQ(ParseOf(later, &p), ParseResult::kOk);
    EXPECT_TRUE(p.is_fragment);
    EXPECT_EQ(p.frag_offset, 9);
    EXPECT_EQ(p.proto, inet::ip_proto::kUdp);
    EXPECT_FALSE(p.has_l4);
    EXPECT_EQ(p.sport, 0);
    EXPECT_EQ(p.dport, 0);
    EXPECT_EQ(p.Flow().sport, 0);
  }
}

TEST(ParseTest, NonIpFramesAreNotIp) {
  ParsedPacket p;
  auto arp = PacketBuilder().RawEtherType(ether_type::kArp).PayloadSize(28).Build();
  EXPECT_EQ(ParseOf(arp, &p), ParseResult::kNotIp);
  EXPECT_EQ(p.ether_type, ether_type::kArp);
  EXPECT_EQ(p.l2_len, 14);

  auto lldp = PacketBuilder().Vlan(7).RawEtherType(ether_type::kLldp).PayloadSize(30).Build();
  EXPECT_EQ(ParseOf(lldp, &p), ParseResult::kNotIp);
  EXPECT_TRUE(p.has_vlan);
  EXPECT_EQ(p.vlan_tci, 7);
  EXPECT_EQ(p.l2_len, 18);

  auto llc = PacketBuilder().RawEtherType(46).PayloadSize(46).Build();
  EXPECT_EQ(ParseOf(llc, &p), ParseResult::kNotIp);

  // Exactly an Ethernet header and nothing else is still a frame.
  auto bare = PacketBuilder().RawEtherType(ether_type::kArp).Build();
  ASSERT_EQ(bare.size(), 14u);
  EXPECT_EQ(ParseOf(bare, &p), ParseResult::kNotIp);
}

TEST(ParseTest, ChecksumVerifiedOnlyWhenAsked) {
  auto f = PacketBuilder().Ipv4(kClient, kVip).Tcp(1, 2, 0).Build();
  f[14 + 10] ^= 0x01;
  ParsedPacket p;
  EXPECT_EQ(ParseOf(f, &p, IpChecksumMode::kVerify), ParseResult::kBadIpChecksum);
  EXPECT_EQ(ParseOf(f, &p, IpChecksumMode::kTrust), ParseResult::kOk);
  EXPECT_EQ(p.dport, 2);
  // A changed header byte is caught, not only a changed checksum.
  f[14 + 10] ^= 0x01;
  f[14 + 8] = 1;  // TTL
  EXPECT_EQ(ParseOf(f, &p), ParseResult::kBadIpChecksum);
}

struct MalformedCase {
  std::string name;
  std::vector<uint8_t> frame;
  ParseResult want;
};

std::vector<MalformedCase> MalformedCases() {
  std::vector<MalformedCase> cases;
  const auto tcp4 = PacketBuilder().Ipv4(kClient, kVip).Tcp(1, 2, 0).Build();
  const auto udp4 = PacketBuilder().Ipv4(kClient, kVip).Udp(1, 2).Build();
  const auto icmp4 = PacketBuilder().Ipv4(kClient, kVip).Icmp(8, 0).Build();
  const auto tcp6 = PacketBuilder().Ipv6(kClient6, kVip6).Tcp(1, 2, 0).Build();
  const auto vlan = PacketBuilder().Vlan(5).Ipv4(kClient, kVip).Build();
  auto add = [&](std::string name, std::vector<uint8_t> f, ParseResult r) {
    cases.push_back({std::move(name), std::move(f), r});
  };
  auto cut = [](std::vector<uint8_t> f, size_t n) {
    f.resize(n);
    return f;
  };

  add("empty", {}, ParseResult::kTruncatedEthernet);
  add("13 bytes", cut(tcp4, 13), ParseResult::kTruncatedEthernet);
  add("vlan 14 bytes", cut(vlan, 14), ParseResult::kTruncatedVlan);
  add("vlan 17 bytes", cut(vlan, 17), ParseResult::kTruncatedVlan);
  {
    auto f = tcp4;
    StoreBe16(f.data() + 12, ether_type::kQinQ);
    add("802.1ad outer tag", f, ParseResult::kUnsupportedVlan);
    StoreBe16(f.data() + 12, ether_type::kQinQOld);
    add("0x9100 outer tag", f, ParseResult::kUnsupportedVlan);
    auto g = vlan;
    StoreBe16(g.data() + 16, ether_type::kVlan);
    add("two 802.1Q tags", g, ParseResult::kUnsupportedVlan);
  }
  add("ipv4 19 bytes", cut(tcp4, 14 + 19), ParseResult::kTruncatedIp);
  add("ipv6 39 bytes", cut(tcp6, 14 + 39), ParseResult::kTruncatedIp);
  {
    auto f = tcp4;
    SetByte(f, 14, 0x4F);  // IHL 15 = 60 bytes, frame has 40
    add("ihl past frame", f, ParseResult::kTruncatedIp);
  }
  {
    auto f = tcp4;
    f[14] = 0x65;
    add("version 6 in ipv4 ethertype", f, ParseResult::kBadIpVersion);
    auto g = tcp6;
    g[14] = 0x45;
    add("version 4 in ipv6 ethertype", g, ParseResult::kBadIpVersion);
  }
  for (uint8_t ihl = 0; ihl < 5; ++ihl) {
    auto f = tcp4;
    f[14] = static_cast<uint8_t>(0x40 | ihl);
    add("ihl " + std::to_string(ihl), f, ParseResult::kBadIpHeaderLength);
  }
  {
    auto f = tcp4;
    SetWord(f, 14 + 2, 19);
    add("total length < header", f, ParseResult::kBadIpTotalLength);
    SetWord(f, 14 + 2, 41);
    add("total length > frame", f, ParseResult::kBadIpTotalLength);
    auto g = tcp6;
    StoreBe16(g.data() + 14 + 4, 21);
    add("ipv6 payload length > frame", g, ParseResult::kBadIpTotalLength);
  }
  {
    auto f = tcp4;
    f[14 + 11] ^= 0xFF;
    add("ipv4 checksum", f, ParseResult::kBadIpChecksum);
  }
  {
    // Shrink the IP packet (the frame keeps its bytes as padding).
    auto f = tcp4;
    SetWord(f, 14 + 2, 20 + 19);
    add("tcp 19 bytes", f, ParseResult::kTruncatedL4);
    auto g = udp4;
    SetWord(g, 14 + 2, 20 + 7);
    add("udp 7 bytes", g, ParseResult::kTruncatedL4);
    auto h = icmp4;
    SetWord(h, 14 + 2, 20 + 7);
    add("icmp 7 bytes", h, ParseResult::kTruncatedL4);
    auto k = tcp4;
    SetWord(k, 14 + 2, 20);
    add("tcp 0 bytes", k, ParseResult::kTruncatedL4);
    auto m = tcp6;
    StoreBe16(m.data() + 14 + 4, 10);
    add("ipv6 tcp 10 bytes", m, ParseResult::kTruncatedL4);
    auto n = PacketBuilder().Ipv6(kClient6, kVip6).Icmp(128, 0).Build();
    StoreBe16(n.data() + 14 + 4, 4);
    add("icmpv6 4 bytes", n, ParseResult::kTruncatedL4);
  }
  {
    auto f = tcp4;
    f[14 + 20 + 12] = 0x60;  // data offset 24 bytes, segment has 20
    add("tcp options past packet", f, ParseResult::kTruncatedL4);
    for (uint8_t off = 0; off < 5; ++off) {
      auto g = tcp4;
      g[14 + 20 + 12] = static_cast<uint8_t>(off << 4);
      add("tcp data offset " + std::to_string(off), g, ParseResult::kBadTcpHeaderLength);
    }
  }
  {
    auto f = udp4;
    StoreBe16(f.data() + 14 + 20 + 4, 7);
    add("udp length 7", f, ParseResult::kBadUdpLength);
    StoreBe16(f.data() + 14 + 20 + 4, 9);
    add("udp length past packet", f, ParseResult::kBadUdpLength);
    auto g = PacketBuilder().Ipv6(kClient6, kVip6).Udp(1, 2).Build();
    StoreBe16(g.data() + 14 + 40 + 4, 0);
    add("ipv6 udp length 0", g, ParseResult::kBadUdpLength);
  }
  {
    // IPv6 extension headers: cut short, hop-by-hop out of place, two fragment headers, a
    // chain longer than the bound, a first fragment without its whole chain (RFC 7112).
    const auto ext = PacketBuilder()
                         .Ipv6(kClient6, kVip6)
                         .Ipv6Extension(inet::ip_proto::kIpv6DestOptions, 16)
                         .Udp(1, 2)
                         .Build();
    auto f = ext;
    StoreBe16(f.data() + 14 + 4, 12);  // the payload ends inside the 16-byte header
    f.resize(14 + 40 + 12);
    add("ipv6 extension header cut short", f, ParseResult::kBadExtensionHeader);
    f = ext;
    f[14 + 40 + 1] = 200;  // claims 1608 bytes
    add("ipv6 extension header too long", f, ParseResult::kBadExtensionHeader);
    add("ipv6 hop-by-hop not first",
        PacketBuilder()
            .Ipv6(kClient6, kVip6)
            .Ipv6Extension(inet::ip_proto::kIpv6DestOptions, 8)
            .Ipv6Extension(inet::ip_proto::kHopByHop, 8)
            .Udp(1, 2)
            .Build(),
        ParseResult::kBadExtensionHeader);
    add("ipv6 two fragment headers",
        PacketBuilder()
            .Ipv6(kClient6, kVip6)
            .Ipv6Fragment(0, true, 1)
            .Ipv6Fragment(0, true, 1)
            .Udp(1, 2)
            .Build(),
        ParseResult::kBadExtensionHeader);
    PacketBuilder many;
    many.Ipv6(kClient6, kVip6);
    for (int i = 0; i <= kMaxIpv6ExtensionHeaders; ++i) {
      many.Ipv6Extension(inet::ip_proto::kIpv6DestOptions, 8);
    }
    add("ipv6 extension chain over the bound", many.Udp(1, 2).Build(),
        ParseResult::kTooManyExtensionHeaders);
    // First fragment: fragment header, then a destination-options header that does not fit.
    auto g = PacketBuilder()
                 .Ipv6(kClient6, kVip6)
                 .Ipv6Fragment(0, true, 5)
                 .Ipv6Extension(inet::ip_proto::kIpv6DestOptions, 16)
                 .Udp(1, 2)
                 .Build();
    StoreBe16(g.data() + 14 + 4, 8 + 8);
    g.resize(14 + 40 + 16);
    add("ipv6 first fragment, chain cut in an extension header", g,
        ParseResult::kIncompleteHeaderChain);
    // First fragment whose TCP header does not fit.
    auto h = PacketBuilder().Ipv6(kClient6, kVip6).Ipv6Fragment(0, true, 5).Tcp(1, 2, 0).Build();
    StoreBe16(h.data() + 14 + 4, 8 + 12);
    h.resize(14 + 40 + 20);
    add("ipv6 first fragment, transport header cut", h, ParseResult::kIncompleteHeaderChain);
  }
  return cases;
}

TEST(ParseTest, EveryMalformedInputHasItsReason) {
  std::set<ParseResult> seen;
  for (const auto& c : MalformedCases()) {
    ParsedPacket p;
    EXPECT_EQ(ParseOf(c.frame, &p), c.want)
        << c.name << ": got " << ParseResultName(ParseOf(c.frame, &p)) << ", want "
        << ParseResultName(c.want);
    seen.insert(c.want);
  }
  // Every parser failure reason is covered above.
  for (auto r :
       {ParseResult::kTruncatedEthernet, ParseResult::kTruncatedVlan, ParseResult::kUnsupportedVlan,
        ParseResult::kTruncatedIp, ParseResult::kBadIpVersion, ParseResult::kBadIpHeaderLength,
        ParseResult::kBadIpTotalLength, ParseResult::kBadIpChecksum, ParseResult::kTruncatedL4,
        ParseResult::kBadTcpHeaderLength, ParseResult::kBadUdpLength,
        ParseResult::kBadExtensionHeader, ParseResult::kTooManyExtensionHeaders,
        ParseResult::kIncompleteHeaderChain}) {
    EXPECT_TRUE(seen.contains(r)) << ParseResultName(r);
  }
}

TEST(ParseTest, ResultNamesAreDistinctSnakeCase) {
  std::set<std::string> names;
  for (int i = 0; i < static_cast<int>(ParseResult::kCount); ++i) {
    const std::string n = ParseResultName(static_cast<ParseResult>(i));
    EXPECT_NE(n, "unknown") << i;
    for (char c : n) {
      EXPECT_TRUE((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_') << n;
    }
    names.insert(n);
  }
  EXPECT_EQ(names.size(), static_cast<size_t>(ParseResult::kCount));
  EXPECT_STREQ(ParseResultName(ParseResult::kOk), "ok");
  EXPECT_STREQ(ParseResultName(ParseResult::kNotIp), "not_ip");
  EXPECT_STREQ(ParseResultName(ParseResult::kCount), "unknown");
}

// --- ICMP error steering ---------------------------------------------------

// The backend's reply VIP:80 -> client:40000, as a router would quote it.
std::vector<uint8_t> ReplyV4(size_t payload = 1400) {
  return PacketBuilder()
      .Ipv4(kVip, kClient)
      .Df(true)
      .Tcp(80, 40000, inet::tcp_flag::kAck)
      .PayloadSize(payload)
      .BuildIp();
}

FlowTuple WantClientFlow(uint8_t proto = inet::ip_proto::kTcp) {
  FlowTuple t;
  t.family = 4;
  t.proto = proto;
  t.src = kClient;
  t.dst = kVip;
  t.sport = 40000;
  t.dport = 80;
  return t;
}

TEST(IcmpSteeringTest, FragNeededGivesReversedTuple) {
  const auto f = PacketBuilder()
                     .Ipv4(Ip("192.0.2.1"), kVip)
                     .IcmpError(3, 4, 1400, ReplyV4(), 576 - 28)
                     .Build();
  ParsedPacket p;
  ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk);
  ASSERT_TRUE(IsSteerableIcmpError(p));
  FlowTuple t;
  ASSERT_EQ(ParseIcmpErrorFlow(f, p, &t), ParseResult::kOk);
  EXPECT_EQ(t, WantClientFlow());
}

TEST(IcmpSteeringTest, AnyUnreachableCodeMinimalQuoteAndUdp) {
  const auto reply =
      PacketBuilder().Ipv4(kVip, kClient).Ipv4Options(8).Udp(80, 40000).PayloadSize(100).BuildIp();
  for (uint8_t code : {0, 1, 3, 4, 13}) {
    // Exactly the quoted header (28 bytes with options) + 8 bytes of L4.
    const auto f =
        PacketBuilder().Ipv4(Ip("192.0.2.1"), kVip).IcmpError(3, code, 0, reply, 28 + 8).Build();
    ParsedPacket p;
    ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk);
    FlowTuple t;
    ASSERT_EQ(ParseIcmpErrorFlow(f, p, &t), ParseResult::kOk) << int{code};
    EXPECT_EQ(t, WantClientFlow(inet::ip_proto::kUdp));
  }
}

TEST(IcmpSteeringTest, Ipv6PacketTooBigAndUnreachable) {
  const auto reply = PacketBuilder()
                         .Ipv6(kVip6, kClient6)
                         .Tcp(443, 50000, inet::tcp_flag::kAck)
                         .PayloadSize(1400)
                         .BuildIp();
  for (uint8_t type : {1, 2}) {
    const auto f = PacketBuilder()
                       .Ipv6(Ip("2001:db8:ffff::1"), kVip6)
                       .IcmpError(type, 0, 1280, reply, 1232)
                       .Build();
    ParsedPacket p;
    ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk);
    FlowTuple t;
    ASSERT_EQ(ParseIcmpErrorFlow(f, p, &t), ParseResult::kOk);
    EXPECT_EQ(t.family, 6);
    EXPECT_EQ(t.proto, inet::ip_proto::kTcp);
    EXPECT_EQ(t.src, kClient6);
    EXPECT_EQ(t.dst, kVip6);
    EXPECT_EQ(t.sport, 50000);
    EXPECT_EQ(t.dport, 443);
  }
}

TEST(IcmpSteeringTest, QuotedNonFirstFragmentOrOtherProtoHasNoPorts) {
  const auto frag = PacketBuilder()
                        .Ipv4(kVip, kClient)
                        .FragOffset(100)
                        .Proto(inet::ip_proto::kTcp)
                        .PayloadSize(64)
                        .BuildIp();
  const auto f = PacketBuilder().Ipv4(Ip("192.0.2.1"), kVip).IcmpError(3, 4, 1400, frag).Build();
  ParsedPacket p;
  ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk);
  FlowTuple t;
  ASSERT_EQ(ParseIcmpErrorFlow(f, p, &t), ParseResult::kOk);
  EXPECT_EQ(t.proto, inet::ip_proto::kTcp);
  EXPECT_EQ(t.src, kClient);
  EXPECT_EQ(t.sport, 0);
  EXPECT_EQ(t.dport, 0);

  const auto gre = PacketBuilder().Ipv4(kVip, kClient).Proto(47).PayloadSize(8).BuildIp();
  const auto g = PacketBuilder().Ipv4(Ip("192.0.2.1"), kVip).IcmpError(3, 1, 0, gre).Build();
  ASSERT_EQ(ParseOf(g, &p), ParseResult::kOk);
  ASSERT_EQ(ParseIcmpErrorFlow(g, p, &t), ParseResult::kOk);
  EXPECT_EQ(t.proto, 47);
  EXPECT_EQ(t.sport, 0);
}

TEST(IcmpSteeringTest, RejectsWithReasonAndLeavesOutputAlone) {
  FlowTuple sentinel;
  sentinel.sport = 4242;
  auto check = [&](const std::vector<uint8_t>& f, ParseResult want, const char* what) {
    ParsedPacket p;
    ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk) << what;
    FlowTuple t = sentinel;
    EXPECT_EQ(ParseIcmpErrorFlow(f, p, &t), want)
        << what << ": " << ParseResultName(ParseIcmpErrorFlow(f, p, &t));
    EXPECT_EQ(t, sentinel) << what;
  };
  const IpAddr router = Ip("192.0.2.1");
  check(PacketBuilder().Ipv4(kClient, kVip).Tcp(1, 2, 0).Build(), ParseResult::kNotIcmpError,
        "tcp");
  check(PacketBuilder().Ipv4(kClient, kVip).Icmp(8, 0).Build(), ParseResult::kNotIcmpError, "echo");
  check(PacketBuilder().Ipv4(router, kVip).IcmpError(11, 0, 0, ReplyV4()).Build(),
        ParseResult::kNotIcmpError, "time exceeded");
  check(PacketBuilder().Ipv6(kClient6, kVip6).Icmp(128, 0).Build(), ParseResult::kNotIcmpError,
        "echo v6");
  check(PacketBuilder().Ipv4(router, kVip).IcmpError(3, 4, 0, ReplyV4(), 0).Build(),
        ParseResult::kTruncatedIcmpQuote, "empty quote");
  check(PacketBuilder().Ipv4(router, kVip).IcmpError(3, 4, 0, ReplyV4(), 19).Build(),
        ParseResult::kTruncatedIcmpQuote, "quote 19 bytes");
  check(PacketBuilder().Ipv4(router, kVip).IcmpError(3, 4, 0, ReplyV4(), 27).Build(),
        ParseResult::kTruncatedIcmpQuote, "quote header + 7");
  {
    auto q = ReplyV4();
    q[0] = 0x65;
    check(PacketBuilder().Ipv4(router, kVip).IcmpError(3, 4, 0, q).Build(),
          ParseResult::kBadQuotedIp, "quoted version");
    q[0] = 0x44;
    check(PacketBuilder().Ipv4(router, kVip).IcmpError(3, 4, 0, q).Build(),
          ParseResult::kBadQuotedIp, "quoted ihl 4");
    q[0] = 0x4F;  // 60-byte header, 68 bytes needed
    check(PacketBuilder().Ipv4(router, kVip).IcmpError(3, 4, 0, q, 67).Build(),
          ParseResult::kTruncatedIcmpQuote, "quoted ihl 15");
  }
  {
    const auto q6 = PacketBuilder().Ipv6(kVip6, kClient6).Udp(53, 5353).BuildIp();
    check(PacketBuilder().Ipv6(kClient6, kVip6).IcmpError(2, 0, 1280, q6, 47).Build(),
          ParseResult::kTruncatedIcmpQuote, "v6 quote 47 bytes");
    const auto q4 = ReplyV4();
    check(PacketBuilder().Ipv6(kClient6, kVip6).IcmpError(2, 0, 1280, q4).Build(),
          ParseResult::kBadQuotedIp, "v4 quoted in icmpv6");
  }
}

TEST(IcmpSteeringTest, PaddingIsNotPartOfTheQuote) {
  // Quote = header + 4 bytes; the frame's padding must not complete it.
  const auto f = PacketBuilder()
                     .Ipv4(Ip("192.0.2.1"), kVip)
                     .IcmpError(3, 4, 0, ReplyV4(), 24)
                     .Padding(30)
                     .Build();
  ParsedPacket p;
  ASSERT_EQ(ParseOf(f, &p), ParseResult::kOk);
  FlowTuple t;
  EXPECT_EQ(ParseIcmpErrorFlow(f, p, &t), ParseResult::kTruncatedIcmpQuote);
}

}  // namespace
}  // namespace ecmplb::dataplane
