// control_plane.cc: validated configuration changes and read-only views (see control_plane.h).
#include "control/control_plane.h"

#include <algorithm>
#include <cstring>
#include <tuple>

#include <xxhash.h>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "control/config_edit.h"
#include "control/endpoint.h"
#include "dataplane/flow_hash.h"
#include "dataplane/packet/parse.h"

namespace ecmplb::control {
namespace {

std::string EndpointText(const std::string& address, uint16_t port) {
  return Endpoint{address, port}.ToString();
}

// Decodes a connection-table key's addresses and ports (stored in network order).
struct DecodedKey {
  dataplane::IpAddr src, dst;
  uint16_t sport = 0, dport = 0;
};
DecodedKey Decode(const conntrack::FlowKey& k) {
  DecodedKey d;
  if (k.is_v6()) {
    d.src = dataplane::IpAddr::V6FromBytes(k.addr);
    d.dst = dataplane::IpAddr::V6FromBytes(k.addr + 16);
  } else {
    d.src = dataplane::IpAddr::V4FromBytes(k.addr);
    d.dst = dataplane::IpAddr::V4FromBytes(k.addr + 4);
  }
  d.sport = __builtin_bswap16(k.sport);
  d.dport = __builtin_bswap16(k.dport);
  return d;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControlPlane>> ControlPlane::Create(Config initial,
                                                                   dataplane::MacAddr port_mac,
                                                                   PublishFn publish,
                                                                   Options options) {
  ECMPLB_RETURN_IF_ERROR(Validate(initial));
  std::unique_ptr<ControlPlane> cp(
      new ControlPlane(std::move(initial), port_mac, std::move(publish), std::move(options)));
  if (!cp->options_.save_path.empty()) {
    // What the operator's file holds now: a save over a later edit is refused (Save).
    if (auto text = ReadConfigText(cp->options_.save_path); text.ok()) {
      cp->file_digest_ = FileDigest(*text);
    }
  }
  ECMPLB_ASSIGN_OR_RETURN(auto snap, cp->builder_.Build(cp->config_));
  cp->latest_ = snap.get();
  cp->publish_(std::move(snap));
  return cp;
}

uint64_t ControlPlane::Now() const {
  if (options_.clock) return options_.clock();
  return MonotonicSeconds();
}

uint64_t ControlPlane::ReservationSeconds() const {
  const auto& c = config_.conntrack;
  return std::max({c.tcp_established_s, c.tcp_syn_s, c.tcp_closing_s, c.tcp_probation_s,
                   c.udp_s});
}

bool ControlPlane::Reserved(const std::string& service, uint32_t id) const {
  auto s = removed_.find(service);
  if (s == removed_.end()) return false;
  auto it = s->second.find(id);
  return it != s->second.end() && Now() - it->second < ReservationSeconds();
}

void ControlPlane::ForgetExpiredReservations() {
  const uint64_t now = Now(), hold = ReservationSeconds();
  for (auto s = removed_.begin(); s != removed_.end();) {
    for (auto it = s->second.begin(); it != s->second.end();) {
      it = now - it->second >= hold ? s->second.erase(it) : std::next(it);
    }
    s = s->second.empty() ? removed_.erase(s) : std::next(s);
  }
}

std::map<uint32_t, uint64_t> ControlPlane::ReservedIds(const std::string& service) const {
  std::map<uint32_t, uint64_t> out;
  auto s = removed_.find(service);
  if (s == removed_.end()) return out;
  const uint64_t now = Now(), hold = ReservationSeconds();
  for (const auto& [id, t] : s->second) {
    if (now - t < hold) out[id] = hold - (now - t);
  }
  return out;
}

absl::StatusOr<ApplyResult> ControlPlane::Apply(const Command& cmd) {
  if (options_.services_from_fleet) {
    return absl::FailedPreconditionError(
        "this host is in fleet mode: its services come from etcd (fleet.endpoints); "
        "ecmplbctl writes the change there itself, every host applies it");
  }
  ForgetExpiredReservations();
  ECMPLB_ASSIGN_OR_RETURN(
      ServiceEdit edit,
      EditService(config_, cmd, [this](const std::string& service, uint32_t id) {
        return Reserved(service, id);
      }));
  ApplyResult result;
  result.service = edit.name;
  result.backend_id = edit.backend_id;
  ECMPLB_ASSIGN_OR_RETURN(const ApplyResult applied, ApplyEdit(edit.pos, std::move(edit.now)));
  result.generation = applied.generation;
  result.services_rebuilt = applied.services_rebuilt;
  result.apply_us = applied.apply_us;
  return result;
}

absl::Status ControlPlane::CheckIds(const ServiceConfig* old_svc, const ServiceConfig* now_svc,
                                    std::vector<std::pair<std::string, uint32_t>>* released) const {
  if (old_svc != nullptr && now_svc != nullptr && old_svc->backends == now_svc->backends) {
    return absl::OkStatus();  // the common case
  }
  const ServiceConfig& named = old_svc != nullptr ? *old_svc : *now_svc;
  if (old_svc != nullptr) {
    for (const auto& b : old_svc->backends) {
      const BackendConfig* kept = nullptr;
      if (now_svc != nullptr) {
        for (const auto& nb : now_svc->backends) {
          if (nb.id == b.id) kept = &nb;
        }
      }
      if (kept != nullptr && kept->address != b.address) {
        return absl::FailedPreconditionError(absl::StrCat(
            "backend id ", b.id, " of service ", named.Name(), " would change address from ",
            b.address,
            " to ", kept->address,
            ": flows tracked with that id would reach the new address; give it a new id"));
      }
      if (kept == nullptr) released->emplace_back(named.Name(), b.id);
    }
  }
  if (now_svc == nullptr || removed_.empty()) return absl::OkStatus();  // nothing is reserved
  const std::string name = named.Name();
  for (const auto& b : now_svc->backends) {
    bool existed = false;
    if (old_svc != nullptr) {
      for (const auto& ob : old_svc->backends) existed |= ob.id == b.id;
    }
    if (!existed && Reserved(name, b.id)) {
      return absl::FailedPreconditionError(
          absl::StrCat("backend id ", b.id, " of service ", name,
                       " was removed recently and is reserved until its tracked flows expire "
                       "(conntrack idle timeout)"));
    }
  }
  return absl::OkStatus();
}

std::set<BackendRef> ControlPlane::UnhealthyIn(const Config& config) const {
  if (!options_.unhealthy_in) return unhealthy_;
  std::set<BackendRef> out;
  for (const auto& s : config.services) options_.unhealthy_in(s, s.Name(), &out);
  return out;
}

absl::StatusOr<ApplyResult> ControlPlane::ApplyConfig(Config candidate) {
  return ApplyWhole(std::move(candidate), /*save=*/true);
}

absl::StatusOr<ApplyResult> ControlPlane::ApplyWhole(Config candidate, bool save) {
  const uint64_t t0 = MonotonicUs();
  ForgetExpiredReservations();
  // Services are matched through hash indexes (canonical VIP text, port, protocol): linear in
  // the number of services, whatever their count. Unchanged services passed validation when
  // they were applied: only the others are checked service by service.
  using Key = std::tuple<absl::string_view, uint16_t, Protocol>;
  absl::flat_hash_map<Key, const ServiceConfig*> running;
  running.reserve(config_.services.size());
  for (const auto& s : config_.services) running[{s.vip, s.port, s.protocol}] = &s;
  auto find = [](const auto& index, const ServiceConfig& s) -> const ServiceConfig* {
    auto it = index.find(Key{s.vip, s.port, s.protocol});
    return it == index.end() ? nullptr : it->second;
  };
  ECMPLB_RETURN_IF_ERROR(ValidateServices(candidate, [&](size_t i) {
    const ServiceConfig* old = find(running, candidate.services[i]);
    return old == nullptr || !(*old == candidate.services[i]);
  }));
  // Diff: backends (service, id) that leave, ids that change address or would be reused too
  // early.
  absl::flat_hash_map<Key, const ServiceConfig*> in_candidate;
  in_candidate.reserve(candidate.services.size());
  for (const auto& s : candidate.services) in_candidate[{s.vip, s.port, s.protocol}] = &s;
  std::vector<std::pair<std::string, uint32_t>> released;
  for (const auto& old_svc : config_.services) {
    if (find(in_candidate, old_svc) == nullptr) {
      ECMPLB_RETURN_IF_ERROR(CheckIds(&old_svc, nullptr, &released));
    }
  }
  for (const auto& svc : candidate.services) {
    ECMPLB_RETURN_IF_ERROR(CheckIds(find(running, svc), &svc, &released));
  }

  std::set<BackendRef> unhealthy = UnhealthyIn(candidate);
  ECMPLB_ASSIGN_OR_RETURN(auto snap, builder_.Build(candidate, unhealthy));
  if (save && !options_.save_path.empty() && !options_.defer_save) {
    if (absl::Status st = Save(candidate); !st.ok()) return SaveFailed(st);
  }
  config_ = std::move(candidate);
  if (!save) {
    const ApplyResult r = Published(std::move(snap), std::move(unhealthy), released, t0,
                                    AppliedChange{});
    save_pending_ = false;  // the file already holds it
    return r;
  }
  return Published(std::move(snap), std::move(unhealthy), released, t0, AppliedChange{});
}

absl::StatusOr<ApplyResult> ControlPlane::ApplyEdit(size_t pos, std::optional<ServiceConfig> now) {
  const uint64_t t0 = MonotonicUs();
  auto& services = config_.services;
  const bool add = pos == services.size();
  // In place, undone on any error: a copy of the whole configuration costs milliseconds at
  // 10,000 services.
  std::optional<ServiceConfig> old;
  SnapshotBuilder::Delta delta;
  if (add) {
    services.push_back(std::move(*now));
    delta.changed.push_back(pos);
  } else if (!now) {
    old = std::move(services[pos]);
    services.erase(services.begin() + static_cast<std::ptrdiff_t>(pos));
    delta.erased = pos;
  } else {
    old = std::move(services[pos]);
    services[pos] = std::move(*now);
    delta.changed.push_back(pos);
  }
  auto undo = [&] {
    if (add) {
      services.pop_back();
    } else if (delta.erased) {
      services.insert(services.begin() + static_cast<std::ptrdiff_t>(pos), std::move(*old));
    } else {
      services[pos] = std::move(*old);
    }
  };
  const ServiceConfig* edited = delta.erased ? nullptr : &services[pos];
  std::vector<std::pair<std::string, uint32_t>> released;
  absl::Status st = ValidateServiceEdit(config_, delta.erased ? std::nullopt : std::optional(pos));
  if (st.ok()) st = CheckIds(old ? &*old : nullptr, edited, &released);
  if (!st.ok()) {
    undo();
    return st;
  }
  std::set<BackendRef> unhealthy = unhealthy_;
  if (options_.unhealthy_in) {
    const std::string name = (edited != nullptr ? edited : &*old)->Name();
    unhealthy.erase(unhealthy.lower_bound({name, 0}), unhealthy.upper_bound({name, UINT32_MAX}));
    if (edited != nullptr) options_.unhealthy_in(*edited, name, &unhealthy);
  }
  auto snap = builder_.Build(config_, unhealthy, delta);
  if (!snap.ok()) {
    undo();
    return snap.status();
  }
  if (!options_.save_path.empty() && !options_.defer_save) {
    if (st = Save(config_); !st.ok()) {
      undo();
      return SaveFailed(st);
    }
  }
  AppliedChange change;
  change.all = false;
  change.service = (edited != nullptr ? edited : &*old)->Name();
  change.now = edited;
  return Published(std::move(*snap), std::move(unhealthy), released, t0, change);
}

uint64_t ControlPlane::FileDigest(absl::string_view text) {
  return XXH3_64bits(text.data(), text.size());
}

absl::Status ControlPlane::Save(const Config& config) {
  if (options_.services_from_fleet) return absl::OkStatus();  // the file holds host settings only
  if (file_digest_) {
    auto now = ReadConfigText(options_.save_path);
    if (now.ok() && FileDigest(*now) != *file_digest_) {
      return absl::FailedPreconditionError(absl::StrCat(
          options_.save_path,
          " was edited since ecmplb last read or wrote it, and is not overwritten: "
          "`ecmplbctl config reload` (or SIGHUP) applies the edit and drops live changes "
          "that the file does not hold"));
    }
  }
  const std::string text = SerializeConfig(config);
  ECMPLB_RETURN_IF_ERROR(WriteConfigText(text, options_.save_path));
  file_digest_ = FileDigest(text);
  return absl::OkStatus();
}

absl::StatusOr<ReloadResult> ControlPlane::Reload() {
  absl::StatusOr<ReloadResult> r = ReloadFile();
  if (options_.log) {
    if (r.ok()) {
      options_.log(log::Level::kNotice, "reload",
                   absl::StrCat("config reload: ", r->services_added, " services added, ",
                                r->services_removed, " removed, ", r->services_changed,
                                " changed; ", r->applied.services_rebuilt,
                                " tables rebuilt, generation ", r->applied.generation));
    } else {
      options_.log(log::Level::kError, "reload", std::string(r.status().message()),
                   {{"REASON", std::string(r.status().message())}});
    }
  }
  return r;
}

absl::StatusOr<ReloadResult> ControlPlane::ReloadFile() {
  const std::string& path = options_.save_path;
  constexpr absl::string_view kRefused = "config reload refused, running configuration kept: ";
  if (path.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(kRefused, "no configuration file"));
  }
  absl::StatusOr<std::string> text = ReadConfigText(path);
  if (!text.ok()) {
    return absl::Status(text.status().code(), absl::StrCat(kRefused, text.status().message()));
  }
  absl::StatusOr<Config> candidate = ParseConfig(*text);
  if (!candidate.ok()) {
    return absl::Status(candidate.status().code(),
                        absl::StrCat(kRefused, path, ": ", candidate.status().message()));
  }
  if (options_.services_from_fleet && !candidate->services.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(kRefused, path, ": services: in fleet mode the services come from etcd "
                     "only; keep them out of the file"));
  }
  if (const auto fields = RestartOnlyChanges(config_, *candidate); !fields.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(kRefused, path, " changes ", absl::StrJoin(fields, ", "),
                     ", which only a restart applies (a reload applies services)"));
  }
  ReloadResult out;
  if (options_.services_from_fleet) {  // host settings re-read and unchanged: nothing to apply
    file_digest_ = FileDigest(*text);
    return out;
  }
  {
    std::set<std::string> before, after;
    std::map<std::string, const ServiceConfig*> running;
    for (const auto& s : config_.services) running[s.Name()] = &s;
    for (const auto& s : candidate->services) {
      auto it = running.find(s.Name());
      if (it == running.end()) {
        ++out.services_added;
      } else {
        if (!(*it->second == s)) ++out.services_changed;
        running.erase(it);
      }
    }
    out.services_removed = running.size();
  }
  absl::StatusOr<ApplyResult> applied = ApplyWhole(std::move(*candidate), /*save=*/false);
  if (!applied.ok()) {
    return absl::Status(applied.status().code(),
                        absl::StrCat(kRefused, path, ": ", applied.status().message()));
  }
  out.applied = *applied;
  file_digest_ = FileDigest(*text);
  save_error_.clear();
  return out;
}

