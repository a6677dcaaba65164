// Tests of the live control plane: every command, each refusal with its canonical code and
// no effect at all (config, published snapshot, saved file), stable ids and the removed-id
// reservation, rebuilding only touched services, saving, the read-only views, and, through
// the real pipeline, that established flows keep their backend across backend add, weight
// change and drain while a deleted backend's flows move.
#include "control/control_plane.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/views_json.h"
#include "dataplane/pipeline.h"
#include "tests/dataplane/packet_builder.h"
#include "tests/support/backends.h"
#include "tests/support/temp_dir.h"

namespace ecmplb::control {
namespace {

using dataplane::testing::Ip;
using dataplane::testing::Mac;
using dataplane::testing::PacketBuilder;

const dataplane::MacAddr kPortMac = Mac("02:00:00:00:00:01");
const dataplane::MacAddr kRouterMac = Mac("02:00:00:00:00:fe");

constexpr char kBase[] = R"({
  "host": {"address": "10.0.0.11", "prefix_length": 24},
  "conntrack": {"capacity": 4096, "tcp_established_s": 600, "udp_s": 300},
  "services": [
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp",
     "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"},
                  {"id": 3, "address": "10.0.0.23"}]},
    {"vip": "10.100.0.1", "port": 53, "protocol": "udp", "forward": "gre",
     "backends": [{"id": 1, "address": "10.0.0.21"}]}
  ]})";

// A control plane publishing into `current`, with a fake clock and a temp save file, plus
// one worker (pipeline + connection table + counters) for the flow tests and views.
class Fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = test_support::TempDir::Create("ecmplb_cp_");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_.emplace(std::move(*dir));
    save_path_ = dir_->File("config.json");
    auto config = ParseConfig(kBase);
    ASSERT_TRUE(config.ok()) << config.status();
    ControlPlane::Options o;
    o.save_path = save_path_;
    o.clock = [this] { return now_; };
    o.worker_clock = [] { return uint64_t{100}; };
    auto cp = ControlPlane::Create(
        *config, kPortMac,
        [this](std::unique_ptr<const dataplane::Snapshot> s) {
          current_ = std::move(s);
          ++published_;
        },
        o);
    ASSERT_TRUE(cp.ok()) << cp.status();
    cp_ = std::move(*cp);
    conntrack::Options co;
    co.capacity = 4096;
    table_ = *conntrack::Table::Create(co);
    pipeline_ = std::make_unique<dataplane::Pipeline>(table_.get(), &counters_, &neighbors_);
    cp_->SetWorkers({WorkerView{0, &counters_, table_.get(), "worker0"}});
  }

  absl::StatusOr<ApplyResult> Do(CommandKind kind, const std::string& service,
                                 const std::string& backend = "",
                                 std::optional<uint32_t> weight = std::nullopt) {
    Command c;
    c.kind = kind;
    c.service = service;
    c.backend = backend;
    c.weight = weight;
    return cp_->Apply(c);
  }

  // Sends one TCP packet of client port `sport` to 10.100.0.1:80; returns the backend's last
  // address byte (DR: from the destination MAC), or -1 if not forwarded.
  int Send(uint16_t sport, uint8_t flags) {
    for (const auto& [slot, addr] : cp_->builder().neighbor_slots()) {
      neighbors_.Set(slot, test_support::BackendMac(addr).bytes.data());
    }
    auto in = PacketBuilder()
                  .Eth(kRouterMac, kPortMac)
                  .Ipv4(Ip("192.0.2.7"), Ip("10.100.0.1"))
                  .Tcp(sport, 80, flags)
                  .Build();
    std::vector<uint8_t> buf(128 + in.size());
    std::copy(in.begin(), in.end(), buf.begin() + 128);
    dataplane::Frame f{buf.data() + 128, static_cast<uint32_t>(in.size()), 128};
    dataplane::Verdict v;
    pipeline_->Process(*current_, std::span<dataplane::Frame>(&f, 1), 100,
                       std::span<dataplane::Verdict>(&v, 1));
    if (v != dataplane::Verdict::kTx) return -1;
    return f.data[5];
  }

  // Everything a refused command must leave alone.
  struct State {
    Config config;
    uint64_t generation;
    int published;
    std::string file;
  };
  State Capture() {
    return State{cp_->config(), current_->generation(), published_,
                 test_support::ReadFile(save_path_)};
  }
  void ExpectUnchanged(const State& s) {
    EXPECT_EQ(cp_->config(), s.config);
    EXPECT_EQ(current_->generation(), s.generation);
    EXPECT_EQ(published_, s.published);
    EXPECT_EQ(test_support::ReadFile(save_path_), s.file);
  }

  std::optional<test_support::TempDir> dir_;  // removed with the fixture
  std::string save_path_;
  uint64_t now_ = 1000;
  std::unique_ptr<const dataplane::Snapshot> current_;
  int published_ = 0;
  std::unique_ptr<ControlPlane> cp_;
  dataplane::WorkerCounters counters_;
  dataplane::NeighborTable neighbors_;
  std::unique_ptr<conntrack::Table> table_;
  std::unique_ptr<dataplane::Pipeline> pipeline_;
};

