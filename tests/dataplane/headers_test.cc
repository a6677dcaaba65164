// Tests for dataplane/packet/headers.h: byte-order helpers, MacAddr, IpAddr.
#include "dataplane/packet/headers.h"

#include <unordered_set>

#include "absl/hash/hash.h"
#include "gtest/gtest.h"

namespace ecmplb::dataplane {
namespace {

TEST(ByteOrderTest, LoadsAndStoresBigEndian) {
  uint8_t b[4] = {0x12, 0x34, 0x56, 0x78};
  EXPECT_EQ(LoadBe16(b), 0x1234);
  EXPECT_EQ(LoadBe32(b), 0x12345678u);
  StoreBe16(b, 0xABCD);
  EXPECT_EQ(b[0], 0xAB);
  EXPECT_EQ(b[1], 0xCD);
  StoreBe32(b, 0x01020304);
  EXPECT_EQ(b[0], 1);
  EXPECT_EQ(b[3], 4);
}

TEST(MacAddrTest, ParsesAndPrints) {
  auto m = MacAddr::Parse("52:54:00:AB:cd:ef");
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->bytes[0], 0x52);
  EXPECT_EQ(m->bytes[3], 0xAB);
  EXPECT_EQ(m->bytes[5], 0xEF);
  EXPECT_EQ(m->ToString(), "52:54:00:ab:cd:ef");
  const uint8_t raw[6] = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};
  EXPECT_EQ(MacAddr::FromBytes(raw), *m);
}

TEST(MacAddrTest, RejectsBadText) {
  for (const char* bad :
       {"", "52:54:00:ab:cd", "52:54:00:ab:cd:ef:00", "52-54-00-ab-cd-ef", "5254.00ab.cdef",
        "52:54:00:ab:cd:eg", "52:54:00:ab:cd:e", " 52:54:00:ab:cd:ef"}) {
    auto m = MacAddr::Parse(bad);
    EXPECT_FALSE(m.ok()) << bad;
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(IpAddrTest, ParsesV4) {
  auto a = IpAddr::Parse("203.0.113.10");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->is_v4());
  EXPECT_EQ(a->size(), 4u);
  EXPECT_EQ(a->v4_host(), 0xCB00710Au);
  EXPECT_EQ(*a, IpAddr::V4(0xCB00710A));
  EXPECT_EQ(a->ToString(), "203.0.113.10");
  for (size_t i = 4; i < 16; ++i) EXPECT_EQ(a->bytes[i], 0) << i;
}

TEST(IpAddrTest, ParsesV6) {
  auto a = IpAddr::Parse("2001:DB8::1");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_TRUE(a->is_v6());
  EXPECT_EQ(a->size(), 16u);
  EXPECT_EQ(a->bytes[0], 0x20);
  EXPECT_EQ(a->bytes[1], 0x01);
  EXPECT_EQ(a->bytes[15], 0x01);
  EXPECT_EQ(a->ToString(), "2001:db8::1");
  EXPECT_EQ(IpAddr::V6FromBytes(a->bytes.data()), *a);
}

TEST(IpAddrTest, AssignOverwritesEveryByte) {
  const uint8_t v6[16] = {0x20, 0x01, 0x0d, 0xb8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const uint8_t v4[4] = {10, 0, 0, 1};
  IpAddr a = IpAddr::V6FromBytes(v6);
  a.AssignV4(v4);
  EXPECT_EQ(a, IpAddr::V4(0x0A000001));
  a.AssignV6(v6);
  EXPECT_EQ(a, IpAddr::V6FromBytes(v6));
}

TEST(IpAddrTest, RejectsBadText) {
  for (const char* bad : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.4/32", "2001:db8:::1",
                          "2001:db8::g", "host.example", "1.2.3.4 "}) {
    auto a = IpAddr::Parse(bad);
    EXPECT_FALSE(a.ok()) << bad;
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(IpAddr().ToString(), "unset");
}

TEST(IpAddrTest, EqualityAndHashSeeFamilyAndBytes) {
  const IpAddr v4 = IpAddr::V4(0x0A000001);
  IpAddr v6_same_bytes = v4;
  v6_same_bytes.family = 6;
  EXPECT_NE(v4, v6_same_bytes);
  EXPECT_NE(v4, IpAddr::V4(0x0A000002));
  EXPECT_EQ(v4, IpAddr::V4FromBytes(v4.bytes.data()));

  std::unordered_set<IpAddr> set;
  for (uint32_t i = 0; i < 1000; ++i) set.insert(IpAddr::V4(0x0A000000 + i));
  set.insert(v6_same_bytes);
  EXPECT_EQ(set.size(), 1001u);
  EXPECT_TRUE(set.contains(IpAddr::V4(0x0A000001)));
  EXPECT_EQ(absl::Hash<IpAddr>()(v4), absl::Hash<IpAddr>()(IpAddr::V4(0x0A000001)));
  EXPECT_NE(v4.Hash(), v6_same_bytes.Hash());
}

}  // namespace
}  // namespace ecmplb::dataplane
