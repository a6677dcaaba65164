// protocol.cc: control socket codec (see protocol.h).
#include "control/protocol.h"

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "control/endpoint.h"
#include "control/views_json.h"

namespace ecmplb::control {
namespace {

using nlohmann::json;

// The request's command, by name; unknown names (and extensions the daemon did not register)
// are refused before any argument is read.
absl::StatusOr<const CommandSpec*> CommandOf(const ControlPlane& plane, const json& req) {
  auto it = req.find("cmd");
  if (it == req.end()) return absl::InvalidArgumentError("request: missing \"cmd\"");
  if (!it->is_string()) return absl::InvalidArgumentError("request: \"cmd\" must be a string");
  const std::string name = it->get<std::string>();
  const CommandSpec* spec = FindCommand(name);
  if (spec == nullptr || (spec->extension && plane.FindExtension(spec->id) == nullptr)) {
    return absl::InvalidArgumentError(absl::StrCat("unknown command \"", name, "\""));
  }
  return spec;
}

// Reads one argument into `out`, with clear errors; an absent optional field stays unset.
absl::Status DecodeArg(const json& req, const ArgSpec& arg, Request* out) {
  auto it = req.find(arg.name);
  if (it == req.end()) {
    if (arg.required)
      return absl::InvalidArgumentError(absl::StrCat("request: missing \"", arg.name, "\""));
    return absl::OkStatus();
  }
  if (auto* str = std::get_if<std::string Request::*>(&arg.field)) {
    if (!it->is_string()) {
      if (arg.lax) return absl::OkStatus();
      return absl::InvalidArgumentError(
          absl::StrCat("request: \"", arg.name, "\" must be a string"));
    }
    std::string value = it->get<std::string>();
    if (arg.check != nullptr && !value.empty()) ECMPLB_RETURN_IF_ERROR(arg.check(value));
    out->*(*str) = std::move(value);
    return absl::OkStatus();
  }
  if (!it->is_number_unsigned() || it->get<uint64_t>() > arg.max) {
    if (arg.lax) return absl::OkStatus();
    return absl::InvalidArgumentError(
        absl::StrCat("\"", arg.name, "\" must be an integer in 0..", arg.max));
  }
  out->*std::get<std::optional<uint64_t> Request::*>(arg.field) = it->get<uint64_t>();
  return absl::OkStatus();
}

absl::StatusOr<json> Run(ControlPlane& plane, const Request& r) {
  switch (r.command) {
    case CommandId::kShow:
    case CommandId::kStats: {
      const ServiceConfig* only = nullptr;
      if (!r.service.empty()) {  // one service: a large host's output stays readable
        ECMPLB_ASSIGN_OR_RETURN(const ServiceRef ref, ParseServiceRef(r.service));
        only = plane.config().FindService(ref.vip, ref.port, ref.protocol);
        if (only == nullptr) {
          return absl::NotFoundError(absl::StrCat("service ", ref.Name(), " not found"));
        }
      }
      if (r.command == CommandId::kShow) return ToJson(plane.Show(only));
      return ToJson(plane.Stats(only));
    }
    case CommandId::kConfigDump:
      return json::parse(plane.ConfigDump());
    case CommandId::kConfigReload: {
      ECMPLB_ASSIGN_OR_RETURN(const ReloadResult v, plane.Reload());
      return ToJson(v);
    }
    case CommandId::kServiceList:
      return ToJson(plane.ServiceList());
    case CommandId::kConns:
      return ToJson(plane.Conns(r.limit.value_or(100)));
    case CommandId::kLookup: {
      ECMPLB_ASSIGN_OR_RETURN(const LookupView v, plane.Lookup(r.service, r.client));
      return ToJson(v);
    }
    case CommandId::kDrain:
    case CommandId::kFault: {
      ECMPLB_ASSIGN_OR_RETURN(const ExtensionReply v, (*plane.FindExtension(r.command))(r));
      return ToJson(v);
    }
    default: {
      ECMPLB_ASSIGN_OR_RETURN(const ApplyResult applied, plane.Apply(ToCommand(r)));
      return ToJson(applied);
    }
  }
}

// Checks whether the request's command may run (OK or the refusal).
using Authorizer = std::function<absl::Status(const CommandSpec&)>;

absl::StatusOr<json> Handle(ControlPlane& plane, const json& req, const Authorizer& authorize) {
  ECMPLB_ASSIGN_OR_RETURN(const CommandSpec* spec, CommandOf(plane, req));
  if (authorize) ECMPLB_RETURN_IF_ERROR(authorize(*spec));
  Request r;
  r.command = spec->id;
  for (const ArgSpec& arg : spec->args) ECMPLB_RETURN_IF_ERROR(DecodeArg(req, arg, &r));
  return Run(plane, r);
}

}  // namespace

Command ToCommand(const Request& r) {
  Command c;
  c.kind = r.command;
  c.service = r.service;
  c.backend = r.backend;
  if (!r.forward.empty()) c.forward = *ParseForwardMode(r.forward);  // checked when decoded
  if (!r.hash.empty()) c.hash = *ParseHashMode(r.hash);
  auto u32 = [](const std::optional<uint64_t>& v) -> std::optional<uint32_t> {
    if (!v) return std::nullopt;
    return static_cast<uint32_t>(*v);  // within its argument's max
  };
  c.table_size = u32(r.table_size);
  c.expected_backends = u32(r.expected_backends);
  c.weight = u32(r.weight);
  c.id = u32(r.id);
  return c;
}

std::string EncodeRequest(const Request& request) {
  const CommandSpec& spec = Spec(request.command);
  json req = {{"cmd", spec.name}};
  for (const ArgSpec& arg : spec.args) {
    if (auto* str = std::get_if<std::string Request::*>(&arg.field)) {
      if (!(request.*(*str)).empty()) req[arg.name] = request.*(*str);
    } else if (const auto& v = request.*std::get<std::optional<uint64_t> Request::*>(arg.field)) {
      req[arg.name] = *v;
    }
  }
  return req.dump();
}

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

namespace {

std::string Reply(ControlPlane& plane, absl::string_view request, const Authorizer& authorize) {
  if (request.size() > kMaxRequestBytes) {
    return EncodeError(absl::InvalidArgumentError(
        absl::StrCat("request larger than ", kMaxRequestBytes, " bytes")));
  }
  json req = json::parse(request.begin(), request.end(), nullptr, /*allow_exceptions=*/false);
  if (req.is_discarded())
    return EncodeError(absl::InvalidArgumentError("request is not valid JSON"));
  if (!req.is_object())
    return EncodeError(absl::InvalidArgumentError("request must be a JSON object"));
  absl::StatusOr<json> result = Handle(plane, req, authorize);
  if (!result.ok()) return EncodeError(result.status());
  return EncodeOk(*result);
}

}  // namespace

std::string HandleRequest(ControlPlane& plane, absl::string_view request) {
  return Reply(plane, request, nullptr);
}

std::string HandleRequest(ControlPlane& plane, absl::string_view request,
                          const AccessPolicy& policy, const PeerCredentials& peer,
                          const std::function<void(const std::string&)>& log) {
  return Reply(plane, request, [&](const CommandSpec& command) {
    absl::Status allowed = Authorize(policy, peer, command);
    if (!allowed.ok()) {
      log(absl::StrCat("control socket: refused '", command.name, "' to ", DescribePeer(peer),
                       ": ", allowed.message()));
    }
    return allowed;
  });
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
