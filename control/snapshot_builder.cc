// snapshot_builder.cc: configuration model -> dataplane Snapshot (see snapshot_builder.h).
#include "control/snapshot_builder.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "maglev/maglev.h"

namespace ecmplb::control {
namespace {

static_assert(kMaxServices <= dataplane::kMaxServiceSlots, "a counter slot per service");
static_assert(dataplane::kMaxServiceSlots <= 65536, "the slot is the flow key's 16-bit service");
static_assert(kMaxBackendsPerHost <= dataplane::kMaxBackendSlots, "a counter slot per backend");

// Gives back to `pool` the slot (mapped value) of every entry of `slots` that `live` rejects.
template <typename Slots, typename Pool, typename Live>
void ReleaseSlots(Slots& slots, Pool& pool, Live live) {
  for (auto it = slots.begin(); it != slots.end();) {
    if (live(*it)) {
      ++it;
    } else {
      pool.Give(it->second);
      it = slots.erase(it);
    }
  }
}

dataplane::IpAddr Addr(const std::string& canonical) {
  auto a = dataplane::IpAddr::Parse(canonical);
  return a.ok() ? *a : dataplane::IpAddr{};
}

bool SameSubnet(const dataplane::IpAddr& a, const dataplane::IpAddr& b, uint8_t prefix) {
  if (!a.is_v4() || !b.is_v4()) return false;
  uint32_t mask = prefix == 0 ? 0 : ~uint32_t{0} << (32 - prefix);
  return (a.v4_host() & mask) == (b.v4_host() & mask);
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

absl::StatusOr<uint32_t> SnapshotBuilder::SlotPool::Take() {
  if (next_ < capacity_) return next_++;
  if (free_.empty()) {
    return absl::ResourceExhaustedError(absl::StrCat("all ", capacity_, " slots are in use"));
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
                       " (DR needs backends on the same L2 segment; use forward gre)"));
    }
    return addr;
  }
  if (SameSubnet(addr, host, config.host.prefix_length)) return addr;
  if (config.host.gateway.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(s.Name(), ": GRE backend ", b.address,
                                                      " is off-link and host.gateway is not set"));
  }
  return Addr(config.host.gateway);
}