TEST_F(Fixture, CreatePublishesTheInitialSnapshot) {
  ASSERT_NE(current_, nullptr);
  EXPECT_EQ(published_, 1);
  EXPECT_EQ(cp_->latest(), current_.get());
  EXPECT_EQ(current_->services().size(), 2u);
}

// A backend failing its checks takes it out of its service's table only: that service is
// rebuilt, the other one is the same object; passing again brings it back. Sending to the
// failed backend stops; a name that is no service changes nothing.
TEST_F(Fixture, UnhealthyRebuildsOnlyTheServicesItTouches) {
  const dataplane::Service* udp = current_->services()[1].get();
  ASSERT_TRUE(cp_->SetUnhealthy({{"10.100.0.1:80/tcp", 2}}).ok());
  EXPECT_EQ(published_, 2);
  EXPECT_EQ(cp_->builder().services_rebuilt(), 1u);
  EXPECT_EQ(current_->services()[1].get(), udp);
  const dataplane::Service& tcp = *current_->services()[0];
  EXPECT_EQ(tcp.backends[1].weight, 0u);
  for (uint16_t port = 1000; port < 1200; ++port) EXPECT_NE(Send(port, inet::tcp_flag::kSyn), 22);
  ASSERT_TRUE(cp_->SetUnhealthy({{"10.100.0.1:80/tcp", 2}, {"not a service", 1}}).ok());
  EXPECT_EQ(cp_->builder().services_rebuilt(), 0u);
  ASSERT_TRUE(cp_->SetUnhealthy({}).ok());
  EXPECT_EQ(cp_->builder().services_rebuilt(), 1u);
  EXPECT_EQ(current_->services()[0]->backends[1].weight, 1u);
  EXPECT_EQ(current_->services()[1].get(), udp);
}

TEST_F(Fixture, ServiceAddAndDel) {
  Command c;
  c.kind = CommandKind::kServiceAdd;
  c.service = "[2001:DB8::1]:443/tcp";
  c.hash = HashMode::kSourceIp;
  c.table_size = 251;
  auto r = cp_->Apply(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->service, "[2001:db8::1]:443/tcp");
  EXPECT_EQ(r->services_rebuilt, 1u);  // only the new one
  const ServiceConfig* s = cp_->config().FindService("2001:db8::1", 443, Protocol::kTcp);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->hash, HashMode::kSourceIp);
  EXPECT_EQ(s->table_size, 251u);
  EXPECT_EQ(current_->services().size(), 3u);
  EXPECT_EQ(cp_->latest(), current_.get());

  ASSERT_TRUE(Do(CommandKind::kServiceDel, "[2001:db8::1]:443/tcp").ok());
  EXPECT_EQ(cp_->config().FindService("2001:db8::1", 443, Protocol::kTcp), nullptr);
  EXPECT_EQ(current_->services().size(), 2u);
}

