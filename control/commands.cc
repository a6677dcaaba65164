// commands.cc: the command table (see commands.h).
#include "control/commands.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "control/config.h"

namespace ecmplb::control {
namespace {

absl::Status CheckForward(absl::string_view v) {
  if (ParseForwardMode(v).ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("forward '", v, "': must be dr, gre, ipip or gue"));
}

absl::Status CheckHash(absl::string_view v) {
  if (ParseHashMode(v).ok()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("hash '", v, "': must be 5tuple or source-ip"));
}

std::vector<CommandSpec> Table() {
  const ArgSpec service{"service", &Request::service, /*required=*/true};
  const std::vector<ArgSpec> backend_args = {
      service,
      {"backend", &Request::backend, /*required=*/true},
      {"weight", &Request::weight, false, kMaxWeight},
      {"id", &Request::id, false, kMaxBackendId},
  };
  return {
      {CommandId::kServiceAdd,
       "service add",
       "add a service (no backends yet)",
       Access::kChange,
       false,
       {service,
        {"forward", &Request::forward, false, 0, false, CheckForward},
        {"hash", &Request::hash, false, 0, false, CheckHash},
        {"table_size", &Request::table_size, false, UINT32_MAX},
        {"expected_backends", &Request::expected_backends, false, kMaxBackendsPerService}}},
      {CommandId::kServiceDel,
       "service del",
       "delete a service and its backends",
       Access::kChange,
       false,
       {service}},
      {CommandId::kServiceList, "service list", "list services", Access::kRead, false, {}},
      {CommandId::kBackendAdd, "backend add", "add a backend to a service", Access::kChange,
       false, backend_args},
      {CommandId::kBackendSet, "backend set", "change a backend's weight (0 drains)",
       Access::kChange, false,
       backend_args},
      {CommandId::kBackendDel, "backend del", "remove a backend (its flows move)",
       Access::kChange, false,
       backend_args},
      {CommandId::kShow, "show", "services, backends, weights, Maglev slots, flows",
       Access::kRead, false, {{"service", &Request::service, false}}},
      {CommandId::kStats,
       "stats",
       "counters per worker, service, backend; drops by reason",
       Access::kRead,
       false,
       {{"service", &Request::service, false}}},
      {CommandId::kConns,
       "conns",
       "tracked flows of every worker",
       Access::kRead,
       false,
       {{"limit", &Request::limit, false, kMaxConnsLimit}}},
      {CommandId::kLookup,
       "lookup",
       "which backend a flow gets, and whether it is tracked",
       Access::kRead,
       false,
       {service, {"client", &Request::client, /*required=*/true}}},
      {CommandId::kConfigDump,
       "config dump",
       "print the running configuration (config file format)",
       Access::kRead,
       false,
       {}},
      {CommandId::kConfigReload,
       "config reload",
       "re-read the config file and apply its services (SIGHUP does the same)",
       Access::kChange,
       false,
       {}},
      {CommandId::kDrain,
       "drain",
       "withdraw every VIP, keep forwarding host.drain_s seconds, then stop the daemon",
       Access::kChange,
       true,
       {}},
      {CommandId::kFault,
       "fault",
       "fault injection for tests of health handling",
       Access::kChange,
       true,
       {{"fault", &Request::fault, false, 0, /*lax=*/true},
        {"worker", &Request::worker, false, UINT64_MAX, /*lax=*/true},
        {"ms", &Request::ms, false, UINT64_MAX, /*lax=*/true}}},
  };
}

}  // namespace

const std::vector<CommandSpec>& Commands() {
  static const std::vector<CommandSpec> table = Table();
  return table;
}

const CommandSpec& Spec(CommandId id) {
  return Commands()[static_cast<size_t>(id)];
}

const CommandSpec* FindCommand(absl::string_view name) {
  for (const auto& c : Commands()) {
    if (name == c.name) return &c;
  }
  return nullptr;
}

}  // namespace ecmplb::control
