// health.cc: announce decision (see health.h).
#include "control/health.h"

namespace ecmplb::control {

std::map<std::string, std::string> DecideAnnouncements(
    const std::vector<ServiceServability>& services, bool workers_healthy, bool draining,
    const std::set<std::string>* announced) {
  std::map<std::string, std::string> out;
  std::set<std::string> rising;
  for (const auto& s : services) {
    auto [it, fresh] = out.emplace(s.vip, "no service of this VIP has a healthy backend");
    if (!s.admin_up) {
      if (fresh) it->second = "administratively down";
      continue;
    }
    if (s.has_healthy_backend) it->second.clear();
    if (s.has_rising_backend) rising.insert(s.vip);
  }
  if (announced != nullptr) {
    for (auto& [vip, reason] : out) {
      if (reason.empty() && rising.count(vip) && !announced->count(vip)) {
        reason = "waiting for backends that are passing their checks (rise)";
      }
    }
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