// A new service's table size is chosen once from the backends it is expected to reach (100 by
// default) and saved with it; table_size and expected_backends together are refused.
TEST_F(Fixture, ServiceAddChoosesTheTableSizeOnce) {
  Command c;
  c.kind = CommandKind::kServiceAdd;
  c.service = "10.100.0.7:80/tcp";
  ASSERT_TRUE(cp_->Apply(c).ok());
  EXPECT_EQ(cp_->config().FindService("10.100.0.7", 80, Protocol::kTcp)->table_size, 10007u);
  c.service = "10.100.0.7:81/tcp";
  c.expected_backends = 3;
  ASSERT_TRUE(cp_->Apply(c).ok());
  EXPECT_EQ(cp_->config().FindService("10.100.0.7", 81, Protocol::kTcp)->table_size, 307u);
  // Backends beyond the expectation keep the size (it never follows the count).
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(Do(CommandKind::kBackendAdd, "10.100.0.7:81/tcp", "10.0.0." + std::to_string(30 + i)).ok());
  }
  EXPECT_EQ(cp_->config().FindService("10.100.0.7", 81, Protocol::kTcp)->table_size, 307u);
  auto saved = LoadConfigFile(save_path_);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(saved->FindService("10.100.0.7", 81, Protocol::kTcp)->table_size, 307u);
  c.service = "10.100.0.7:82/tcp";
  c.table_size = 251;
  auto both = cp_->Apply(c);
  EXPECT_EQ(both.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cp_->config().FindService("10.100.0.7", 82, Protocol::kTcp), nullptr);
}

TEST_F(Fixture, RefusedCommandsChangeNothingAndCarryTheirCode) {
  State before = Capture();
  struct Case {
    CommandKind kind;
    std::string service, backend;
    std::optional<uint32_t> weight;
    absl::StatusCode code;
  };
  const std::vector<Case> cases = {
      {CommandKind::kServiceAdd, "10.100.0.1:80/tcp", "", {}, absl::StatusCode::kAlreadyExists},
      {CommandKind::kServiceAdd, "10.100.0.1:80", "", {}, absl::StatusCode::kInvalidArgument},
      {CommandKind::kServiceAdd, "10.100.0.1:0/tcp", "", {}, absl::StatusCode::kInvalidArgument},
      {CommandKind::kServiceAdd, "10.100.0.300:80/tcp", "", {}, absl::StatusCode::kInvalidArgument},
      {CommandKind::kServiceAdd, "10.100.0.1:80/sctp", "", {}, absl::StatusCode::kInvalidArgument},
      {CommandKind::kServiceAdd, "2001:db8::1:80/tcp", "", {}, absl::StatusCode::kInvalidArgument},
      {CommandKind::kServiceDel, "10.9.9.9:80/tcp", "", {}, absl::StatusCode::kNotFound},
      {CommandKind::kBackendAdd, "10.9.9.9:80/tcp", "10.0.0.30", {}, absl::StatusCode::kNotFound},
      {CommandKind::kBackendAdd,
       "10.100.0.1:80/tcp",
       "10.0.0.22",
       {},
       absl::StatusCode::kAlreadyExists},
      {CommandKind::kBackendAdd, "10.100.0.1:80/tcp", "10.0.0.30", 65536,
       absl::StatusCode::kInvalidArgument},
      {CommandKind::kBackendAdd,
       "10.100.0.1:80/tcp",
       "10.0.0.30:81",
       {},
       absl::StatusCode::kInvalidArgument},
      {CommandKind::kBackendAdd,
       "10.100.0.1:80/tcp",
       "not-an-ip",
       {},
       absl::StatusCode::kInvalidArgument},
      {CommandKind::kBackendAdd,
       "10.100.0.1:80/tcp",
       "2001:db8::30",
       {},
       absl::StatusCode::kInvalidArgument},
      // DR needs the backend on this host's subnet: refused by the snapshot builder.
      {CommandKind::kBackendAdd,
       "10.100.0.1:80/tcp",
       "192.168.7.1",
       {},
       absl::StatusCode::kFailedPrecondition},
      {CommandKind::kBackendSet,
       "10.100.0.1:80/tcp",
       "10.0.0.22",
       {},
       absl::StatusCode::kInvalidArgument},
      {CommandKind::kBackendSet, "10.100.0.1:80/tcp", "10.0.0.99", 3, absl::StatusCode::kNotFound},
      {CommandKind::kBackendSet, "10.100.0.1:80/tcp", "10.0.0.22:81", 3,
       absl::StatusCode::kNotFound},
      {CommandKind::kBackendSet, "10.100.0.1:81/tcp", "10.0.0.22", 3, absl::StatusCode::kNotFound},
      {CommandKind::kBackendDel, "10.100.0.1:80/tcp", "10.0.0.99", {}, absl::StatusCode::kNotFound},
      {CommandKind::kBackendDel, "10.100.0.1:80/udp", "10.0.0.22", {}, absl::StatusCode::kNotFound},
  };
  for (const auto& c : cases) {
    auto r = Do(c.kind, c.service, c.backend, c.weight);
    EXPECT_EQ(r.status().code(), c.code) << c.service << " " << c.backend << ": " << r.status();
    EXPECT_FALSE(r.status().message().empty());
    ExpectUnchanged(before);
  }
  // The message names what is wrong.
  EXPECT_EQ(Do(CommandKind::kBackendAdd, "10.1.1.1:80/tcp", "10.0.0.30").status().message(),
            "service 10.1.1.1:80/tcp not found");

  Command bad_table;
  bad_table.kind = CommandKind::kServiceAdd;
  bad_table.service = "10.100.0.9:80/tcp";
  bad_table.table_size = 1000;  // not prime
  EXPECT_EQ(cp_->Apply(bad_table).status().code(), absl::StatusCode::kInvalidArgument);
  Command dup_id;
  dup_id.kind = CommandKind::kBackendAdd;
  dup_id.service = "10.100.0.1:80/tcp";
  dup_id.backend = "10.0.0.30";
  dup_id.id = 2;
  EXPECT_EQ(cp_->Apply(dup_id).status().code(), absl::StatusCode::kAlreadyExists);
  dup_id.id = 0;
  EXPECT_EQ(cp_->Apply(dup_id).status().code(), absl::StatusCode::kInvalidArgument);
  ExpectUnchanged(before);
}

