// frr_render.cc: FRR configuration from ecmplb's configuration (see frr_render.h).
#include "control/frr_render.h"

#include <arpa/inet.h>

#include <vector>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"

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

// The smallest IPv6 prefix covering every address of `addrs` (not empty), as "ADDR/LEN".
std::string CoveringPrefix6(const std::vector<in6_addr>& addrs) {
  int len = 128;
  for (const in6_addr& a : addrs) {
    for (int bit = 0; bit < len; ++bit) {
      const uint8_t m = 0x80 >> (bit % 8);
      if ((a.s6_addr[bit / 8] & m) != (addrs[0].s6_addr[bit / 8] & m)) {
        len = bit;
        break;
      }
    }
  }
  in6_addr net = addrs[0];
  for (int bit = len; bit < 128; ++bit) net.s6_addr[bit / 8] &= ~(0x80 >> (bit % 8));
  char buf[INET6_ADDRSTRLEN];
  return absl::StrCat(inet_ntop(AF_INET6, &net, buf, sizeof(buf)), "/", len);
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
                                            absl::string_view tmpl, absl::string_view tmpl6) {
  uint32_t lo = UINT32_MAX, hi = 0;
  size_t vips = 0;
  std::vector<in6_addr> vips6;
  for (const auto& s : config.services) {
    if (IsIpv6(s.vip)) {
      in6_addr a{};
      inet_pton(AF_INET6, s.vip.c_str(), &a);
      vips6.push_back(a);
      continue;
    }
    uint32_t v = V4(s.vip);
    lo = std::min(lo, v);
    hi = std::max(hi, v);
    ++vips;
  }
  if (vips == 0) {
    return absl::FailedPreconditionError(
        "no IPv4 service is configured: there is no VIP range to advertise (OSPFv2 announces "
        "the IPv4 VIPs and carries the BFD profile that OSPFv3 uses)");
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
  ECMPLB_ASSIGN_OR_RETURN(std::string text, FillTemplate(tmpl, fields));
  if (vips6.empty()) return text;
  fields["vip6_range"] = CoveringPrefix6(vips6);
  ECMPLB_ASSIGN_OR_RETURN(std::string text6, FillTemplate(tmpl6, fields));
  return text + text6;
}

}  // namespace ecmplb::control
