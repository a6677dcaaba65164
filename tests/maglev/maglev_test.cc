// Tests for maglev/maglev.h: identities, validation, weights, determinism,
// disruption on removal, lookup, and the pinned table fingerprint.
#include "maglev/maglev.h"

#include <xxhash.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/backends.h"

namespace ecmplb::maglev {
namespace {

using test_support::NumberedBackendId;
using test_support::NumberedBackends;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Identity of every slot: comparable across tables built from different
// spans.
std::vector<BackendId> SlotIds(const Table& t, const std::vector<Backend>& backends) {
  std::vector<BackendId> ids;
  ids.reserve(t.size());
  for (uint16_t e : t.entries()) ids.push_back(backends.at(e).id);
  return ids;
}

Table MustBuild(const std::vector<Backend>& b, uint32_t m = kDefaultTableSize) {
  absl::StatusOr<Table> t = Table::Build(b, m);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(*t);
}

// ---------------------------------------------------------------- BackendId

TEST(BackendIdTest, CanonicalBytesV4AreMappedWithBigEndianPort) {
  const BackendId id = BackendId::V4({10, 1, 2, 3}, 0x1f90);
  EXPECT_THAT(id.CanonicalBytes(),
              ElementsAre(4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3, 0x1f, 0x90));
  EXPECT_TRUE(id.is_v4());
  EXPECT_THAT(id.v4(), ElementsAre(10, 1, 2, 3));
  EXPECT_EQ(id.port(), 0x1f90);
}

TEST(BackendIdTest, CanonicalBytesV6) {
  std::array<uint8_t, 16> a{};
  a[0] = 0x20;
  a[1] = 0x01;
  a[2] = 0x0d;
  a[3] = 0xb8;
  a[15] = 1;
  const BackendId id = BackendId::V6(a, 443);
  EXPECT_THAT(id.CanonicalBytes(), ElementsAre(6, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0,
                                               0, 0, 1, 0x01, 0xbb));
  EXPECT_TRUE(id.is_v6());
}

TEST(BackendIdTest, V4BeTakesNetworkOrderBytes) {
  const uint8_t bytes[4] = {192, 168, 7, 9};
  uint32_t be;
  std::memcpy(&be, bytes, 4);
  EXPECT_EQ(BackendId::V4Be(be, 53), BackendId::V4({192, 168, 7, 9}, 53));
}

TEST(BackendIdTest, DefaultIsZeroV4) {
  EXPECT_EQ(BackendId(), BackendId::V4({0, 0, 0, 0}, 0));
}

TEST(BackendIdTest, ToString) {
  EXPECT_EQ(BackendId::V4({10, 0, 0, 1}, 80).ToString(), "10.0.0.1:80");
  std::array<uint8_t, 16> a{};
  a[0] = 0x20;
  a[1] = 0x01;
  a[2] = 0x0d;
  a[3] = 0xb8;
  a[15] = 1;
  EXPECT_EQ(BackendId::V6(a, 80).ToString(), "[2001:db8::1]:80");
}

TEST(BackendIdTest, ParseAcceptsAddressesWithAndWithoutPort) {
  EXPECT_EQ(*BackendId::Parse("10.0.0.1:80"), BackendId::V4({10, 0, 0, 1}, 80));
  EXPECT_EQ(*BackendId::Parse("10.0.0.1"), BackendId::V4({10, 0, 0, 1}, 0));
  std::array<uint8_t, 16> a{};
  a[0] = 0x20;
  a[1] = 0x01;
  a[2] = 0x0d;
  a[3] = 0xb8;
  a[15] = 1;
  EXPECT_EQ(*BackendId::Parse("[2001:db8::1]:8080"), BackendId::V6(a, 8080));
  EXPECT_EQ(*BackendId::Parse("[2001:db8::1]"), BackendId::V6(a, 0));
  EXPECT_EQ(*BackendId::Parse("2001:db8::1"), BackendId::V6(a, 0));
  EXPECT_EQ(*BackendId::Parse("10.0.0.1:65535"), BackendId::V4({10, 0, 0, 1}, 65535));
}

TEST(BackendIdTest, ParseRoundTripsToString) {
  for (const char* s : {"10.0.0.1:80", "0.0.0.0:0", "[2001:db8::1]:80", "[::ffff:10.0.0.1]:1",
                        "[fe80::1:2:3:4]:65535"}) {
    absl::StatusOr<BackendId> id = BackendId::Parse(s);
    ASSERT_TRUE(id.ok()) << s << ": " << id.status();
    EXPECT_EQ(id->ToString(), s);
    EXPECT_EQ(*BackendId::Parse(id->ToString()), *id);
  }
}

TEST(BackendIdTest, V4MappedV6IsADistinctIdentity) {
  const BackendId v6 = *BackendId::Parse("[::ffff:10.0.0.1]:80");
  const BackendId v4 = *BackendId::Parse("10.0.0.1:80");
  EXPECT_EQ(v6.addr16(), v4.addr16());
  EXPECT_NE(v6, v4);
}

TEST(BackendIdTest, ParseRejectsBadInput) {
  for (const char* s :
       {"", "10.0.0", "10.0.0.256", "10.0.0.1:", "10.0.0.1:65536", "10.0.0.1:-1", "10.0.0.1:+80",
        "10.0.0.1:80x", "10.0.0.1 :80", "[2001:db8::1", "[2001:db8::1]80", "[10.0.0.1]:80", "[]:80",
        "2001:db8::g", "host:80", "[2001:db8::1]:99999",
        "1111111111111111111111111111111111111111111111111111111111111"}) {
    absl::StatusOr<BackendId> id = BackendId::Parse(s);
    EXPECT_EQ(id.status().code(), absl::StatusCode::kInvalidArgument) << s;
  }
}

TEST(BackendIdTest, OrderIsCanonicalByteOrder) {
  std::vector<BackendId> ids = {*BackendId::Parse("[::1]:1"), *BackendId::Parse("10.0.0.2:1"),
                                *BackendId::Parse("10.0.0.1:256"), *BackendId::Parse("10.0.0.1:2"),
                                *BackendId::Parse("9.255.255.255:9")};
  std::vector<BackendId> by_op = ids;
  std::sort(by_op.begin(), by_op.end());
  std::vector<BackendId> by_bytes = ids;
  std::sort(by_bytes.begin(), by_bytes.end(), [](const BackendId& a, const BackendId& b) {
    return a.CanonicalBytes() < b.CanonicalBytes();
  });
  EXPECT_EQ(by_op, by_bytes);
  EXPECT_EQ(by_op.front(), *BackendId::Parse("9.255.255.255:9"));
  EXPECT_EQ(by_op.back(), *BackendId::Parse("[::1]:1"));
}

// --------------------------------------------------------------- validation

TEST(TableSizeTest, AcceptsPrimesInRange) {
  for (uint32_t m : {251u, 257u, 65537u, 655373u, 16777213u}) {
    EXPECT_TRUE(Table::ValidateTableSize(m).ok()) << m;
  }
}

TEST(TableSizeTest, RejectsNonPrimesAndOutOfRange) {
  for (uint32_t m :
       {0u, 1u, 2u, 241u, 249u, 250u, 65536u, 65535u, 655371u, 16777259u, 0xffffffffu}) {
    absl::Status s = Table::ValidateTableSize(m);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << m;
    EXPECT_THAT(std::string(s.message()), HasSubstr("prime")) << m;
  }
}

TEST(BuildTest, RejectsBadTableSize) {
  EXPECT_EQ(Table::Build(NumberedBackends(3), 65536).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(BuildTest, EmptyIsFailedPrecondition) {
  absl::StatusOr<Table> t = Table::Build({});
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(BuildTest, AllWeightsZeroIsFailedPrecondition) {
  absl::StatusOr<Table> t = Table::Build(NumberedBackends(5, 0));
  EXPECT_EQ(t.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("weight"));
}

TEST(BuildTest, DuplicateIdentityIsInvalidArgument) {
  std::vector<Backend> b = NumberedBackends(10);
  b.push_back({NumberedBackendId(3), 5});
  absl::StatusOr<Table> t = Table::Build(b);
  EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(t.status().message()), HasSubstr("10.0.0.4:80"));
}

TEST(BuildTest, SameAddressDifferentPortIsNotDuplicate) {
  std::vector<Backend> b = {{NumberedBackendId(0, 80), 1}, {NumberedBackendId(0, 81), 1}};
  EXPECT_TRUE(Table::Build(b).ok());
}

TEST(BuildTest, BackendCountMustBeBelowTableSize) {
  EXPECT_EQ(Table::Build(NumberedBackends(251), 251).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Table::Build(NumberedBackends(250), 251).ok());
}

TEST(BuildTest, TooManyBackendsIsResourceExhausted) {
  EXPECT_EQ(Table::Build(NumberedBackends(kMaxBackends + 1), 655373).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST(BuildTest, MaxBackendsBuilds) {
  absl::StatusOr<Table> t = Table::Build(NumberedBackends(kMaxBackends), 655373);
  ASSERT_TRUE(t.ok()) << t.status();
  const std::vector<uint32_t> c = t->SlotCounts();
  EXPECT_EQ(*std::min_element(c.begin(), c.end()), 655373 / kMaxBackends);
  EXPECT_EQ(*std::max_element(c.begin(), c.end()), 655373 / kMaxBackends + 1);
}

// ------------------------------------------------------------------ weights

TEST(WeightTest, EqualWeightsGiveFloorOrCeil) {
  for (uint32_t m : {251u, 65537u, 655373u}) {
    for (uint32_t n : {1u, 2u, 3u, 7u, 10u, 100u, 250u}) {
      if (n >= m) continue;
      Table t = MustBuild(NumberedBackends(n, 3), m);
      ASSERT_EQ(t.size(), m);
      ASSERT_EQ(t.entries().size(), m);
      const std::vector<uint32_t> c = t.SlotCounts();
      ASSERT_EQ(c.size(), n);
      uint64_t total = 0;
      for (uint32_t x : c) {
        EXPECT_TRUE(x == m / n || x == (m + n - 1) / n)
            << "m=" << m << " n=" << n << " count=" << x;
        total += x;
      }
      EXPECT_EQ(total, m);
    }
  }
}

TEST(WeightTest, ThousandEqualBackendsMaxOverMeanAtMost1Percent) {
  Table t = MustBuild(NumberedBackends(1000));
  const std::vector<uint32_t> c = t.SlotCounts();
  const double mean = 65537.0 / 1000;
  const double max = *std::max_element(c.begin(), c.end());
  const double min = *std::min_element(c.begin(), c.end());
  RecordProperty("max_over_mean", std::to_string(max / mean));
  EXPECT_LE(max / mean, 1.01);
  EXPECT_GE(min / mean, 0.99);
}

void ExpectRatiosWithin1Percent(const std::vector<Backend>& b, uint32_t m) {
  Table t = MustBuild(b, m);
  const std::vector<uint32_t> c = t.SlotCounts();
  double wsum = 0;
  for (const Backend& x : b) wsum += x.weight;
  for (size_t i = 0; i < b.size(); ++i) {
    const double expected = m * (b[i].weight / wsum);
    if (b[i].weight == 0) {
      EXPECT_EQ(c[i], 0u);
    } else {
      EXPECT_NEAR(c[i] / expected, 1.0, 0.01) << "backend " << i << " weight " << b[i].weight
                                              << " got " << c[i] << " expected " << expected;
    }
  }
}

TEST(WeightTest, OneToTenGivesOneToTenSlots) {
  std::vector<Backend> b = {{NumberedBackendId(0), 1}, {NumberedBackendId(1), 10}};
  ExpectRatiosWithin1Percent(b, 65537);
  Table t = MustBuild(b);
  const std::vector<uint32_t> c = t.SlotCounts();
  EXPECT_NEAR(static_cast<double>(c[1]) / c[0], 10.0, 0.1);
}

TEST(WeightTest, RatiosHoldWhateverTheWeightsSumTo) {
  // Katran's first scheme honoured weights only when they summed to about
  // the table size; here 1:10 holds at any scale.
  for (uint32_t scale : {1u, 7u, 1000u, 100000u, 400000000u}) {
    std::vector<Backend> b = {{NumberedBackendId(0), scale}, {NumberedBackendId(1), 10 * scale}};
    ExpectRatiosWithin1Percent(b, 65537);
  }
  // Only the ratios matter: scaled weights give the identical table.
  std::vector<Backend> small = {
      {NumberedBackendId(0), 1}, {NumberedBackendId(1), 10}, {NumberedBackendId(2), 4}};
  std::vector<Backend> big = {{NumberedBackendId(0), 100000},
                              {NumberedBackendId(1), 1000000},
                              {NumberedBackendId(2), 400000}};
  Table a = MustBuild(small);
  Table c = MustBuild(big);
  EXPECT_TRUE(
      std::equal(a.entries().begin(), a.entries().end(), c.entries().begin(), c.entries().end()));
}

TEST(WeightTest, MixedWeightsWithinOnePercent) {
  std::vector<Backend> b;
  for (uint32_t i = 0; i < 30; ++i) b.push_back({NumberedBackendId(i), 1 + i % 10});
  ExpectRatiosWithin1Percent(b, 65537);
  std::vector<Backend> odd = {{NumberedBackendId(0), 2},  {NumberedBackendId(1), 3},
                              {NumberedBackendId(2), 5},  {NumberedBackendId(3), 7},
                              {NumberedBackendId(4), 11}, {NumberedBackendId(5), 13}};
  ExpectRatiosWithin1Percent(odd, 65537);
  ExpectRatiosWithin1Percent(odd, 655373);
}

TEST(WeightTest, ExtremeRatioStillFillsTable) {
  std::vector<Backend> b = {
      {NumberedBackendId(0), 1}, {NumberedBackendId(1), 0xffffffffu}, {NumberedBackendId(2), 2}};
  Table t = MustBuild(b);
  const std::vector<uint32_t> c = t.SlotCounts();
  EXPECT_EQ(c[0] + c[1] + c[2], 65537u);
  EXPECT_EQ(c[1], 65537u);  // 1 and 2 out of 4e9 round down to no slot
}

TEST(WeightTest, WeightZeroTakesNoSlotAndEqualsRemoval) {
  std::vector<Backend> with = NumberedBackends(20);
  with[7].weight = 0;
  Table drained = MustBuild(with);
  EXPECT_EQ(drained.SlotCounts()[7], 0u);
  std::vector<Backend> without = with;
  without.erase(without.begin() + 7);
  Table removed = MustBuild(without);
  EXPECT_EQ(SlotIds(drained, with), SlotIds(removed, without));
}

// -------------------------------------------------------------- determinism

std::vector<Backend> MixedFamilies(uint32_t n) {
  std::vector<Backend> b;
  for (uint32_t i = 0; i < n; ++i) {
    if (i % 3 == 0) {
      std::array<uint8_t, 16> a{0x20, 0x01, 0x0d, 0xb8};
      a[14] = static_cast<uint8_t>(i >> 8);
      a[15] = static_cast<uint8_t>(i);
      b.push_back({BackendId::V6(a, 443), 1 + i % 4});
    } else {
      b.push_back({NumberedBackendId(i, static_cast<uint16_t>(8000 + i % 5)), 1 + i % 4});
    }
  }
  return b;
}

TEST(DeterminismTest, ShuffledInputGivesIdenticalTable) {
  const std::vector<Backend> base = MixedFamilies(200);
  Table t0 = MustBuild(base);
  const std::vector<BackendId> ids0 = SlotIds(t0, base);
  std::mt19937_64 rng(42);
  for (int round = 0; round < 5; ++round) {
    std::vector<Backend> shuffled = base;
    std::shuffle(shuffled.begin(), shuffled.end(), rng);
    Table t = MustBuild(shuffled);
    EXPECT_EQ(SlotIds(t, shuffled), ids0) << "shuffle " << round;
    // Entries index the caller's span as given.
    for (uint32_t s = 0; s < t.size(); s += 97) {
      EXPECT_EQ(shuffled[t.entries()[s]].id, ids0[s]);
    }
  }
  std::vector<Backend> reversed(base.rbegin(), base.rend());
  Table tr = MustBuild(reversed);
  EXPECT_EQ(SlotIds(tr, reversed), ids0);
}

TEST(DeterminismTest, RebuildIsByteIdentical) {
  const std::vector<Backend> b = MixedFamilies(50);
  Table a = MustBuild(b);
  Table c = MustBuild(b);
  EXPECT_TRUE(
      std::equal(a.entries().begin(), a.entries().end(), c.entries().begin(), c.entries().end()));
}

// Pinned: any change to the canonical bytes, seeds, hash, fill order or
// weighting changes these and must be a deliberate, announced change (every
// LB host behind a router must run the same one).
TEST(DeterminismTest, PinnedFingerprint) {
  std::vector<Backend> b;
  for (uint32_t i = 0; i < 10; ++i) {
    b.push_back({BackendId::V4({10, 0, 0, static_cast<uint8_t>(i + 1)}, 80), 1});
  }
  b.push_back({*BackendId::Parse("[2001:db8::1]:80"), 2});
  b.push_back({*BackendId::Parse("192.168.1.1:443"), 3});
  b.push_back({*BackendId::Parse("192.168.1.2:443"), 0});
  Table t = MustBuild(b);
  absl::StatusOr<uint64_t> fp = TableFingerprint(t, b);
  ASSERT_TRUE(fp.ok());
  EXPECT_EQ(*fp, 0x07b9a3c0ac28a130ULL) << std::hex << *fp;
  Table small = MustBuild(b, 251);
  EXPECT_EQ(*TableFingerprint(small, b), 0x0c8d7fcb41ed16d2ULL)
      << std::hex << *TableFingerprint(small, b);
  // And the first slots by name, so a failure shows what moved.
  std::vector<std::string> first;
  for (uint32_t s = 0; s < 8; ++s) {
    first.push_back(b[t.entries()[s]].id.ToString());
  }
  EXPECT_THAT(first, ElementsAre("[2001:db8::1]:80", "10.0.0.1:80", "10.0.0.4:80", "10.0.0.10:80",
                                 "10.0.0.7:80", "10.0.0.6:80", "10.0.0.10:80", "[2001:db8::1]:80"));
}

TEST(DeterminismTest, FingerprintMatchesSlotIdentities) {
  const std::vector<Backend> b = MixedFamilies(30);
  Table t = MustBuild(b, 251);
  std::vector<uint8_t> bytes;
  for (uint16_t e : t.entries()) {
    const auto c = b[e].id.CanonicalBytes();
    bytes.insert(bytes.end(), c.begin(), c.end());
  }
  EXPECT_EQ(*TableFingerprint(t, b), XXH64(bytes.data(), bytes.size(), 0));
}

TEST(DeterminismTest, FingerprintRejectsWrongBackendSpan) {
  const std::vector<Backend> b = NumberedBackends(5);
  Table t = MustBuild(b);
  const std::vector<Backend> fewer = NumberedBackends(4);
  EXPECT_EQ(TableFingerprint(t, fewer).status().code(), absl::StatusCode::kInvalidArgument);
}

// A direct transcription of the documented algorithm (no calendar, no
// bitmap, no free-slot scan), to check the optimised build against.
std::vector<uint16_t> ReferenceBuild(const std::vector<Backend>& b, uint32_t m) {
  struct Ref {
    uint32_t pos, skip, index;
    uint64_t w;
    int64_t last_turn;
  };
  std::vector<uint32_t> order(b.size());
  for (uint32_t i = 0; i < b.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&b](uint32_t x, uint32_t y) { return b[x].id < b[y].id; });
  std::vector<Ref> refs;
  uint64_t max_w = 0;
  for (uint32_t i : order) {
    if (b[i].weight == 0) continue;
    const auto bytes = b[i].id.CanonicalBytes();
    refs.push_back(
        {static_cast<uint32_t>(XXH64(bytes.data(), bytes.size(), kOffsetSeed) % m),
         static_cast<uint32_t>(XXH64(bytes.data(), bytes.size(), kSkipSeed) % (m - 1) + 1), i,
         b[i].weight, -1});
    max_w = std::max<uint64_t>(max_w, b[i].weight);
  }
  std::vector<uint16_t> entries(m, 0xffff);
  uint32_t filled = 0;
  int64_t turn = 0;
  for (uint64_t r = 1; filled < m; ++r) {
    std::vector<Ref*> due;
    for (Ref& x : refs) {
      if (r * x.w / max_w > (r - 1) * x.w / max_w) due.push_back(&x);
    }
    std::stable_sort(due.begin(), due.end(),
                     [](const Ref* x, const Ref* y) { return x->last_turn < y->last_turn; });
    for (Ref* x : due) {
      if (filled == m) break;
      while (entries[x->pos] != 0xffff) x->pos = (x->pos + x->skip) % m;
      entries[x->pos] = static_cast<uint16_t>(x->index);
      x->pos = (x->pos + x->skip) % m;
      x->last_turn = turn++;
      ++filled;
    }
  }
  return entries;
}

TEST(DeterminismTest, MatchesReferenceImplementation) {
  std::mt19937_64 rng(2016);
  const uint32_t sizes[] = {251, 257, 1009, 4099, 65537};
  for (int round = 0; round < 30; ++round) {
    const uint32_t m = sizes[round % 5];
    const uint32_t n = 1 + rng() % std::min<uint32_t>(m - 1, 300);
    std::vector<Backend> b = MixedFamilies(n);
    for (Backend& x : b) {
      switch (round % 3) {
        case 0:
          x.weight = 1;
          break;
        case 1:
          x.weight = rng() % 6;
          break;
        default:
          x.weight = static_cast<uint32_t>(rng() % 1000000);
          break;
      }
    }
    b[rng() % n].weight = 3;  // at least one usable backend
    Table t = MustBuild(b, m);
    const std::vector<uint16_t> ref = ReferenceBuild(b, m);
    ASSERT_TRUE(std::equal(t.entries().begin(), t.entries().end(), ref.begin(), ref.end()))
        << "m=" << m << " n=" << n << " round=" << round;
  }
}

// Random identities: IPv4 or IPv6, random ports (collisions are
// negligible at these sizes, and Build() would refuse them).
std::vector<Backend> RandomBackends(uint32_t n, std::mt19937_64& rng) {
  std::vector<Backend> b;
  b.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    const uint16_t port = static_cast<uint16_t>(rng());
    if (rng() % 2 == 0) {
      b.push_back({BackendId::V4Be(static_cast<uint32_t>(rng()), port), 1});
    } else {
      std::array<uint8_t, 16> a;
      for (uint8_t& x : a) x = static_cast<uint8_t>(rng());
      b.push_back({BackendId::V6(a, port), 1});
    }
  }
  return b;
}

// The optimised build (phase-space walk, bitmap, free-slot ranking, round
// robin or precomputed turn order) against the plain reference over random
// inputs: every table size class, 1 to 2000 backends, equal and mixed
// weights with zeros, and extreme ratios. The reference costs O(m * n /
// n_max) for the rounds, so widely spread weights use small m or n.
TEST(DeterminismTest, MatchesReferenceOnRandomInputs) {
  struct Case {
    uint32_t m;
    uint32_t n;
    int weights;  // 0: all 1, 1: all equal, 2: 0..3, 3: 0..1e6, 4: extremes
  };
  std::vector<Case> cases = {
      {251, 1, 0},
      {251, 250, 0},
      {251, 250, 2},
      {251, 37, 3},
      {251, 5, 4},
      {257, 128, 1},
      {4099, 1, 1},
      {4099, 2000, 2},
      {4099, 300, 3},
      {65537, 1, 0},
      {65537, 2, 2},
      {65537, 1000, 0},
      {65537, 1000, 2},
      {65537, 2000, 1},
      {65537, 40, 3},
      {65537, 7, 4},
      {655373, 1, 0},
      {655373, 2000, 0},
      {655373, 1999, 2},
      {655373, 3, 4},
      {655373, 10, 3},
      // The largest accepted prime: the phase-space walk's error bound is
      // tightest here.
      {16777213, 2000, 0},
  };
  std::mt19937_64 rng(20160316);
  const uint32_t sizes[] = {251, 257, 1009, 4099, 65537, 655373};
  for (int i = 0; i < 40; ++i) {
    const uint32_t m = sizes[rng() % 6];
    const int weights = static_cast<int>(rng() % 5);
    uint32_t n_cap = std::min<uint32_t>(m - 1, 2000);
    if (weights >= 3) n_cap = std::min<uint32_t>(n_cap, m > 5000 ? 20 : 300);
    cases.push_back({m, 1 + static_cast<uint32_t>(rng() % n_cap), weights});
  }
  for (const Case& c : cases) {
    std::vector<Backend> b = RandomBackends(c.n, rng);
    const uint32_t equal = 1 + static_cast<uint32_t>(rng() % 1000);
    for (Backend& x : b) {
      switch (c.weights) {
        case 0:
          x.weight = 1;
          break;
        case 1:
          x.weight = equal;
          break;
        case 2:
          x.weight = static_cast<uint32_t>(rng() % 4);
          break;
        case 3:
          x.weight = static_cast<uint32_t>(rng() % 1000001);
          break;
        default:
          x.weight = rng() % 2 == 0 ? 1 : (rng() % 2 == 0 ? 0 : 0xffffffffu);
      }
    }
    if (c.weights >= 2) b[rng() % c.n].weight = 3;  // one usable backend
    SCOPED_TRACE(testing::Message() << "m=" << c.m << " n=" << c.n << " weights=" << c.weights);
    absl::StatusOr<Table> t = Table::Build(b, c.m);
    ASSERT_TRUE(t.ok()) << t.status();
    const std::vector<uint16_t> ref = ReferenceBuild(b, c.m);
    ASSERT_TRUE(std::equal(t->entries().begin(), t->entries().end(), ref.begin(), ref.end()));
  }
}

// ---------------------------------------------------------------- disruption

// Removing one backend: every slot it owned moves; other slots move only
// through Maglev's own reshuffle, which must stay small.
void CheckRemoval(uint32_t n, uint32_t m, uint32_t removed_index,
                  double bound_times_minimal = 2.0) {
  const std::vector<Backend> before = NumberedBackends(n);
  std::vector<Backend> after = before;
  after.erase(after.begin() + removed_index);
  Table t0 = MustBuild(before, m);
  Table t1 = MustBuild(after, m);
  const std::vector<BackendId> ids0 = SlotIds(t0, before);
  const std::vector<BackendId> ids1 = SlotIds(t1, after);
  const BackendId gone = before[removed_index].id;
  uint32_t owned = 0;
  uint32_t moved = 0;
  for (uint32_t s = 0; s < m; ++s) {
    ASSERT_NE(ids1[s], gone);
    if (ids0[s] == gone) ++owned;
    if (ids0[s] != ids1[s]) ++moved;
  }
  const double moved_fraction = static_cast<double>(moved) / m;
  const double minimal = static_cast<double>(owned) / m;
  std::printf(
      "maglev removal N=%u M=%u: moved %.5f of slots (minimal %.5f, "
      "1/N %.5f, extra reshuffle %.5f)\n",
      n, m, moved_fraction, minimal, 1.0 / n, moved_fraction - minimal);
  ::testing::Test::RecordProperty("moved_fraction_n" + std::to_string(n),
                                  std::to_string(moved_fraction));
  EXPECT_GE(moved, owned);
  EXPECT_LT(moved_fraction, bound_times_minimal / n);
}

TEST(DisruptionTest, RemovingOneOfTenMovesLittle) {
  CheckRemoval(10, 65537, 3);
}

TEST(DisruptionTest, RemovingOneOfHundredMovesLittle) {
  CheckRemoval(100, 65537, 42);
  CheckRemoval(100, 655373, 0);
}

// With N = 1000 Maglev's own cascade (a survivor that claims a freed slot
// early shifts all its later claims) moves several times 1/N: a plain
// reimplementation of the paper's pseudo-code with random permutations moves
// 0.62% of M = 65537 when one of 1000 backends goes (minimal 0.1%). The
// paper (section 5.3) sizes M well above 100 N to keep this small. Reported,
// and bounded at what the algorithm achieves.
TEST(DisruptionTest, RemovingOneOfThousandMovesLittle) {
  CheckRemoval(1000, 655373, 999, 6.0);
  CheckRemoval(1000, 655373, 0, 6.0);
  CheckRemoval(1000, 655373, 500, 6.0);
}

TEST(DisruptionTest, RemovingOneOfThousandInSmallTable) {
  CheckRemoval(1000, 65537, 999, 10.0);
}

// ------------------------------------------------------------------- lookup

TEST(LookupTest, SlotOfUsesHighBitsMultiplyShift) {
  Table t = MustBuild(NumberedBackends(10), 251);
  EXPECT_EQ(t.SlotOf(0), 0u);
  EXPECT_EQ(t.SlotOf(0x00000000ffffffffULL), 0u);  // low bits ignored
  EXPECT_EQ(t.SlotOf(0xffffffff00000000ULL), 250u);
  EXPECT_EQ(t.SlotOf(0x8000000000000000ULL), 125u);
  for (uint64_t h : {1ULL << 32, 12345ULL << 40, 0xdeadbeefcafef00dULL}) {
    EXPECT_EQ(t.SlotOf(h), ((h >> 32) * 251) >> 32);
  }
}

TEST(LookupTest, SlotOfIsUniform) {
  Table t = MustBuild(NumberedBackends(10), 251);
  std::vector<uint32_t> hits(251, 0);
  // Stepping the high 32 bits evenly hits each slot floor or ceil times.
  const uint64_t steps = 251 * 64;
  for (uint64_t i = 0; i < steps; ++i) {
    ++hits[t.SlotOf(((i << 32) / steps) << 32)];
  }
  for (uint32_t h : hits) EXPECT_TRUE(h >= 63 && h <= 65) << h;
}

TEST(LookupTest, LookupReturnsEntryOfSlot) {
  const std::vector<Backend> b = NumberedBackends(37);
  Table t = MustBuild(b);
  std::mt19937_64 rng(7);
  for (int i = 0; i < 10000; ++i) {
    const uint64_t h = rng();
    const uint32_t idx = t.Lookup(h);
    ASSERT_LT(idx, b.size());
    EXPECT_EQ(idx, t.entries()[t.SlotOf(h)]);
  }
}

TEST(LookupTest, LookupBurstMatchesLookup) {
  Table t = MustBuild(NumberedBackends(50));
  std::mt19937_64 rng(9);
  std::vector<uint64_t> hashes(100);
  for (uint64_t& h : hashes) h = rng();
  std::vector<uint32_t> out(100, 0xffffffff);
  EXPECT_EQ(t.LookupBurst(hashes, out), 100u);
  for (size_t i = 0; i < hashes.size(); ++i) {
    EXPECT_EQ(out[i], t.Lookup(hashes[i]));
  }
  // A short output span bounds the work; nothing past it is written.
  std::vector<uint32_t> small(11, 0xffffffff);
  EXPECT_EQ(t.LookupBurst(hashes, std::span<uint32_t>(small).first(10)), 10u);
  EXPECT_EQ(small[10], 0xffffffffu);
  EXPECT_EQ(t.LookupBurst({}, out), 0u);
}

TEST(LookupTest, TableIsMovable) {
  const std::vector<Backend> b = NumberedBackends(5);
  Table t = MustBuild(b);
  const uint32_t before = t.Lookup(0x123456789abcdefULL);
  Table moved = std::move(t);
  EXPECT_EQ(moved.Lookup(0x123456789abcdefULL), before);
  EXPECT_EQ(moved.size(), kDefaultTableSize);
  EXPECT_EQ(moved.num_backends(), 5u);
}

TEST(LookupTest, EveryEntryIsAUsableBackend) {
  std::vector<Backend> b = MixedFamilies(100);
  for (size_t i = 0; i < b.size(); i += 9) b[i].weight = 0;
  Table t = MustBuild(b, 655373);
  for (uint16_t e : t.entries()) {
    ASSERT_LT(e, b.size());
    ASSERT_GT(b[e].weight, 0u);
  }
}

// A service's table size from its expected backend count: prime, >= 100 x, within the bounds.
TEST(TableTest, SizeForExpectedBackends) {
  EXPECT_EQ(Table::SizeFor(0), kMinTableSize);
  EXPECT_EQ(Table::SizeFor(1), 251u);
  EXPECT_EQ(Table::SizeFor(3), 307u);
  EXPECT_EQ(Table::SizeFor(100), 10007u);
  EXPECT_EQ(Table::SizeFor(655), 65519u);
  for (uint32_t n : {2u, 7u, 8u, 50u, 1000u, 4096u, 65535u}) {
    const uint32_t m = Table::SizeFor(n);
    EXPECT_TRUE(Table::ValidateTableSize(m).ok()) << n;
    EXPECT_GE(m, uint64_t{n} * 100) << n;
  }
  const uint32_t top = Table::SizeFor(UINT32_MAX);
  EXPECT_TRUE(Table::ValidateTableSize(top).ok());
  EXPECT_EQ(top, 16777213u);  // the largest accepted prime
}

}  // namespace
}  // namespace ecmplb::maglev