TEST_F(Fixture, BackendCommandsAndStableIds) {
  auto r = Do(CommandKind::kBackendAdd, "10.100.0.1:80/tcp", "10.0.0.30", 5);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->backend_id, 4u);        // lowest unused
  EXPECT_EQ(r->services_rebuilt, 1u);  // the UDP service is reused as is
  ASSERT_TRUE(Do(CommandKind::kBackendSet, "10.100.0.1:80/tcp", "10.0.0.30:80", 0).ok());
  EXPECT_EQ(cp_->config().services[0].backends[3].weight, 0u);

  // Deleting id 2 reserves it: the next backend gets 5, not 2, until the longest conntrack
  // timeout (600 s) has passed.
  ASSERT_TRUE(Do(CommandKind::kBackendDel, "10.100.0.1:80/tcp", "10.0.0.22").ok());
  EXPECT_EQ(cp_->ReservedIds("10.100.0.1:80/tcp"), (std::map<uint32_t, uint64_t>{{2, 600}}));
  r = Do(CommandKind::kBackendAdd, "10.100.0.1:80/tcp", "10.0.0.31");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->backend_id, 5u);
  Command explicit_id;
  explicit_id.kind = CommandKind::kBackendAdd;
  explicit_id.service = "10.100.0.1:80/tcp";
  explicit_id.backend = "10.0.0.32";
  explicit_id.id = 2;
  EXPECT_EQ(cp_->Apply(explicit_id).status().code(), absl::StatusCode::kFailedPrecondition);

  now_ += 599;
  r = Do(CommandKind::kBackendAdd, "10.100.0.1:80/tcp", "10.0.0.33");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->backend_id, 6u);
  now_ += 1;  // 600 s after the removal: free again
  EXPECT_TRUE(cp_->ReservedIds("10.100.0.1:80/tcp").empty());
  r = cp_->Apply(explicit_id);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->backend_id, 2u);

  // Deleting a service reserves all its ids.
  ASSERT_TRUE(Do(CommandKind::kServiceDel, "10.100.0.1:53/udp").ok());
  ASSERT_TRUE(Do(CommandKind::kServiceAdd, "10.100.0.1:53/udp").ok());
  r = Do(CommandKind::kBackendAdd, "10.100.0.1:53/udp", "10.0.0.21");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->backend_id, 2u);
}

