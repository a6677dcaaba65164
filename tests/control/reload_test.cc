// Tests of ControlPlane::Reload (`ecmplbctl config reload`, SIGHUP) and of the guard that keeps
// an operator's edit of the config file from being overwritten by the next save: a reload
// applies the file's services through ApplyConfig's path without rewriting the file; a file
// that does not parse or validate, or that changes a field only a restart applies, is refused
// whole with the running configuration, the snapshot and the file left as they were.
#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/control_plane.h"
#include "tests/support/temp_dir.h"

namespace ecmplb::control {
namespace {

// The operator's own layout (not SerializeConfig's): a reload must not rewrite it.
constexpr char kFile[] = R"({"host": {"address": "10.0.0.11", "prefix_length": 24},
 "conntrack": {"capacity": 4096},
 "services": [
  {"vip": "10.100.0.1", "port": 80, "protocol": "tcp",
   "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"}]},
  {"vip": "10.100.0.2", "port": 53, "protocol": "udp",
   "backends": [{"id": 1, "address": "10.0.0.21"}]}
 ]}
)";

// kFile with service 1 changed (a weight), service 2 removed and a service added.
constexpr char kEdited[] = R"({"host": {"address": "10.0.0.11", "prefix_length": 24},
 "conntrack": {"capacity": 4096},
 "services": [
  {"vip": "10.100.0.1", "port": 80, "protocol": "tcp",
   "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22", "weight": 3}]},
  {"vip": "10.100.0.3", "port": 443, "protocol": "tcp",
   "backends": [{"id": 1, "address": "10.0.0.23"}]}
 ]}
)";

void Write(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto dir = test_support::TempDir::Create("ecmplb_reload_");
    ASSERT_TRUE(dir.ok()) << dir.status();
    dir_ = std::make_unique<test_support::TempDir>(*std::move(dir));
    path_ = dir_->File("ecmplb.json");
    Write(path_, kFile);
  }

  void Start(bool defer_save) {
    auto config = LoadConfigFile(path_);
    ASSERT_TRUE(config.ok()) << config.status();
    ControlPlane::Options o;
    o.save_path = path_;
    o.defer_save = defer_save;
    o.log = [this](const std::string& line) { log_.push_back(line); };
    auto cp = ControlPlane::Create(
        *config, dataplane::MacAddr{},
        [this](std::unique_ptr<const dataplane::Snapshot> s) { snap_ = std::move(s); }, o);
    ASSERT_TRUE(cp.ok()) << cp.status();
    plane_ = std::move(*cp);
  }

  // Expects Reload refused with `code`, naming `mentions`, and no effect at all.
  void ExpectRefused(absl::StatusCode code, const std::string& mentions) {
    const std::string before = SerializeConfig(plane_->config());
    const std::string file = test_support::ReadFile(path_);
    const uint64_t generation = snap_->generation();
    auto r = plane_->Reload();
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().code(), code) << r.status();
    EXPECT_NE(r.status().message().find("config reload refused, running configuration kept"),
              std::string::npos)
        << r.status();
    EXPECT_NE(r.status().message().find(mentions), std::string::npos) << r.status();
    EXPECT_EQ(SerializeConfig(plane_->config()), before);
    EXPECT_EQ(test_support::ReadFile(path_), file);
    EXPECT_EQ(snap_->generation(), generation);
    ASSERT_FALSE(log_.empty());
    EXPECT_EQ(log_.back(), r.status().message());  // logged once, as returned
  }

  Command AddBackend(const std::string& address) {
    Command c;
    c.kind = CommandKind::kBackendAdd;
    c.service = "10.100.0.1:80/tcp";
    c.backend = address;
    return c;
  }

  std::unique_ptr<test_support::TempDir> dir_;
  std::string path_;
  std::vector<std::string> log_;
  std::unique_ptr<const dataplane::Snapshot> snap_;
  std::unique_ptr<ControlPlane> plane_;
};

TEST_F(ReloadTest, AppliesTheFilesServicesWithoutRewritingIt) {
  Start(/*defer_save=*/false);
  Write(path_, kEdited);
  auto r = plane_->Reload();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->services_added, 1u);
  EXPECT_EQ(r->services_removed, 1u);
  EXPECT_EQ(r->services_changed, 1u);
  EXPECT_EQ(r->applied.services_rebuilt, 2u);  // the changed and the added service
  EXPECT_EQ(r->applied.generation, snap_->generation());
  auto expected = ParseConfig(kEdited);
  ASSERT_TRUE(expected.ok());
  EXPECT_EQ(plane_->config(), *expected);
  EXPECT_EQ(snap_->services().size(), 2u);
  EXPECT_EQ(test_support::ReadFile(path_), kEdited);  // the operator's layout kept
  EXPECT_FALSE(plane_->save_pending());
  ASSERT_FALSE(log_.empty());
  EXPECT_EQ(log_.back(),
            "config reload: 1 services added, 1 removed, 1 changed; 2 tables rebuilt, "
            "generation " + std::to_string(snap_->generation()));
  // The removed service's backend ids are reserved as for any removal.
  EXPECT_TRUE(plane_->ReservedIds("10.100.0.2:53/udp").contains(1));
}

