// protocol.cc: control socket codec (see protocol.h).
#include "control/protocol.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "control/views_json.h"

namespace ecmplb::control {
namespace {

using nlohmann::json;

// Typed field access with clear errors; absent optional fields stay unset.
absl::StatusOr<std::string> GetString(const json& j, const char* field, bool required) {
  auto it = j.find(field);
  if (it == j.end()) {
    if (required)
      return absl::InvalidArgumentError(absl::StrCat("request: missing \"", field, "\""));
    return std::string();
  }
  if (!it->is_string())
    return absl::InvalidArgumentError(absl::StrCat("request: \"", field, "\" must be a string"));
  return it->get<std::string>();
}

absl::Status GetUint(const json& j, const char* field, uint64_t max, std::optional<uint32_t>* out) {
  auto it = j.find(field);
  if (it == j.end()) return absl::OkStatus();
  if (!it->is_number_unsigned() || it->get<uint64_t>() > max) {
    return absl::InvalidArgumentError(
        absl::StrCat("\"", field, "\" must be an integer in 0..", max));
  }
  *out = static_cast<uint32_t>(it->get<uint64_t>());
  return absl::OkStatus();
}

absl::StatusOr<json> Run(ControlPlane& plane, const json& req) {
  auto cmd = GetString(req, "cmd", true);
  if (!cmd.ok()) return cmd.status();
  const std::string& c = *cmd;
  if (c == "show") return ToJson(plane.Show());
  if (c == "stats") return ToJson(plane.Stats());
  if (c == "config dump") return json::parse(plane.ConfigDump());
  if (c == "service list") return ToJson(plane.ServiceList());
  if (c == "conns") {
    std::optional<uint32_t> limit;
    if (absl::Status s = GetUint(req, "limit", kMaxConnsLimit, &limit); !s.ok()) return s;
    return ToJson(plane.Conns(limit.value_or(100)));
  }
  if (c == "lookup") {
    auto service = GetString(req, "service", true);
    if (!service.ok()) return service.status();
    auto client = GetString(req, "client", true);
    if (!client.ok()) return client.status();
    ECMPLB_ASSIGN_OR_RETURN(const LookupView v, plane.Lookup(*service, *client));
    return ToJson(v);
  }
  Command command;
  if (c == "service add") {
    command.kind = CommandKind::kServiceAdd;
  } else if (c == "service del") {
    command.kind = CommandKind::kServiceDel;
  } else if (c == "backend add") {
    command.kind = CommandKind::kBackendAdd;
  } else if (c == "backend set") {
    command.kind = CommandKind::kBackendSet;
  } else if (c == "backend del") {
    command.kind = CommandKind::kBackendDel;
  } else if (const ControlPlane::Extension* ext = plane.FindExtension(c)) {
    return (*ext)(req);
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown command \"", c, "\""));
  }
  auto service = GetString(req, "service", true);
  if (!service.ok()) return service.status();
  command.service = *service;
  const bool backend_cmd =
      command.kind != CommandKind::kServiceAdd && command.kind != CommandKind::kServiceDel;
  if (backend_cmd) {
    auto backend = GetString(req, "backend", true);
    if (!backend.ok()) return backend.status();
    command.backend = *backend;
    if (absl::Status s = GetUint(req, "weight", kMaxWeight, &command.weight); !s.ok()) return s;
    if (absl::Status s = GetUint(req, "id", kMaxBackendId, &command.id); !s.ok()) return s;
  } else if (command.kind == CommandKind::kServiceAdd) {
    auto forward = GetString(req, "forward", false);
    if (!forward.ok()) return forward.status();
    if (!forward->empty()) {
      auto m = ParseForwardMode(*forward);
      if (!m.ok())
        return absl::InvalidArgumentError(
            absl::StrCat("forward '", *forward, "': must be dr or gre"));
      command.forward = *m;
    }
    auto hash = GetString(req, "hash", false);
    if (!hash.ok()) return hash.status();
    if (!hash->empty()) {
      auto m = ParseHashMode(*hash);
      if (!m.ok())
        return absl::InvalidArgumentError(
            absl::StrCat("hash '", *hash, "': must be 5tuple or source-ip"));
      command.hash = *m;
    }
    if (absl::Status s = GetUint(req, "table_size", UINT32_MAX, &command.table_size); !s.ok())
      return s;
  }
  ECMPLB_ASSIGN_OR_RETURN(const ApplyResult applied, plane.Apply(command));
  return ToJson(applied);
}

}  // namespace

std::string EncodeOk(const json& result) {
  return json{{"ok", true}, {"result", result}}.dump(-1, ' ', false,
                                                     json::error_handler_t::replace);
}

std::string EncodeError(const absl::Status& status) {
  return json{{"ok", false},
              {"code", absl::StatusCodeToString(status.code())},
              {"error", std::string(status.message())}}
      .dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string HandleRequest(ControlPlane& plane, absl::string_view request) {
  if (request.size() > kMaxRequestBytes) {
    return EncodeError(absl::InvalidArgumentError(
        absl::StrCat("request larger than ", kMaxRequestBytes, " bytes")));
  }
  json req = json::parse(request.begin(), request.end(), nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded())
    return EncodeError(absl::InvalidArgumentError("request is not valid JSON"));
  if (!req.is_object())
    return EncodeError(absl::InvalidArgumentError("request must be a JSON object"));
  absl::StatusOr<json> result = Run(plane, req);
  if (!result.ok()) return EncodeError(result.status());
  return EncodeOk(*result);
}

absl::StatusOr<json> DecodeReply(absl::string_view reply) {
  json r = json::parse(reply.begin(), reply.end(), nullptr, false);
  if (r.is_discarded() || !r.is_object() || !r.contains("ok") || !r["ok"].is_boolean()) {
    return absl::DataLossError("malformed reply from the daemon");
  }
  if (r["ok"].get<bool>()) return r.contains("result") ? r["result"] : json::object();
  std::string code = r.value("code", "UNKNOWN");
  std::string error = r.value("error", "unknown error");
  for (int c = 1; c <= 16; ++c) {
    auto sc = static_cast<absl::StatusCode>(c);
    if (absl::StatusCodeToString(sc) == code) return absl::Status(sc, error);
  }
  return absl::UnknownError(error);
}

}  // namespace ecmplb::control