TEST_F(Fixture, ChangeRebuildsOnlyTheTouchedService) {
  auto udp_before = current_->services()[1];
  auto tcp_before = current_->services()[0];
  auto r = Do(CommandKind::kBackendSet, "10.100.0.1:80/tcp", "10.0.0.21", 7);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->services_rebuilt, 1u);
  EXPECT_EQ(current_->services()[1], udp_before);  // same shared Service, same Maglev table
  EXPECT_NE(current_->services()[0], tcp_before);
  EXPECT_EQ(current_->generation(), r->generation);
}

TEST_F(Fixture, EveryChangeIsSavedAndReloadsEqual) {
  ASSERT_TRUE(Do(CommandKind::kBackendAdd, "10.100.0.1:80/tcp", "10.0.0.30", 2).ok());
  auto loaded = LoadConfigFile(save_path_);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, cp_->config());
  EXPECT_EQ(test_support::ReadFile(save_path_), cp_->ConfigDump());
}

TEST(ControlPlaneSaveTest, SaveFailureRefusesTheChange) {
  std::unique_ptr<const dataplane::Snapshot> current;
  ControlPlane::Options o;
  o.save_path = "/nonexistent-ecmplb-dir/config.json";
  auto cp = ControlPlane::Create(
      *ParseConfig(kBase), kPortMac,
      [&](std::unique_ptr<const dataplane::Snapshot> s) { current = std::move(s); }, o);
  ASSERT_TRUE(cp.ok());
  Config before = (*cp)->config();
  Command c;
  c.kind = CommandKind::kBackendDel;
  c.service = "10.100.0.1:80/tcp";
  c.backend = "10.0.0.21";
  auto r = (*cp)->Apply(c);
  EXPECT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("cannot save"), absl::string_view::npos) << r.status();
  EXPECT_EQ((*cp)->config(), before);
  // What the workers see still has backend 1.
  const auto* svc = current->Find(Ip("10.100.0.1"), 80, 6);
  ASSERT_NE(svc, nullptr);
  EXPECT_EQ(svc->backends.size(), 3u);
  EXPECT_GE(svc->PositionOf(1), 0);
  EXPECT_EQ((*cp)->latest(), current.get());
}

// Deferred saving (the daemon's): changes apply at once, the file is written by SaveIfDirty
// (once for a burst); a failing save keeps the change, is shown, and is retried.
TEST(ControlPlaneSaveTest, DeferredSaveWritesOnceAndReportsFailures) {
  auto dir = test_support::TempDir::Create("ecmplb_cp_defer_");
  ASSERT_TRUE(dir.ok()) << dir.status();
  const std::string sub = dir->File("sub");
  const std::string path = sub + "/config.json";
  std::unique_ptr<const dataplane::Snapshot> current;
  ControlPlane::Options o;
  o.save_path = path;  // its directory does not exist yet: saves fail
  o.defer_save = true;
  auto cp = ControlPlane::Create(
      *ParseConfig(kBase), kPortMac,
      [&](std::unique_ptr<const dataplane::Snapshot> s) { current = std::move(s); }, o);
  ASSERT_TRUE(cp.ok());
  EXPECT_FALSE((*cp)->save_pending());
  EXPECT_TRUE((*cp)->SaveIfDirty().ok());  // nothing to write
  Command c;
  c.kind = CommandKind::kBackendSet;
  c.service = "10.100.0.1:80/tcp";
  c.backend = "10.0.0.21";
  for (uint32_t w : {2u, 3u, 4u}) {
    c.weight = w;
    ASSERT_TRUE((*cp)->Apply(c).ok());  // applied although no save can succeed
  }
  EXPECT_EQ((*cp)->config().services[0].backends[0].weight, 4u);
  EXPECT_TRUE((*cp)->save_pending());
  absl::Status st = (*cp)->SaveIfDirty();
  EXPECT_FALSE(st.ok());
  ShowView v = (*cp)->Show();
  EXPECT_TRUE(v.save_pending);
  EXPECT_NE(v.save_error.find("config.json"), std::string::npos) << v.save_error;
  EXPECT_TRUE(ToJson(v).contains("config_save"));
  // The directory appears: the next attempt writes the latest configuration, once.
  ASSERT_EQ(mkdir(sub.c_str(), 0700), 0);
  EXPECT_TRUE((*cp)->SaveIfDirty().ok());
  EXPECT_FALSE((*cp)->save_pending());
  EXPECT_TRUE((*cp)->Show().save_error.empty());
  auto loaded = LoadConfigFile(path);
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, (*cp)->config());
  EXPECT_FALSE(ToJson((*cp)->Show()).contains("config_save"));
}

