#include "conntrack/flow_key.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>

#include <random>

#include "conntrack/flow_hash_inline.h"
#include "gtest/gtest.h"
#include "xxhash.h"

namespace ecmplb::conntrack {
namespace {

TEST(FlowKeyTest, V4FactoryKeepsWireBytesAndZeroesTheRest) {
  const FlowKey k = FlowKey::V4(htonl(0x0a000001), htonl(0xc0a80102), htons(12345), htons(80),
                                inet::ip_proto::kTcp, 7);
  EXPECT_EQ(k.family, kFamilyV4);
  EXPECT_FALSE(k.is_v6());
  EXPECT_EQ(ntohs(k.sport), 12345);
  EXPECT_EQ(ntohs(k.dport), 80);
  EXPECT_EQ(k.service, 7);
  EXPECT_EQ(k.proto, inet::ip_proto::kTcp);
  const uint8_t want[8] = {10, 0, 0, 1, 192, 168, 1, 2};
  EXPECT_EQ(std::memcmp(k.addr, want, 8), 0);
  for (int i = 8; i < 32; ++i) EXPECT_EQ(k.addr[i], 0) << i;
  EXPECT_EQ(k.canonical_size(), 16u);
  EXPECT_EQ(k.canonical_bytes().size(), 16u);
}

TEST(FlowKeyTest, V6FactoryKeepsBothAddresses) {
  std::array<uint8_t, 16> src{}, dst{};
  for (int i = 0; i < 16; ++i) {
    src[i] = static_cast<uint8_t>(i + 1);
    dst[i] = static_cast<uint8_t>(0xf0 + i);
  }
  const FlowKey k = FlowKey::V6(src, dst, htons(5353), htons(53), inet::ip_proto::kUdp, 65535);
  EXPECT_TRUE(k.is_v6());
  EXPECT_EQ(std::memcmp(k.addr, src.data(), 16), 0);
  EXPECT_EQ(std::memcmp(k.addr + 16, dst.data(), 16), 0);
  EXPECT_EQ(k.service, 65535);
  EXPECT_EQ(k.canonical_size(), 40u);
}

TEST(FlowKeyTest, EveryFieldMakesADifferentKey) {
  const FlowKey base = FlowKey::V4(1, 2, 3, 4, inet::ip_proto::kTcp, 5);
  const FlowKey variants[] = {
      FlowKey::V4(9, 2, 3, 4, inet::ip_proto::kTcp, 5),
      FlowKey::V4(1, 9, 3, 4, inet::ip_proto::kTcp, 5),
      FlowKey::V4(1, 2, 9, 4, inet::ip_proto::kTcp, 5),
      FlowKey::V4(1, 2, 3, 9, inet::ip_proto::kTcp, 5),
      FlowKey::V4(1, 2, 3, 4, inet::ip_proto::kUdp, 5),
  };
  for (const FlowKey& v : variants) {
    EXPECT_FALSE(v == base);
    EXPECT_NE(FlowHash(v), FlowHash(base));
  }
  EXPECT_TRUE(FlowKey::V4(1, 2, 3, 4, inet::ip_proto::kTcp, 5) == base);
  // The service is part of the key but not of the hash (a host-local index:
  // every host must hash a flow alike whatever its service numbering).
  const FlowKey other_service = FlowKey::V4(1, 2, 3, 4, inet::ip_proto::kTcp, 9);
  EXPECT_FALSE(other_service == base);
  EXPECT_EQ(FlowHash(other_service), FlowHash(base));
  std::array<uint8_t, 16> a{}, b{};
  a[15] = 1;
  EXPECT_EQ(FlowHash(FlowKey::V6(a, b, 3, 4, inet::ip_proto::kTcp, 5)),
            FlowHash(FlowKey::V6(a, b, 3, 4, inet::ip_proto::kTcp, 9)));
  EXPECT_NE(FlowHash(FlowKey::V6(a, b, 3, 4, inet::ip_proto::kTcp, 5)),
            FlowHash(FlowKey::V6(b, a, 3, 4, inet::ip_proto::kTcp, 5)));
}

TEST(FlowKeyTest, HashIsXxh3OfCanonicalBytesWithFixedSeed) {
  // The canonical form written out by hand, service bytes zeroed: every LB
  // host must place flows identically (the Maglev pick of a new flow uses
  // this hash), so a change of seed or byte form must be deliberate.
  const FlowKey v4 = FlowKey::V4(htonl(0x0a000001), htonl(0xc0a80102), htons(12345), htons(80),
                                 inet::ip_proto::kTcp, 0x0107);
  const uint8_t v4_bytes[16] = {0x30, 0x39, 0x00, 80, 0, 0, 6, 4, 10, 0, 0, 1, 192, 168, 1, 2};
  EXPECT_EQ(FlowHash(v4), XXH3_64bits_withSeed(v4_bytes, 16, kFlowHashSeed));
  EXPECT_EQ(kFlowHashSeed, 0x65636d706c62ULL);

  std::array<uint8_t, 16> src{}, dst{};
  src[0] = 0x20;
  src[15] = 1;
  dst[0] = 0xfd;
  dst[15] = 2;
  const FlowKey v6 = FlowKey::V6(src, dst, htons(1), htons(2), inet::ip_proto::kUdp, 3);
  uint8_t v6_bytes[40] = {0, 1, 0, 2, 0, 0, 17, 6};
  std::memcpy(v6_bytes + 8, src.data(), 16);
  std::memcpy(v6_bytes + 24, dst.data(), 16);
  EXPECT_EQ(FlowHash(v6), XXH3_64bits_withSeed(v6_bytes, 40, kFlowHashSeed));
}

// The word-wise IPv4 key and hash (the dataplane's per-packet path) are the
// same key and hash as V4() and FlowHash, for any field values.
TEST(FlowKeyTest, V4WordsMatchTheFactoryAndFlowHash) {
  std::mt19937_64 rng(40);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t r = rng();
    const uint32_t src = static_cast<uint32_t>(r), dst = static_cast<uint32_t>(r >> 32);
    const uint64_t q = rng();
    const uint16_t sport = static_cast<uint16_t>(q), dport = static_cast<uint16_t>(q >> 16);
    const uint16_t service = static_cast<uint16_t>(q >> 32);
    const uint8_t proto = static_cast<uint8_t>(q >> 48);
    const FlowKey want = FlowKey::V4(src, dst, sport, dport, proto, service);
    FlowKey got;
    std::memset(got.addr, 0xab, sizeof(got.addr));  // stale bytes are cleared
    const uint64_t header = FlowKey::HeaderWord(sport, dport, proto, service, kFamilyV4);
    const uint64_t addr = uint64_t{src} | uint64_t{dst} << 32;
    got.SetV4Words(header, addr);
    ASSERT_EQ(got, want) << i;
    ASSERT_EQ(FlowHashV4Words(header, addr), FlowHash(want)) << i;
    ASSERT_EQ(FlowHashInline(want), FlowHash(want)) << i;
  }
}

}  // namespace
}  // namespace ecmplb::conntrack