absl::Status ControlPlane::SaveFailed(const absl::Status& st) {
  // The builder has moved on to the candidate: rebuild the running configuration and publish
  // it so the builder's slots match what the workers use.
  auto back = builder_.Build(config_, unhealthy_);
  if (back.ok()) {
    latest_ = back->get();
    publish_(std::move(*back));
  } else {
    builder_.ForgetLast();  // its last build is the refused candidate: no delta may start there
  }
  return absl::Status(st.code(), absl::StrCat("change not applied: cannot save the configuration: ",
                                              st.message()));
}

ApplyResult ControlPlane::Published(std::unique_ptr<const dataplane::Snapshot> snap,
                                    std::set<BackendRef> unhealthy,
                                    const std::vector<std::pair<std::string, uint32_t>>& released,
                                    uint64_t t0, const AppliedChange& change) {
  ApplyResult result;
  result.generation = builder_.generation();
  result.services_rebuilt = builder_.services_rebuilt();
  latest_ = snap.get();
  publish_(std::move(snap));
  unhealthy_ = std::move(unhealthy);
  if (options_.defer_save && !options_.save_path.empty()) save_pending_ = true;
  const uint64_t now = Now();
  for (const auto& [service, id] : released) removed_[service][id] = now;
  result.apply_us = MonotonicUs() - t0;
  if (options_.log && result.apply_us >= options_.slow_apply_ms * 1000) {
    options_.log(log::Level::kInfo, "apply",
                 absl::StrCat("configuration change applied in ", result.apply_us / 1000, " ms: ",
                              result.services_rebuilt, " of ", config_.services.size(),
                              " services rebuilt, generation ", result.generation));
  }
  if (options_.on_applied) options_.on_applied(config_, change);
  return result;
}

