// config_edit.cc: see config_edit.h.
#include "control/config_edit.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "control/endpoint.h"
#include "maglev/maglev.h"

namespace ecmplb::control {

bool Matches(const ServiceConfig& s, const ServiceRef& ref) {
  return s.vip == ref.vip && s.port == ref.port && s.protocol == ref.protocol;
}

absl::Status ServiceNotFound(const ServiceRef& ref) {
  return absl::NotFoundError(absl::StrCat("service ", ref.Name(), " not found"));
}

namespace {

// Index of the backend `ep` names in `s`, or NotFound. A port, when given, must be the
// service's (backends cannot have another port: DR and the tunnels do not translate ports).
absl::StatusOr<size_t> FindBackend(const ServiceConfig& s, const Endpoint& ep) {
  if (ep.port == 0 || ep.port == s.port) {
    for (size_t i = 0; i < s.backends.size(); ++i) {
      if (s.backends[i].address == ep.address) return i;
    }
  }
  return absl::NotFoundError(
      absl::StrCat("backend ", ep.ToString(), " not found in service ", s.Name()));
}

}  // namespace

absl::StatusOr<ServiceEdit> EditService(const Config& config, const Command& cmd,
                                        const ReservedFn& reserved) {
  ECMPLB_ASSIGN_OR_RETURN(const ServiceRef ref, ParseServiceRef(cmd.service));
  const std::string name = ref.Name();
  ServiceEdit edit;
  edit.name = name;
  // A command edits one service: a copy of it (or a new one).
  size_t& pos = edit.pos;
  while (pos < config.services.size() && !Matches(config.services[pos], ref)) ++pos;
  std::optional<ServiceConfig>& edited = edit.now;
  if (pos < config.services.size()) edited = config.services[pos];
  ServiceConfig* svc = edited ? &*edited : nullptr;

  if (cmd.weight.has_value() && *cmd.weight > kMaxWeight) {
    return absl::InvalidArgumentError(
        absl::StrCat("weight ", *cmd.weight, " is out of range 0..", kMaxWeight));
  }
  switch (cmd.kind) {
    case CommandKind::kServiceAdd: {
      if (svc != nullptr)
        return absl::AlreadyExistsError(absl::StrCat("service ", name, " already exists"));
      ServiceConfig s;
      s.vip = ref.vip;
      s.port = ref.port;
      s.protocol = ref.protocol;
      if (cmd.forward) s.forward = *cmd.forward;
      if (cmd.hash) s.hash = *cmd.hash;
      if (cmd.table_size && cmd.expected_backends) {
        return absl::InvalidArgumentError(absl::StrCat(
            "service ", name, ": give table_size or expected_backends, not both"));
      }
      s.table_size = cmd.table_size ? *cmd.table_size
                                    : maglev::Table::SizeFor(cmd.expected_backends.value_or(
                                          kDefaultExpectedBackends));
      if (absl::Status st = maglev::Table::ValidateTableSize(s.table_size); !st.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("service ", name, ": table size: ", st.message()));
      }
      edited = std::move(s);
      break;
    }
    case CommandKind::kServiceDel: {
      if (svc == nullptr) return ServiceNotFound(ref);
      edited.reset();
      break;
    }
    case CommandKind::kBackendAdd: {
      if (svc == nullptr) return ServiceNotFound(ref);
      auto ep = ParseEndpoint(cmd.backend, false);
      if (!ep.ok())
        return absl::InvalidArgumentError(absl::StrCat("backend: ", ep.status().message()));
      if (ep->port != 0 && ep->port != svc->port) {
        return absl::InvalidArgumentError(absl::StrCat("backend ", ep->ToString(),
                                                       ": port must be the service's (", svc->port,
                                                       "): DR and the tunnels do not translate ports"));
      }
      for (const auto& b : svc->backends) {
        if (b.address == ep->address) {
          return absl::AlreadyExistsError(absl::StrCat(
              "backend ", ep->address, " already exists in service ", name, " (id ", b.id, ")"));
        }
      }
      BackendConfig b;
      b.address = ep->address;
      b.port = ep->port;
      b.weight = cmd.weight.value_or(1);
      if (cmd.id.has_value()) {
        if (*cmd.id == 0 || *cmd.id > kMaxBackendId) {
          return absl::InvalidArgumentError(
              absl::StrCat("backend id ", *cmd.id, " is out of range 1..", kMaxBackendId));
        }
        for (const auto& o : svc->backends) {
          if (o.id == *cmd.id) {
            return absl::AlreadyExistsError(absl::StrCat(
                "backend id ", *cmd.id, " is already used by ", o.address, " in service ", name));
          }
        }
        if (reserved && reserved(name, *cmd.id)) {
          return absl::FailedPreconditionError(
              absl::StrCat("backend id ", *cmd.id, " of service ", name,
                           " was removed recently and is reserved until its tracked flows expire "
                           "(conntrack idle timeout)"));
        }
        b.id = *cmd.id;
      } else {
        uint32_t id = 1;
        auto used = [&](uint32_t i) {
          for (const auto& o : svc->backends) {
            if (o.id == i) return true;
          }
          return reserved && reserved(name, i);
        };
        while (id <= kMaxBackendId && used(id)) ++id;
        if (id > kMaxBackendId) {
          return absl::ResourceExhaustedError(
              absl::StrCat("service ", name, ": no backend id left"));
        }
        b.id = id;
      }
      edit.backend_id = b.id;
      svc->backends.push_back(std::move(b));
      break;
    }
    case CommandKind::kBackendSet:
    case CommandKind::kBackendDel: {
      if (svc == nullptr) return ServiceNotFound(ref);
      auto ep = ParseEndpoint(cmd.backend, false);
      if (!ep.ok())
        return absl::InvalidArgumentError(absl::StrCat("backend: ", ep.status().message()));
      ECMPLB_ASSIGN_OR_RETURN(const size_t idx, FindBackend(*svc, *ep));
      edit.backend_id = svc->backends[idx].id;
      if (cmd.kind == CommandKind::kBackendSet) {
        if (!cmd.weight.has_value())
          return absl::InvalidArgumentError("backend set: --weight is required");
        svc->backends[idx].weight = *cmd.weight;
      } else {
        svc->backends.erase(svc->backends.begin() + static_cast<std::ptrdiff_t>(idx));
      }
      break;
    }
    default:
      return absl::InvalidArgumentError("unknown command");
  }
  return edit;
}

void ApplyServiceEdit(Config* config, ServiceEdit edit) {
  auto& list = config->services;
  if (edit.pos == list.size()) {
    if (edit.now) list.push_back(std::move(*edit.now));
  } else if (edit.now) {
    list[edit.pos] = std::move(*edit.now);
  } else {
    list.erase(list.begin() + static_cast<std::ptrdiff_t>(edit.pos));
  }
}

}  // namespace ecmplb::control
