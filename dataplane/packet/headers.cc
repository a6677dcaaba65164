// MacAddr and IpAddr text conversions (control plane and tests only).
#include "dataplane/packet/headers.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include "absl/status/status.h"
#include "absl/strings/str_format.h"

namespace ecmplb::dataplane {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Debian's Abseil has its own string_view, so build messages with std::string.
std::string BadMac(std::string_view text) {
  return "bad MAC address '" + std::string(text) + "': want six hex pairs like aa:bb:cc:dd:ee:ff";
}
std::string BadIp(std::string_view text) {
  return "bad IP address '" + std::string(text) + "': want IPv4 or IPv6 text";
}

}  // namespace

std::string MacAddr::ToString() const {
  return absl::StrFormat("%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2], bytes[3],
                         bytes[4], bytes[5]);
}

absl::StatusOr<MacAddr> MacAddr::Parse(std::string_view text) {
  // "xx:xx:xx:xx:xx:xx" is exactly 17 characters.
  if (text.size() != 3 * kEthAddrLen - 1) {
    return absl::InvalidArgumentError(BadMac(text));
  }
  MacAddr m;
  for (size_t i = 0; i < kEthAddrLen; ++i) {
    const int hi = HexDigit(text[3 * i]);
    const int lo = HexDigit(text[3 * i + 1]);
    const bool sep_ok = i + 1 == kEthAddrLen || text[3 * i + 2] == ':';
    if (hi < 0 || lo < 0 || !sep_ok) {
      return absl::InvalidArgumentError(BadMac(text));
    }
    m.bytes[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return m;
}

std::string IpAddr::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (family == 4) {
    if (inet_ntop(AF_INET, bytes.data(), buf, sizeof(buf)) != nullptr) {
      return buf;
    }
  } else if (family == 6) {
    if (inet_ntop(AF_INET6, bytes.data(), buf, sizeof(buf)) != nullptr) {
      return buf;
    }
  }
  return "unset";
}

absl::StatusOr<IpAddr> IpAddr::Parse(std::string_view text) {
  // inet_pton needs a NUL-terminated string; addresses are short.
  char buf[INET6_ADDRSTRLEN + 1];
  if (text.empty() || text.size() >= sizeof(buf)) {
    return absl::InvalidArgumentError(BadIp(text));
  }
  std::memcpy(buf, text.data(), text.size());
  buf[text.size()] = '\0';
  IpAddr a;
  if (text.find(':') != std::string_view::npos) {
    if (inet_pton(AF_INET6, buf, a.bytes.data()) == 1) {
      a.family = 6;
      return a;
    }
  } else if (inet_pton(AF_INET, buf, a.bytes.data()) == 1) {
    a.family = 4;
    return a;
  }
  return absl::InvalidArgumentError(BadIp(text));
}

}  // namespace ecmplb::dataplane