absl::Status ControlPlane::SetUnhealthy(std::set<BackendRef> unhealthy) {
  if (unhealthy == unhealthy_) return absl::OkStatus();
  // Only the services whose failed backends changed are rebuilt (a backend going down at
  // 10,000 services costs what it costs at 10).
  std::set<std::string> names;
  {
    std::vector<BackendRef> diff;
    std::set_symmetric_difference(unhealthy.begin(), unhealthy.end(), unhealthy_.begin(),
                                  unhealthy_.end(), std::back_inserter(diff));
    for (const auto& [name, id] : diff) names.insert(name);
  }
  SnapshotBuilder::Delta delta;
  constexpr size_t kFewServices = 16;  // more (a backend shared by many died): one full pass
  for (const std::string& name : names) {
    auto ref = ParseServiceRef(name);
    if (!ref.ok() || names.size() > kFewServices) continue;  // not a service name: no change
    for (size_t i = 0; i < config_.services.size(); ++i) {
      if (Matches(config_.services[i], *ref)) delta.changed.push_back(i);
    }
  }
  ECMPLB_ASSIGN_OR_RETURN(auto snap, names.size() > kFewServices
                                         ? builder_.Build(config_, unhealthy)
                                         : builder_.Build(config_, unhealthy, delta));
  unhealthy_ = std::move(unhealthy);
  latest_ = snap.get();
  publish_(std::move(snap));
  return absl::OkStatus();
}