// Every change reports how long it took; those past slow_apply_ms are logged.
TEST(ControlPlaneSaveTest, ChangesReportTheirTimeAndSlowOnesAreLogged) {
  std::unique_ptr<const dataplane::Snapshot> current;
  std::vector<std::string> log;
  ControlPlane::Options o;
  o.log = [&](const std::string& m) { log.push_back(m); };
  o.slow_apply_ms = 1000000;
  auto cp = ControlPlane::Create(
      *ParseConfig(kBase), kPortMac,
      [&](std::unique_ptr<const dataplane::Snapshot> s) { current = std::move(s); }, o);
  ASSERT_TRUE(cp.ok());
  Command c;
  c.kind = CommandKind::kBackendSet;
  c.service = "10.100.0.1:80/tcp";
  c.backend = "10.0.0.21";
  c.weight = 5;
  auto r = (*cp)->Apply(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_GT(r->apply_us, 0u);
  EXPECT_TRUE(ToJson(*r).contains("apply_ms"));
  EXPECT_TRUE(log.empty());  // fast: not logged
  Config every = (*cp)->config();
  for (auto& s : every.services) s.backends[0].weight = 9;
  ControlPlane::Options slow = o;
  auto cp2 = ControlPlane::Create(
      *ParseConfig(kBase), kPortMac,
      [&](std::unique_ptr<const dataplane::Snapshot> s) { current = std::move(s); },
      [&] {
        slow.slow_apply_ms = 0;  // every change counts as slow
        return slow;
      }());
  ASSERT_TRUE(cp2.ok());
  auto all = (*cp2)->ApplyConfig(every);
  ASSERT_TRUE(all.ok()) << all.status();
  ASSERT_EQ(log.size(), 1u);
  EXPECT_NE(log[0].find("2 of 2 services rebuilt"), std::string::npos) << log[0];
}

TEST_F(Fixture, EstablishedFlowsKeepTheirBackendDeletedBackendsFlowsMove) {
  constexpr int kFlows = 300;
  std::map<uint16_t, int> backend_of;
  for (int i = 0; i < kFlows; ++i) {
    uint16_t sport = static_cast<uint16_t>(20000 + i);
    int b = Send(sport, 0x02);  // SYN
    ASSERT_GT(b, 0);
    ASSERT_EQ(Send(sport, 0x10), b);  // ACK: established
    backend_of[sport] = b;
  }
  auto expect_kept = [&](const char* after) {
    for (const auto& [sport, b] : backend_of) ASSERT_EQ(Send(sport, 0x10), b) << "after " << after;
  };
  ASSERT_TRUE(Do(CommandKind::kBackendAdd, "10.100.0.1:80/tcp", "10.0.0.24", 3).ok());
  expect_kept("backend add");
  ASSERT_TRUE(Do(CommandKind::kBackendSet, "10.100.0.1:80/tcp", "10.0.0.21", 5).ok());
  expect_kept("weight change");
  ASSERT_TRUE(Do(CommandKind::kBackendSet, "10.100.0.1:80/tcp", "10.0.0.22", 0).ok());
  expect_kept("drain");
  // New flows avoid the drained backend.
  for (int i = 0; i < 200; ++i) EXPECT_NE(Send(static_cast<uint16_t>(30000 + i), 0x02), 22);

  // lookup agrees with the pipeline for a tracked flow and says where it is tracked.
  auto lk = cp_->Lookup("10.100.0.1:80/tcp", "192.0.2.7:20000");
  ASSERT_TRUE(lk.ok()) << lk.status();
  EXPECT_TRUE(lk->tracked());
  ASSERT_FALSE(lk->tracked_by.empty());
  EXPECT_EQ(lk->tracked_by[0].worker, 0u);
  ASSERT_TRUE(lk->backend.has_value());
  EXPECT_EQ(lk->backend->address, absl::StrCat("10.0.0.", backend_of[20000]));

  // Deleting 10.0.0.23 moves exactly its flows; the rest stay.
  ASSERT_TRUE(Do(CommandKind::kBackendDel, "10.100.0.1:80/tcp", "10.0.0.23").ok());
  int moved = 0;
  for (const auto& [sport, b] : backend_of) {
    int now = Send(sport, 0x10);
    if (b == 23) {
      EXPECT_NE(now, 23);
      EXPECT_GT(now, 0);
      ++moved;
    } else {
      EXPECT_EQ(now, b);
    }
  }
  EXPECT_GT(moved, 0);
}

TEST_F(Fixture, ViewsReportSlotsCountersFlowsAndLookups) {
  ASSERT_TRUE(Do(CommandKind::kBackendSet, "10.100.0.1:80/tcp", "10.0.0.23", 0).ok());
  for (int i = 0; i < 50; ++i) ASSERT_GT(Send(static_cast<uint16_t>(40000 + i), 0x02), 0);

  const ShowView show = cp_->Show();
  ASSERT_EQ(show.services.size(), 2u);
  const ShowView::Service& tcp = show.services[0];
  EXPECT_EQ(tcp.service, "10.100.0.1:80/tcp");
  EXPECT_TRUE(tcp.serving);
  ASSERT_EQ(tcp.backends.size(), 3u);
  uint64_t slots = 0, flows = 0;
  for (const auto& b : tcp.backends) {
    slots += b.maglev_slots;
    flows += b.flows;
  }
  EXPECT_EQ(slots, 65537u);
  EXPECT_EQ(flows, 50u);
  EXPECT_EQ(tcp.backends[2].state, BackendState::kDraining);
  EXPECT_EQ(tcp.backends[2].maglev_slots, 0u);
  EXPECT_EQ(uint64_t{tcp.backends[0].maglev_slots} + tcp.backends[1].maglev_slots, 65537u);

  const StatsView stats = cp_->Stats();
  ASSERT_EQ(stats.workers.size(), 1u);
  EXPECT_EQ(stats.workers[0].counters[static_cast<size_t>(dataplane::Counter::conntrack_insert)],
            50u);
  EXPECT_EQ(stats.total[static_cast<size_t>(dataplane::Counter::forward_dr)], 50u);
  ASSERT_FALSE(stats.services.empty());
  EXPECT_EQ(stats.services[0].packets, 50u);
  uint64_t backend_packets = 0;
  for (const auto& b : stats.services[0].backends) backend_packets += b.packets;
  EXPECT_EQ(backend_packets, 50u);
  // The JSON reply lists drops by reason, parse errors included.
  const nlohmann::json stats_json = ToJson(stats);
  EXPECT_TRUE(stats_json["drops"].contains("no_backend"));
  EXPECT_TRUE(stats_json["drops"].contains("parse_truncated_ip"));

  const ConnsView conns = cp_->Conns(10);
  EXPECT_EQ(conns.total, 50u);
  ASSERT_EQ(conns.flows.size(), 10u);
  EXPECT_EQ(conns.flows[0].service, "10.100.0.1:80/tcp");
  EXPECT_EQ(conns.flows[0].client.rfind("192.0.2.7:4", 0), 0u);

  auto untracked = cp_->Lookup("10.100.0.1:80/tcp", "192.0.2.99:1234");
  ASSERT_TRUE(untracked.ok());
  EXPECT_FALSE(untracked->tracked());
  ASSERT_TRUE(untracked->backend.has_value());
  EXPECT_EQ(untracked->backend, untracked->maglev_backend);
  EXPECT_NE(untracked->backend->address, "10.0.0.23");
  EXPECT_EQ(cp_->Lookup("10.1.1.1:80/tcp", "192.0.2.7:1").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(cp_->Lookup("10.100.0.1:80/tcp", "192.0.2.7").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(cp_->Lookup("10.100.0.1:80/tcp", "[2001:db8::7]:5").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ecmplb::control
