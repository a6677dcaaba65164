// health.cc: announce decision (see health.h).
#include "control/health.h"

namespace ecmplb::control {

std::map<std::string, std::string> DecideAnnouncements(
    const std::vector<ServiceServability>& services, bool workers_healthy, bool draining) {
  std::map<std::string, std::string> out;
  for (const auto& s : services) {
    auto [it, fresh] = out.emplace(s.vip, "no service of this VIP has a healthy backend");
    if (!s.admin_up) {
      if (fresh) it->second = "administratively down";
      continue;
    }
    if (s.has_healthy_backend) it->second.clear();
  }
  for (auto& [vip, reason] : out) {
    if (draining) {
      reason = "draining";
    } else if (!workers_healthy) {
      reason = "a worker is stalled";
    }
  }
  return out;
}

}  // namespace ecmplb::control
