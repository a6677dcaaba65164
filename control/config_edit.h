// config_edit.h: one `ecmplbctl` change (service add/del, backend add/set/del) turned into
// the edited service, pure: the daemon's ControlPlane::Apply applies it to the running
// configuration, and ecmplbctl applies it to the fleet's configuration read from etcd
// (fleet mode) before writing it back.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "control/commands.h"
#include "control/config.h"

namespace ecmplb::control {

// A change is one of the command table's (commands.h): kServiceAdd, kServiceDel, kBackendAdd,
// kBackendSet, kBackendDel; Apply refuses the others.
using CommandKind = CommandId;

// `service add` without table_size or expected_backends: a table of 10,007 slots (20 KiB).
inline constexpr uint32_t kDefaultExpectedBackends = 100;

struct Command {
  CommandKind kind = CommandKind::kServiceAdd;
  std::string service;  // "VIP:PORT/PROTO"
  // service add
  std::optional<ForwardMode> forward;  // default dr
  std::optional<HashMode> hash;        // default 5tuple
  // The Maglev table size, chosen once: table_size, else maglev::Table::SizeFor(
  // expected_backends, default kDefaultExpectedBackends); written into the configuration.
  std::optional<uint32_t> table_size;
  std::optional<uint32_t> expected_backends;
  // backend add/set/del
  std::string backend;             // "ADDRESS[:PORT]"
  std::optional<uint32_t> weight;  // add: default 1; set: required
  std::optional<uint32_t> id;      // add only: explicit stable id
};

struct ServiceRef;  // control/endpoint.h
// Whether `s` is the service `ref` names; NotFound naming it.
bool Matches(const ServiceConfig& s, const ServiceRef& ref);
absl::Status ServiceNotFound(const ServiceRef& ref);

// One command's effect: services[pos] becomes `now` (pos == services.size(): added; `now`
// empty: removed).
struct ServiceEdit {
  size_t pos = 0;
  std::optional<ServiceConfig> now;
  std::string name;                    // the service, "VIP:PORT/PROTO"
  std::optional<uint32_t> backend_id;  // backend commands: the backend's id
};

// Whether backend id `id` of `service` must not be given to a new backend (removed recently:
// flows may still be tracked with it).
using ReservedFn = std::function<bool(const std::string& service, uint32_t id)>;

// Checks `cmd` against `config` and returns the edit. Errors: InvalidArgument (bad value or
// syntax), NotFound (unknown service/backend), AlreadyExists (duplicate service, backend
// address or id), FailedPrecondition (id reserved), ResourceExhausted (no id left). The
// result is not validated as a whole (the caller's apply does that).
absl::StatusOr<ServiceEdit> EditService(const Config& config, const Command& cmd,
                                        const ReservedFn& reserved);
// Puts the edit into *config.
void ApplyServiceEdit(Config* config, ServiceEdit edit);

}  // namespace ecmplb::control
