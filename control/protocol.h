// protocol.h: the control socket's request/response codec.
//
// Framing: one JSON object per line (newline-delimited) on a SOCK_STREAM Unix socket; a
// request is at most kMaxRequestBytes including its newline. A request names its command:
//   {"cmd": "service add", "service": "10.1.1.1:80/tcp", "forward": "gre", "hash": "5tuple",
//    "table_size": 65537}
//   {"cmd": "service del" | "service list", ...}
//   {"cmd": "backend add" | "backend set" | "backend del", "service": "...",
//    "backend": "10.0.0.21[:80]", "weight": 3, "id": 4}
//   {"cmd": "show" | "stats" | "config dump"}
//   {"cmd": "conns", "limit": 100}
//   {"cmd": "lookup", "service": "...", "client": "192.0.2.7:40000"}
//   {"cmd": "drain"}, {"cmd": "fault", "fault": "stall-worker", "worker": 0, "ms": 2000}
// The commands and their fields are the command table's (commands.h); the results are the
// typed views in their JSON encoding (views_json.h).
// Reply: {"ok": true, "result": {...}} or {"ok": false, "code": "NOT_FOUND", "error": "..."}
// (code: absl::StatusCodeToString). A malformed request gets an error reply (never a crash).
//
// Thread-safety: HandleRequest runs on the ControlPlane's thread; the rest is pure.
#pragma once

#include <cstddef>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "control/access.h"
#include "control/commands.h"
#include "control/control_plane.h"
#include "nlohmann/json.hpp"

namespace ecmplb::control {

inline constexpr size_t kMaxRequestBytes = 64 * 1024;

// Decodes one request line, runs it against `plane`, returns the reply line (no newline).
// Every command is allowed: for callers that are trusted by construction (tests, fuzzing).
std::string HandleRequest(ControlPlane& plane, absl::string_view request);

// The control socket's handler: as above for a request from `peer`, but a command `peer` may
// not run under `policy` (Authorize, access.h) is refused before any of its arguments is read,
// with a PERMISSION_DENIED reply, and the refusal is logged through `log` with the peer's
// pid, uid and gid.
std::string HandleRequest(ControlPlane& plane, absl::string_view request,
                          const AccessPolicy& policy, const PeerCredentials& peer,
                          const std::function<void(const std::string&)>& log);

// Client side: the request line (no newline) for `request`: its command's name and those of
// its arguments that are set.
std::string EncodeRequest(const Request& request);
// A change request (service and backend add/set/del) as the control plane's Command (its
// arguments were checked when it was decoded or parsed).
Command ToCommand(const Request& r);

// Reply encoding, shared by the server (for its own errors) and the client.
std::string EncodeOk(const nlohmann::json& result);
std::string EncodeError(const absl::Status& status);
// Client side: the result of an ok reply, or the reply's error as a Status with its code.
absl::StatusOr<nlohmann::json> DecodeReply(absl::string_view reply);

}  // namespace ecmplb::control
