// Tests of dataplane/flow_hash.h: a flow's service key and Maglev hash are the same whether
// built from a parsed packet (the pipeline) or from a FlowTuple (ecmplbctl lookup, steered
// ICMP errors), and only the flow decides the Maglev hash.
#include "dataplane/flow_hash.h"

#include <gtest/gtest.h>

#include <vector>

#include "conntrack/flow_key.h"
#include "tests/dataplane/packet_builder.h"
#include "tests/support/flows.h"

namespace ecmplb::dataplane {
namespace {

using test_support::FlowOf;
using testing::Ip;
using testing::Mac;
using testing::PacketBuilder;

Service MakeService(HashMode mode, uint32_t counter_slot) {
  Service s;
  s.hash = mode;
  s.counter_slot = counter_slot;
  return s;
}

ParsedPacket MustParse(const std::vector<uint8_t>& frame) {
  ParsedPacket p;
  EXPECT_EQ(Parse(std::span<const uint8_t>(frame), &p, IpChecksumMode::kVerify), ParseResult::kOk);
  return p;
}

TEST(FlowHashTest, PacketAndTupleGiveTheSameKeyAndHash) {
  const Service svc = MakeService(HashMode::kFiveTuple, 7);
  for (const char* family : {"v4", "v6"}) {
    const bool v4 = family[1] == '4';
    PacketBuilder b;
    b.Eth(Mac("02:00:00:00:00:fe"), Mac("02:00:00:00:00:01"));
    if (v4) {
      b.Ipv4(Ip("198.18.0.9"), Ip("10.100.0.1"));
    } else {
      b.Ipv6(Ip("2001:db8:1::9"), Ip("2001:db8::10"));
    }
    const ParsedPacket p = MustParse(b.Tcp(40000, 443, 0x10).Build());
    const conntrack::FlowKey from_packet = ServiceFlowKey(svc, p);
    const FlowPlacement placed = PlaceFlow(svc, p.Flow());
    EXPECT_EQ(from_packet, placed.key) << family;
    EXPECT_EQ(placed.key.service, 7) << family;
    EXPECT_EQ(placed.key.sport, __builtin_bswap16(uint16_t{40000})) << family;  // network order
    EXPECT_EQ(placed.key.dport, __builtin_bswap16(uint16_t{443})) << family;
    EXPECT_EQ(placed.key.proto, inet::ip_proto::kTcp) << family;
    EXPECT_EQ(placed.flow_hash, conntrack::FlowHash(placed.key)) << family;
    EXPECT_EQ(placed.maglev_hash, placed.flow_hash) << family;  // five-tuple service
    if (v4) {
      conntrack::FlowKey words;
      EXPECT_EQ(SetServiceFlowKeyV4(svc, p, &words), placed.flow_hash);
      EXPECT_EQ(words, placed.key);
    }
  }
}

// The Maglev hash covers the flow only: two hosts numbering the service differently agree.
TEST(FlowHashTest, MaglevHashIgnoresTheServiceSlot) {
  for (HashMode mode : {HashMode::kFiveTuple, HashMode::kSourceIp}) {
    const Service a = MakeService(mode, 1), b = MakeService(mode, 900);
    for (const FlowTuple& t : {FlowOf("198.18.0.1", 1234, "10.100.0.1", 80),
                               FlowOf("2001:db8:1::1", 1234, "2001:db8::10", 80)}) {
      const FlowPlacement pa = PlaceFlow(a, t), pb = PlaceFlow(b, t);
      EXPECT_NE(pa.key, pb.key);
      EXPECT_EQ(pa.maglev_hash, pb.maglev_hash);
      EXPECT_EQ(pa.flow_hash, pb.flow_hash);
    }
  }
}

// A source-IP service hashes the client address alone: ports, destination and protocol do
// not move a client; another client (usually) lands elsewhere.
TEST(FlowHashTest, SourceIpHashIsTheClientAddressAlone) {
  const Service svc = MakeService(HashMode::kSourceIp, 3);
  const FlowTuple v4 = FlowOf("198.18.0.1", 1234, "10.100.0.1", 80);
  const uint32_t src = v4.src.v4_host();
  EXPECT_EQ(PlaceFlow(svc, v4).maglev_hash,
            conntrack::FlowHash(conntrack::FlowKey::V4(__builtin_bswap32(src), 0, 0, 0, 0, 0)));
  EXPECT_EQ(PlaceFlow(svc, v4).maglev_hash,
            PlaceFlow(svc, FlowOf("198.18.0.1", 999, "10.100.0.2", 53, inet::ip_proto::kUdp))
                .maglev_hash);
  EXPECT_NE(PlaceFlow(svc, v4).maglev_hash,
            PlaceFlow(svc, FlowOf("198.18.0.2", 1234, "10.100.0.1", 80)).maglev_hash);
  EXPECT_NE(PlaceFlow(svc, v4).maglev_hash, PlaceFlow(svc, v4).flow_hash);

  const FlowTuple v6 = FlowOf("2001:db8:1::1", 1234, "2001:db8::10", 80);
  static constexpr uint8_t kZero[16] = {};
  EXPECT_EQ(PlaceFlow(svc, v6).maglev_hash,
            conntrack::FlowHash(
                conntrack::FlowKey::V6(std::span<const uint8_t, 16>(v6.src.bytes.data(), 16),
                                       std::span<const uint8_t, 16>(kZero, 16), 0, 0, 0, 0)));
  EXPECT_EQ(PlaceFlow(svc, v6).maglev_hash,
            PlaceFlow(svc, FlowOf("2001:db8:1::1", 5, "2001:db8::11", 6)).maglev_hash);
  EXPECT_NE(PlaceFlow(svc, v6).maglev_hash,
            PlaceFlow(svc, FlowOf("2001:db8:1::2", 1234, "2001:db8::10", 80)).maglev_hash);
}

}  // namespace
}  // namespace ecmplb::dataplane
