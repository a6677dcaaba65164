// frr_render.cc: FRR configuration from ecmplb's configuration (see frr_render.h).
#include "control/frr_render.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"

namespace ecmplb::control {
namespace {

uint32_t V4(const std::string& text) {
  in_addr a{};
  inet_pton(AF_INET, text.c_str(), &a);
  return ntohl(a.s_addr);
}

std::string V4Text(uint32_t host) {
  in_addr a{htonl(host)};
  char buf[INET_ADDRSTRLEN];
  return inet_ntop(AF_INET, &a, buf, sizeof(buf));
}

uint32_t Mask(int len) {
  return len == 0 ? 0 : ~uint32_t{0} << (32 - len);
}

}  // namespace

absl::StatusOr<std::string> FillTemplate(absl::string_view tmpl,
                                         const std::map<std::string, std::string>& fields) {
  std::string out;
  for (size_t i = 0; i < tmpl.size(); ++i) {
    if (tmpl[i] != '$') {
      out += tmpl[i];
      continue;
    }
    if (i + 1 < tmpl.size() && tmpl[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    size_t close = tmpl.find('}', i);
    if (i + 1 >= tmpl.size() || tmpl[i + 1] != '{' || close == absl::string_view::npos) {
      return absl::InvalidArgumentError(absl::StrCat("template: stray '$' at offset ", i));
    }
    std::string name(tmpl.substr(i + 2, close - i - 2));
    auto it = fields.find(name);
    if (it == fields.end())
      return absl::InvalidArgumentError(absl::StrCat("template: unknown field ${", name, "}"));
    out += it->second;
    i = close;
  }
  return out;
}

absl::StatusOr<std::string> RenderLbHostFrr(const Config& config, const std::string& hostname,
                                            absl::string_view tmpl) {
  uint32_t lo = UINT32_MAX, hi = 0;
  size_t vips = 0;
  for (const auto& s : config.services) {
    if (IsIpv6(s.vip)) continue;
    uint32_t v = V4(s.vip);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    ++vips;
  }
  if (vips == 0) {
    return absl::FailedPreconditionError(
        "no IPv4 service is configured: there is no VIP range to advertise");
  }
  int len = 32;
  while (len > 0 && (lo & Mask(len)) != (hi & Mask(len))) --len;
  uint32_t host = V4(config.host.address);
  std::map<std::string, std::string> fields = {
      {"hostname", hostname},
      {"router_id", config.host.address},
      {"exception_interface", config.host.exception_interface},
      {"host_subnet", absl::StrCat(V4Text(host & Mask(config.host.prefix_length)), "/",
                                   config.host.prefix_length)},
      {"vip_range", absl::StrCat(V4Text(lo & Mask(len)), "/", len)},
  };
  return FillTemplate(tmpl, fields);
}

}  // namespace ecmplb::control
