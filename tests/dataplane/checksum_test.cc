// Tests for dataplane/packet/checksum.h against known vectors and a naive
// reference implementation written here.
#include "dataplane/packet/checksum.h"

#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace ecmplb::dataplane {
namespace {

// Naive RFC 1071: big-endian words, odd byte padded, 32-bit accumulator.
uint16_t RefSum(const std::vector<uint8_t>& d, uint32_t initial = 0) {
  uint32_t s = initial;
  for (size_t i = 0; i < d.size(); i += 2) {
    s += uint32_t{d[i]} << 8;
    if (i + 1 < d.size()) s += d[i + 1];
    while (s >> 16) s = (s & 0xFFFF) + (s >> 16);
  }
  return static_cast<uint16_t>(s);
}

TEST(ChecksumTest, FoldSumMatchesRepeatedFolding) {
  // Reference: fold 16-bit pieces with end-around carry until 16 bits remain.
  auto ref = [](uint64_t acc) {
    while (acc >> 16) acc = (acc & 0xFFFF) + (acc >> 16);
    return static_cast<uint16_t>(acc);
  };
  std::vector<uint64_t> values = {0,
                                  1,
                                  0xFFFF,
                                  0x10000,
                                  0x1FFFE,
                                  0xFFFFFFFF,
                                  0x100000000,
                                  0xFFFF0001,
                                  0xFFFFFFFF00000000,
                                  0x00000001FFFFFFFF,
                                  0xFFFFFFFFFFFFFFFF,
                                  0x8000000080000000,
                                  0xFFFE0001FFFE0001};
  std::mt19937_64 rng(1624);
  for (int i = 0; i < 100000; ++i) {
    const uint64_t r = rng();
    values.push_back(r);
    values.push_back(r >> (r % 64));        // every width
    values.push_back(r % 0xFFFF * 0xFFFF);  // multiples of 0xFFFF
  }
  for (uint64_t v : values) {
    ASSERT_EQ(FoldSum(v), ref(v)) << std::hex << v;
  }
}

TEST(ChecksumTest, Rfc1071Example) {
  // RFC 1071 section 3: 00 01 f2 03 f4 f5 f6 f7 sums to 0xddf2.
  const std::vector<uint8_t> d = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  EXPECT_EQ(OnesSum(d), 0xDDF2);
  EXPECT_EQ(InternetChecksum(d), 0x220D);
}

TEST(ChecksumTest, OddLengthPadsWithZero) {
  EXPECT_EQ(OnesSum(std::vector<uint8_t>{0x01}), 0x0100);
  EXPECT_EQ(OnesSum(std::vector<uint8_t>{0x01, 0x02, 0x03}), 0x0402);
  EXPECT_EQ(OnesSum(std::vector<uint8_t>{}), 0);
  EXPECT_EQ(OnesSum(std::vector<uint8_t>{}, 0x1234), 0x1234);
}

TEST(ChecksumTest, MatchesReferenceForAllSmallLengths) {
  std::mt19937 rng(1071);
  for (size_t len = 0; len < 200; ++len) {
    for (int rep = 0; rep < 5; ++rep) {
      std::vector<uint8_t> d(len);
      for (auto& b : d) b = static_cast<uint8_t>(rng());
      const uint32_t initial = rng() & 0xFFFF;
      EXPECT_EQ(OnesSum(d, initial), RefSum(d, initial)) << "len " << len;
    }
  }
  std::vector<uint8_t> ones(4000, 0xFF);  // carries on every word
  EXPECT_EQ(OnesSum(ones), RefSum(ones));
}

TEST(ChecksumTest, Ipv4HeaderKnownValue) {
  // A well-known example header with checksum 0xb861.
  std::vector<uint8_t> h = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                            0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  EXPECT_TRUE(Ipv4HeaderChecksumOk(h));
  EXPECT_EQ(Ipv4HeaderChecksum(h), 0xB861);  // ignores the field's contents
  h[10] = 0;
  h[11] = 0;
  EXPECT_FALSE(Ipv4HeaderChecksumOk(h));
  EXPECT_EQ(Ipv4HeaderChecksum(h), 0xB861);
  EXPECT_EQ(InternetChecksum(h), 0xB861);
}

TEST(ChecksumTest, IncrementalUpdateMatchesRecompute) {
  std::mt19937 rng(1624);
  for (int rep = 0; rep < 2000; ++rep) {
    std::vector<uint8_t> h(20);
    for (auto& b : h) b = static_cast<uint8_t>(rng());
    h[0] = 0x45;
    StoreBe16(h.data() + 10, Ipv4HeaderChecksum(h));
    const uint16_t csum = LoadBe16(h.data() + 10);

    // TTL decrement: the word at offset 8 (TTL, protocol) changes.
    const uint16_t old_word = LoadBe16(h.data() + 8);
    h[8] = static_cast<uint8_t>(h[8] - 1);
    const uint16_t new_word = LoadBe16(h.data() + 8);
    const uint16_t updated = ChecksumUpdate16(csum, old_word, new_word);
    EXPECT_EQ(updated, Ipv4HeaderChecksum(h));
    StoreBe16(h.data() + 10, updated);
    EXPECT_TRUE(Ipv4HeaderChecksumOk(h));

    // Destination address rewrite.
    const uint32_t old_addr = LoadBe32(h.data() + 16);
    const uint32_t new_addr = static_cast<uint32_t>(rng());
    StoreBe32(h.data() + 16, new_addr);
    const uint16_t updated32 = ChecksumUpdate32(updated, old_addr, new_addr);
    EXPECT_EQ(updated32, Ipv4HeaderChecksum(h));
  }
}

// Builds the pseudo-header by hand and sums it with the reference.
uint16_t RefL4Checksum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                       const std::vector<uint8_t>& l4) {
  std::vector<uint8_t> ph(src.bytes.begin(), src.bytes.begin() + src.size());
  ph.insert(ph.end(), dst.bytes.begin(), dst.bytes.begin() + dst.size());
  if (src.is_v4()) {
    ph.push_back(0);
    ph.push_back(proto);
    ph.push_back(static_cast<uint8_t>(l4.size() >> 8));
    ph.push_back(static_cast<uint8_t>(l4.size()));
  } else {
    const uint32_t n = static_cast<uint32_t>(l4.size());
    for (int s = 24; s >= 0; s -= 8) ph.push_back(static_cast<uint8_t>(n >> s));
    ph.insert(ph.end(), {0, 0, 0, proto});
  }
  ph.insert(ph.end(), l4.begin(), l4.end());
  return static_cast<uint16_t>(~RefSum(ph));
}

