// Snapshot publication under load: reader threads behave like workers (load the current
// snapshot once per "burst", look up services and their Maglev tables, touch the chosen
// backends, report a quiescent state) while the control thread applies thousands of changes
// through ControlPlane and publishes them with the real SnapshotPublisher (rte_rcu_qsbr),
// reclaiming as it goes. Under ThreadSanitizer / AddressSanitizer any snapshot freed while a
// reader still uses it is a reported race / use-after-free; the test itself checks that
// every change was seen consistently and that everything retired is reclaimed.
#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "control/config.h"
#include "control/control_plane.h"
#include "dataplane/dpdk/publisher.h"
#include "dataplane/flow_hash.h"

namespace ecmplb::control {
namespace {

constexpr char kConfig[] = R"({
  "host": {"address": "10.0.0.11", "prefix_length": 24},
  "services": [
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"}]},
    {"vip": "10.100.0.2", "port": 53, "protocol": "udp", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.21"}]}
  ]})";

TEST(PublicationTest, ReadersNeverSeeAFreedSnapshot) {
  constexpr uint32_t kReaders = 2;
  constexpr int kChanges = 3000;
  auto publisher = dataplane::SnapshotPublisher::Create(kReaders);
  ASSERT_TRUE(publisher.ok()) << publisher.status();
  dataplane::SnapshotPublisher* pub = publisher->get();
  auto cp = ControlPlane::Create(
      *ParseConfig(kConfig), dataplane::MacAddr{},
      [pub](std::unique_ptr<const dataplane::Snapshot> s) { pub->Publish(std::move(s)); },
      ControlPlane::Options{});
  ASSERT_TRUE(cp.ok()) << cp.status();

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bursts{0}, generations_seen{0};
  std::vector<std::thread> readers;
  for (uint32_t w = 0; w < kReaders; ++w) {
    readers.emplace_back([&, w] {
      pub->Online(w);
      uint64_t last_gen = 0, checksum = 0, changes = 0;
      dataplane::FlowTuple flow;
      flow.family = 4;
      flow.proto = 6;
      flow.dst = dataplane::IpAddr::V4(0x0a640001);
      flow.dport = 80;
      while (!stop.load(std::memory_order_relaxed)) {
        const dataplane::Snapshot* snap = pub->Current();  // one pointer load per burst
        if (snap->generation() < last_gen) ADD_FAILURE() << "generation went backwards";
        if (snap->generation() != last_gen) ++changes;
        last_gen = snap->generation();
        for (uint32_t i = 0; i < 32; ++i) {
          flow.src = dataplane::IpAddr::V4(0xc0000200 + i);
          flow.sport = static_cast<uint16_t>(1024 + i);
          const dataplane::Service* svc = snap->Find(flow.dst, 80, 6);
          if (svc == nullptr || !svc->table.has_value()) continue;
          uint32_t pos = svc->table->Lookup(dataplane::PlaceFlow(*svc, flow).maglev_hash);
          const dataplane::BackendEntry& be = svc->backends.at(pos);
          if (be.weight == 0) ADD_FAILURE() << "Maglev picked a drained backend";
          checksum += be.id + be.addr.bytes[3] + static_cast<uint64_t>(svc->PositionOf(be.id));
        }
        for (const auto& s : snap->services()) checksum += s->backends.size();
        pub->Quiescent(w);
        bursts.fetch_add(1, std::memory_order_relaxed);
      }
      pub->Offline(w);
      generations_seen.fetch_add(changes, std::memory_order_relaxed);
      EXPECT_NE(checksum, 0u);
    });
  }

  // Control thread: add, reweight, drain and remove backends; add and remove a service.
  size_t max_pending = 0;
  for (int i = 0; i < kChanges; ++i) {
    Command c;
    c.service = "10.100.0.1:80/tcp";
    c.backend = absl::StrCat("10.0.0.", 30 + (i / 4) % 8);  // add, reweight, drain, delete
    switch (i % 4) {
      case 0:
        c.kind = CommandKind::kBackendAdd;
        c.id = static_cast<uint32_t>(100 + i / 4);  // never reused: removed ids stay reserved
        break;
      case 1:
        c.kind = CommandKind::kBackendSet;
        c.weight = static_cast<uint32_t>(i % 5);
        break;
      case 2:
        c.kind = CommandKind::kBackendSet;
        c.weight = 0;
        break;
      default:
        c.kind = CommandKind::kBackendDel;
        break;
    }
    auto r = (*cp)->Apply(c);
    ASSERT_TRUE(r.ok()) << i << ": " << r.status();
    if (i % 100 == 50) {
      Command s;
      s.kind = (i / 100) % 2 == 0 ? CommandKind::kServiceDel : CommandKind::kServiceAdd;
      s.service = "10.100.0.2:53/udp";
      ASSERT_TRUE((*cp)->Apply(s).ok());
    }
    max_pending = std::max(max_pending, pub->Pending());
    pub->Reclaim();
  }
  // Let the readers run past the last change, then reclaim everything.
  uint64_t target = bursts.load() + 100;
  while (bursts.load() < target) std::this_thread::yield();
  stop.store(true);
  for (auto& t : readers) t.join();
  pub->Reclaim();
  EXPECT_EQ(pub->Pending(), 0u);
  EXPECT_GT(generations_seen.load(), 0u);
  EXPECT_GT(max_pending, 0u);  // snapshots did wait for readers at some point
}

}  // namespace
}  // namespace ecmplb::control