absl::Status ControlPlane::SaveIfDirty() {
  if (!save_pending_) return absl::OkStatus();
  if (absl::Status st = Save(config_); !st.ok()) {
    save_error_ = std::string(st.message());
    return st;
  }
  save_pending_ = false;
  save_error_.clear();
  return absl::OkStatus();
}

ShowView ControlPlane::Show(const ServiceConfig* only) const {
  // Flows per (service slot, backend id), over every worker's table.
  std::map<std::pair<uint32_t, uint32_t>, uint64_t> flows;
  for (const auto& w : workers_) {
    if (w.table == nullptr) continue;
    w.table->ForEach([&](const conntrack::FlowSnapshot& f) {
      ++flows[{f.key.service, f.backend_id}];
      return true;
    });
  }
  ShowView out;
  out.generation = builder_.generation();
  out.save_pending = save_pending_;
  out.save_error = save_error_;
  for (const auto& s : config_.services) {
    if (only != nullptr && &s != only) continue;
    const std::string name = s.Name();
    ShowView::Service vs;
    vs.service = name;
    vs.vip = s.vip;
    vs.port = s.port;
    vs.protocol = s.protocol;
    vs.forward = s.forward;
    vs.hash = s.hash;
    vs.table_size = s.table_size;
    const dataplane::Service* live =
        latest_ != nullptr
            ? latest_->Find(ToServiceKey(s).vip, s.port, static_cast<uint8_t>(s.protocol))
            : nullptr;
    std::vector<uint32_t> slots;
    if (live != nullptr && live->table.has_value()) slots = live->table->SlotCounts();
    const int service_slot = builder_.ServiceSlot(name);
    for (size_t i = 0; i < s.backends.size(); ++i) {
      const auto& b = s.backends[i];
      uint64_t nflows = 0;
      if (service_slot >= 0) {
        auto it = flows.find({static_cast<uint32_t>(service_slot), b.id});
        if (it != flows.end()) nflows = it->second;
      }
      vs.backends.push_back({.id = b.id,
                             .address = b.address,
                             .port = b.port == 0 ? s.port : b.port,
                             .weight = b.weight,
                             .state = unhealthy_.count({name, b.id}) ? BackendState::kFailed
                                      : b.weight == 0                ? BackendState::kDraining
                                                                     : BackendState::kActive,
                             .maglev_slots = i < slots.size() ? slots[i] : 0,
                             .flows = nflows});
    }
    if (s.sorry_backend) {
      bool sorry_serving = live != nullptr && live->PositionOf(kSorryBackendId) >= 0;
      vs.sorry_backend = ShowView::SorryBackend{s.sorry_backend->address, sorry_serving};
    }
    vs.serving = live != nullptr && live->table.has_value();
    for (const auto& [id, left] : ReservedIds(name)) vs.reserved_ids.push_back({id, left});
    out.services.push_back(std::move(vs));
  }
  if (health_view_) out.health = health_view_();
  if (fleet_view_) out.fleet = fleet_view_();
  return out;
}

