// access.cc: control socket access decisions and peer credentials (see access.h).
#include "control/access.h"

#include <grp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ecmplb::control {
namespace {

bool Member(const std::optional<NamedGroup>& g, const PeerCredentials& peer) {
  return g.has_value() && peer.InGroup(g->gid);
}

// "root", "root or group 'ecmplb'", "root, group 'ecmplb' or read-only group 'ecmplb-ro'".
std::string Whom(const AccessPolicy& policy, bool with_read_only) {
  std::vector<std::string> who = {"root"};
  if (policy.admin) who.push_back(absl::StrCat("group '", policy.admin->name, "'"));
  if (with_read_only && policy.read_only) {
    who.push_back(absl::StrCat("read-only group '", policy.read_only->name, "'"));
  }
  if (who.size() == 1) return who[0];
  std::string last = who.back();
  who.pop_back();
  return absl::StrCat(absl::StrJoin(who, ", "), " or ", last);
}

}  // namespace

bool PeerCredentials::InGroup(gid_t g) const {
  return gid == g || std::find(groups.begin(), groups.end(), g) != groups.end();
}

AccessLevel LevelOf(const AccessPolicy& policy, const PeerCredentials& peer) {
  if (peer.uid == 0 || Member(policy.admin, peer)) return AccessLevel::kFull;
  if (Member(policy.read_only, peer)) return AccessLevel::kRead;
  return AccessLevel::kNone;
}

absl::Status Authorize(const AccessPolicy& policy, const PeerCredentials& peer,
                       const CommandSpec& command) {
  const AccessLevel level = LevelOf(policy, peer);
  if (level == AccessLevel::kFull) return absl::OkStatus();
  if (level == AccessLevel::kRead && command.access == Access::kRead) return absl::OkStatus();
  std::string why;
  if (command.access == Access::kRead) {
    why = absl::StrCat("only ", Whom(policy, true), " may read state");
  } else {
    why = absl::StrCat("only ", Whom(policy, false), " may change state");
    if (level == AccessLevel::kRead) {
      absl::StrAppend(&why, " (read-only group '", policy.read_only->name, "' may only read)");
    }
  }
  return absl::PermissionDeniedError(absl::StrCat("permission denied: uid ", peer.uid, " (gid ",
                                                  peer.gid, ") may not run '", command.name,
                                                  "'; ", why));
}

std::string DescribePeer(const PeerCredentials& peer) {
  std::string s = absl::StrCat("pid ", peer.pid, " uid ", peer.uid, " gid ", peer.gid);
  if (!peer.groups.empty()) absl::StrAppend(&s, " groups ", absl::StrJoin(peer.groups, ","));
  return s;
}

SocketPermissions SocketPermissionsFor(const AccessPolicy& policy) {
  if (policy.admin && policy.read_only) return {policy.admin->gid, 0666};
  if (policy.admin) return {policy.admin->gid, 0660};
  if (policy.read_only) return {policy.read_only->gid, 0660};
  return {std::nullopt, 0600};
}

absl::StatusOr<gid_t> LookupGroup(const std::string& name) {
  long hint = ::sysconf(_SC_GETGR_R_SIZE_MAX);
  std::vector<char> buf(hint > 0 ? static_cast<size_t>(hint) : 1024);
  for (;;) {
    group g;
    group* found = nullptr;
    int rc = ::getgrnam_r(name.c_str(), &g, buf.data(), buf.size(), &found);
    if (rc == ERANGE && buf.size() < (size_t{1} << 24)) {  // a group with very many members
      buf.resize(buf.size() * 2);
      continue;
    }
    if (rc != 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot look up group '", name, "': ", std::strerror(rc)));
    }
    if (found == nullptr) {
      return absl::NotFoundError(absl::StrCat("no group named '", name, "' on this host"));
    }
    return found->gr_gid;
  }
}

absl::StatusOr<AccessPolicy> ResolveAccessPolicy(const ControlAccessConfig& config) {
  AccessPolicy p;
  if (!config.group.empty()) {
    auto gid = LookupGroup(config.group);
    if (!gid.ok()) return gid.status();
    p.admin = NamedGroup{config.group, *gid};
  }
  if (!config.read_only_group.empty()) {
    auto gid = LookupGroup(config.read_only_group);
    if (!gid.ok()) return gid.status();
    p.read_only = NamedGroup{config.read_only_group, *gid};
  }
  return p;
}

absl::StatusOr<PeerCredentials> PeerCredentialsOf(int fd) {
  ucred uc{};
  socklen_t len = sizeof(uc);
  if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0) {
    return absl::UnavailableError(
        absl::StrCat("SO_PEERCRED on the control socket: ", std::strerror(errno)));
  }
  PeerCredentials peer;
  peer.pid = uc.pid;
  peer.uid = uc.uid;
  peer.gid = uc.gid;
  std::vector<gid_t> groups(32);
  for (;;) {
    len = static_cast<socklen_t>(groups.size() * sizeof(gid_t));
    if (::getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &len) == 0) {
      groups.resize(len / sizeof(gid_t));
      break;
    }
    // ERANGE: `len` now holds the size needed (at most NGROUPS_MAX groups).
    if (errno == ERANGE && len > groups.size() * sizeof(gid_t)) {
      groups.resize(len / sizeof(gid_t));
      continue;
    }
    if (errno == ENOPROTOOPT) {  // kernel before 4.13: the primary gid only (see access.h)
      groups.clear();
      break;
    }
    return absl::UnavailableError(
        absl::StrCat("SO_PEERGROUPS on the control socket: ", std::strerror(errno)));
  }
  peer.groups = std::move(groups);
  return peer;
}

}  // namespace ecmplb::control
