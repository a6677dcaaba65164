// ecmplbctl_fleet.h: ecmplbctl's fleet-mode commands. In fleet mode a change (service and
// backend add/set/del) is written to etcd, not sent to the daemon: read the fleet's
// configuration, apply the edit, validate it with this host's settings, write it back with a
// compare-and-swap on the version read (control/fleet_client.h); every host then applies it.
// `fleet status` shows every host's version, fingerprint, announced VIPs and health side by
// side and flags disagreements; `fleet get` prints the configuration; `fleet put FILE`
// replaces its services whole.
//
// Exit status: 0 done, 1 refused or unreachable, 4 a conflict (another write came first:
// nothing was written; run the command again).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "control/config.h"
#include "control/config_edit.h"

namespace ecmplb::control::ctl {

inline constexpr int kExitConflict = 4;

// Where the fleet lives: from the daemon's configuration, or given on the command line.
struct FleetTarget {
  FleetConfig fleet;
  Config host;  // this host's settings (validation of a candidate)
  std::string writer;  // "ecmplbctl@HOSTNAME"
};

int FleetEdit(const FleetTarget& t, const Command& cmd, const std::string& name, bool as_json);
int FleetStatus(const FleetTarget& t, bool as_json);
int FleetGet(const FleetTarget& t, bool as_json);
// `file`: a config file (its services) or {"services": [...]}. expect_version: write only if
// the fleet is at that version (default: the version read just before).
int FleetPut(const FleetTarget& t, const std::string& file, std::optional<int64_t> expect_version,
             bool as_json);

}  // namespace ecmplb::control::ctl
