// Tests of ControlPlane::ApplyConfig, the one path every change takes (commands today;
// reload, fleet revisions and bulk changes later): a whole candidate is validated, diffed
// (removed backends' ids reserved, a reserved id or an id changing address refused),
// rebuilt only where it changed, saved, published and reported to on_applied; a refused
// candidate changes nothing (configuration, snapshot, saved file) and is not reported.
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "control/config.h"
#include "control/control_plane.h"
#include "tests/support/temp_dir.h"

namespace ecmplb::control {
namespace {

constexpr char kBase[] = R"({
  "host": {"address": "10.0.0.11", "prefix_length": 24},
  "conntrack": {"capacity": 4096, "tcp_established_s": 600, "udp_s": 300},
  "services": [
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp",
     "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"}]},
    {"vip": "10.100.0.2", "port": 53, "protocol": "udp",
     "backends": [{"id": 1, "address": "10.0.0.21"}]}
  ]})";

class ApplyConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = test_support::TempDir::Create("ecmplb_apply_");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<test_support::TempDir>(*std::move(dir));
    auto config = ParseConfig(kBase);
    ASSERT_TRUE(config.ok()) << config.status();
    ControlPlane::Options o;
    o.save_path = dir_->File("config.json");
    o.clock = [this] { return now_s_; };
    o.on_applied = [this](const Config& c, const AppliedChange&) {
      ++applied_;
      applied_services_ = c.services.size();
    };
    auto cp = ControlPlane::Create(
        *config, dataplane::MacAddr{},
        [this](std::unique_ptr<const dataplane::Snapshot> s) { snap_ = std::move(s); }, o);
    ASSERT_TRUE(cp.ok()) << cp.status();
    plane_ = std::move(*cp);
  }

  // Expects `candidate` refused with `code` and no effect at all.
  void ExpectRefused(Config candidate, absl::StatusCode code, const std::string& mentions) {
    const std::string before = SerializeConfig(plane_->config());
    const std::string saved = test_support::ReadFile(dir_->File("config.json"));
    const uint64_t generation = snap_->generation();
    const int applied = applied_;
    auto r = plane_->ApplyConfig(std::move(candidate));
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status();
    EXPECT_NE(r.status().message().find(mentions), std::string::npos) << r.status();
    EXPECT_EQ(SerializeConfig(plane_->config()), before);
    EXPECT_EQ(test_support::ReadFile(dir_->File("config.json")), saved);
    EXPECT_EQ(snap_->generation(), generation);
    EXPECT_EQ(applied_, applied);
  }

  std::unique_ptr<test_support::TempDir> dir_;
  uint64_t now_s_ = 5000;
  int applied_ = 0;
  size_t applied_services_ = 0;
  std::unique_ptr<const dataplane::Snapshot> snap_;
  std::unique_ptr<ControlPlane> plane_;
};

TEST_F(ApplyConfigTest, WholeCandidateAppliedSavedPublishedAndReported) {
  Config c = plane_->config();
  c.services[0].backends[1].weight = 3;
  c.services.pop_back();
  auto r = plane_->ApplyConfig(c);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->generation, snap_->generation());
  EXPECT_EQ(snap_->services().size(), 1u);
  EXPECT_EQ(applied_, 1);
  EXPECT_EQ(applied_services_, 1u);
  EXPECT_EQ(SerializeConfig(plane_->config()), SerializeConfig(c));
  auto saved = LoadConfigFile(dir_->File("config.json"));
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(SerializeConfig(*saved), SerializeConfig(c));
  // Only the changed service's table was rebuilt (the removed one needs none).
  EXPECT_EQ(r->services_rebuilt, 1u);
  // The removed service's backend id is reserved.
  EXPECT_TRUE(plane_->ReservedIds("10.100.0.2:53/udp").contains(1));
}

TEST_F(ApplyConfigTest, InvalidCandidateRefusedWhole) {
  Config c = plane_->config();
  c.services[0].backends[0].weight = 1;
  c.services[1].backends[0].address = "192.0.2.1";  // DR backend off this host's subnet
  ExpectRefused(c, absl::StatusCode::kFailedPrecondition, "192.0.2.1");
}

TEST_F(ApplyConfigTest, RemovedIdIsReservedUntilTheLongestTimeout) {
  Config c = plane_->config();
  c.services[0].backends.pop_back();  // id 2 leaves
  ASSERT_TRUE(plane_->ApplyConfig(c).ok());
  EXPECT_TRUE(plane_->ReservedIds("10.100.0.1:80/tcp").contains(2));
  Config back = c;
  BackendConfig b;
  b.id = 2;
  b.address = "10.0.0.29";
  back.services[0].backends.push_back(b);
  ExpectRefused(back, absl::StatusCode::kFailedPrecondition, "reserved");
  now_s_ += 600;  // tcp_established_s, the longest timeout
  auto r = plane_->ApplyConfig(back);
  EXPECT_TRUE(r.ok()) << r.status();
}

TEST_F(ApplyConfigTest, AnIdThatChangesAddressIsRefused) {
  Config c = plane_->config();
  c.services[0].backends[0].address = "10.0.0.29";
  ExpectRefused(c, absl::StatusCode::kFailedPrecondition, "would change address");
}

TEST_F(ApplyConfigTest, CommandsTakeTheSamePath) {
  Command del;
  del.kind = CommandKind::kBackendDel;
  del.service = "10.100.0.1:80/tcp";
  del.backend = "10.0.0.22";
  ASSERT_TRUE(plane_->Apply(del).ok());
  EXPECT_EQ(applied_, 1);
  EXPECT_TRUE(plane_->ReservedIds("10.100.0.1:80/tcp").contains(2));
  Command bad;
  bad.kind = CommandKind::kBackendAdd;
  bad.service = "10.100.0.1:80/tcp";
  bad.backend = "10.0.0.30";
  bad.id = 2;
  EXPECT_EQ(plane_->Apply(bad).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(applied_, 1);
}

}  // namespace
}  // namespace ecmplb::control