absl::StatusOr<std::unique_ptr<const dataplane::Snapshot>> SnapshotBuilder::Build(
    const Config& config, const std::set<BackendRef>& unhealthy) {
  // Work on copies of the slot state: a failure leaves this builder unchanged.
  auto service_pool = service_pool_;
  auto backend_pool = backend_pool_;
  auto neighbor_pool = neighbor_pool_;
  auto service_slot = service_slot_;
  auto backend_slot = backend_slot_;
  auto neighbor_slot = neighbor_slot_;
  std::map<std::string, Cached> cache;
  size_t rebuilt = 0;

  std::vector<std::shared_ptr<const dataplane::Service>> services;
  std::set<std::string> live_services;
  std::set<std::pair<std::string, uint32_t>> live_backends;
  std::map<uint32_t, dataplane::IpAddr> neighbor_addr;

  for (const ServiceConfig& s : config.services) {
    const std::string name = s.Name();
    live_services.insert(name);
    std::set<uint32_t> down;
    for (const auto& b : s.backends) {
      if (unhealthy.count({name, b.id})) down.insert(b.id);
    }
    if (!service_slot.count(name)) {
      auto slot = service_pool.Take();
      if (!slot.ok())
        return absl::ResourceExhaustedError(
            absl::StrCat(name, ": service counters: ", slot.status().message()));
      service_slot[name] = *slot;
    }
    // Next hops and backend slots are needed whether or not the service is rebuilt.
    std::vector<uint32_t> nslots, bslots;
    std::vector<BackendConfig> all = s.backends;  // + the sorry backend, last
    if (s.sorry_backend) all.push_back(*s.sorry_backend);
    for (const auto& b : all) {
      ECMPLB_ASSIGN_OR_RETURN(const dataplane::IpAddr hop, NextHop(config, s, b));
      auto it = neighbor_slot.find(hop);
      if (it == neighbor_slot.end()) {
        auto slot = neighbor_pool.Take();
        if (!slot.ok())
          return absl::ResourceExhaustedError(absl::StrCat("next hops: ", slot.status().message()));
        it = neighbor_slot.emplace(hop, *slot).first;
      }
      nslots.push_back(it->second);
      neighbor_addr[it->second] = hop;
      auto key = std::make_pair(name, b.id);
      live_backends.insert(key);
      if (!backend_slot.count(key)) {
        auto slot = backend_pool.Take();
        if (!slot.ok())
          return absl::ResourceExhaustedError(
              absl::StrCat("backend counters: ", slot.status().message()));
        backend_slot[key] = *slot;
      }
      bslots.push_back(backend_slot[key]);
    }

    auto cached = cache_.find(name);
    if (cached != cache_.end() && cached->second.config == s && cached->second.unhealthy == down &&
        cached->second.service->counter_slot == service_slot[name]) {
      bool same_slots = true;
      for (size_t k = 0; k < s.backends.size(); ++k) {
        same_slots = same_slots && cached->second.service->backends[k].neighbor_slot == nslots[k] &&
                     cached->second.service->backends[k].counter_slot == bslots[k];
      }
      if (same_slots) {
        services.push_back(cached->second.service);
        cache[name] = cached->second;
        continue;
      }
    }

    auto svc = std::make_shared<dataplane::Service>();
    svc->key = ToServiceKey(s);
    svc->counter_slot = service_slot[name];
    svc->forward =
        s.forward == ForwardMode::kDr ? dataplane::ForwardMode::kDr : dataplane::ForwardMode::kGre;
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
      bool up = !down.count(b.id);
      e.weight = up ? b.weight : 0;
      e.neighbor_slot = nslots[k];
      e.counter_slot = bslots[k];
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
      e.neighbor_slot = nslots.back();
      e.counter_slot = bslots.back();
      svc->position_of_id[kSorryBackendId] = static_cast<int32_t>(svc->backends.size());
      svc->backends.push_back(e);
      mb.push_back(maglev::Backend{MaglevId(e.addr, s.port), 1});
      any_usable = true;
    }
    if (any_usable) {
      auto table = maglev::Table::Build(mb, s.table_size);
      if (!table.ok())
        return absl::Status(table.status().code(),
                            absl::StrCat(name, ": ", table.status().message()));
      svc->table = std::move(*table);
    }
    ++rebuilt;
    cache[name] = Cached{s, down, svc};
    services.push_back(std::move(svc));
  }

  // Release the slots of what is gone.
  ReleaseSlots(service_slot, service_pool,
               [&](const auto& e) { return live_services.count(e.first) != 0; });
  ReleaseSlots(backend_slot, backend_pool,
               [&](const auto& e) { return live_backends.count(e.first) != 0; });
  ReleaseSlots(neighbor_slot, neighbor_pool,
               [&](const auto& e) { return neighbor_addr.count(e.second) != 0; });

  dataplane::HostInfo host;
  host.port_mac = port_mac_;
  host.address = Addr(config.host.address);
  host.tunnel_source =
      Addr(config.host.tunnel_source.empty() ? config.host.address : config.host.tunnel_source);
  host.mtu = config.host.mtu;
  host.prefix_length = config.host.prefix_length;
  const ExceptionConfig& ex = config.host.exception;
  host.exception.rate_pps = ex.rate_pps;
  host.exception.burst = ex.burst;
  host.exception.priority_pps = ex.priority_pps;
  host.exception.drop_unsolicited = ex.drop_unsolicited;
  // The metrics endpoint, when it listens on the host's data address, is solicited.
  if (const size_t colon = config.host.metrics_listen.rfind(':');
      colon != std::string::npos &&
      config.host.metrics_listen.substr(0, colon) == config.host.address) {
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
  for (const std::string& a : ex.allow) {
    auto port = ParseAllowedPort(a);  // validated with the config
    if (!port.ok()) continue;
    (port->first == Protocol::kTcp ? host.exception.allow_tcp : host.exception.allow_udp)
        .set(port->second);
  }

  auto snap =
      std::make_unique<const dataplane::Snapshot>(generation_ + 1, host, std::move(services));
  // Commit.
  ++generation_;
  rebuilt_ = rebuilt;
  service_pool_ = std::move(service_pool);
  backend_pool_ = std::move(backend_pool);
  neighbor_pool_ = std::move(neighbor_pool);
  service_slot_ = std::move(service_slot);
  backend_slot_ = std::move(backend_slot);
  neighbor_slot_ = std::move(neighbor_slot);
  neighbor_addr_ = std::move(neighbor_addr);
  cache_ = std::move(cache);
  return snap;
}

int SnapshotBuilder::ServiceSlot(const std::string& name) const {
  auto it = service_slot_.find(name);
  return it == service_slot_.end() ? -1 : static_cast<int>(it->second);
}

int SnapshotBuilder::BackendSlot(const std::string& name, uint32_t id) const {
  auto it = backend_slot_.find({name, id});
  return it == backend_slot_.end() ? -1 : static_cast<int>(it->second);
}

}  // namespace ecmplb::control
