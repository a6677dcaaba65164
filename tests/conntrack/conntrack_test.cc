#include "conntrack/conntrack.h"

#include <arpa/inet.h>

#include <array>
#include <cstring>
#include <memory>
#include <optional>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/support/flow_compare.h"
#include "tests/support/flows.h"

namespace ecmplb::conntrack {
namespace {

using test_support::ClientFlowV4;
using test_support::ClientFlowV6;

constexpr uint8_t kAck = inet::tcp_flag::kAck;
constexpr uint8_t kSyn = inet::tcp_flag::kSyn;
constexpr uint8_t kFin = inet::tcp_flag::kFin | inet::tcp_flag::kAck;

// A flow whose handshake was seen: inserted by its SYN, established by its ACK. Returns the
// SYN's insert result.
InsertResult InsertEstablished(Table& t, const FlowKey& k, uint32_t backend, uint32_t now) {
  const InsertResult r = t.Insert(k, backend, kSyn, now);
  if (r == InsertResult::kInserted || r == InsertResult::kReplacedStale) {
    EXPECT_EQ(t.Insert(k, backend, kAck, now), InsertResult::kUpdated);
  }
  return r;
}

// Every key lands in bucket 0: forces collisions.
uint64_t ConstHash(const FlowKey&) noexcept {
  return 0;
}
// A key may use its home bucket and both neighbours.
constexpr uint32_t kWindow = 3 * Table::kSlotsPerBucket;

std::unique_ptr<Table> MakeTable(size_t capacity, Hasher hasher = &FlowHash,
                                 Timeouts t = Timeouts()) {
  Options o;
  o.capacity = capacity;
  o.timeouts = t;
  o.hasher = hasher;
  auto table = Table::Create(o);
  EXPECT_TRUE(table.ok()) << table.status();
  return std::move(table).value();
}

TEST(ConntrackCreateTest, RejectsBadOptions) {
  Options o;
  o.capacity = 0;
  EXPECT_EQ(Table::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Table::MemoryNeeded(o), 0u);
  o.capacity = Table::kMaxCapacity + 1;
  EXPECT_EQ(Table::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.capacity = 100;
  o.hasher = nullptr;
  EXPECT_EQ(Table::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
  o.hasher = &FlowHash;
  o.timeouts.udp = 0;
  EXPECT_EQ(Table::Create(o).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConntrackCreateTest, MemoryIsAtMost32BytesPerFlowSlot) {
  Options o;
  o.capacity = 1'000'000;
  const size_t bytes = Table::MemoryNeeded(o);
  EXPECT_EQ(bytes, 250'000u * Table::kBucketBytes);
  EXPECT_LE(bytes / o.capacity, 32u);
  auto t = Table::Create(o);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ((*t)->memory_bytes(), bytes);
  EXPECT_EQ((*t)->capacity(), o.capacity);
}

TEST(ConntrackCreateTest, CallerMemoryIsCheckedAndUsed) {
  Options o;
  o.capacity = 1000;
  const size_t need = Table::MemoryNeeded(o);
  std::vector<std::byte> raw(need + 2 * Table::kMemoryAlignment);
  auto* aligned = reinterpret_cast<std::byte*>(
      (reinterpret_cast<uintptr_t>(raw.data()) + Table::kMemoryAlignment - 1) /
      Table::kMemoryAlignment * Table::kMemoryAlignment);
  std::span<std::byte> mem(aligned, need);

  EXPECT_EQ(Table::Create(o, mem.first(need - 1)).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Table::Create(o, std::span<std::byte>(aligned + 8, need)).status().code(),
            absl::StatusCode::kInvalidArgument);

  std::fill(mem.begin(), mem.end(), std::byte{0xab});  // garbage is reset
  auto t = Table::Create(o, mem);
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ((*t)->Count(), 0u);
  EXPECT_FALSE((*t)->Lookup(ClientFlowV4(1), 0).found());
  EXPECT_EQ((*t)->Insert(ClientFlowV4(1), 42, kSyn, 0), InsertResult::kInserted);
  EXPECT_EQ((*t)->Lookup(ClientFlowV4(1), 0).backend_id(), 42u);
  EXPECT_NE(std::count(mem.begin(), mem.end(), std::byte{0xab}), static_cast<ptrdiff_t>(need));
}

TEST(ConntrackTest, InsertHitMissV4) {
  auto t = MakeTable(1000);
  EXPECT_EQ(t->Insert(ClientFlowV4(1), 7, kSyn, 100), InsertResult::kInserted);
  EXPECT_EQ(t->Count(), 1u);
  EntryRef r = t->Lookup(ClientFlowV4(1), 100);
  ASSERT_TRUE(r.found());
  EXPECT_EQ(r.backend_id(), 7u);
  EXPECT_EQ(r.state(), FlowState::kNew);
  EXPECT_EQ(r.last_seen(), 100u);
  EXPECT_FALSE(t->Lookup(ClientFlowV4(2), 100).found());
  // Same tuple, other service or protocol: other flows.
  EXPECT_FALSE(t->Lookup(ClientFlowV4(1, inet::ip_proto::kTcp, 2), 100).found());
  EXPECT_FALSE(t->Lookup(ClientFlowV4(1, inet::ip_proto::kUdp, 1), 100).found());
  EXPECT_EQ(t->stats().inserts, 1u);
}

TEST(ConntrackTest, InsertHitMissV6AndFamiliesAreDistinct) {
  auto t = MakeTable(1000, &ConstHash);
  EXPECT_EQ(InsertEstablished(*t, ClientFlowV6(1), 9, 5), InsertResult::kInserted);
  EXPECT_EQ(InsertEstablished(*t, ClientFlowV6(2), 10, 5), InsertResult::kInserted);
  EntryRef r = t->Lookup(ClientFlowV6(1), 5);
  ASSERT_TRUE(r.found());
  EXPECT_EQ(r.backend_id(), 9u);
  EXPECT_EQ(r.state(), FlowState::kEstablished);
  EXPECT_EQ(t->Lookup(ClientFlowV6(2), 5).backend_id(), 10u);
  EXPECT_FALSE(t->Lookup(ClientFlowV6(3), 5).found());
  // A v4 key whose first address bytes and ports equal a v6 entry's.
  FlowKey v4 = ClientFlowV6(1);
  v4.family = kFamilyV4;
  std::memset(v4.addr + 8, 0, 24);
  EXPECT_FALSE(t->Lookup(v4, 5).found());
  EXPECT_EQ(InsertEstablished(*t, v4, 11, 5), InsertResult::kInserted);
  EXPECT_EQ(t->Lookup(v4, 5).backend_id(), 11u);
  EXPECT_EQ(t->Lookup(ClientFlowV6(1), 5).backend_id(), 9u);
}

TEST(ConntrackTest, InvalidFamilyIsRefusedAndChangesNothing) {
  auto t = MakeTable(100);
  FlowKey k = ClientFlowV4(1);
  k.family = 5;
  EXPECT_EQ(t->Insert(k, 1, kSyn, 0), InsertResult::kInvalidKey);
  EXPECT_FALSE(t->Lookup(k, 0).found());
  EXPECT_EQ(t->Count(), 0u);
  EXPECT_EQ(t->stats().inserts, 0u);
}

TEST(ConntrackTest, TouchUpdatesStateAndTime) {
  auto t = MakeTable(1000);
  ASSERT_EQ(t->Insert(ClientFlowV4(1), 3, kSyn, 10), InsertResult::kInserted);
  EntryRef r = t->Lookup(ClientFlowV4(1), 11);
  ASSERT_TRUE(t->Touch(r, kAck, 11));
  EXPECT_EQ(r.state(), FlowState::kEstablished);
  r = t->Lookup(ClientFlowV4(1), 12);
  EXPECT_EQ(r.state(), FlowState::kEstablished);
  EXPECT_EQ(r.last_seen(), 11u);
  ASSERT_TRUE(t->Touch(r, kFin, 20));
  r = t->Lookup(ClientFlowV4(1), 20);
  EXPECT_EQ(r.state(), FlowState::kClosing);
  EXPECT_EQ(r.last_seen(), 20u);
  EXPECT_EQ(r.backend_id(), 3u);

  EntryRef miss = t->Lookup(ClientFlowV4(2), 20);
  EXPECT_FALSE(t->Touch(miss, kAck, 20));
  EXPECT_FALSE(t->SetBackend(miss, 1));
}

TEST(ConntrackTest, UdpBecomesEstablishedOnSecondPacket) {
  auto t = MakeTable(1000);
  ASSERT_EQ(t->Insert(ClientFlowV4(1, inet::ip_proto::kUdp), 3, 0, 10), InsertResult::kInserted);
  EntryRef r = t->Lookup(ClientFlowV4(1, inet::ip_proto::kUdp), 10);
  EXPECT_EQ(r.state(), FlowState::kNew);
  ASSERT_TRUE(t->Touch(r, 0, 10));
  EXPECT_EQ(t->Lookup(ClientFlowV4(1, inet::ip_proto::kUdp), 10).state(), FlowState::kEstablished);
}

struct ExpiryCase {
  uint8_t proto;
  uint8_t flags;     // first packet
  uint32_t timeout;  // expected timeout with the Timeouts below
};

TEST(ConntrackTest, ExpiryByState) {
  Timeouts to;
  to.tcp_syn = 5;
  to.tcp_established = 50;
  to.tcp_closing = 3;
  to.udp = 20;
  to.tcp_probation = 7;
  {  // established (SYN, then ACK): 50 s
    auto t = MakeTable(100, &FlowHash, to);
    ASSERT_EQ(InsertEstablished(*t, ClientFlowV4(1), 1, 1000), InsertResult::kInserted);
    EXPECT_TRUE(t->Lookup(ClientFlowV4(1), 1050).found());
    EXPECT_FALSE(t->Lookup(ClientFlowV4(1), 1051).found());
  }
  const ExpiryCase cases[] = {
      {inet::ip_proto::kTcp, kSyn, 5},
      {inet::ip_proto::kTcp, kAck, 7},  // first seen mid-stream: probationary
      {inet::ip_proto::kTcp, kFin, 3},
      {inet::ip_proto::kUdp, 0, 20},
  };
  for (const ExpiryCase& c : cases) {
    SCOPED_TRACE(testing::Message() << "proto " << int{c.proto} << " flags " << int{c.flags});
    auto t = MakeTable(100, &FlowHash, to);
    const FlowKey k = ClientFlowV4(1, c.proto);
    ASSERT_EQ(t->Insert(k, 1, c.flags, 1000), InsertResult::kInserted);
    EXPECT_TRUE(t->Lookup(k, 1000 + c.timeout).found());
    EXPECT_EQ(t->Count(), 1u);
    EXPECT_FALSE(t->Lookup(k, 1000 + c.timeout + 1).found());
    // Lazily reclaimed when met.
    EXPECT_EQ(t->Count(), 0u);
    EXPECT_EQ(t->stats().expirations, 1u);
  }
}

TEST(ConntrackTest, TouchKeepsAFlowAlive) {
  auto t = MakeTable(100);  // established: 900 s
  ASSERT_EQ(InsertEstablished(*t, ClientFlowV4(1), 1, 0), InsertResult::kInserted);
  for (uint32_t now = 800; now <= 8000; now += 800) {
    EntryRef r = t->Lookup(ClientFlowV4(1), now);
    ASSERT_TRUE(r.found()) << now;
    ASSERT_TRUE(t->Touch(r, kAck, now));
  }
  EXPECT_FALSE(t->Lookup(ClientFlowV4(1), 8000 + 901).found());
}

TEST(ConntrackTest, TimeWrapsAround) {
  auto t = MakeTable(100);
  const uint32_t start = 0xffffff00u;
  ASSERT_EQ(InsertEstablished(*t, ClientFlowV4(1), 1, start), InsertResult::kInserted);
  EXPECT_TRUE(t->Lookup(ClientFlowV4(1), start + 600).found());  // wrapped past 0
  EXPECT_FALSE(t->Lookup(ClientFlowV4(1), start + 901).found());
}

TEST(ConntrackTest, InsertOfTrackedKeyUpdatesInPlace) {
  auto t = MakeTable(100);
  ASSERT_EQ(t->Insert(ClientFlowV4(1), 1, kSyn, 0), InsertResult::kInserted);
  EXPECT_EQ(t->Insert(ClientFlowV4(1), 2, kAck, 1), InsertResult::kUpdated);
  EntryRef r = t->Lookup(ClientFlowV4(1), 1);
  EXPECT_EQ(r.backend_id(), 2u);
  EXPECT_EQ(r.state(), FlowState::kEstablished);
  EXPECT_EQ(t->Count(), 1u);
  // An expired copy of the key is revived with the new packet's state.
  EXPECT_EQ(t->Insert(ClientFlowV4(1), 3, kSyn, 5000), InsertResult::kReplacedStale);
  r = t->Lookup(ClientFlowV4(1), 5000);
  EXPECT_EQ(r.backend_id(), 3u);
  EXPECT_EQ(r.state(), FlowState::kNew);
  EXPECT_EQ(t->Count(), 1u);
  EXPECT_EQ(t->stats().updates, 1u);
}

TEST(ConntrackTest, ExpireSomeIsBoundedAndReclaimsOnlyStaleEntries) {
  auto t = MakeTable(4000);
  for (uint32_t i = 0; i < 1000; ++i) {
    // Even: SYN (60 s); odd: established (900 s).
    ASSERT_EQ(i % 2 ? InsertEstablished(*t, ClientFlowV4(i), i, 0)
                    : t->Insert(ClientFlowV4(i), i, kSyn, 0),
              InsertResult::kInserted);
  }
  ASSERT_EQ(t->Count(), 1000u);
  EXPECT_EQ(t->ExpireSome(30, t->bucket_count()), 0u);
  // One bucket holds at most 5 slots.
  EXPECT_LE(t->ExpireSome(100, 1), Table::kSlotsPerBucket);
  size_t removed = 0;
  size_t calls = 0;
  while (t->Count() > 500) {
    removed += t->ExpireSome(100, 16);
    ASSERT_LT(++calls, t->bucket_count());
  }
  EXPECT_EQ(t->Count(), 500u);
  EXPECT_EQ(t->stats().expirations, 500u);
  for (uint32_t i = 0; i < 1000; ++i) {
    EXPECT_EQ(t->Lookup(ClientFlowV4(i), 100).found(), i % 2 == 1) << i;
  }
}

TEST(ConntrackTest, CollidingKeysAreDistinctFlows) {
  auto t = MakeTable(100, &ConstHash);
  const size_t window = kWindow;
  for (uint32_t i = 0; i < window; ++i) {
    ASSERT_EQ(InsertEstablished(*t, ClientFlowV4(i), 100 + i, 0), InsertResult::kInserted) << i;
  }
  for (uint32_t i = 0; i < window; ++i) {
    EntryRef r = t->Lookup(ClientFlowV4(i), 0);
    ASSERT_TRUE(r.found()) << i;
    EXPECT_EQ(r.backend_id(), 100 + i);
  }
  EXPECT_FALSE(t->Lookup(ClientFlowV4(99), 0).found());
  // Window full of live established flows: refused, nothing displaced.
  EXPECT_EQ(t->Insert(ClientFlowV4(99), 1, kSyn, 1), InsertResult::kFull);
  EXPECT_EQ(t->Insert(ClientFlowV6(99), 1, kSyn, 1), InsertResult::kFull);
  EXPECT_EQ(t->stats().full, 2u);
  EXPECT_EQ(t->Count(), window);
  for (uint32_t i = 0; i < window; ++i) {
    EXPECT_EQ(t->Lookup(ClientFlowV4(i), 1).backend_id(), 100 + i);
  }
}

TEST(ConntrackTest, CollidingMixedFamilies) {
  auto t = MakeTable(100, &ConstHash);
  // 6 v6 entries (12 slots) + 3 v4 entries fill the three buckets.
  for (uint32_t i = 0; i < 6; ++i) {
    ASSERT_EQ(InsertEstablished(*t, ClientFlowV6(i), 10 + i, 0), InsertResult::kInserted);
  }
  for (uint32_t i = 0; i < 3; ++i) {
    ASSERT_EQ(InsertEstablished(*t, ClientFlowV4(i), 20 + i, 0), InsertResult::kInserted);
  }
  EXPECT_EQ(InsertEstablished(*t, ClientFlowV4(7), 1, 0), InsertResult::kFull);
  EXPECT_EQ(InsertEstablished(*t, ClientFlowV6(7), 1, 0), InsertResult::kFull);
  for (uint32_t i = 0; i < 6; ++i) {
    EXPECT_EQ(t->Lookup(ClientFlowV6(i), 0).backend_id(), 10 + i);
  }
  for (uint32_t i = 0; i < 3; ++i) {
    EXPECT_EQ(t->Lookup(ClientFlowV4(i), 0).backend_id(), 20 + i);
  }
  EXPECT_EQ(t->Dump(100).size(), 9u);
}

TEST(ConntrackTest, V6DisplacesNeighbouringWeakEntriesWhole) {
  auto t = MakeTable(100, &ConstHash);
  // v4 SYN flows fill the window; a v6 flow needs two adjacent slots.
  for (uint32_t i = 0; i < kWindow; ++i) {
    ASSERT_EQ(t->Insert(ClientFlowV4(i), i, kSyn, 0), InsertResult::kInserted);
  }
  EXPECT_EQ(InsertEstablished(*t, ClientFlowV6(1), 77, 1), InsertResult::kReplacedStale);
  EXPECT_EQ(t->Count(), kWindow - 1);
  EXPECT_EQ(t->stats().evictions, 2u);
  EXPECT_EQ(t->Lookup(ClientFlowV6(1), 1).backend_id(), 77u);
  uint32_t still = 0;
  for (uint32_t i = 0; i < kWindow; ++i) still += t->Lookup(ClientFlowV4(i), 1).found();
  EXPECT_EQ(still, kWindow - 2);
}

TEST(ConntrackTest, PressurePrefersExpiredThenNotEstablished) {
  Timeouts to;
  to.tcp_syn = 10;
  auto t = MakeTable(100, &ConstHash, to);
  // Window: 0-12 established (live), 13 SYN (live at 20), 14 SYN (expired
  // at 20).
  constexpr uint32_t kEst = kWindow - 2;
  for (uint32_t i = 0; i < kEst; ++i) {
    ASSERT_EQ(InsertEstablished(*t, ClientFlowV4(i), i, 0), InsertResult::kInserted);
  }
  ASSERT_EQ(t->Insert(ClientFlowV4(99), 99, kSyn, 0), InsertResult::kInserted);
  ASSERT_EQ(t->Insert(ClientFlowV4(98), 98, kSyn, 15), InsertResult::kInserted);
  // The expired SYN entry goes first.
  EXPECT_EQ(t->Insert(ClientFlowV4(100), 100, kSyn, 20), InsertResult::kReplacedStale);
  EXPECT_TRUE(t->Lookup(ClientFlowV4(98), 20).found());
  EXPECT_FALSE(t->Lookup(ClientFlowV4(99), 20).found());
  EXPECT_EQ(t->stats().expirations, 1u);
  EXPECT_EQ(t->stats().evictions, 0u);
  // Then a live SYN entry (ClientFlowV4(98) or ClientFlowV4(100)); established never.
  EXPECT_EQ(t->Insert(ClientFlowV4(101), 101, kSyn, 21), InsertResult::kReplacedStale);
  EXPECT_EQ(t->stats().evictions, 1u);
  EXPECT_EQ(t->Lookup(ClientFlowV4(98), 21).found() + t->Lookup(ClientFlowV4(100), 21).found(), 1);
  EXPECT_TRUE(t->Lookup(ClientFlowV4(101), 21).found());
  EXPECT_EQ(t->Insert(ClientFlowV4(102), 102, kSyn, 21), InsertResult::kReplacedStale);
  EXPECT_EQ(InsertEstablished(*t, ClientFlowV4(103), 103, 21), InsertResult::kReplacedStale);
  EXPECT_EQ(InsertEstablished(*t, ClientFlowV4(104), 104, 21), InsertResult::kReplacedStale);
  // Now all fifteen are established.
  EXPECT_EQ(t->Insert(ClientFlowV4(105), 105, kSyn, 21), InsertResult::kFull);
  EXPECT_TRUE(t->Lookup(ClientFlowV4(103), 21).found());
  EXPECT_TRUE(t->Lookup(ClientFlowV4(104), 21).found());
  for (uint32_t i = 0; i < kEst; ++i) {
    EXPECT_EQ(t->Lookup(ClientFlowV4(i), 21).backend_id(), i);
  }
}

TEST(ConntrackTest, FloodAtTenTimesCapacityKeepsEveryEstablishedFlow) {
  const size_t capacity = 4096;
  auto t = MakeTable(capacity);
  std::vector<uint32_t> established;
  for (uint32_t i = 0; i < capacity * 3 / 4; ++i) {
    const InsertResult r = InsertEstablished(*t, ClientFlowV4(i), i * 7, 0);
    if (r == InsertResult::kInserted) established.push_back(i);
  }
  ASSERT_GE(established.size(), capacity * 3 / 4 * 99 / 100);
  size_t tracked = 0, full = 0;
  for (uint32_t i = 0; i < capacity * 10; ++i) {
    const FlowKey k = (i % 4 == 0) ? ClientFlowV6(1'000'000 + i) : ClientFlowV4(1'000'000 + i);
    const InsertResult r = t->Insert(k, 1, kSyn, 1 + i / 1000);
    ASSERT_NE(r, InsertResult::kUpdated);
    (r == InsertResult::kFull ? full : tracked)++;
  }
  EXPECT_GT(full, 0u);
  EXPECT_GT(t->stats().evictions, 0u);
  EXPECT_LE(t->Count(), t->bucket_count() * Table::kSlotsPerBucket);
  for (uint32_t i : established) {
    EntryRef r = t->Lookup(ClientFlowV4(i), 60);
    ASSERT_TRUE(r.found()) << i;
    EXPECT_EQ(r.backend_id(), i * 7);
    EXPECT_EQ(r.state(), FlowState::kEstablished);
  }
}

TEST(ConntrackTest, FillsNearlyToCapacityWithEstablishedFlows) {
  // Established flows can't displace each other, so this measures how many
  // fit before windows fill: >= 99% of the first 75% of capacity, >= 96% of
  // all (random hashing predicts 99.7% and 97.7%).
  const size_t capacity = 100'000;
  auto t = MakeTable(capacity);
  size_t inserted = 0;
  for (uint32_t i = 0; i < capacity; ++i) {
    inserted += InsertEstablished(*t, ClientFlowV4(i), i, 0) == InsertResult::kInserted;
    if (i + 1 == capacity * 3 / 4) {
      EXPECT_GE(inserted, capacity * 3 / 4 * 99 / 100);
    }
  }
  EXPECT_GE(inserted, capacity * 96 / 100);
  EXPECT_EQ(t->Count(), inserted);
  EXPECT_EQ(t->stats().full, capacity - inserted);
}

TEST(ConntrackTest, LookupBulkMatchesSingleLookups) {
  auto t = MakeTable(10'000);
  for (uint32_t i = 0; i < 1000; i += 2) {
    ASSERT_EQ(InsertEstablished(*t, i % 3 ? ClientFlowV4(i) : ClientFlowV6(i), i, 0),
              InsertResult::kInserted);
  }
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < 100; ++i) keys.push_back(i % 3 ? ClientFlowV4(i) : ClientFlowV6(i));
  std::vector<EntryRef> out(keys.size());
  t->LookupBulk(keys, 1, out);
  for (uint32_t i = 0; i < 100; ++i) {
    ASSERT_EQ(out[i].found(), i % 2 == 0) << i;
    if (out[i].found()) {
      EXPECT_EQ(out[i].backend_id(), i);
    }
  }
  // Only min(keys, out) are handled.
  std::vector<EntryRef> small(3);
  t->LookupBulk(keys, 1, small);
  EXPECT_TRUE(small[0].found());
  EXPECT_FALSE(small[1].found());
  EXPECT_TRUE(small[2].found());
}

// The pre-hashed calls (the dataplane hashes each key once) behave exactly like the others,
// on a roomy table and on one where every key collides (neighbour buckets in use).
TEST(ConntrackTest, PreHashedCallsMatchTheOthers) {
  for (Hasher hasher : {Hasher{&FlowHash}, Hasher{&ConstHash}}) {
    const uint32_t n = hasher == &ConstHash ? 12 : 200;
    auto t = MakeTable(10'000, hasher);
    std::vector<FlowKey> keys;
    std::vector<uint64_t> hashes;
    for (uint32_t i = 0; i < n; ++i) {
      keys.push_back(i % 5 ? ClientFlowV4(i) : ClientFlowV6(i));
      hashes.push_back(t->Hash(keys.back()));
      ASSERT_EQ(hashes.back(), hasher(keys.back()));
      t->Prefetch(hashes.back());
      t->PrefetchNeighbours(hashes.back());
    }
    // Every other key tracked, half of those through the pre-hashed Insert.
    for (uint32_t i = 0; i < n; i += 2) {
      const InsertResult r =
          i % 4 ? t->Insert(keys[i], hashes[i], i, kAck, 0) : t->Insert(keys[i], i, kAck, 0);
      ASSERT_EQ(r, InsertResult::kInserted) << i;
    }
    std::vector<EntryRef> pre(n), plain(n);
    t->LookupBulk(keys, hashes, 1, pre);
    t->LookupBulk(keys, 1, plain);
    for (uint32_t i = 0; i < n; ++i) {
      ASSERT_EQ(pre[i].found(), i % 2 == 0) << i;
      ASSERT_EQ(plain[i].found(), i % 2 == 0) << i;
      if (pre[i].found()) {
        EXPECT_EQ(pre[i].backend_id(), i);
        EXPECT_EQ(plain[i].backend_id(), i);
      }
    }
    // A pre-hashed insert of a tracked key updates it in place.
    EXPECT_EQ(t->Insert(keys[0], hashes[0], 77, kAck, 2), InsertResult::kUpdated);
    EXPECT_EQ(t->Lookup(keys[0], 2).backend_id(), 77u);
  }
  // FlowHash leaves the service out, yet keys of two services are two flows.
  auto t = MakeTable(1000);
  const FlowKey a = ClientFlowV4(5, inet::ip_proto::kTcp, 1),
                b = ClientFlowV4(5, inet::ip_proto::kTcp, 2);
  ASSERT_EQ(t->Hash(a), t->Hash(b));
  ASSERT_EQ(t->Insert(a, t->Hash(a), 1, kAck, 0), InsertResult::kInserted);
  ASSERT_EQ(t->Insert(b, t->Hash(b), 2, kAck, 0), InsertResult::kInserted);
  EXPECT_EQ(t->Lookup(a, 1).backend_id(), 1u);
  EXPECT_EQ(t->Lookup(b, 1).backend_id(), 2u);
  EXPECT_EQ(t->Count(), 2u);
}

// InsertAbsent (no search for an existing entry) gives what Insert gives for
// keys that missed a LookupBulk: new slots, displacement of weak entries,
// reclaimed expired ones, kFull. Two tables fed the same operations end up
// with the same results and the same entries.
TEST(ConntrackTest, InsertAbsentMatchesInsertForMissedKeys) {
  for (Hasher hasher : {Hasher{&FlowHash}, Hasher{&ConstHash}}) {
    Timeouts to;  // entries of one round expire two or three rounds later
    to.tcp_syn = 10;
    to.udp = 10;
    to.tcp_established = 15;
    auto a = MakeTable(64, hasher, to);
    auto b = MakeTable(64, hasher, to);
    uint32_t next_key = 0;
    for (uint32_t round = 0; round < 6; ++round) {
      const uint32_t now = round * 7;
      std::vector<FlowKey> keys;
      for (uint32_t i = 0; i < 40; ++i) {
        // Mixed families, states (SYN: weak; ACK: established) and protocols.
        const uint32_t id = next_key++;
        keys.push_back(id % 7 == 0 ? ClientFlowV6(id)
                                   : ClientFlowV4(id, id % 5 ? inet::ip_proto::kTcp : 17));
      }
      std::vector<uint64_t> hashes;
      for (const FlowKey& k : keys) hashes.push_back(a->Hash(k));
      std::vector<EntryRef> ra(keys.size()), rb(keys.size());
      a->LookupBulk(keys, hashes, now, ra);
      b->LookupBulk(keys, hashes, now, rb);
      for (size_t i = 0; i < keys.size(); ++i) {
        ASSERT_FALSE(ra[i].found());
        ASSERT_FALSE(rb[i].found());
        const uint8_t flags = i % 3 == 1 ? kAck : kSyn;  // probationary or new
        const InsertResult x = a->Insert(keys[i], hashes[i], 9, flags, now);
        const InsertResult y = b->InsertAbsent(keys[i], hashes[i], 9, flags, now);
        ASSERT_EQ(x, y) << "round " << round << " key " << i;
        if (i % 3 == 0 && x != InsertResult::kFull) {  // a third completes its handshake
          ASSERT_EQ(a->Insert(keys[i], hashes[i], 9, kAck, now), InsertResult::kUpdated);
          ASSERT_EQ(b->Insert(keys[i], hashes[i], 9, kAck, now), InsertResult::kUpdated);
        }
      }
      const Stats sa = a->stats(), sb = b->stats();
      EXPECT_EQ(sa.inserts, sb.inserts);
      EXPECT_EQ(sa.evictions, sb.evictions);
      EXPECT_EQ(sa.expirations, sb.expirations);
      EXPECT_EQ(sa.full, sb.full);
    }
    std::vector<FlowSnapshot> da = a->Dump(1000), db = b->Dump(1000);
    ASSERT_EQ(da.size(), db.size());
    for (size_t i = 0; i < da.size(); ++i) {
      EXPECT_EQ(da[i], db[i]) << i;  // key, state, last seen (and backend)
    }
    // Every entry of the last round is found by a lookup (none is expired).
    size_t found = 0;
    for (const FlowSnapshot& f : db) {
      if (f.last_seen == 35) {
        EXPECT_TRUE(b->Lookup(f.key, 35).found());
        ++found;
      }
    }
    // (With every key in one 15-slot window, established entries of the two
    // rounds before fill it and the last round is all kFull.)
    if (hasher == &FlowHash) {
      EXPECT_GT(found, 0u);
    }
    if (hasher == &ConstHash) {
      EXPECT_GT(b->stats().full, 0u);  // the window filled up
      EXPECT_GT(b->stats().evictions, 0u);
    }
    EXPECT_GT(b->stats().expirations, 0u);
  }
  auto t = MakeTable(100);
  FlowKey bad = ClientFlowV4(1);
  bad.family = 9;
  EXPECT_EQ(t->InsertAbsent(bad, 0, 1, kSyn, 0), InsertResult::kInvalidKey);
}

TEST(ConntrackTest, RemovedBackendIsRepickedDrainedBackendKeepsFlows) {
  auto t = MakeTable(1000);
  // backend id -> valid; 2 was removed, 3 was drained (weight 0, still valid).
  std::vector<bool> valid = {true, true, false, true};
  for (uint32_t i = 0; i < 30; ++i) {
    ASSERT_EQ(InsertEstablished(*t, ClientFlowV4(i), 1 + i % 3, 0), InsertResult::kInserted);
  }
  std::vector<FlowKey> keys;
  for (uint32_t i = 0; i < 30; ++i) keys.push_back(ClientFlowV4(i));
  std::vector<EntryRef> refs(keys.size());
  t->LookupBulk(keys, 1, refs);
  for (EntryRef& r : refs) {
    ASSERT_TRUE(r.found());
    if (!valid[r.backend_id()]) {
      ASSERT_TRUE(t->SetBackend(r, 1));  // re-picked (Maglev would choose)
    }
    ASSERT_TRUE(t->Touch(r, kAck, 1));
    EXPECT_EQ(r.backend_id() == 1 || r.backend_id() == 3, true);
  }
  for (uint32_t i = 0; i < 30; ++i) {
    EntryRef r = t->Lookup(ClientFlowV4(i), 2);
    EXPECT_EQ(r.backend_id(), i % 3 == 1 ? 1u : 1 + i % 3) << i;
    EXPECT_EQ(r.last_seen(), 1u);
  }
  std::vector<uint64_t> counts(4);
  EXPECT_EQ(t->CountByBackend(counts), 0u);
  EXPECT_THAT(counts, testing::ElementsAre(0, 20, 0, 10));
}

TEST(ConntrackTest, RefIsRefusedAfterAnEvictingInsert) {
  auto t = MakeTable(100, &ConstHash);
  for (uint32_t i = 0; i < kWindow; ++i) {
    ASSERT_EQ(t->Insert(ClientFlowV4(i), i, kSyn, 0), InsertResult::kInserted);
  }
  EntryRef r = t->Lookup(ClientFlowV4(0), 0);
  ASSERT_TRUE(r.found());
  ASSERT_EQ(t->Insert(ClientFlowV4(50), 50, kSyn, 0), InsertResult::kReplacedStale);
  EXPECT_FALSE(t->Touch(r, kAck, 1));
  EXPECT_FALSE(t->SetBackend(r, 9));
  EXPECT_EQ(t->Lookup(ClientFlowV4(50), 0).backend_id(), 50u);
  // A ref taken after the insert works.
  EntryRef r2 = t->Lookup(ClientFlowV4(50), 0);
  EXPECT_TRUE(t->Touch(r2, kAck, 1));
}

TEST(ConntrackTest, ReadersSeeEveryEntryOnce) {
  auto t = MakeTable(10'000);
  for (uint32_t i = 0; i < 200; ++i) {
    const FlowKey k =
        i % 2 ? ClientFlowV4(i, inet::ip_proto::kUdp, 3) : ClientFlowV6(i, inet::ip_proto::kTcp, 4);
    ASSERT_EQ(t->Insert(k, i, i % 4 == 0 ? kAck : kSyn, 7 + i), InsertResult::kInserted);
  }
  size_t seen = 0;
  t->ForEach([&](const FlowSnapshot& s) {
    ++seen;
    uint32_t i;
    if (s.key.is_v6()) {
      std::memcpy(&i, &s.key.addr[12], 4);
      EXPECT_TRUE(s.key == ClientFlowV6(i, inet::ip_proto::kTcp, 4));
      EXPECT_EQ(s.state, i % 4 == 0 ? FlowState::kProbation : FlowState::kNew);
    } else {
      uint32_t src_be;
      std::memcpy(&src_be, s.key.addr, 4);
      i = ntohl(src_be) - 0x0a000000u;
      EXPECT_TRUE(s.key == ClientFlowV4(i, inet::ip_proto::kUdp, 3));
      EXPECT_EQ(s.state, FlowState::kNew);
    }
    EXPECT_EQ(s.backend_id, i);
    EXPECT_EQ(s.last_seen, 7 + i);
    return true;
  });
  EXPECT_EQ(seen, 200u);
  EXPECT_EQ(t->Dump(17).size(), 17u);
  EXPECT_EQ(t->Dump(1000).size(), 200u);
  EXPECT_TRUE(t->Dump(0).empty());
  std::vector<uint64_t> counts(100);
  EXPECT_EQ(t->CountByBackend(counts), 100u);
}

// Peek (a reader) finds each held entry by its key alone, in the home bucket or a neighbour,
// and agrees with ForEach; absent keys, other services, the other family and invalid keys
// are not found.
TEST(ConntrackTest, PeekFindsEveryEntryAndOnlyThose) {
  for (Hasher hasher : {Hasher{&FlowHash}, Hasher{&ConstHash}}) {
    const bool collide = hasher == &ConstHash;
    // ConstHash: 10 IPv4 + 2 IPv6 flows = 14 slots of the 15-slot window, so the home bucket
    // overflows into both neighbours.
    const uint32_t n = collide ? 12 : 2000;
    auto t = MakeTable(10'000, hasher);
    for (uint32_t i = 0; i < n; ++i) {
      const FlowKey k = i % 6 == 5
                            ? ClientFlowV6(i)
                            : ClientFlowV4(i, i % 2 ? inet::ip_proto::kUdp : inet::ip_proto::kTcp);
      ASSERT_EQ(t->Insert(k, 100 + i, i % 3 ? kAck : kSyn, 40 + i), InsertResult::kInserted) << i;
    }
    ASSERT_EQ(t->Count(), n);
    for (uint32_t i = 0; i < n; ++i) {
      const bool v6 = i % 6 == 5;
      const uint8_t proto = v6 || i % 2 == 0 ? inet::ip_proto::kTcp : inet::ip_proto::kUdp;
      const FlowKey k = v6 ? ClientFlowV6(i) : ClientFlowV4(i, proto);
      const std::optional<FlowSnapshot> s = t->Peek(k);
      ASSERT_TRUE(s.has_value()) << i;
      EXPECT_EQ(s->key, k) << i;
      EXPECT_EQ(s->backend_id, 100 + i) << i;
      EXPECT_EQ(s->last_seen, 40 + i) << i;
      const FlowState want = proto != inet::ip_proto::kTcp ? FlowState::kNew
                             : i % 3                       ? FlowState::kProbation
                                                           : FlowState::kNew;
      EXPECT_EQ(s->state, want) << i;
      // Same flow numbers in the other family, another service, another protocol: absent.
      EXPECT_FALSE(t->Peek(v6 ? ClientFlowV4(i, proto) : ClientFlowV6(i, proto)).has_value()) << i;
      EXPECT_FALSE(t->Peek(v6 ? ClientFlowV6(i, proto, 2) : ClientFlowV4(i, proto, 2)).has_value())
          << i;
      const uint8_t other =
          proto == inet::ip_proto::kTcp ? inet::ip_proto::kUdp : inet::ip_proto::kTcp;
      EXPECT_FALSE(t->Peek(v6 ? ClientFlowV6(i, other) : ClientFlowV4(i, other)).has_value()) << i;
    }
    EXPECT_FALSE(t->Peek(ClientFlowV4(n + 1)).has_value());
    EXPECT_FALSE(t->Peek(ClientFlowV6(n + 6)).has_value());
    FlowKey bad = ClientFlowV4(0);
    bad.family = 5;
    EXPECT_FALSE(t->Peek(bad).has_value());
    FlowKey unset;
    EXPECT_FALSE(t->Peek(unset).has_value());
    // Every entry ForEach sees, Peek finds whole.
    size_t walked = 0;
    t->ForEach([&](const FlowSnapshot& s) {
      ++walked;
      const std::optional<FlowSnapshot> p = t->Peek(s.key);
      EXPECT_TRUE(p.has_value());
      if (!p.has_value()) return true;
      EXPECT_EQ(*p, s);
      return true;
    });
    EXPECT_EQ(walked, n);
  }
}

// Peek follows the writer: state and time (Touch), backend (SetBackend), an expired entry
// until it is reclaimed, removal.
TEST(ConntrackTest, PeekSeesTouchSetBackendAndExpiry) {
  Timeouts to;
  to.tcp_syn = 5;
  to.tcp_established = 50;
  auto t = MakeTable(100, &FlowHash, to);
  const FlowKey k = ClientFlowV4(1);
  ASSERT_EQ(t->Insert(k, 5, kSyn, 10), InsertResult::kInserted);
  std::optional<FlowSnapshot> s = t->Peek(k);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->state, FlowState::kNew);
  EXPECT_EQ(s->last_seen, 10u);
  EXPECT_EQ(s->backend_id, 5u);

  EntryRef r = t->Lookup(k, 12);
  ASSERT_TRUE(t->Touch(r, kAck, 12));
  s = t->Peek(k);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->state, FlowState::kEstablished);
  EXPECT_EQ(s->last_seen, 12u);
  ASSERT_TRUE(t->SetBackend(r, 9));
  EXPECT_EQ(t->Peek(k)->backend_id, 9u);
  ASSERT_TRUE(t->Touch(r, kAck, 13));  // only the time word changes
  EXPECT_EQ(t->Peek(k)->last_seen, 13u);
  EXPECT_EQ(t->Peek(k)->backend_id, 9u);

  // Expired (13 + 50 < 100) but not reclaimed: still held, and Peek says so.
  EXPECT_TRUE(t->Peek(k).has_value());
  EXPECT_GT(t->ExpireSome(100, t->bucket_count()), 0u);
  EXPECT_FALSE(t->Peek(k).has_value());
  EXPECT_EQ(t->Count(), 0u);
}

TEST(ConntrackTest, ResultNames) {
  EXPECT_STREQ(InsertResultName(InsertResult::kInserted), "inserted");
  EXPECT_STREQ(InsertResultName(InsertResult::kFull), "full");
  EXPECT_STREQ(InsertResultName(InsertResult::kReplacedStale), "replaced_stale");
}

// Flood rules (flow_state.h, FlowRank): a window of ConstHash keys filled with a mix of
// states, then newcomers of each kind. Expired first, then the newcomer's own weak rank,
// then the other weak rank; synced and established are never displaced.
TEST(ConntrackRankTest, NewcomersDisplaceTheirOwnKindFirstAndNeverProvenFlows) {
  // A window of kWindow = 15 slots: 5 established (ids 0-4), 2 synced (5-6), then
  // `probation` probationary (from 7) and the rest new (SYN seen).
  auto fill = [](Table& t, uint32_t probation) {
    uint32_t id = 0;
    for (int i = 0; i < 5; ++i) EXPECT_EQ(InsertEstablished(t, ClientFlowV4(id++), 1, 0),
                                          InsertResult::kInserted);
    for (int i = 0; i < 2; ++i) EXPECT_EQ(t.InsertSynced(ClientFlowV4(id++), 2, 0),
                                          InsertResult::kInserted);
    for (uint32_t i = 0; i < probation; ++i) EXPECT_EQ(t.Insert(ClientFlowV4(id++), 3, kAck, 0),
                                                      InsertResult::kInserted);
    while (id < kWindow) EXPECT_EQ(t.Insert(ClientFlowV4(id++), 4, kSyn, 0),
                                   InsertResult::kInserted);
  };
  auto count = [](const Table& t, FlowState s) {
    size_t n = 0;
    t.ForEach([&](const FlowSnapshot& f) {
      n += f.state == s;
      return true;
    });
    return n;
  };
  auto t = MakeTable(100, &ConstHash);
  fill(*t, 4);  // probationary 7-10, new 11-14
  auto keys_in = [](const Table& t, FlowState s) {
    std::vector<FlowKey> keys;
    t.ForEach([&](const FlowSnapshot& f) {
      if (f.state == s) keys.push_back(f.key);
      return true;
    });
    return keys;
  };
  // Forged ACKs (probationary newcomers) displace probationary entries (the flood's own, once
  // it has some), never the SYNs...
  for (uint32_t i = 0; i < 4; ++i) {
    ASSERT_EQ(t->Insert(ClientFlowV4(100 + i), 5, kAck, 1), InsertResult::kReplacedStale);
  }
  EXPECT_EQ(count(*t, FlowState::kProbation), 4u);
  for (uint32_t i = 11; i < 15; ++i) EXPECT_TRUE(t->Lookup(ClientFlowV4(i), 1)) << i;
  const std::vector<FlowKey> probation = keys_in(*t, FlowState::kProbation);
  // ... and SYNs displace new entries, never the probationary ones.
  for (uint32_t i = 0; i < 4; ++i) {
    ASSERT_EQ(t->Insert(ClientFlowV4(200 + i), 6, kSyn, 1), InsertResult::kReplacedStale);
  }
  EXPECT_EQ(keys_in(*t, FlowState::kProbation), probation);
  EXPECT_EQ(count(*t, FlowState::kNew), 4u);
  EXPECT_EQ(t->stats().evictions, 8u);

  // Without weak entries of its own kind, a newcomer takes one of the other weak kind.
  t = MakeTable(100, &ConstHash);
  fill(*t, 8);  // no new entry
  ASSERT_EQ(t->Insert(ClientFlowV4(300), 7, kSyn, 1), InsertResult::kReplacedStale);
  EXPECT_EQ(count(*t, FlowState::kProbation), 7u);
  t = MakeTable(100, &ConstHash);
  fill(*t, 0);  // no probationary entry
  ASSERT_EQ(t->Insert(ClientFlowV4(301), 7, kAck, 1), InsertResult::kReplacedStale);
  EXPECT_EQ(count(*t, FlowState::kNew), 7u);
  // A synced newcomer takes a weak slot too, new before probationary.
  ASSERT_EQ(t->InsertSynced(ClientFlowV4(302), 8, 1), InsertResult::kReplacedStale);
  EXPECT_EQ(count(*t, FlowState::kNew), 6u);
  EXPECT_EQ(count(*t, FlowState::kProbation), 1u);
  EXPECT_EQ(count(*t, FlowState::kSynced), 3u);

  // Synced and established entries are never displaced: with nothing weak left, newcomers
  // of every kind are refused.
  for (uint32_t i = 0; i < 7; ++i) {
    ASSERT_EQ(InsertEstablished(*t, ClientFlowV4(400 + i), 9, 1), InsertResult::kReplacedStale)
        << i;
  }
  EXPECT_EQ(t->Insert(ClientFlowV4(500), 10, kSyn, 1), InsertResult::kFull);
  EXPECT_EQ(t->Insert(ClientFlowV4(501), 10, kAck, 1), InsertResult::kFull);
  EXPECT_EQ(t->InsertSynced(ClientFlowV4(502), 10, 1), InsertResult::kFull);
  EXPECT_EQ(count(*t, FlowState::kEstablished), 12u);
  EXPECT_EQ(count(*t, FlowState::kSynced), 3u);
  for (uint32_t i = 0; i < 5; ++i) EXPECT_EQ(t->Lookup(ClientFlowV4(i), 1).backend_id(), 1u);
}

// Level 2 takes the weak kind that holds more of the window: a SYN arriving during a
// forged-ACK flood takes a forged probationary entry, not another client's half-open one, and
// a forged ACK during a SYN flood takes a half-open entry, not a flow moved here. Entries are
// 40 s old (older than the shortest timeout, younger than theirs): the classifying path.
TEST(ConntrackRankTest, TheWeakKindHoldingMoreOfTheWindowGoesFirst) {
  for (const bool ack_flood : {true, false}) {
    SCOPED_TRACE(ack_flood ? "forged-ACK flood" : "SYN flood");
    Timeouts to;
    to.tcp_closing = 10;  // the shortest timeout: entries 40 s old are classified one by one
    auto t = MakeTable(100, &ConstHash, to);
    uint32_t id = 0;
    for (int i = 0; i < 5; ++i) {
      ASSERT_EQ(InsertEstablished(*t, ClientFlowV4(id++), 1, 0), InsertResult::kInserted);
    }
    // Two of the minority kind (the real clients), eight of the flood's kind.
    const uint8_t real = ack_flood ? kSyn : kAck, flood = ack_flood ? kAck : kSyn;
    for (int i = 0; i < 2; ++i) {
      ASSERT_EQ(t->Insert(ClientFlowV4(id++), 2, real, 0), InsertResult::kInserted);
    }
    for (int i = 0; i < 8; ++i) {
      ASSERT_EQ(t->Insert(ClientFlowV4(id++), 3, flood, 0), InsertResult::kInserted);
    }
    ASSERT_EQ(id, kWindow);
    // More real clients of the minority kind arrive: each takes a flood entry.
    for (uint32_t i = 0; i < 3; ++i) {
      ASSERT_EQ(t->Insert(ClientFlowV4(100 + i), 4, real, 40), InsertResult::kReplacedStale);
    }
    for (uint32_t i = 5; i < 7; ++i) EXPECT_TRUE(t->Lookup(ClientFlowV4(i), 40)) << i;
    for (uint32_t i = 0; i < 3; ++i) EXPECT_TRUE(t->Lookup(ClientFlowV4(100 + i), 40)) << i;
    EXPECT_EQ(t->stats().evictions, 3u);
  }
}

TEST(ConntrackRankTest, ProbationaryFlowProvesItselfOrTimesOutFromItsFirstPacket) {
  Timeouts to;
  to.tcp_probation = 5;
  auto t = MakeTable(1000, &FlowHash, to);
  ASSERT_EQ(t->Insert(ClientFlowV4(1), 3, kAck, 100), InsertResult::kInserted);
  ASSERT_EQ(t->Insert(ClientFlowV4(2), 3, kAck, 100), InsertResult::kInserted);
  // Packets within the proof interval do not refresh it.
  EntryRef r = t->Lookup(ClientFlowV4(1), 101);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.state(), FlowState::kProbation);
  ASSERT_TRUE(t->Touch(r, kAck, 101));
  EXPECT_EQ(r.state(), FlowState::kProbation);
  EXPECT_EQ(r.last_seen(), 100u);
  EXPECT_EQ(t->Insert(ClientFlowV4(2), 3, kAck, 101), InsertResult::kUpdated);
  EXPECT_EQ(t->Peek(ClientFlowV4(2))->last_seen, 100u);
  // Flow 1 proves itself 2 s after its first packet: established, 900 s from now.
  r = t->Lookup(ClientFlowV4(1), 102);
  ASSERT_TRUE(t->Touch(r, kAck, 102));
  EXPECT_EQ(r.state(), FlowState::kEstablished);
  EXPECT_EQ(r.last_seen(), 102u);
  // Flow 2 (the Insert path) proves itself the same way.
  EXPECT_EQ(t->Insert(ClientFlowV4(2), 3, kAck, 102), InsertResult::kUpdated);
  EXPECT_EQ(t->Peek(ClientFlowV4(2))->state, FlowState::kEstablished);
  // A forged flow seen once (or twice within a second) is gone 5 s after its first packet.
  ASSERT_EQ(t->Insert(ClientFlowV4(3), 3, kAck, 200), InsertResult::kInserted);
  r = t->Lookup(ClientFlowV4(3), 201);
  ASSERT_TRUE(t->Touch(r, kAck, 201));
  EXPECT_TRUE(t->Lookup(ClientFlowV4(3), 205));
  EXPECT_FALSE(t->Lookup(ClientFlowV4(3), 206));
  EXPECT_TRUE(t->Lookup(ClientFlowV4(1), 206));
}

TEST(ConntrackRankTest, SyncedEntriesYieldToLocalKnowledgeOnly) {
  auto t = MakeTable(1000);
  // A flow unknown here: tracked as synced; its first local packet makes it local.
  ASSERT_EQ(t->InsertSynced(ClientFlowV4(1), 5, 10), InsertResult::kInserted);
  EXPECT_EQ(t->Peek(ClientFlowV4(1))->state, FlowState::kSynced);
  EntryRef r = t->Lookup(ClientFlowV4(1), 11);
  ASSERT_TRUE(r);
  EXPECT_EQ(r.backend_id(), 5u);
  ASSERT_TRUE(t->Touch(r, kAck, 11));
  EXPECT_EQ(r.state(), FlowState::kEstablished);
  // A local established (or closing) flow keeps its backend.
  ASSERT_EQ(InsertEstablished(*t, ClientFlowV4(2), 1, 10), InsertResult::kInserted);
  EXPECT_EQ(t->InsertSynced(ClientFlowV4(2), 6, 11), InsertResult::kKeptLocal);
  EXPECT_EQ(t->Peek(ClientFlowV4(2))->backend_id, 1u);
  ASSERT_EQ(t->Insert(ClientFlowV4(3), 1, kFin, 10), InsertResult::kInserted);
  EXPECT_EQ(t->InsertSynced(ClientFlowV4(3), 6, 11), InsertResult::kKeptLocal);
  // A probationary flow (picked up mid-stream here) takes the peer's backend: the peer saw
  // it begin.
  ASSERT_EQ(t->Insert(ClientFlowV4(4), 1, kAck, 10), InsertResult::kInserted);
  EXPECT_EQ(t->InsertSynced(ClientFlowV4(4), 6, 11), InsertResult::kUpdated);
  EXPECT_EQ(t->Peek(ClientFlowV4(4))->backend_id, 6u);
  EXPECT_EQ(t->Peek(ClientFlowV4(4))->state, FlowState::kSynced);
  // A SYN seen here is newer than any peer's copy of the tuple (port reuse): kept.
  ASSERT_EQ(t->Insert(ClientFlowV4(6), 1, kSyn, 10), InsertResult::kInserted);
  EXPECT_EQ(t->InsertSynced(ClientFlowV4(6), 6, 11), InsertResult::kKeptLocal);
  EXPECT_EQ(t->Peek(ClientFlowV4(6))->backend_id, 1u);
  // A synced copy is refreshed by the next one.
  ASSERT_EQ(t->InsertSynced(ClientFlowV4(5), 6, 11), InsertResult::kInserted);
  EXPECT_EQ(t->InsertSynced(ClientFlowV4(5), 7, 12), InsertResult::kUpdated);
  EXPECT_EQ(t->Peek(ClientFlowV4(5))->backend_id, 7u);
  // Synced TCP entries live as long as established ones.
  EXPECT_TRUE(t->Lookup(ClientFlowV4(5), 12 + 900));
  EXPECT_FALSE(t->Lookup(ClientFlowV4(5), 12 + 901));
  EXPECT_EQ(t->InsertSynced(FlowKey(), 1, 1), InsertResult::kInvalidKey);
}

// A peer's copy last seen in the past keeps that time, and the entries it meets are judged
// at `now`: in a window of live synced entries, a copy 500 s old finds nothing expired and
// displaces nothing (judged at its own time, every entry seen since looked expired).
TEST(ConntrackRankTest, AnOlderSyncedCopyIsJudgedAtNow) {
  auto t = MakeTable(100, &ConstHash);
  for (uint32_t i = 0; i < kWindow; ++i) {
    ASSERT_EQ(t->InsertSynced(ClientFlowV4(i), 1, 1000), InsertResult::kInserted);
  }
  EXPECT_EQ(t->InsertSynced(ClientFlowV4(100), 2, 1000, 500), InsertResult::kFull);
  EXPECT_EQ(t->InsertSynced(ClientFlowV6(101), 2, 1000, 500), InsertResult::kFull);
  EXPECT_EQ(t->stats().evictions + t->stats().expirations, 0u);
  for (uint32_t i = 0; i < kWindow; ++i) EXPECT_TRUE(t->Lookup(ClientFlowV4(i), 1000)) << i;
  // With room, the copy keeps its time (and expires by it); a tracked one takes it too.
  t = MakeTable(100);
  ASSERT_EQ(t->InsertSynced(ClientFlowV4(1), 2, 1000, 500), InsertResult::kInserted);
  EXPECT_EQ(t->Peek(ClientFlowV4(1))->last_seen, 500u);
  EXPECT_EQ(t->InsertSynced(ClientFlowV4(1), 3, 1000, 400), InsertResult::kUpdated);
  EXPECT_EQ(t->Peek(ClientFlowV4(1))->last_seen, 400u);
  EXPECT_TRUE(t->Lookup(ClientFlowV4(1), 400 + 900));
  EXPECT_FALSE(t->Lookup(ClientFlowV4(1), 400 + 901));
}

}  // namespace
}  // namespace ecmplb::conntrack