StatsView ControlPlane::Stats(const ServiceConfig* only) const {
  StatsView out;
  for (const auto& w : workers_) {
    StatsView::Worker vw;
    vw.name = w.name;
    vw.id = w.id;
    for (size_t i = 0; i < dataplane::kNumCounters; ++i) {
      vw.counters[i] = w.counters->counters[i].Get();
      out.total[i] += vw.counters[i];
    }
    for (size_t i = 1; i < kParseResults; ++i) {
      vw.parse[i] = w.counters->parse[i].Get();
      out.parse_total[i] += vw.parse[i];
    }
    if (w.table != nullptr) {
      conntrack::Stats st = w.table->stats();
      vw.conntrack = StatsView::Conntrack{.entries = w.table->Count(),
                                          .capacity = w.table->capacity(),
                                          .inserts = st.inserts,
                                          .updates = st.updates,
                                          .evictions = st.evictions,
                                          .expirations = st.expirations,
                                          .full = st.full};
    }
    out.workers.push_back(std::move(vw));
  }
  for (const auto& s : config_.services) {
    if (only != nullptr && &s != only) continue;
    StatsView::Service vs;
    vs.service = s.Name();
    int slot = builder_.ServiceSlot(vs.service);
    for (const auto& w : workers_) {
      if (slot < 0) break;
      if (const auto* c = w.counters->services.Find(static_cast<size_t>(slot))) {
        vs.packets += c->packets.Get();
        vs.bytes += c->bytes.Get();
      }
    }
    for (const auto& b : s.backends) {
      StatsView::Backend vb;
      vb.id = b.id;
      vb.address = b.address;
      int bslot = builder_.BackendSlot(vs.service, b.id);
      for (const auto& w : workers_) {
        if (bslot < 0) break;
        if (const auto* c = w.counters->backends.Find(static_cast<size_t>(bslot))) {
          vb.packets += c->packets.Get();
          vb.bytes += c->bytes.Get();
        }
      }
      vs.backends.push_back(std::move(vb));
    }
    out.services.push_back(std::move(vs));
  }
  if (sync_view_) out.sync = sync_view_();
  return out;
}