TEST(ChecksumTest, L4ChecksumWithPseudoHeader) {
  std::mt19937 rng(793);
  const IpAddr v4s = IpAddr::V4(0xC6336407);
  const IpAddr v4d = IpAddr::V4(0xCB00710A);
  uint8_t v6b[16];
  for (auto& b : v6b) b = static_cast<uint8_t>(rng());
  const IpAddr v6s = IpAddr::V6FromBytes(v6b);
  v6b[15] ^= 0x5A;
  const IpAddr v6d = IpAddr::V6FromBytes(v6b);
  for (size_t len : {8, 9, 20, 21, 57, 1400}) {
    std::vector<uint8_t> l4(len);
    for (auto& b : l4) b = static_cast<uint8_t>(rng());
    l4[6] = l4[7] = 0;  // a UDP-style checksum field, zero while computing
    const uint16_t c4 = L4Checksum(v4s, v4d, inet::ip_proto::kUdp, l4);
    EXPECT_EQ(c4, RefL4Checksum(v4s, v4d, inet::ip_proto::kUdp, l4)) << len;
    const uint16_t c6 = L4Checksum(v6s, v6d, inet::ip_proto::kTcp, l4);
    EXPECT_EQ(c6, RefL4Checksum(v6s, v6d, inet::ip_proto::kTcp, l4)) << len;
    // With the field filled in, the whole segment verifies to zero.
    StoreBe16(l4.data() + 6, c4);
    EXPECT_EQ(L4Checksum(v4s, v4d, inet::ip_proto::kUdp, l4), 0) << len;
  }
}

}  // namespace
}  // namespace ecmplb::dataplane
