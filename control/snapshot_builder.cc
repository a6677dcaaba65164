// snapshot_builder.cc: configuration model -> dataplane Snapshot (see snapshot_builder.h).
#include "control/snapshot_builder.h"

#include <cstdio>
#include <cstdlib>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "maglev/maglev.h"

namespace ecmplb::control {
namespace {

static_assert(kMaxServices <= dataplane::kMaxServiceSlots, "a counter slot per service");
static_assert(dataplane::kMaxServiceSlots <= 65536, "the slot is the flow key's 16-bit service");
static_assert(kMaxBackendsPerHost <= dataplane::kMaxBackendSlots, "a counter slot per backend");

dataplane::IpAddr Addr(const std::string& canonical) {
  auto a = dataplane::IpAddr::Parse(canonical);
  return a.ok() ? *a : dataplane::IpAddr{};
}

bool SameSubnet(const dataplane::IpAddr& a, const dataplane::IpAddr& b, uint8_t prefix) {
  if (a.family != b.family) return false;
  if (a.is_v4()) {
    uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
    return (a.v4_host() & mask) == (b.v4_host() & mask);
  }
  for (size_t bit = 0; bit < prefix && bit < 128; bit += 8) {
    const size_t n = prefix - bit;
    const uint8_t mask = n >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - n));
    if ((a.bytes[bit / 8] & mask) != (b.bytes[bit / 8] & mask)) return false;
  }
  return true;
}

maglev::BackendId MaglevId(const dataplane::IpAddr& a, uint16_t port) {
  if (a.is_v4()) {
    std::array<uint8_t, 4> b;
    std::copy_n(a.bytes.begin(), 4, b.begin());
    return maglev::BackendId::V4(b, port);
  }
  return maglev::BackendId::V6(a.bytes, port);
}

}  // namespace

dataplane::ServiceKey ToServiceKey(const ServiceConfig& s) {
  return dataplane::ServiceKey{Addr(s.vip), s.port, static_cast<uint8_t>(s.protocol)};
}

uint32_t SnapshotBuilder::SlotPool::Take() {
  if (next_ < capacity_) return next_++;
  if (free_.empty()) {  // Build checks availability first: a bug, never a configuration
    std::fprintf(stderr, "ecmplb: snapshot builder: slot pool of %u exhausted\n", capacity_);
    std::abort();
  }
  uint32_t s = *free_.begin();
  free_.erase(free_.begin());
  return s;
}

absl::StatusOr<dataplane::IpAddr> SnapshotBuilder::NextHop(const Config& config,
                                                           const ServiceConfig& s,
                                                           const BackendConfig& b) const {
  dataplane::IpAddr host = Addr(config.host.address);
  dataplane::IpAddr addr = Addr(b.address);
  if (s.forward == ForwardMode::kDr) {
    if (addr.is_v4() && !SameSubnet(addr, host, config.host.prefix_length)) {
      return absl::FailedPreconditionError(
          absl::StrCat(s.Name(), ": DR backend ", b.address, " is not on this host's subnet ",
                       config.host.address, "/", config.host.prefix_length,
                       " (DR needs backends on the same L2 segment; use a tunnel: forward gre, "
                       "ipip or gue)"));
    }
    return addr;
  }
  if (addr.is_v6()) {
    // An IPv6 tunnel backend: on address6's link, or through gateway6.
    if (!config.host.address6.empty() &&
        SameSubnet(addr, Addr(config.host.address6), config.host.prefix_length6)) {
      return addr;
    }
    if (config.host.gateway6.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          s.Name(), ": ", absl::AsciiStrToUpper(ForwardModeName(s.forward)), " backend ",
          b.address, " is not on host.address6's subnet and host.gateway6 is not set"));
    }
    return Addr(config.host.gateway6);
  }
  if (SameSubnet(addr, host, config.host.prefix_length)) return addr;
  if (config.host.gateway.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat(s.Name(), ": ", absl::AsciiStrToUpper(ForwardModeName(s.forward)),
                     " backend ", b.address, " is off-link and host.gateway is not set"));
  }
  return Addr(config.host.gateway);
}

