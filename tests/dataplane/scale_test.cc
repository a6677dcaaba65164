// Scale (issue 19): a host with 16,384 services and 131,072 backends is accepted, built and
// forwards to its last service, counted in that service's counter slot (memory for it comes
// from EnsureSlots, as Engine::Publish gives it); a change to one service rebuilds only it;
// the per-host limits refuse what does not fit with a clear reason; counter memory follows
// the slots in use.
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "control/config.h"
#include "maglev/maglev.h"
#include "tests/dataplane/pipeline_host.h"

namespace ecmplb::dataplane::pipeline_testing {
namespace {

// 10.100.x.y:80 services, each with `per` backends 10.(1 + k / 65536).(k / 256 % 256).(k % 256)
// (distinct next hops, on the host's /8), table sizes chosen as `service add` chooses them.
control::Config ScaleConfig(size_t services, size_t per) {
  control::Config c;
  c.host.address = "10.0.0.11";
  c.host.prefix_length = 8;
  c.conntrack.capacity = 4096;
  size_t k = 0;
  for (size_t i = 0; i < services; ++i) {
    control::ServiceConfig s;
    s.vip = absl::StrCat("10.100.", i / 256, ".", i % 256);
    s.port = 80;
    s.table_size = maglev::Table::SizeFor(static_cast<uint32_t>(per));
    for (size_t b = 0; b < per; ++b, ++k) {
      s.backends.push_back({static_cast<uint32_t>(b + 1),
                            absl::StrCat("10.", 1 + k / 65536, ".", k / 256 % 256, ".", k % 256)});
    }
    c.services.push_back(std::move(s));
  }
  return c;
}

TEST(ScaleTest, SixteenThousandServicesBuildForwardAndChangeOneAtATime) {
  control::Config c = ScaleConfig(16384, 8);
  ASSERT_TRUE(control::Validate(c).ok()) << control::Validate(c);
  Host h(c);
  EXPECT_EQ(h.snap().services().size(), 16384u);
  EXPECT_EQ(h.snap().service_slots(), 16384u);
  EXPECT_EQ(h.snap().backend_slots(), 131072u);
  EXPECT_EQ(h.builder().neighbor_slots().size(), 131072u);
  // Counter memory covers what is used, in whole chunks, not the maximum.
  EXPECT_EQ(h.counters().services.allocated(), 16384u);
  EXPECT_EQ(h.counters().backends.allocated(), 131072u);

  // The first, a middle and the last service forward, each counted in its own slots.
  for (size_t i : {size_t{0}, size_t{9999}, size_t{16383}}) {
    const std::string vip = c.services[i].vip;
    std::vector<uint8_t> out;
    ASSERT_EQ(h.Run(Syn(40000, "192.0.2.7", vip.c_str()), &out), Verdict::kTx) << vip;
    const Service* svc = h.snap().Find(*IpAddr::Parse(vip), 80, inet::ip_proto::kTcp);
    ASSERT_NE(svc, nullptr);
    EXPECT_EQ(h.counters().services.Find(svc->counter_slot)->packets.Get(), 1u) << vip;
    int counted = 0;  // DR: the frame goes to the backend's MAC
    for (const auto& b : svc->backends) {
      const bool to = std::equal(out.begin(), out.begin() + 6, BackendMac(b.addr).bytes.begin());
      counted += to && h.counters().backends.Find(b.counter_slot)->packets.Get() == 1;
    }
    EXPECT_EQ(counted, 1) << vip << ": the chosen backend's slot counts the packet";
  }

  // One service changes: only it is rebuilt; every other service is the same object.
  std::vector<const Service*> before;
  for (const auto& s : h.snap().services()) before.push_back(s.get());
  c.services[5000].backends[0].weight = 3;
  h.Apply(c);
  EXPECT_EQ(h.builder().services_rebuilt(), 1u);
  size_t same = 0;
  for (size_t i = 0; i < before.size(); ++i) same += h.snap().services()[i].get() == before[i];
  EXPECT_EQ(same, 16383u);
}

TEST(ScaleTest, PerHostLimitsRefuseWithAClearReason) {
  auto mentions = [](const absl::Status& st, const std::string& what) {
    return st.code() == absl::StatusCode::kInvalidArgument &&
           std::string(st.message()).find(what) != std::string::npos;
  };
  // Services: one past the limit (no backends needed to count them).
  control::Config c;
  c.host.address = "10.0.0.11";
  for (size_t i = 0; i <= control::kMaxServices; ++i) {
    control::ServiceConfig s;
    s.vip = absl::StrCat("10.", 100 + i / 65536, ".", i / 256 % 256, ".", i % 256);
    s.port = 80;
    s.table_size = 251;
    c.services.push_back(std::move(s));
  }
  absl::Status st = control::Validate(c);
  EXPECT_TRUE(mentions(st, "at most 65536 services (65537 given)")) << st;
  c.services.pop_back();
  EXPECT_TRUE(control::Validate(c).ok()) << control::Validate(c);

  // Maglev slots: 32,768 services at the default 65,537 slots exceed 2^31.
  c.services.resize(32768);
  for (auto& s : c.services) s.table_size = maglev::kDefaultTableSize;
  st = control::Validate(c);
  EXPECT_TRUE(mentions(st, "Maglev tables would hold 2147516416 slots")) << st;
  c.services.pop_back();
  EXPECT_TRUE(control::Validate(c).ok()) << control::Validate(c);

  // Backends over all services: 256 x 4,096 is the limit; one sorry backend more is refused.
  c.services.resize(256);
  for (auto& s : c.services) {
    s.table_size = maglev::kDefaultTableSize;
    for (uint32_t b = 1; b <= control::kMaxBackendsPerService; ++b) {
      s.backends.push_back({b, "10.0.0.21"});  // refused before each backend is looked at
    }
  }
  c.services[0].sorry_backend = control::BackendConfig{0, "10.0.0.99"};
  st = control::Validate(c);
  EXPECT_TRUE(mentions(st, "at most 1048576 backends over all services (1048577 given")) << st;
}

// SlotCells: memory in chunks as slots come into use; readers see null past it.
TEST(ScaleTest, CounterChunksFollowTheSlotsInUse) {
  WorkerCounters w;
  EXPECT_EQ(w.services.allocated(), 1024u);  // the first chunk, always
  EXPECT_EQ(w.backends.allocated(), 4096u);
  EXPECT_NE(w.services.Find(1023), nullptr);
  EXPECT_EQ(w.services.Find(1024), nullptr);
  EXPECT_EQ(w.services.Find(kMaxServiceSlots), nullptr);
  w.EnsureSlots(1025, 4097);
  EXPECT_EQ(w.services.allocated(), 2048u);
  EXPECT_EQ(w.backends.allocated(), 8192u);
  w.services[1024].Add(100);
  EXPECT_EQ(w.services.Find(1024)->bytes.Get(), 100u);
  w.EnsureSlots(kMaxServiceSlots + 5, 0);  // clamped to the maximum
  EXPECT_EQ(w.services.allocated(), kMaxServiceSlots);
  EXPECT_EQ(w.services.Find(1024)->packets.Get(), 1u);  // chunks are never replaced
}

// The incremental builder: services sharing a backend share its next-hop slot, which lives
// while any backend uses it; kept backends keep their counter slots; a build that fails
// (a DR backend off-link) changes nothing, and the next good build continues from the state
// before it.
TEST(ScaleTest, BuilderSlotsAndNextHopsFollowChanges) {
  control::Config c = ScaleConfig(3, 2);  // 10.1.0.0-10.1.0.5
  c.services[1].backends[0].address = c.services[0].backends[0].address;  // shared: 10.1.0.0
  control::SnapshotBuilder b(kPortMac);
  ASSERT_TRUE(b.Build(c).ok());
  EXPECT_EQ(b.neighbor_slots().size(), 5u);
  const int s1 = b.BackendSlot(c.services[1].Name(), 2);
  const int svc2 = b.ServiceSlot(c.services[2].Name());
  ASSERT_GE(s1, 0);

  // Service 0 goes: the shared next hop stays (service 1 uses it), its own one goes.
  control::Config without0 = c;
  without0.services.erase(without0.services.begin());
  ASSERT_TRUE(b.Build(without0).ok());
  EXPECT_EQ(b.services_rebuilt(), 0u);
  EXPECT_EQ(b.neighbor_slots().size(), 4u);
  EXPECT_EQ(b.ServiceSlot(c.services[0].Name()), -1);
  EXPECT_EQ(b.BackendSlot(c.services[1].Name(), 2), s1);
  EXPECT_EQ(b.ServiceSlot(c.services[2].Name()), svc2);

  // A failed build: nothing moves.
  control::Config bad = without0;
  bad.services[0].backends.push_back({3, "192.0.2.9"});  // DR, off-link
  auto st = b.Build(bad);
  EXPECT_EQ(st.status().code(), absl::StatusCode::kFailedPrecondition) << st.status();
  EXPECT_EQ(b.neighbor_slots().size(), 4u);
  EXPECT_EQ(b.BackendSlot(c.services[1].Name(), 3), -1);

  // Service 1 loses backend 1 (the shared address, now used by nobody) and gains id 3.
  control::Config next = without0;
  next.services[0].backends.erase(next.services[0].backends.begin());
  next.services[0].backends.push_back({3, "10.1.0.9"});
  auto snap = b.Build(next);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(b.services_rebuilt(), 1u);
  EXPECT_EQ(b.BackendSlot(c.services[1].Name(), 2), s1);  // kept
  EXPECT_EQ(b.BackendSlot(c.services[1].Name(), 1), -1);
  absl::flat_hash_set<IpAddr> hops;
  for (const auto& [slot, addr] : b.neighbor_slots()) hops.insert(addr);
  EXPECT_EQ(hops.size(), 4u);
  EXPECT_FALSE(hops.count(*IpAddr::Parse(c.services[0].backends[0].address)));
  EXPECT_TRUE(hops.count(*IpAddr::Parse("10.1.0.9")));
  // Every backend of the snapshot points at the next-hop slot of its own address.
  for (const auto& svc : (*snap)->services()) {
    for (const auto& be : svc->backends) {
      EXPECT_EQ(b.neighbor_slots().at(be.neighbor_slot), be.addr);
    }
  }
}

// A next hop that stays in use keeps its slot (and so its resolved MAC) when the service that
// used it leaves and another service takes it up in the same change; an address used only
// by a rebuilt service stays a backend address throughout.
TEST(ScaleTest, BuilderKeepsTheSlotOfANextHopStillInUse) {
  control::Config c = ScaleConfig(2, 2);  // service 0: 10.1.0.0-1, service 1: 10.1.0.2-3
  control::SnapshotBuilder b(kPortMac);
  ASSERT_TRUE(b.Build(c).ok());
  const IpAddr x = *IpAddr::Parse(c.services[0].backends[0].address);
  uint32_t slot_x = UINT32_MAX;
  for (const auto& [slot, addr] : b.neighbor_slots()) {
    if (addr == x) slot_x = slot;
  }
  ASSERT_NE(slot_x, UINT32_MAX);
  control::Config next = c;
  next.services.erase(next.services.begin());  // X's only user leaves ...
  next.services[0].backends.push_back({3, c.services[0].backends[0].address});  // ... X joins
  auto snap = b.Build(next);
  ASSERT_TRUE(snap.ok()) << snap.status();
  EXPECT_EQ(b.services_rebuilt(), 1u);
  ASSERT_EQ(b.neighbor_slots().count(slot_x), 1u);
  EXPECT_EQ(b.neighbor_slots().at(slot_x), x);
  EXPECT_EQ((*snap)->services()[0]->backends[2].neighbor_slot, slot_x);
  EXPECT_TRUE((*snap)->IsBackend(x));
  EXPECT_TRUE((*snap)->IsBackend(*IpAddr::Parse(next.services[0].backends[1].address)));
  EXPECT_FALSE((*snap)->IsBackend(*IpAddr::Parse(c.services[0].backends[1].address)));
}


// The builder's delta path (a command's change: one service replaced, added or removed) gives
// the snapshot a full build gives: same services at the same positions, same slots, next hops
// and tables, and an index that finds every service (the updated IPv4 array, the VIP entries
// and the IPv6 map) and no removed one. Random edits on services that share VIPs, IPv4 and
// IPv6, and failed backends.
void ExpectSameSnapshot(const Snapshot& full, const Snapshot& delta,
                        const std::vector<ServiceKey>& every_key_used) {
  ASSERT_EQ(full.services().size(), delta.services().size());
  absl::flat_hash_set<const Service*> live;
  for (const auto& s : delta.services()) live.insert(s.get());
  for (size_t i = 0; i < full.services().size(); ++i) {
    const Service& x = *full.services()[i];
    const Service& y = *delta.services()[i];
    ASSERT_EQ(x.key, y.key) << i;
    EXPECT_EQ(x.counter_slot, y.counter_slot) << i;
    ASSERT_EQ(x.backends.size(), y.backends.size()) << i;
    for (size_t k = 0; k < x.backends.size(); ++k) {
      EXPECT_EQ(x.backends[k].id, y.backends[k].id);
      EXPECT_EQ(x.backends[k].addr, y.backends[k].addr);
      EXPECT_EQ(x.backends[k].weight, y.backends[k].weight);
      EXPECT_EQ(x.backends[k].neighbor_slot, y.backends[k].neighbor_slot);
      EXPECT_EQ(x.backends[k].counter_slot, y.backends[k].counter_slot);
    }
    ASSERT_EQ(x.table.has_value(), y.table.has_value()) << i;
    if (x.table) {
      for (uint64_t h = 1; h < (1ULL << 20); h = h * 6364136223846793005ULL + 1442695040888963407ULL) {
        ASSERT_EQ(x.table->Lookup(h), y.table->Lookup(h)) << i;
        if ((h & 0xff) == 0) break;
      }
    }
    EXPECT_EQ(delta.Find(y.key.vip, y.key.port, y.key.proto), &y) << i;
    EXPECT_TRUE(delta.IsVip(y.key.vip));
    if (y.key.vip.is_v4()) {  // the VIP's own entry points at a service of this snapshot
      EXPECT_TRUE(live.contains(delta.Find(y.key.vip, 0, 0))) << i;
    }
  }
  for (const ServiceKey& k : every_key_used) {
    EXPECT_EQ(full.Find(k.vip, k.port, k.proto) == nullptr,
              delta.Find(k.vip, k.port, k.proto) == nullptr);
    EXPECT_EQ(full.IsVip(k.vip), delta.IsVip(k.vip));
  }
  // Counter slots only grow on the delta path (memory is kept until a full build).
  EXPECT_GE(delta.service_slots(), full.service_slots());
  EXPECT_GE(delta.backend_slots(), full.backend_slots());
}

TEST(ScaleTest, DeltaBuildsMatchFullBuilds) {
  control::Config c = ScaleConfig(0, 0);
  uint32_t next_addr = 1;
  auto backend = [&](uint32_t id, bool v6) {
    const uint32_t a = next_addr++;
    return control::BackendConfig{
        id, v6 ? absl::StrCat("2001:db8::", absl::Hex(a)) : absl::StrCat("10.2.", a / 256, ".", a % 256)};
  };
  auto service = [&](size_t vip, uint16_t port) {
    control::ServiceConfig s;
    const bool v6 = vip % 4 == 3;
    s.vip = v6 ? absl::StrCat("2001:db8:100::", vip) : absl::StrCat("10.100.0.", vip);
    s.port = port;
    s.table_size = 251;
    for (uint32_t id = 1; id <= 3; ++id) s.backends.push_back(backend(id, v6));
    return s;
  };
  for (size_t i = 0; i < 24; ++i) c.services.push_back(service(i % 8, static_cast<uint16_t>(80 + i)));
  control::SnapshotBuilder full(kPortMac), delta(kPortMac);
  ASSERT_TRUE(full.Build(c).ok());
  ASSERT_TRUE(delta.Build(c).ok());
  std::vector<ServiceKey> keys;
  std::set<control::BackendRef> unhealthy;
  std::mt19937 rng(7);
  for (int step = 0; step < 400; ++step) {
    control::SnapshotBuilder::Delta d;
    const size_t n = c.services.size();
    const unsigned op = rng() % 7;
    if (op == 0 && n < 60) {  // a service added, on an old or a new VIP
      control::ServiceConfig s = service(rng() % 12, static_cast<uint16_t>(1000 + step));
      c.services.push_back(std::move(s));
      d.changed.push_back(n);
    } else if (op == 1 && n > 1) {  // a service removed
      const size_t i = rng() % n;
      c.services.erase(c.services.begin() + static_cast<ptrdiff_t>(i));
      d.erased = i;
    } else if (n > 0) {  // one service's pool changes (or not at all)
      const size_t i = rng() % n;
      auto& bs = c.services[i].backends;
      const bool v6 = c.services[i].vip.find(':') != std::string::npos;
      if (op == 2 && bs.size() > 1) {
        bs.erase(bs.begin() + static_cast<ptrdiff_t>(rng() % bs.size()));
      } else if (op == 3 && bs.size() < 8) {
        uint32_t id = 1;
        while (std::any_of(bs.begin(), bs.end(), [&](const auto& b) { return b.id == id; })) ++id;
        bs.push_back(backend(id, v6));
      } else if (op == 4) {
        bs[rng() % bs.size()].weight = rng() % 3;
      } else if (op == 5) {  // a backend fails its checks, or passes again
        const control::BackendRef ref{c.services[i].Name(), bs[rng() % bs.size()].id};
        if (!unhealthy.erase(ref)) unhealthy.insert(ref);
      }
      d.changed.push_back(i);
    }
    for (const auto& s : c.services) keys.push_back(ToServiceKey(s));
    auto a = full.Build(c, unhealthy);
    auto b = delta.Build(c, unhealthy, d);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    ASSERT_EQ(full.services_rebuilt(), delta.services_rebuilt()) << step;
    ASSERT_EQ(full.neighbor_slots(), delta.neighbor_slots()) << step;
    ExpectSameSnapshot(**a, **b, keys);
    if (HasFatalFailure() || HasNonfatalFailure()) FAIL() << "step " << step << " op " << op;
  }
}

}  // namespace
}  // namespace ecmplb::dataplane::pipeline_testing
