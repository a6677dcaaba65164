// access.h: who may use the control socket, and for which commands.
//
// The daemon takes each connecting peer's credentials from the kernel: SO_PEERCRED (pid, uid,
// primary gid) and SO_PEERGROUPS (supplementary groups), both as they were when the peer
// called connect(). Root (uid 0) and members of host.control.group may run every command;
// members of host.control.read_only_group only the commands the command table marks
// Access::kRead (commands.h); everyone else nothing. Authorize is that decision, a pure
// function of (policy, credentials, command) with a reply message that says who may do what.
// The socket file's owner and mode (SocketPermissionsFor) only keep out, at connect(), peers
// the decision would refuse anyway; when both groups are configured the file is 0666 and the
// decision is the only gate (see SocketPermissionsFor).
//
// Thread-safety: plain values and pure functions; LookupGroup and PeerCredentialsOf make
// system calls and share no state.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "control/commands.h"
#include "control/config.h"

namespace ecmplb::control {

struct PeerCredentials {
  pid_t pid = 0;  // 0 when the peer is in a PID namespace the daemon cannot see into
  uid_t uid = 0;
  gid_t gid = 0;              // primary (effective) group
  std::vector<gid_t> groups;  // supplementary groups
  bool InGroup(gid_t g) const;
};

struct NamedGroup {
  std::string name;
  gid_t gid = 0;
};

struct AccessPolicy {
  std::optional<NamedGroup> admin;      // host.control.group: every command
  std::optional<NamedGroup> read_only;  // host.control.read_only_group: Access::kRead only
};

enum class AccessLevel : uint8_t { kNone, kRead, kFull };

// Root or a member of the admin group: kFull; a member of the read-only group: kRead;
// anyone else: kNone. Membership counts the primary gid and the supplementary groups.
AccessLevel LevelOf(const AccessPolicy& policy, const PeerCredentials& peer);

// OK if `peer` may run `command`; else PermissionDenied, e.g. "permission denied: uid 1000
// (gid 1000) may not run 'backend set'; only root or group 'ecmplb' may change state".
absl::Status Authorize(const AccessPolicy& policy, const PeerCredentials& peer,
                       const CommandSpec& command);

// "pid 4242 uid 1000 gid 1000 groups 27,100" (for log lines).
std::string DescribePeer(const PeerCredentials& peer);

// The control socket file's group and mode for a policy:
//   - no group configured: owner root, mode 0600 (root only);
//   - one group: group that group, mode 0660: the kernel lets in root and that group's
//     members, exactly those with any right;
//   - both groups: mode 0666, group the admin group. A file has one group, and a second one
//     would need a POSIX ACL, which not every file system under the socket supports and which
//     would be a second place to keep in step with the policy; so any local user may connect
//     and the daemon's check (Authorize, on the kernel's SO_PEERCRED credentials, which a peer
//     cannot forge) is the gate. A peer without any right gets one refusal and is disconnected
//     (ControlServer: its first reply closes the connection and it must send that request
//     within a second), so it cannot hold connection slots.
struct SocketPermissions {
  std::optional<gid_t> group;  // chown(path, 0, group); none: left as created (root's)
  mode_t mode = 0600;
};
SocketPermissions SocketPermissionsFor(const AccessPolicy& policy);

// getgrnam_r. NotFound "no group named 'x' on this host" or Unavailable (lookup failed).
absl::StatusOr<gid_t> LookupGroup(const std::string& name);

// Resolves host.control's group names (LookupGroup).
absl::StatusOr<AccessPolicy> ResolveAccessPolicy(const ControlAccessConfig& config);

// The kernel's record of the peer of a connected Unix socket.
//
// Supplementary groups come from SO_PEERGROUPS (Linux 4.13+), which the kernel records at
// connect() together with SO_PEERCRED. The alternatives are worse: /proc/PID/status
// ("Groups:") is read after the fact, and the peer may have exited and its pid been reused by
// another process (with other groups) in between; getgrouplist() for the uid's user reads the
// group database, not the process, so it grants groups a process has dropped (a service
// sandboxed with no supplementary groups), misses `newgrp`, and may block the control loop on
// a network name service. Where the kernel lacks SO_PEERGROUPS (ENOPROTOOPT) only the primary
// gid counts: fewer rights, never more.
absl::StatusOr<PeerCredentials> PeerCredentialsOf(int fd);

}  // namespace ecmplb::control
