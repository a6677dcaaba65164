// Tests of the control socket's access decision: which commands are reads, who may run what
// (root, the admin group by primary or supplementary gid, the read-only group, anyone else),
// the refusal messages, the socket file's group and mode per policy, group lookup, and the
// kernel's peer credentials on a socket pair.
#include "control/access.h"

#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <set>
#include <string>
#include <vector>

namespace ecmplb::control {
namespace {

constexpr gid_t kAdmin = 4242;
constexpr gid_t kReaders = 4343;

AccessPolicy BothGroups() {
  return AccessPolicy{NamedGroup{"ecmplb", kAdmin}, NamedGroup{"ecmplb-ro", kReaders}};
}

PeerCredentials Peer(uid_t uid, gid_t gid, std::vector<gid_t> groups = {}) {
  return PeerCredentials{1234, uid, gid, std::move(groups)};
}

const CommandSpec& Cmd(const char* name) {
  const CommandSpec* c = FindCommand(name);
  EXPECT_NE(c, nullptr) << name;
  return *c;
}

// The command table marks exactly the pure reads as kRead.
TEST(AccessTest, ReadCommandsAreThePureReads) {
  std::set<std::string> reads;
  for (const CommandSpec& c : Commands()) {
    if (c.access == Access::kRead) reads.insert(c.name);
  }
  EXPECT_EQ(reads, (std::set<std::string>{"service list", "show", "stats", "conns", "lookup",
                                          "config dump"}));
}

TEST(AccessTest, RootMayRunEverythingWithOrWithoutGroups) {
  for (const AccessPolicy& policy : {AccessPolicy{}, BothGroups()}) {
    for (const CommandSpec& c : Commands()) {
      EXPECT_TRUE(Authorize(policy, Peer(0, 0), c).ok()) << c.name;
      EXPECT_TRUE(Authorize(policy, Peer(0, 1000), c).ok()) << c.name;
    }
  }
  EXPECT_EQ(LevelOf(AccessPolicy{}, Peer(0, 0)), AccessLevel::kFull);
}

TEST(AccessTest, AdminGroupByPrimaryOrSupplementaryGid) {
  const AccessPolicy policy = BothGroups();
  EXPECT_EQ(LevelOf(policy, Peer(1000, kAdmin)), AccessLevel::kFull);
  EXPECT_EQ(LevelOf(policy, Peer(1000, 1000, {27, kAdmin})), AccessLevel::kFull);
  // In both groups: the admin group wins.
  EXPECT_EQ(LevelOf(policy, Peer(1000, kReaders, {kAdmin})), AccessLevel::kFull);
  EXPECT_TRUE(Authorize(policy, Peer(1000, 1000, {kAdmin}), Cmd("backend set")).ok());
  EXPECT_TRUE(Authorize(policy, Peer(1000, 1000, {kAdmin}), Cmd("drain")).ok());
}

TEST(AccessTest, ReadOnlyGroupMayOnlyRead) {
  const AccessPolicy policy = BothGroups();
  for (const PeerCredentials& peer : {Peer(1000, kReaders), Peer(1000, 1000, {kReaders})}) {
    EXPECT_EQ(LevelOf(policy, peer), AccessLevel::kRead);
    for (const CommandSpec& c : Commands()) {
      EXPECT_EQ(Authorize(policy, peer, c).ok(), c.access == Access::kRead) << c.name;
    }
  }
  absl::Status st = Authorize(policy, Peer(1000, 1000, {kReaders}), Cmd("backend set"));
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(),
            "permission denied: uid 1000 (gid 1000) may not run 'backend set'; only root or "
            "group 'ecmplb' may change state (read-only group 'ecmplb-ro' may only read)");
}

TEST(AccessTest, OthersAreRefusedWithWhoMay) {
  const PeerCredentials nobody = Peer(65534, 65534, {100});
  EXPECT_EQ(LevelOf(BothGroups(), nobody), AccessLevel::kNone);
  absl::Status st = Authorize(BothGroups(), nobody, Cmd("show"));
  EXPECT_EQ(st.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(st.message(),
            "permission denied: uid 65534 (gid 65534) may not run 'show'; only root, group "
            "'ecmplb' or read-only group 'ecmplb-ro' may read state");
  EXPECT_EQ(Authorize(BothGroups(), nobody, Cmd("service add")).message(),
            "permission denied: uid 65534 (gid 65534) may not run 'service add'; only root or "
            "group 'ecmplb' may change state");
  // Without groups: root only.
  EXPECT_EQ(Authorize(AccessPolicy{}, Peer(1000, 1000), Cmd("stats")).message(),
            "permission denied: uid 1000 (gid 1000) may not run 'stats'; only root may read "
            "state");
  // Only a read-only group: it reads, nobody but root changes.
  AccessPolicy readers{std::nullopt, NamedGroup{"ecmplb-ro", kReaders}};
  EXPECT_TRUE(Authorize(readers, Peer(1000, kReaders), Cmd("conns")).ok());
  EXPECT_EQ(Authorize(readers, Peer(1000, kReaders), Cmd("drain")).message(),
            "permission denied: uid 1000 (gid 4343) may not run 'drain'; only root may change "
            "state (read-only group 'ecmplb-ro' may only read)");
}

TEST(AccessTest, SocketPermissionsFollowThePolicy) {
  SocketPermissions none = SocketPermissionsFor(AccessPolicy{});
  EXPECT_FALSE(none.group.has_value());
  EXPECT_EQ(none.mode, 0600u);
  SocketPermissions admin = SocketPermissionsFor(AccessPolicy{NamedGroup{"a", kAdmin}, {}});
  EXPECT_EQ(admin.group, kAdmin);
  EXPECT_EQ(admin.mode, 0660u);
  SocketPermissions ro = SocketPermissionsFor(AccessPolicy{{}, NamedGroup{"r", kReaders}});
  EXPECT_EQ(ro.group, kReaders);
  EXPECT_EQ(ro.mode, 0660u);
  SocketPermissions both = SocketPermissionsFor(BothGroups());
  EXPECT_EQ(both.group, kAdmin);
  EXPECT_EQ(both.mode, 0666u);
}

TEST(AccessTest, LooksUpGroupsByName) {
  auto root = LookupGroup("root");
  ASSERT_TRUE(root.ok()) << root.status();
  EXPECT_EQ(*root, 0u);
  auto missing = LookupGroup("ecmplb-no-such-group");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "no group named 'ecmplb-no-such-group' on this host");
  auto policy = ResolveAccessPolicy(ControlAccessConfig{"root", ""});
  ASSERT_TRUE(policy.ok()) << policy.status();
  ASSERT_TRUE(policy->admin.has_value());
  EXPECT_EQ(policy->admin->name, "root");
  EXPECT_FALSE(policy->read_only.has_value());
  EXPECT_EQ(ResolveAccessPolicy(ControlAccessConfig{"", "ecmplb-no-such-group"}).status().code(),
            absl::StatusCode::kNotFound);
}

TEST(AccessTest, DescribesPeers) {
  EXPECT_EQ(DescribePeer(Peer(1000, 1000)), "pid 1234 uid 1000 gid 1000");
  EXPECT_EQ(DescribePeer(Peer(1000, 1000, {27, 4242})), "pid 1234 uid 1000 gid 1000 groups 27,4242");
}

// The kernel's record of the other end of a socket pair: this process.
TEST(AccessTest, PeerCredentialsOfASocketPair) {
  int sv[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
  auto peer = PeerCredentialsOf(sv[0]);
  ::close(sv[0]);
  ::close(sv[1]);
  ASSERT_TRUE(peer.ok()) << peer.status();
  EXPECT_EQ(peer->pid, ::getpid());
  EXPECT_EQ(peer->uid, ::geteuid());
  EXPECT_EQ(peer->gid, ::getegid());
  std::vector<gid_t> mine(static_cast<size_t>(::getgroups(0, nullptr)));
  ASSERT_EQ(::getgroups(static_cast<int>(mine.size()), mine.data()),
            static_cast<int>(mine.size()));
  EXPECT_EQ(std::set<gid_t>(peer->groups.begin(), peer->groups.end()),
            std::set<gid_t>(mine.begin(), mine.end()));
  EXPECT_EQ(PeerCredentialsOf(-1).status().code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace ecmplb::control
