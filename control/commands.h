// commands.h: the control socket's command table, shared by the daemon's request handler
// (protocol.cc) and ecmplbctl, so each command's name and arguments are written once:
//   - the name is the request's "cmd" and ecmplbctl's subcommand path ("service add" is
//     `ecmplbctl service add`); the help line is ecmplbctl's;
//   - the arguments are the request's fields, each bound to a typed Request member, in the
//     order the daemon checks them;
//   - its access: whether it only reads state (the control socket's read-only group may run
//     it) or changes it (root and the admin group only; see access.h). This table is the one
//     place that says so.
// Extension commands (drain, fault) are handled by what the daemon registers with
// ControlPlane::AddExtension; a daemon that registered none answers "unknown command".
//
// Thread-safety: constant data and pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace ecmplb::control {

inline constexpr size_t kMaxConnsLimit = 100000;

enum class CommandId : uint8_t {
  kServiceAdd,
  kServiceDel,
  kServiceList,
  kBackendAdd,
  kBackendSet,
  kBackendDel,
  kShow,
  kStats,
  kConns,
  kLookup,
  kConfigDump,
  kConfigReload,
  kDrain,
  kFault,
};

// One decoded request: the command and its arguments (only the command's own are used; an
// empty string or an unset number is an absent field).
struct Request {
  CommandId command = CommandId::kShow;
  std::string service;  // "VIP:PORT/PROTO"
  std::string backend;  // "ADDRESS[:PORT]"
  std::string client;   // "ADDRESS:PORT"
  std::string forward;  // "dr" / "gre" / "ipip" / "gue"
  std::string hash;     // "5tuple" / "source-ip"
  std::string fault;    // "stall-worker"
  std::optional<uint64_t> weight, id, table_size, expected_backends, limit, worker, ms;
};

struct ArgSpec {
  using Field = std::variant<std::string Request::*, std::optional<uint64_t> Request::*>;
  const char* name;  // the request's field
  Field field;
  bool required = false;
  uint64_t max = 0;  // numbers: the largest value accepted
  // A value of the wrong type (or out of range) reads as absent: the handler reports it.
  bool lax = false;
  // Strings: refuses a bad non-empty value (InvalidArgument) when it is decoded.
  absl::Status (*check)(absl::string_view value) = nullptr;
};

// What running a command does to the daemon: kRead commands only read state (services,
// counters, flows, lookups, the configuration); kChange commands change it, stop the daemon or
// inject faults.
enum class Access : uint8_t { kRead, kChange };

struct CommandSpec {
  CommandId id;
  const char* name;  // "service add"
  const char* help;  // ecmplbctl's one-line description
  Access access;
  bool extension;  // handled by a ControlPlane extension
  std::vector<ArgSpec> args;
};

// Every command, in ecmplbctl's order.
const std::vector<CommandSpec>& Commands();
const CommandSpec& Spec(CommandId id);
const CommandSpec* FindCommand(absl::string_view name);  // nullptr: unknown

}  // namespace ecmplb::control