ConnsView ControlPlane::Conns(size_t limit) const {
  // Service slot -> service config, for names and backend addresses.
  std::map<uint32_t, const ServiceConfig*> by_slot;
  for (const auto& s : config_.services) {
    int slot = builder_.ServiceSlot(s.Name());
    if (slot >= 0) by_slot[static_cast<uint32_t>(slot)] = &s;
  }
  const bool have_clock = static_cast<bool>(options_.worker_clock);
  const uint32_t now = have_clock ? static_cast<uint32_t>(options_.worker_clock()) : 0;
  ConnsView out;
  for (const auto& w : workers_) {
    if (w.table == nullptr) continue;
    out.total += w.table->Count();
    if (out.flows.size() >= limit) continue;
    for (const auto& f : w.table->Dump(limit - out.flows.size())) {
      DecodedKey d = Decode(f.key);
      auto it = by_slot.find(f.key.service);
      const ServiceConfig* s = it == by_slot.end() ? nullptr : it->second;
      ConnsView::Flow vf;
      vf.worker = w.id;
      vf.client = EndpointText(d.src.ToString(), d.sport);
      vf.protocol = f.key.proto;
      vf.backend_id = f.backend_id;
      vf.state = f.state;
      vf.last_seen = f.last_seen;
      if (s != nullptr) {
        vf.service = s->Name();
        for (const auto& b : s->backends) {
          if (b.id == f.backend_id) vf.backend = b.address;
        }
      }
      if (have_clock) vf.idle_s = static_cast<uint32_t>(now - f.last_seen);
      out.flows.push_back(std::move(vf));
    }
  }
  return out;
}

