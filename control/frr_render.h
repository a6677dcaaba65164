// frr_render.h: renders an LB host's FRR configuration (frr-conf/lb-host.frr.conf.in) from
// ecmplb's own configuration, so the VIP range FRR advertises and the interface OSPF runs on
// cannot drift from what ecmplb serves (`ecmplbctl frr-config`).
//
// Template syntax is Python's string.Template, as the lab uses: ${name} is a field, $$ a '$'.
// Fields: hostname, router_id (host.address), exception_interface, host_subnet (host.address
// masked to prefix_length), vip_range (the smallest IPv4 prefix covering every IPv4 VIP); and
// in the OSPFv3 part (frr-conf/lb-host.ospf6.frr.conf.in), appended only when an IPv6 VIP is
// configured, vip6_range (the smallest IPv6 prefix covering every IPv6 VIP).
//
// BGP instead of OSPF (frr-conf/lb-host.bgp.frr.conf.in, and lb-host.bgp6.frr.conf.in for
// IPv6 VIPs): the fields above but the interface and subnet, and local_as, peer, peer_as,
// peer6 from BgpPeering.
//
// Thread-safety: pure function.
#pragma once

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "control/config.h"

namespace ecmplb::control {

// Fills ${name} fields from `fields`; an unknown field or a stray '$' is InvalidArgument.
absl::StatusOr<std::string> FillTemplate(absl::string_view tmpl,
                                         const std::map<std::string, std::string>& fields);

// tmpl: lb-host.frr.conf.in; tmpl6: lb-host.ospf6.frr.conf.in. FailedPrecondition without an
// IPv4 service (OSPFv2 and the BFD profile are the base every LB host has).
absl::StatusOr<std::string> RenderLbHostFrr(const Config& config, const std::string& hostname,
                                            absl::string_view tmpl, absl::string_view tmpl6);

// An LB host's eBGP session(s) with the upstream router.
struct BgpPeering {
  uint32_t local_as = 65001;  // every LB host's AS (one AS: the router sees equal paths)
  uint32_t peer_as = 65000;   // the router's
  std::string peer;           // the router's IPv4 address; "" = host.gateway
  std::string peer6;          // its IPv6 address, for IPv6 VIPs; "" = host.gateway6
};

// FailedPrecondition without an IPv4 service, without a peer address (none given and no
// host.gateway), or with IPv6 VIPs and no IPv6 peer; InvalidArgument for a bad address or AS.
absl::StatusOr<std::string> RenderLbHostBgp(const Config& config, const std::string& hostname,
                                            const BgpPeering& peering, absl::string_view tmpl,
                                            absl::string_view tmpl6);

}  // namespace ecmplb::control
