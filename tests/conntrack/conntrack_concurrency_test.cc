// One writer churns a small table (inserts, evictions, touches, re-pointing,
// expiry) while reader threads walk it. Every field of every entry is derived
// from the entry's id, so a torn read (half an old entry, half a new one) is
// detected. Registered in the 'tsan' suite as well.
#include <arpa/inet.h>

#include <array>
#include <atomic>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "conntrack/conntrack.h"
#include "gtest/gtest.h"
#include "tests/support/flows.h"

namespace ecmplb::conntrack {
namespace {

constexpr uint32_t kIds = 4000;

using test_support::Mix32;

// Id in the top bits of the source address, the rest derived from it.
FlowKey KeyOf(uint32_t id) {
  const uint32_t m = Mix32(id);
  const uint8_t proto = (m & 1) ? inet::ip_proto::kTcp : inet::ip_proto::kUdp;
  const uint16_t service = static_cast<uint16_t>(m >> 16);
  if (id % 3 == 0) {
    std::array<uint8_t, 16> src{}, dst{};
    std::memcpy(&src[0], &id, 4);
    for (int i = 4; i < 16; ++i) src[i] = static_cast<uint8_t>(m >> (i % 4));
    for (int i = 0; i < 16; ++i) dst[i] = static_cast<uint8_t>(m + i);
    return FlowKey::V6(src, dst, static_cast<uint16_t>(m), static_cast<uint16_t>(m >> 8), proto,
                       service);
  }
  return FlowKey::V4(id, m, static_cast<uint16_t>(m), static_cast<uint16_t>(m >> 8), proto,
                     service);
}
uint32_t BackendOf(uint32_t id, bool alt) {
  return Mix32(id ^ 0x5555) ^ alt;
}

// Returns the id of a snapshot whose fields all agree, or -1 if torn.
int64_t CheckSnapshot(const FlowSnapshot& s) {
  uint32_t id;
  std::memcpy(&id, s.key.addr, 4);
  if (id >= kIds) return -1;
  if (!(s.key == KeyOf(id))) return -1;
  if (s.backend_id != BackendOf(id, false) && s.backend_id != BackendOf(id, true)) {
    return -1;
  }
  if (static_cast<uint8_t>(s.state) >= kFlowStateCount) return -1;
  return id;
}

TEST(ConntrackConcurrencyTest, ReadersOnlySeeWholeEntries) {
  Options o;
  o.capacity = 12;  // 3 buckets for 4000 ids: constant eviction, and the
                    // readers always read the buckets being written
  o.timeouts.tcp_syn = 3;
  o.timeouts.tcp_established = 5;
  o.timeouts.tcp_closing = 2;
  o.timeouts.udp = 10;
  auto created = Table::Create(o);
  ASSERT_TRUE(created.ok());
  Table& t = **created;

  std::atomic<bool> done{false};
  std::atomic<uint64_t> torn{0}, seen{0}, walks{0}, peeked{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 3; ++r) {
    readers.emplace_back([&, r] {
      std::vector<uint64_t> counts(8);
      uint32_t next = 7;
      while (!done.load(std::memory_order_acquire)) {
        if (r == 2) {
          // Keyed reads of the ids the writer churns: whole entries of the asked key only.
          for (int i = 0; i < 64; ++i) {
            next = Mix32(next + 1);
            const uint32_t id = next % kIds;
            const std::optional<FlowSnapshot> s = t.Peek(KeyOf(id));
            if (!s.has_value()) continue;
            if (CheckSnapshot(*s) != id) torn.fetch_add(1);
            peeked.fetch_add(1, std::memory_order_relaxed);
          }
        } else if (r == 0) {
          t.ForEach([&](const FlowSnapshot& s) {
            if (CheckSnapshot(s) < 0) torn.fetch_add(1);
            seen.fetch_add(1, std::memory_order_relaxed);
            return true;
          });
        } else {
          for (const FlowSnapshot& s : t.Dump(64)) {
            if (CheckSnapshot(s) < 0) torn.fetch_add(1);
          }
          t.CountByBackend(counts);
          if (t.Count() > t.bucket_count() * Table::kSlotsPerBucket) {
            torn.fetch_add(1);
          }
          (void)t.stats();
        }
        walks.fetch_add(1, std::memory_order_relaxed);
      }
    });
  }

  uint32_t rng = 12345;
  uint32_t now = 0;
  const int kOps = 1'000'000;
  std::vector<FlowKey> burst;
  std::vector<EntryRef> refs(Table::kMaxBurst);
  for (int op = 0; op < kOps; ++op) {
    rng = Mix32(rng + op);
    if (op % 1000 == 0) ++now;
    const uint32_t id = rng % kIds;
    switch ((rng >> 20) % 4) {
      case 0:
      case 1: {
        const uint8_t flags = (rng >> 24) % 8 == 0 ? inet::tcp_flag::kAck : inet::tcp_flag::kSyn;
        t.Insert(KeyOf(id), BackendOf(id, false), flags, now);
        break;
      }
      case 2: {
        burst.clear();
        for (uint32_t i = 0; i < 8; ++i) burst.push_back(KeyOf((id + i) % kIds));
        t.LookupBulk(burst, now, refs);
        for (size_t i = 0; i < burst.size(); ++i) {
          if (!refs[i].found()) continue;
          const uint32_t rid = (id + i) % kIds;
          if (rng & 0x100) {
            t.SetBackend(refs[i], BackendOf(rid, (rng >> 9) & 1));
          }
          t.Touch(refs[i], (rng >> 10) & 1 ? inet::tcp_flag::kFin : inet::tcp_flag::kAck, now);
        }
        break;
      }
      case 3:
        t.ExpireSome(now, 4);
        break;
    }
  }
  done.store(true, std::memory_order_release);
  for (std::thread& th : readers) th.join();

  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(walks.load(), 0u);
  EXPECT_GT(peeked.load(), 0u);
  // The writer's own view is consistent too.
  size_t count = 0;
  t.ForEach([&](const FlowSnapshot& s) {
    EXPECT_GE(CheckSnapshot(s), 0);
    ++count;
    return true;
  });
  EXPECT_EQ(count, t.Count());
  const Stats st = t.stats();
  EXPECT_GT(st.inserts, 0u);
  EXPECT_GT(st.evictions + st.expirations, 0u);
}

// Peek from other threads always finds an entry that stays in the table, while the writer
// evicts, inserts and expires other entries in the same buckets and re-points and touches the
// stable ones. Every key has the same home (a constant hash), so the stable entries fill the
// home bucket and overflow into both neighbours, where the churn happens.
uint64_t SameHome(const FlowKey&) noexcept {
  return 0;
}

TEST(ConntrackConcurrencyTest, PeekAlwaysFindsAStableEntry) {
  Options o;
  o.capacity = 12;  // 3 buckets: home and both neighbours, 15 slots
  o.hasher = &SameHome;
  auto created = Table::Create(o);
  ASSERT_TRUE(created.ok());
  Table& t = **created;
  // 7 stable flows (ids 0..6: two IPv6 of two slots) take 9 slots; the churn shares the rest.
  constexpr uint32_t kStable = 7;
  for (uint32_t id = 0; id < kStable; ++id) {
    ASSERT_EQ(t.Insert(KeyOf(id), BackendOf(id, false), inet::tcp_flag::kSyn, 0),
              InsertResult::kInserted)
        << id;
  }
  // A second packet (the handshake's ACK) makes them established: from here on none of them is
  // displaced, and none expires (the clock stays below every timeout).
  std::vector<FlowKey> stable;
  for (uint32_t id = 0; id < kStable; ++id) stable.push_back(KeyOf(id));
  std::vector<EntryRef> refs(kStable);
  t.LookupBulk(stable, 0, refs);
  for (uint32_t id = 0; id < kStable; ++id) {
    ASSERT_TRUE(t.Touch(refs[id], inet::tcp_flag::kAck, 0)) << id;
    const std::optional<FlowSnapshot> s = t.Peek(stable[id]);
    ASSERT_TRUE(s.has_value()) << id;
    ASSERT_EQ(s->state, FlowState::kEstablished) << id;
  }

  std::atomic<bool> done{false};
  std::atomic<uint64_t> missed{0}, torn{0}, found{0};
  std::vector<std::thread> readers;
  for (int r = 0; r < 2; ++r) {
    readers.emplace_back([&, r] {
      uint32_t next = 99 + r;
      while (!done.load(std::memory_order_acquire)) {
        for (uint32_t id = 0; id < kStable; ++id) {
          const std::optional<FlowSnapshot> s = t.Peek(KeyOf(id));
          if (!s.has_value()) {
            missed.fetch_add(1);
            continue;
          }
          if (CheckSnapshot(*s) != id) torn.fetch_add(1);
          found.fetch_add(1, std::memory_order_relaxed);
        }
        next = Mix32(next + 1);
        const uint32_t id = kStable + next % (kIds - kStable);
        if (const auto s = t.Peek(KeyOf(id)); s.has_value() && CheckSnapshot(*s) != id) {
          torn.fetch_add(1);
        }
      }
    });
  }

  uint32_t rng = 777;
  uint32_t now = 0;
  for (int op = 0; op < 300'000; ++op) {
    rng = Mix32(rng + op);
    if (op % 10'000 == 0) ++now;  // ends at 30 s: below every timeout
    const uint32_t id = kStable + rng % (kIds - kStable);
    switch ((rng >> 20) % 4) {
      case 0:
      case 1:  // a new flow (SYN or UDP): displaces another new one when the window is full
        t.Insert(KeyOf(id), BackendOf(id, false), inet::tcp_flag::kSyn, now);
        break;
      case 2: {
        t.LookupBulk(stable, now, refs);
        for (uint32_t s = 0; s < kStable; ++s) {
          if (!refs[s].found()) {
            ADD_FAILURE() << "stable flow " << s << " lost";
            continue;
          }
          if (rng & 0x100) t.SetBackend(refs[s], BackendOf(s, (rng >> 9) & 1));
          t.Touch(refs[s], inet::tcp_flag::kAck, now);
        }
        break;
      }
      case 3:
        t.ExpireSome(now, 3);
        break;
    }
  }
  done.store(true, std::memory_order_release);
  for (std::thread& th : readers) th.join();

  EXPECT_EQ(missed.load(), 0u);
  EXPECT_EQ(torn.load(), 0u);
  EXPECT_GT(found.load(), 0u);
  EXPECT_GT(t.stats().evictions, 0u);
}

}  // namespace
}  // namespace ecmplb::conntrack