ServiceListView ControlPlane::ServiceList() const {
  ServiceListView out;
  for (const auto& s : config_.services) {
    out.services.push_back({.service = s.Name(),
                            .forward = s.forward,
                            .hash = s.hash,
                            .table_size = s.table_size,
                            .backends = s.backends.size()});
  }
  return out;
}

absl::StatusOr<LookupView> ControlPlane::Lookup(absl::string_view service,
                                                absl::string_view client) const {
  ECMPLB_ASSIGN_OR_RETURN(const ServiceRef ref, ParseServiceRef(service));
  const ServiceConfig* sc = config_.FindService(ref.vip, ref.port, ref.protocol);
  if (sc == nullptr) return ServiceNotFound(ref);
  auto ep = ParseEndpoint(client, true);
  if (!ep.ok()) return absl::InvalidArgumentError(absl::StrCat("client: ", ep.status().message()));
  if (IsIpv6(ep->address) != IsIpv6(sc->vip)) {
    return absl::InvalidArgumentError(absl::StrCat("client ", ep->ToString(), " and service ",
                                                   sc->Name(),
                                                   " are of different address families"));
  }
  const dataplane::ServiceKey key = ToServiceKey(*sc);
  const dataplane::Service* svc =
      latest_ == nullptr ? nullptr : latest_->Find(key.vip, key.port, key.proto);
  if (svc == nullptr) return absl::InternalError("service missing from the published snapshot");

  dataplane::FlowTuple flow;
  ECMPLB_ASSIGN_OR_RETURN(const dataplane::IpAddr client_addr,
                          dataplane::IpAddr::Parse(ep->address));
  flow.family = client_addr.family;
  flow.proto = key.proto;
  flow.src = client_addr;
  flow.dst = key.vip;
  flow.sport = ep->port;
  flow.dport = key.port;

  auto backend_view = [&](int32_t pos) -> std::optional<LookupView::Backend> {
    if (pos < 0) return std::nullopt;
    const auto& b = svc->backends[static_cast<size_t>(pos)];
    return LookupView::Backend{b.id, b.addr.ToString(), b.weight};
  };
  // The pipeline's key and Maglev hash of this flow (dataplane/flow_hash.h).
  const dataplane::FlowPlacement placed = dataplane::PlaceFlow(*svc, flow);
  int32_t maglev_pos = -1;
  if (svc->table.has_value()) {
    maglev_pos = static_cast<int32_t>(svc->table->Lookup(placed.maglev_hash));
  }

  std::vector<LookupView::Tracked> tracked;
  int32_t tracked_pos = -1;
  for (const auto& w : workers_) {
    if (w.table == nullptr) continue;
    const std::optional<conntrack::FlowSnapshot> f = w.table->Peek(placed.key);
    if (!f.has_value()) continue;
    tracked.push_back({w.id, f->backend_id, f->state});
    if (tracked_pos < 0) tracked_pos = svc->PositionOf(f->backend_id);
  }
  LookupView out;
  out.service = sc->Name();
  out.client = ep->ToString();
  out.maglev_backend = backend_view(maglev_pos);
  out.tracked_by = std::move(tracked);
  // A tracked flow keeps its backend while that backend exists; otherwise Maglev decides
  // (none: no usable backend).
  out.backend = backend_view(tracked_pos >= 0 ? tracked_pos : maglev_pos);
  return out;
}

}  // namespace ecmplb::control
