// endpoint.cc: service and endpoint text forms (see endpoint.h).
#include "control/endpoint.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

namespace ecmplb::control {
namespace {

absl::StatusOr<uint16_t> ParsePort(absl::string_view text, absl::string_view whole) {
  uint32_t port = 0;
  if (text.empty() || text.size() > 5 || !absl::SimpleAtoi(text, &port) || port == 0 ||
      port > 65535 || text.find_first_not_of("0123456789") != absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("'", whole, "': port must be 1..65535"));
  }
  return static_cast<uint16_t>(port);
}

// Splits "ADDR", "ADDR:PORT", "[V6]", "[V6]:PORT" and bare "V6" into address and port text.
absl::Status SplitHostPort(absl::string_view text, absl::string_view* host, absl::string_view* port,
                           bool* has_port) {
  *has_port = false;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': missing ']'"));
    }
    *host = text.substr(1, close - 1);
    absl::string_view rest = text.substr(close + 1);
    if (rest.empty()) return absl::OkStatus();
    if (rest.front() != ':') {
      return absl::InvalidArgumentError(absl::StrCat("'", text, "': expected ':PORT' after ']'"));
    }
    *port = rest.substr(1);
    *has_port = true;
    return absl::OkStatus();
  }
  size_t first = text.find(':');
  if (first == absl::string_view::npos) {
    *host = text;
    return absl::OkStatus();
  }
  if (text.find(':', first + 1) != absl::string_view::npos) {  // bare IPv6, no port
    *host = text;
    return absl::OkStatus();
  }
  *host = text.substr(0, first);
  *port = text.substr(first + 1);
  *has_port = true;
  return absl::OkStatus();
}

}  // namespace

std::string ServiceRef::Name() const {
  return IsIpv6(vip) ? absl::StrCat("[", vip, "]:", port, "/", ProtocolName(protocol))
                     : absl::StrCat(vip, ":", port, "/", ProtocolName(protocol));
}

std::string Endpoint::ToString() const {
  if (port == 0) return address;
  return IsIpv6(address) ? absl::StrCat("[", address, "]:", port)
                         : absl::StrCat(address, ":", port);
}

absl::StatusOr<ServiceRef> ParseServiceRef(absl::string_view text) {
  size_t slash = text.rfind('/');
  if (slash == absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("service '", text,
                     "': expected VIP:PORT/PROTO (e.g. 10.1.1.1:80/tcp, [2001:db8::1]:80/tcp)"));
  }
  ServiceRef ref;
  auto proto = ParseProtocol(text.substr(slash + 1));
  if (!proto.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("service '", text, "': protocol must be tcp or udp"));
  }
  ref.protocol = *proto;
  absl::string_view host, port;
  bool has_port = false;
  absl::string_view hp = text.substr(0, slash);
  if (absl::Status s = SplitHostPort(hp, &host, &port, &has_port); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("service '", text, "': ", s.message()));
  }
  if (!has_port) {
    return absl::InvalidArgumentError(absl::StrCat(
        "service '", text, "': expected VIP:PORT/PROTO (IPv6 as [2001:db8::1]:80/tcp)"));
  }
  auto addr = CanonicalAddress(host);
  if (!addr.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("service '", text, "': '", host, "' is not an IP address"));
  }
  auto p = ParsePort(port, text);
  if (!p.ok()) return absl::InvalidArgumentError(absl::StrCat("service ", p.status().message()));
  ref.vip = *addr;
  ref.port = *p;
  return ref;
}

absl::StatusOr<Endpoint> ParseEndpoint(absl::string_view text, bool require_port) {
  absl::string_view host, port;
  bool has_port = false;
  ECMPLB_RETURN_IF_ERROR(SplitHostPort(text, &host, &port, &has_port));
  auto addr = CanonicalAddress(host);
  if (!addr.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("'", host, "' is not an IP address"));
  }
  Endpoint e;
  e.address = *addr;
  if (has_port) {
    ECMPLB_ASSIGN_OR_RETURN(e.port, ParsePort(port, text));
  } else if (require_port) {
    return absl::InvalidArgumentError(
        absl::StrCat("'", text, "': expected ADDRESS:PORT (IPv6 as [2001:db8::7]:40000)"));
  }
  return e;
}

}  // namespace ecmplb::control