TEST_F(ReloadTest, AnUnchangedFileChangesNothing) {
  Start(false);
  auto r = plane_->Reload();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->services_added + r->services_removed + r->services_changed, 0u);
  EXPECT_EQ(r->applied.services_rebuilt, 0u);
  EXPECT_EQ(test_support::ReadFile(path_), kFile);
}

TEST_F(ReloadTest, AFileThatDoesNotValidateIsRefusedWithItsField) {
  Start(false);
  std::string bad = kEdited;
  bad.replace(bad.find("\"weight\": 3"), 11, "\"weight\": \"3\"");
  Write(path_, bad);
  ExpectRefused(absl::StatusCode::kInvalidArgument, "services[0].backends[1].weight");
  Write(path_, std::string(kEdited).substr(0, 80));  // cut short: not JSON
  ExpectRefused(absl::StatusCode::kInvalidArgument, path_);
  std::string off_link = kEdited;
  off_link.replace(off_link.find("10.0.0.23"), 9, "192.0.2.9");  // a DR backend off the subnet
  Write(path_, off_link);
  ExpectRefused(absl::StatusCode::kFailedPrecondition, "192.0.2.9");
  ASSERT_EQ(::unlink(path_.c_str()), 0);
  ExpectRefused(absl::StatusCode::kNotFound, path_);
}

TEST_F(ReloadTest, FieldsOnlyARestartAppliesAreRefused) {
  Start(false);
  std::string moved = kEdited;  // services change too: nothing of the file is applied
  moved.replace(moved.find("10.0.0.11"), 9, "10.0.0.12");
  moved.replace(moved.find("4096"), 4, "8192");
  Write(path_, moved);
  ExpectRefused(absl::StatusCode::kFailedPrecondition,
                "changes conntrack.capacity, host.address, which only a restart applies");
}

TEST_F(ReloadTest, RestartOnlyChangesNameFieldsNotArraySlots) {
  auto a = ParseConfig(kFile);
  ASSERT_TRUE(a.ok());
  Config b = *a;
  b.host.exception.allow = {"tcp/22", "udp/123"};
  b.sync.port = 7401;
  b.services.clear();
  EXPECT_EQ(RestartOnlyChanges(*a, b),
            (std::vector<std::string>{"host.exception.allow", "sync.port"}));
  EXPECT_TRUE(RestartOnlyChanges(*a, *a).empty());
}

TEST_F(ReloadTest, ASaveNeverOverwritesAnEdit) {
  Start(false);
  // A command's save rewrites the file in SerializeConfig's form: that is ours from now on.
  ASSERT_TRUE(plane_->Apply(AddBackend("10.0.0.24")).ok());
  EXPECT_EQ(test_support::ReadFile(path_), plane_->ConfigDump());
  // The operator edits it; the next command is refused and the edit stays.
  Write(path_, kEdited);
  const std::string before = SerializeConfig(plane_->config());
  auto refused = plane_->Apply(AddBackend("10.0.0.25"));
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.status().message().find("was edited since ecmplb last read or wrote it"),
            std::string::npos)
      << refused.status();
  EXPECT_EQ(SerializeConfig(plane_->config()), before);
  EXPECT_EQ(test_support::ReadFile(path_), kEdited);
  // A reload applies the edit (the live backend 10.0.0.24 is not in it: gone); then commands
  // save again.
  ASSERT_TRUE(plane_->Reload().ok());
  EXPECT_EQ(plane_->config().services[0].backends.size(), 2u);
  ASSERT_TRUE(plane_->Apply(AddBackend("10.0.0.25")).ok());
  auto saved = LoadConfigFile(path_);
  ASSERT_TRUE(saved.ok()) << saved.status();
  EXPECT_EQ(*saved, plane_->config());
}

TEST_F(ReloadTest, DeferredSaveReportsAnEditUntilAReload) {
  Start(/*defer_save=*/true);
  // An edit made before the first save counts too: the file was read at start.
  Write(path_, kEdited);
  ASSERT_TRUE(plane_->Apply(AddBackend("10.0.0.24")).ok());  // applied; saved later
  EXPECT_TRUE(plane_->save_pending());
  absl::Status st = plane_->SaveIfDirty();
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition) << st;
  EXPECT_TRUE(plane_->save_pending());
  EXPECT_EQ(test_support::ReadFile(path_), kEdited);
  ASSERT_TRUE(plane_->Reload().ok());
  EXPECT_FALSE(plane_->save_pending());
  EXPECT_TRUE(plane_->SaveIfDirty().ok());
  EXPECT_EQ(test_support::ReadFile(path_), kEdited);
}

}  // namespace
}  // namespace ecmplb::control
