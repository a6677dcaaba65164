// endpoint.h: text forms of a service ("10.1.1.1:80/tcp", "[2001:db8::1]:80/tcp") and of an
// address with an optional port ("10.0.0.21", "10.0.0.21:80", "[2001:db8::21]:80",
// "2001:db8::21"), as written on the ecmplbctl command line and in control requests.
//
// Thread-safety: pure functions on plain values.
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "control/config.h"

namespace ecmplb::control {

struct ServiceRef {
  std::string vip;  // canonical text
  uint16_t port = 0;
  Protocol protocol = Protocol::kTcp;
  std::string Name() const;  // same form as ServiceConfig::Name()
};

struct Endpoint {
  std::string address;           // canonical text
  uint16_t port = 0;             // 0: not given
  std::string ToString() const;  // "10.0.0.21", "10.0.0.21:80", "[2001:db8::1]:80"
};

// "VIP:PORT/PROTO"; IPv6 VIPs in brackets. InvalidArgument naming what is wrong.
absl::StatusOr<ServiceRef> ParseServiceRef(absl::string_view text);
// "ADDRESS[:PORT]"; an IPv6 address with a port must be in brackets. `require_port`: the
// port must be present (client addresses of `lookup`). InvalidArgument otherwise.
absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view text, bool require_port);

}  // namespace ecmplb::control
