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

namespace {

// The fields both protocols share: hostname, router_id, vip_range and, with IPv6 VIPs,
// vip6_range (empty without).
absl::StatusOr<std::map<std::string, std::string>> VipFields(const Config& config,
                                                             const std::string& hostname) {
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
        "no IPv4 service is configured: there is no VIP range to advertise (the IPv4 part "
        "announces the IPv4 VIPs and carries the BFD profile that the IPv6 part uses)");
  }
  int len = 32;
  while (len > 0 && (lo & Mask(len)) != (hi & Mask(len))) --len;
  return std::map<std::string, std::string>{
      {"hostname", hostname},
      {"router_id", config.host.address},
      {"vip_range", absl::StrCat(V4Text(lo & Mask(len)), "/", len)},
      {"vip6_range", vips6.empty() ? "" : CoveringPrefix6(vips6)},
  };
}

}  // namespace

absl::StatusOr<std::string> RenderLbHostFrr(const Config& config, const std::string& hostname,
                                            absl::string_view tmpl, absl::string_view tmpl6) {
  ECMPLB_ASSIGN_OR_RETURN(auto fields, VipFields(config, hostname));
  const uint32_t host = V4(config.host.address);
  fields["exception_interface"] = config.host.exception_interface;
  fields["host_subnet"] = absl::StrCat(V4Text(host & Mask(config.host.prefix_length)), "/",
                                       config.host.prefix_length);
  const bool v6 = !fields["vip6_range"].empty();
  ECMPLB_ASSIGN_OR_RETURN(std::string text, FillTemplate(tmpl, fields));
  if (!v6) return text;
  ECMPLB_ASSIGN_OR_RETURN(std::string text6, FillTemplate(tmpl6, fields));
  return text + text6;
}

absl::StatusOr<std::string> RenderLbHostBgp(const Config& config, const std::string& hostname,
                                            const BgpPeering& peering, absl::string_view tmpl,
                                            absl::string_view tmpl6) {
  ECMPLB_ASSIGN_OR_RETURN(auto fields, VipFields(config, hostname));
  for (uint32_t as : {peering.local_as, peering.peer_as}) {
    if (as == 0 || as == 23456) {  // AS_TRANS (RFC 6793) is no AS of its own
      return absl::InvalidArgumentError(absl::StrCat("AS ", as, " is not an AS number to use"));
    }
  }
  if (peering.local_as == peering.peer_as) {
    return absl::InvalidArgumentError(absl::StrCat(
        "local AS and peer AS are both ", peering.local_as, ": this is an eBGP template"));
  }
  const std::string peer = !peering.peer.empty() ? peering.peer : config.host.gateway;
  if (peer.empty()) {
    return absl::FailedPreconditionError(
        "no BGP peer: give the router's address (--peer), or set host.gateway");
  }
  auto canon = CanonicalAddress(peer);
  if (!canon.ok() || IsIpv6(*canon)) {
    return absl::InvalidArgumentError(absl::StrCat("BGP peer '", peer, "' is not an IPv4 address"));
  }
  fields["peer"] = *canon;
  fields["local_as"] = absl::StrCat(peering.local_as);
  fields["peer_as"] = absl::StrCat(peering.peer_as);
  const bool v6 = !fields["vip6_range"].empty();
  if (v6) {
    const std::string peer6 = !peering.peer6.empty() ? peering.peer6 : config.host.gateway6;
    if (peer6.empty()) {
      return absl::FailedPreconditionError(
          "IPv6 VIPs are configured but there is no IPv6 BGP peer: give the router's IPv6 "
          "address (--peer6), or set host.gateway6");
    }
    auto canon6 = CanonicalAddress(peer6);
    if (!canon6.ok() || !IsIpv6(*canon6)) {
      return absl::InvalidArgumentError(
          absl::StrCat("BGP peer6 '", peer6, "' is not an IPv6 address"));
    }
    fields["peer6"] = *canon6;
  }
  ECMPLB_ASSIGN_OR_RETURN(std::string text, FillTemplate(tmpl, fields));
  if (!v6) return text;
  ECMPLB_ASSIGN_OR_RETURN(std::string text6, FillTemplate(tmpl6, fields));
  return text + text6;
}

}  // namespace ecmplb::control
