// health_monitor.cc: backend checks, worker watchdog, VIP announcement (see health_monitor.h).
#include "control/health_monitor.h"

#include "absl/strings/str_cat.h"

namespace ecmplb::control {

using HT = HealthCheckConfig::Type;
using CT = CheckSpec::Type;
static_assert(static_cast<int>(HT::kTcp) == static_cast<int>(CT::kTcp) &&
              static_cast<int>(HT::kHttp) == static_cast<int>(CT::kHttp) &&
              static_cast<int>(HT::kUdp) == static_cast<int>(CT::kUdp) &&
              static_cast<int>(HT::kDns) == static_cast<int>(CT::kDns) &&
              static_cast<int>(HT::kScript) == static_cast<int>(CT::kScript) &&
              static_cast<int>(HT::kHttps) == static_cast<int>(CT::kHttps));

std::string ProbeName(const CheckSpec& s) {
  // Every text field with its length first: two different specs never give one name.
  auto text = [](const std::string& t) { return absl::StrCat(t.size(), ":", t); };
  std::string name = absl::StrCat(
      static_cast<int>(s.type), " ", s.addr.ToString(), ":", s.port, " path ", text(s.path),
      " host ", text(s.host_header), " status ", s.expect_status, " body ", text(s.expect_body),
      " send ", text(s.send), " expect ", text(s.expect), " query ", text(s.query), " type ",
      s.query_type, " every ", s.interval_ms, " ms, timeout ", s.timeout_ms, " command ",
      s.command.size());
  for (const std::string& a : s.command) absl::StrAppend(&name, " ", text(a));
  return name;
}

HealthMonitor::HealthMonitor(Netlink* netlink, size_t workers, uint64_t stall_ms, Logger log)
    : nl_(netlink), log_(std::move(log)), watchdog_(workers, stall_ms) {}

void HealthMonitor::FollowInterface(const Config& config) {
  if (nl_ != nullptr && config.host.announce && config.host.announce_interface != ifname_) {
    auto idx = nl_->IfIndex(config.host.announce_interface);
    if (idx.ok()) {
      ifindex_ = *idx;
      ifname_ = config.host.announce_interface;
    } else {
      log_(log::Level::kError, "announce", absl::StrCat("cannot announce VIPs: ", idx.status().message()),
           {{"REASON", std::string(idx.status().message())}});
    }
  }
}

void HealthMonitor::AddService(const ServiceConfig& s, const std::string& name,
                               std::map<BackendRef, RiseFall>* old_state,
                               std::map<BackendRef, BackendHealth>* old_view,
                               const std::function<void(const CheckKey&, const CheckSpec&)>& probe) {
  // One probe per distinct check (address, port, type, path, status, interval, timeout): a
  // backend behind 40 services' ports with the same check is probed once, and the result is
  // recorded by each (service, backend), whose rise/fall counts are its own.
  for (const auto& b : s.backends) {
    BackendRef key{name, b.id};
    BackendHealth h;
    h.address = b.address;
    if (s.health_check) {
      const auto& hc = *s.health_check;
      CheckSpec spec;
      // The two enums list the same types in the same order (static_asserts above).
      spec.type = static_cast<CheckSpec::Type>(hc.type);
      auto addr = dataplane::IpAddr::Parse(b.address);
      if (addr.ok()) spec.addr = *addr;
      spec.port = hc.port != 0 ? hc.port : s.port;
      spec.path = hc.path;
      spec.expect_status = hc.expect_status;
      spec.expect_body = hc.expect_body;
      spec.send = hc.send;
      spec.expect = hc.expect;
      spec.query = hc.query;
      spec.query_type = DnsQueryType(hc.query_type);
      spec.command = hc.command;
      spec.interval_ms = hc.interval_ms;
      spec.timeout_ms = hc.timeout_ms;
      CheckKey name_of_probe{ProbeName(spec), 0};
      probe(name_of_probe, spec);
      subscribers_[name_of_probe].push_back(key);
      probe_of_[key] = std::move(name_of_probe);
      auto old = old_state->find(key);
      auto st = state_.emplace(key, old != old_state->end() ? old->second
                                                            : RiseFall(hc.rise, hc.fall, false));
      auto oldv = old_view->find(key);
      if (oldv != old_view->end() && oldv->second.checked) h = oldv->second;
      h.address = b.address;
      h.checked = true;
      h.up = st.first->second.up();
      if (h.last_detail.empty()) h.last_detail = "not checked yet";
    }
    if (!h.up) unhealthy_.insert(key);
    view_[key] = std::move(h);
  }
}

void HealthMonitor::SetConfig(const Config& config, uint64_t now_ms) {
  FollowInterface(config);
  std::map<BackendRef, RiseFall> old_state = std::move(state_);
  std::map<BackendRef, BackendHealth> old_view = std::move(view_);
  state_.clear();
  view_.clear();
  subscribers_.clear();
  probe_of_.clear();
  unhealthy_.clear();
  std::map<CheckKey, CheckSpec> targets;
  for (const auto& s : config.services) {
    AddService(s, s.Name(), &old_state, &old_view,
               [&](const CheckKey& k, const CheckSpec& spec) { targets.emplace(k, spec); });
  }
  checker_.SetTargets(targets, now_ms);
}

void HealthMonitor::SetService(const std::string& name, const ServiceConfig* service,
                               uint64_t now_ms) {
  // The service's backends leave (their state kept aside for the ones that stay) ...
  std::map<BackendRef, RiseFall> old_state;
  std::map<BackendRef, BackendHealth> old_view;
  const BackendRef lo{name, 0}, hi{name, UINT32_MAX};
  std::vector<CheckKey> unsubscribed;
  for (auto it = view_.lower_bound(lo); it != view_.end() && !(hi < it->first);) {
    const BackendRef key = it->first;
    if (auto p = probe_of_.find(key); p != probe_of_.end()) {
      auto subs = subscribers_.find(p->second);
      if (subs != subscribers_.end()) {
        std::erase(subs->second, key);
        if (subs->second.empty()) {
          unsubscribed.push_back(p->second);
          subscribers_.erase(subs);
        }
      }
      probe_of_.erase(p);
    }
    if (auto st = state_.find(key); st != state_.end()) {
      old_state.insert(*st);
      state_.erase(st);
    }
    old_view.insert(*it);
    unhealthy_.erase(key);
    it = view_.erase(it);
  }
  // ... and come back as configured now.
  if (service != nullptr) {
    AddService(*service, name, &old_state, &old_view,
               [&](const CheckKey& k, const CheckSpec& spec) { checker_.AddTarget(k, spec, now_ms); });
  }
  // Probes nobody records any more stop (one the service still uses kept its schedule).
  for (const CheckKey& k : unsubscribed) {
    if (!subscribers_.contains(k)) checker_.RemoveTarget(k);
  }
}

void HealthMonitor::UnhealthyIn(const ServiceConfig& s, const std::string& name,
                                std::set<BackendRef>* out) const {
  if (!s.health_check) return;
  for (const auto& b : s.backends) {
    BackendRef key{name, b.id};
    auto st = state_.find(key);
    if (st == state_.end() || !st->second.up()) out->insert(std::move(key));
  }
}

bool HealthMonitor::Tick(uint64_t now_ms, const std::vector<uint64_t>& heartbeats) {
  if (watchdog_.Observe(heartbeats, now_ms)) {
    if (watchdog_.healthy()) {
      log_(log::Level::kNotice, "worker", "all workers progress again");
    } else {
      for (size_t i = 0; i < watchdog_.workers(); ++i) {
        if (watchdog_.stalled(i)) {
          log_(log::Level::kWarning, "worker", absl::StrCat("worker ", i, " stalled: no progress"),
               {{"WORKER", absl::StrCat(i)}, {"REASON", "no progress"}});
        }
      }
    }
  }
  bool changed = false;
  for (auto& [probe, r] : checker_.Poll(now_ms)) {
    auto subs = subscribers_.find(probe);
    if (subs == subscribers_.end()) continue;
    for (const BackendRef& key : subs->second) {
      auto st = state_.find(key);
      auto v = view_.find(key);
      if (st == state_.end() || v == view_.end()) continue;
      v->second.last_detail = r.detail;
      v->second.last_check_ms = r.at_ms;
      v->second.last_latency_ms = r.latency_ms;
      if (!st->second.Record(r.ok)) continue;
      v->second.up = st->second.up();
      log_(v->second.up ? log::Level::kNotice : log::Level::kWarning, "backend",
           absl::StrCat("backend ", key.first, " id ", key.second, " is ",
                        v->second.up ? "up" : "down", " (", r.detail, ")"),
           {{"SERVICE", key.first},
            {"BACKEND", v->second.address},
            {"BACKEND_ID", absl::StrCat(key.second)},
            {"STATE", v->second.up ? "up" : "down"},
            {"REASON", r.detail}});
      if (v->second.up) {
        unhealthy_.erase(key);
      } else {
        unhealthy_.insert(key);
      }
      changed = true;
    }
  }
  return changed;
}

void HealthMonitor::Announce(const Config& config) {
  std::vector<ServiceServability> s;
  for (const auto& svc : config.services) {
    ServiceServability x;
    x.vip = svc.vip;
    x.admin_up = svc.admin_up;
    for (const auto& b : svc.backends) {
      if (b.weight > 0 && !unhealthy_.count({svc.Name(), b.id})) x.has_healthy_backend = true;
      if (b.weight > 0) {
        auto st = state_.find({svc.Name(), b.id});
        if (st != state_.end() && st->second.rising()) x.has_rising_backend = true;
      }
    }
    if (svc.sorry_backend) x.has_healthy_backend = true;  // the sorry backend serves
    s.push_back(x);
  }
  decided_ = DecideAnnouncements(s, watchdog_.healthy(), draining_, &announced_);
  held_ = false;
  if (!hold_.empty()) {
    for (auto& [vip, reason] : decided_) {
      if (reason.empty() && !announced_.count(vip)) {
        reason = hold_;
        held_ = true;
      }
    }
  }
  if (!withdraw_.empty()) {
    for (auto& [vip, reason] : decided_) {
      if (reason.empty()) reason = withdraw_;
    }
  }
  for (const auto& [vip, reason] : decided_) Apply(vip, reason.empty(), reason);
  // VIPs of removed services.
  for (auto it = announced_.begin(); it != announced_.end();) {
    if (decided_.count(*it)) {
      ++it;
      continue;
    }
    std::string vip = *it++;
    Apply(vip, false, "no service uses it any more");
  }
}

HealthView HealthMonitor::View(uint64_t now_ms) const {
  HealthView out;
  out.workers_healthy = watchdog_.healthy();
  for (size_t i = 0; i < watchdog_.workers(); ++i)
    out.workers.push_back({static_cast<uint32_t>(i), watchdog_.stalled(i)});
  out.draining = draining_;
  for (const auto& [vip, reason] : decided_)
    out.vips.push_back({vip, announced_.count(vip) > 0, reason.empty() ? "serving" : reason});
  for (const auto& [key, h] : view_) {
    HealthView::Backend b;
    b.service = key.first;
    b.id = key.second;
    b.address = h.address;
    b.up = h.up;
    b.checked = h.checked;
    if (h.checked) {
      b.last_check = h.last_detail;
      b.latency_ms = h.last_latency_ms;
      if (h.last_check_ms != 0) b.last_check_age_ms = now_ms - h.last_check_ms;
    }
    out.backends.push_back(std::move(b));
  }
  return out;
}

void HealthMonitor::WithdrawAll(const std::string& reason) {
  draining_ = true;
  for (auto& [vip, r] : decided_) r = reason;
  std::set<std::string> all = announced_;
  for (const auto& vip : all) Apply(vip, false, reason);
}

void HealthMonitor::Apply(const std::string& vip, bool announce, const std::string& reason) {
  bool is = announced_.count(vip) > 0;
  if (announce == is) return;
  auto addr = dataplane::IpAddr::Parse(vip);
  if (!addr.ok()) return;
  uint8_t plen = addr->is_v6() ? 128 : 32;
  if (nl_ != nullptr && ifindex_ >= 0) {
    absl::Status st =
        announce ? nl_->AddAddress(ifindex_, *addr, plen) : nl_->DelAddress(ifindex_, *addr, plen);
    if (!st.ok()) {
      log_(log::Level::kError, "announce",
           absl::StrCat("cannot ", announce ? "announce " : "withdraw ", vip, ": ", st.message()),
           {{"VIP", vip}, {"REASON", std::string(st.message())}});
      return;
    }
  }
  if (announce) {
    announced_.insert(vip);
    log_(log::Level::kNotice, "announce",
         absl::StrCat("announce ", vip, "/", plen, " on ", ifname_.empty() ? "(nothing)" : ifname_),
         {{"VIP", vip}, {"STATE", "announced"}});
  } else {
    announced_.erase(vip);
    log_(log::Level::kWarning, "announce", absl::StrCat("withdraw ", vip, "/", plen, ": ", reason),
         {{"VIP", vip}, {"STATE", "withdrawn"}, {"REASON", reason}});
  }
}

}  // namespace ecmplb::control