namespace {

// The Service of `s` without its slots (filled in once the build can no longer fail): entries,
// weights (0 for failed backends), position_of_id and the Maglev table.
absl::StatusOr<std::shared_ptr<dataplane::Service>> MakeService(
    const ServiceConfig& s, const std::vector<uint32_t>& down) {
  auto svc = std::make_shared<dataplane::Service>();
  svc->key = ToServiceKey(s);
  switch (s.forward) {
    case ForwardMode::kDr:
      svc->forward = dataplane::ForwardMode::kDr;
      break;
    case ForwardMode::kGre:
      svc->forward = dataplane::ForwardMode::kGre;
      break;
    case ForwardMode::kIpip:
      svc->forward = dataplane::ForwardMode::kIpip;
      break;
    case ForwardMode::kGue:
      svc->forward = dataplane::ForwardMode::kGue;
      break;
  }
  svc->hash = s.hash == HashMode::kFiveTuple ? dataplane::HashMode::kFiveTuple
                                             : dataplane::HashMode::kSourceIp;
  uint32_t max_id = 0;
  for (const auto& b : s.backends) max_id = std::max(max_id, b.id);
  svc->position_of_id.assign(max_id + 1, -1);
  std::vector<maglev::Backend> mb;
  bool any_usable = false;
  for (size_t k = 0; k < s.backends.size(); ++k) {
    const auto& b = s.backends[k];
    dataplane::BackendEntry e;
    e.id = b.id;
    e.addr = Addr(b.address);
    const bool up = !std::binary_search(down.begin(), down.end(), b.id);
    e.weight = up ? b.weight : 0;
    // A failed backend is treated as removed: its tracked flows are re-picked.
    if (up) svc->position_of_id[b.id] = static_cast<int32_t>(k);
    any_usable = any_usable || e.weight > 0;
    svc->backends.push_back(e);
    mb.push_back(maglev::Backend{MaglevId(e.addr, s.port), e.weight});
  }
  if (!any_usable && s.sorry_backend) {
    // Nothing usable: every new flow (and every flow of a failed backend) goes to the sorry
    // backend, the only weight in the table. It leaves again as soon as a backend is usable.
    dataplane::BackendEntry e;
    e.id = kSorryBackendId;
    e.addr = Addr(s.sorry_backend->address);
    e.weight = 1;
    svc->position_of_id[kSorryBackendId] = static_cast<int32_t>(svc->backends.size());
    svc->backends.push_back(e);
    mb.push_back(maglev::Backend{MaglevId(e.addr, s.port), 1});
    any_usable = true;
  }
  if (any_usable) {
    auto table = maglev::Table::Build(mb, s.table_size);
    if (!table.ok())
      return absl::Status(table.status().code(),
                          absl::StrCat(s.Name(), ": ", table.status().message()));
    svc->table = std::move(*table);
  }
  return svc;
}

}  // namespace

absl::StatusOr<std::unique_ptr<const dataplane::Snapshot>> SnapshotBuilder::Build(
    const Config& config, const std::set<BackendRef>& unhealthy) {
  return BuildFrom(config, unhealthy, nullptr);
}

absl::StatusOr<std::unique_ptr<const dataplane::Snapshot>> SnapshotBuilder::Build(
    const Config& config, const std::set<BackendRef>& unhealthy, const Delta& delta) {
  return BuildFrom(config, unhealthy, &delta);
}

