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

}  // namespace ecmplb::control