absl::StatusOr<std::unique_ptr<const dataplane::Snapshot>> SnapshotBuilder::BuildFrom(
    const Config& config, const std::set<BackendRef>& unhealthy, const Delta* delta) {
  const HostKey host_key{config.host.address,  config.host.gateway,
                         config.host.prefix_length, config.host.address6,
                         config.host.gateway6, config.host.prefix_length6};
  const bool host_changed = !(host_key == host_);
  // A delta that does not fit the last build (or a host change, which rebuilds every service)
  // takes the whole pass.
  if (delta != nullptr) {
    const size_t last = last_services_.size() - (delta->erased ? 1 : 0);
    bool fits = built_ && !host_changed && config.services.size() >= last &&
                (!delta->erased || *delta->erased < last_services_.size());
    for (size_t i = last; fits && i < config.services.size(); ++i) {
      fits = std::find(delta->changed.begin(), delta->changed.end(), i) != delta->changed.end();
    }
    for (const size_t i : delta->changed) fits = fits && i < config.services.size();
    if (!fits) delta = nullptr;
  }

  // Phase 1, nothing changes: which services are reused, and everything that can fail for the
  // others (next hops, Maglev tables, slots available).
  struct Change {
    size_t index;          // in config.services
    std::string name;
    std::vector<uint32_t> down;
    std::vector<dataplane::IpAddr> hops;  // backends, then the sorry backend
    std::shared_ptr<dataplane::Service> service;
  };
  std::vector<Change> changes;
  std::vector<std::shared_ptr<const dataplane::Service>> services;
  std::vector<std::string> names;  // of the services looked at (all of them without a delta)
  std::vector<size_t> look;        // their positions
  if (delta == nullptr) {
    services.resize(config.services.size());
    look.resize(config.services.size());
    for (size_t i = 0; i < look.size(); ++i) look[i] = i;
  } else {
    services = last_services_;
    if (delta->erased) services.erase(services.begin() + static_cast<ptrdiff_t>(*delta->erased));
    services.resize(config.services.size());
    look = delta->changed;
  }
  names.resize(look.size());
  size_t new_service_slots = 0;
  for (size_t li = 0; li < look.size(); ++li) {
    const size_t i = look[li];
    const ServiceConfig& s = config.services[i];
    names[li] = s.Name();
    const std::string& name = names[li];
    std::vector<uint32_t> down;
    for (auto it = unhealthy.lower_bound({name, 0}); it != unhealthy.end() && it->first == name;
         ++it) {
      down.push_back(it->second);
    }
    auto e = entries_.find(name);
    if (e != entries_.end() && !host_changed && e->second.down == down && e->second.config == s) {
      services[i] = e->second.service;
      continue;
    }
    if (e == entries_.end()) ++new_service_slots;
    Change c{i, name, std::move(down), {}, nullptr};
    std::vector<const BackendConfig*> all;
    for (const auto& b : s.backends) all.push_back(&b);
    if (s.sorry_backend) all.push_back(&*s.sorry_backend);
    for (const BackendConfig* b : all) {
      ECMPLB_ASSIGN_OR_RETURN(dataplane::IpAddr hop, NextHop(config, s, *b));
      c.hops.push_back(hop);
    }
    ECMPLB_ASSIGN_OR_RETURN(c.service, MakeService(s, c.down));
    changes.push_back(std::move(c));
  }
  // Services that left: the entries the loop did not find (none when every entry was found;
  // service names are unique, Validate).
  std::vector<std::string> gone;
  if (delta != nullptr) {
    // (Unless it came back among the changed services: then it only moved.)
    if (delta->erased && std::find(names.begin(), names.end(), last_names_[*delta->erased]) ==
                             names.end()) {
      gone.push_back(last_names_[*delta->erased]);
    }
  } else if (entries_.size() + new_service_slots != config.services.size()) {
    absl::flat_hash_set<absl::string_view> present(names.begin(), names.end());
    for (const auto& [name, e] : entries_) {
      if (!present.contains(name)) gone.push_back(name);
    }
  }
  // Slots: what the change takes and gives back, checked before anything moves.
  {
    size_t backends_needed = 0, backends_freed = 0;
    absl::flat_hash_map<dataplane::IpAddr, int64_t> hop_delta;
    auto old_of = [&](const std::string& name) -> const Entry* {
      auto e = entries_.find(name);
      return e == entries_.end() ? nullptr : &e->second;
    };
    for (const std::string& name : gone) {
      const Entry& e = entries_.at(name);
      backends_freed += e.backend_slots.size();
      for (const auto& h : e.hops) --hop_delta[h];
    }
    for (const Change& c : changes) {
      const Entry* old = old_of(c.name);
      const ServiceConfig& s = config.services[c.index];
      const size_t n = s.backends.size() + (s.sorry_backend ? 1 : 0);
      size_t kept = 0;
      if (old != nullptr) {
        for (const auto& h : old->hops) --hop_delta[h];
        for (size_t k = 0; k < n; ++k) {
          const uint32_t id = k < s.backends.size() ? s.backends[k].id : kSorryBackendId;
          for (size_t j = 0; j < old->backend_slots.size(); ++j) {
            const uint32_t oid = j < old->config.backends.size() ? old->config.backends[j].id
                                                                 : kSorryBackendId;
            if (oid == id) ++kept;
          }
        }
        backends_freed += old->backend_slots.size() - kept;
      }
      backends_needed += n - kept;
      for (const auto& h : c.hops) ++hop_delta[h];
    }
    size_t hops_needed = 0, hops_freed = 0;
    for (const auto& [addr, d] : hop_delta) {
      auto h = hops_.find(addr);
      const int64_t refs = h == hops_.end() ? 0 : h->second.refs;
      if (refs == 0 && d > 0) ++hops_needed;
      if (refs > 0 && refs + d == 0) ++hops_freed;
    }
    const std::string first = changes.empty() ? std::string() : changes.front().name;
    if (new_service_slots > service_pool_.available() + gone.size()) {
      return absl::ResourceExhaustedError(absl::StrCat(
          first, ": service counters: all ", dataplane::kMaxServiceSlots, " slots are in use"));
    }
    if (backends_needed > backend_pool_.available() + backends_freed) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "backend counters: all ", dataplane::kMaxBackendSlots, " slots are in use"));
    }
    if (hops_needed > neighbor_pool_.available() + hops_freed) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "next hops: all ", dataplane::NeighborTable::kCapacity, " slots are in use"));
    }
  }

  // Phase 2, cannot fail. Three passes, so that every slot is given back before any is taken
  // (the checks above count the change's net need: with a full pool, a take before a give
  // would find it empty) and a next hop or address that stays in use is never released and
  // taken again (its slot and resolved MAC are kept):
  //   1. references to next hops and addresses the rebuilt services keep using;
  //   2. releases: services that left, backend ids that left, next hops and addresses no
  //      longer used;
  //   3. takes: service slots of new services, backend slots of new ids, slots of new hops.
  std::vector<dataplane::IpAddr> addrs_added, addrs_removed;
  auto unref_hop = [&](const dataplane::IpAddr& addr) {
    auto h = hops_.find(addr);
    if (h == hops_.end()) return;
    if (--h->second.refs == 0) {
      neighbor_pool_.Give(h->second.slot);
      neighbor_addr_.erase(h->second.slot);
      hops_.erase(h);
    }
  };
  auto unref_addrs = [&](const std::vector<dataplane::IpAddr>& addrs) {
    for (const auto& a : addrs) {
      auto it = addr_refs_.find(a);
      if (it != addr_refs_.end() && --it->second == 0) {
        addr_refs_.erase(it);
        addrs_removed.push_back(a);
      }
    }
  };
  // Pass 1.
  // (Per occurrence: several backends may share a next hop, e.g. a GRE gateway.)
  std::vector<std::vector<bool>> new_hop(changes.size()), new_addr(changes.size());
  for (size_t ci = 0; ci < changes.size(); ++ci) {
    for (const auto& h : changes[ci].hops) {
      auto it = hops_.find(h);
      new_hop[ci].push_back(it == hops_.end());
      if (it != hops_.end()) ++it->second.refs;
    }
    for (const auto& be : changes[ci].service->backends) {
      auto it = addr_refs_.find(be.addr);
      new_addr[ci].push_back(it == addr_refs_.end());
      if (it != addr_refs_.end()) ++it->second;
    }
  }
  // Pass 2.
  for (const std::string& name : gone) {
    Entry& e = entries_.at(name);
    unref_addrs(e.addrs);
    service_pool_.Give(e.slot);
    for (uint32_t b : e.backend_slots) backend_pool_.Give(b);
    for (const auto& h : e.hops) unref_hop(h);
    entries_.erase(name);
  }
  std::vector<std::vector<uint32_t>> backend_slots(changes.size());
  for (size_t ci = 0; ci < changes.size(); ++ci) {
    const Change& c = changes[ci];
    const ServiceConfig& s = config.services[c.index];
    std::vector<uint32_t> ids;
    for (const auto& b : s.backends) ids.push_back(b.id);
    if (s.sorry_backend) ids.push_back(kSorryBackendId);
    std::vector<uint32_t>& slots = backend_slots[ci];
    slots.assign(ids.size(), UINT32_MAX);
    auto e = entries_.find(c.name);
    if (e == entries_.end()) continue;
    // Backend slots follow the ids: kept ids keep theirs, the others go back.
    const Entry& old = e->second;
    for (size_t j = 0; j < old.backend_slots.size(); ++j) {
      const uint32_t oid =
          j < old.config.backends.size() ? old.config.backends[j].id : kSorryBackendId;
      auto pos = std::find(ids.begin(), ids.end(), oid);
      if (pos != ids.end()) {
        slots[static_cast<size_t>(pos - ids.begin())] = old.backend_slots[j];
      } else {
        backend_pool_.Give(old.backend_slots[j]);
      }
    }
    for (const auto& h : old.hops) unref_hop(h);
    unref_addrs(old.addrs);
  }
  // Pass 3.
  for (size_t ci = 0; ci < changes.size(); ++ci) {
    Change& c = changes[ci];
    const ServiceConfig& s = config.services[c.index];
    auto [it, fresh] = entries_.try_emplace(c.name);
    Entry& e = it->second;
    if (fresh) e.slot = service_pool_.Take();
    std::vector<uint32_t>& slots = backend_slots[ci];
    for (auto& slot : slots) {
      if (slot == UINT32_MAX) slot = backend_pool_.Take();
    }
    std::vector<uint32_t> hop_slots;
    for (size_t k = 0; k < c.hops.size(); ++k) {
      auto [h, added] = hops_.try_emplace(c.hops[k]);
      if (added) {
        h->second.slot = neighbor_pool_.Take();
        neighbor_addr_[h->second.slot] = c.hops[k];
      }
      if (new_hop[ci][k]) ++h->second.refs;  // pass 1 counted the others
      hop_slots.push_back(h->second.slot);
    }
    dataplane::Service& svc = *c.service;
    svc.counter_slot = e.slot;
    for (size_t k = 0; k < s.backends.size(); ++k) {
      svc.backends[k].neighbor_slot = hop_slots[k];
      svc.backends[k].counter_slot = slots[k];
    }
    if (svc.backends.size() > s.backends.size()) {  // the sorry backend serves
      svc.backends.back().neighbor_slot = hop_slots.back();
      svc.backends.back().counter_slot = slots.back();
    }
    e.addrs.clear();
    for (size_t k = 0; k < svc.backends.size(); ++k) {
      const dataplane::IpAddr& addr = svc.backends[k].addr;
      e.addrs.push_back(addr);
      if (!new_addr[ci][k]) continue;  // pass 1 counted the addresses already in use
      auto [a, added] = addr_refs_.try_emplace(addr, 0);
      ++a->second;
      if (added) addrs_added.push_back(addr);
    }
    e.config = s;
    e.down = std::move(c.down);
    e.backend_slots = std::move(slots);
    e.hops = std::move(c.hops);
    e.service = std::move(c.service);
    services[c.index] = e.service;
  }
  addrs_.Change(addrs_added, addrs_removed);
  host_ = host_key;
  rebuilt_ = changes.size();
  // What the next Build with a delta starts from.
  if (delta == nullptr || delta->erased) {
    if (delta == nullptr) {
      last_names_ = std::move(names);
      index_ = dataplane::ServiceLookup(services);
    } else {
      // A removal: the slot bounds stay (they only cover more than needed), and only the
      // changed services are looked at for new ones.
      last_names_.erase(last_names_.begin() + static_cast<ptrdiff_t>(*delta->erased));
      const size_t service_slots = index_.service_slots(), backend_slots = index_.backend_slots();
      index_ = dataplane::ServiceLookup(services, false);
      index_.Cover(service_slots, backend_slots);
      for (const Change& c : changes) index_.Cover(*services[c.index]);
    }
  } else {
    std::vector<size_t> replaced;
    for (const Change& c : changes) replaced.push_back(c.index);
    index_.Update(services, replaced);
  }
  if (delta != nullptr) {
    last_names_.resize(config.services.size());
    for (size_t li = 0; li < look.size(); ++li) last_names_[look[li]] = std::move(names[li]);
  }
  last_services_ = services;
  built_ = true;

  dataplane::HostInfo host;
  host.port_mac = port_mac_;
  host.address = Addr(config.host.address);
  host.tunnel_source =
      Addr(config.host.tunnel_source.empty() ? config.host.address : config.host.tunnel_source);
  host.mtu = config.host.mtu;
  host.gue_port = config.host.gue_port;
  host.prefix_length = config.host.prefix_length;
  if (!config.host.address6.empty()) host.address6 = Addr(config.host.address6);
  if (!config.host.tunnel_source6.empty() || !config.host.address6.empty()) {
    host.tunnel_source6 = Addr(config.host.tunnel_source6.empty() ? config.host.address6
                                                                  : config.host.tunnel_source6);
  }
  host.prefix_length6 = config.host.prefix_length6;
  const ExceptionConfig& ex = config.host.exception;
  host.exception.rate_pps = ex.rate_pps;
  host.exception.burst = ex.burst;
  host.exception.priority_pps = ex.priority_pps;
  host.exception.drop_unsolicited = ex.drop_unsolicited;
  // The metrics endpoint, when it listens on one of the host's data addresses, is solicited.
  if (const size_t colon = config.host.metrics_listen.rfind(':');
      colon != std::string::npos &&
      (config.host.metrics_listen.substr(0, colon) == config.host.address ||
       (!config.host.address6.empty() &&
        config.host.metrics_listen.substr(0, colon) == "[" + config.host.address6 + "]"))) {
    uint32_t port = 0;
    if (absl::SimpleAtoi(config.host.metrics_listen.substr(colon + 1), &port) && port > 0 &&
        port < 65536) {
      host.exception.allow_tcp.set(port);
    }
  }
  if (!config.sync.peers.empty()) {
    host.exception.sync_port = config.sync.port;
    for (const std::string& peer : config.sync.peers) {
      if (host.exception.sync_peer_count == host.exception.sync_peers.size()) break;
      host.exception.sync_peers[host.exception.sync_peer_count++] = Addr(peer).v4_host();
    }
  }
  for (const std::string& url : config.fleet.endpoints) {
    // "http://ADDRESS[:PORT][/...]", "https://[ADDRESS6]:PORT": only addresses (a name is
    // resolved by the kernel, not here: allow its port in host.exception.allow instead).
    auto hostport = absl::string_view(url).substr(url.find("://") + 3);
    hostport = hostport.substr(0, hostport.find('/'));
    std::string addr;
    uint32_t port = 2379;
    if (absl::StartsWith(hostport, "[")) {
      const size_t close = hostport.find(']');
      if (close == absl::string_view::npos) continue;
      addr = std::string(hostport.substr(1, close - 1));
      if (close + 1 < hostport.size() &&
          (hostport[close + 1] != ':' || !absl::SimpleAtoi(hostport.substr(close + 2), &port))) {
        continue;
      }
    } else {
      const size_t colon = hostport.find(':');
      addr = std::string(hostport.substr(0, colon));
      if (colon != absl::string_view::npos && !absl::SimpleAtoi(hostport.substr(colon + 1), &port)) {
        continue;
      }
    }
    auto ip = dataplane::IpAddr::Parse(addr);
    if (!ip.ok() || port == 0 || port > 65535) continue;
    if (host.exception.fleet_endpoint_count == host.exception.fleet_addrs.size()) break;
    host.exception.fleet_addrs[host.exception.fleet_endpoint_count] = *ip;
    host.exception.fleet_ports[host.exception.fleet_endpoint_count++] = static_cast<uint16_t>(port);
  }
  for (const std::string& a : ex.allow) {
    auto port = ParseAllowedPort(a);  // validated with the config
    if (!port.ok()) continue;
    (port->first == Protocol::kTcp ? host.exception.allow_tcp : host.exception.allow_udp)
        .set(port->second);
  }

  ++generation_;
  return std::make_unique<const dataplane::Snapshot>(generation_, host, std::move(services),
                                                     addrs_, index_);
}

int SnapshotBuilder::ServiceSlot(const std::string& name) const {
  auto it = entries_.find(name);
  return it == entries_.end() ? -1 : static_cast<int>(it->second.slot);
}

int SnapshotBuilder::BackendSlot(const std::string& name, uint32_t id) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) return -1;
  const Entry& e = it->second;
  for (size_t j = 0; j < e.backend_slots.size(); ++j) {
    const uint32_t oid = j < e.config.backends.size() ? e.config.backends[j].id : kSorryBackendId;
    if (oid == id) return static_cast<int>(e.backend_slots[j]);
  }
  return -1;
}

}  // namespace ecmplb::control
