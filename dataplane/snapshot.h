// snapshot.h: the immutable configuration a worker forwards with.
//
// The control thread builds a Snapshot (services, their backends and Maglev tables, this
// host's addresses) and publishes it; a worker loads the current pointer once per burst and
// uses it read-only for that burst. A Service is immutable too and shared between snapshots
// (shared_ptr, owned by the snapshots): a change rebuilds only the services it touches.
// Nothing here is ever written after publication, and nothing is freed on a worker: the
// control thread destroys an old snapshot only after every worker has passed a quiescent
// state (see dataplane/dpdk/publisher.h).
//
// Thread-safety: immutable after construction; safe to read from any number of threads.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "dataplane/exception_policy.h"
#include "dataplane/packet/headers.h"
#include "maglev/maglev.h"

namespace ecmplb::dataplane {

enum class ForwardMode : uint8_t { kDr, kGre };
enum class HashMode : uint8_t { kFiveTuple, kSourceIp };

struct ServiceKey {
  IpAddr vip;
  uint16_t port = 0;  // host order
  uint8_t proto = 0;  // inet::ip_proto::kTcp / kUdp
  friend bool operator==(const ServiceKey&, const ServiceKey&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const ServiceKey& k) {
    return H::combine(std::move(h), k.vip, k.port, k.proto);
  }
};

struct BackendEntry {
  uint32_t id = 0;  // stable id within the service (what conntrack stores)
  IpAddr addr;
  uint32_t weight = 0;         // 0: draining, takes no new flows
  uint32_t neighbor_slot = 0;  // NeighborTable slot of the MAC to send to
  uint32_t counter_slot = 0;   // WorkerCounters::backends index
};

struct Service {
  ServiceKey key;
  uint32_t counter_slot = 0;  // WorkerCounters::services index; stable while the service exists
  ForwardMode forward = ForwardMode::kDr;
  HashMode hash = HashMode::kFiveTuple;
  std::vector<BackendEntry> backends;   // every configured backend, draining ones included
  std::optional<maglev::Table> table;   // indexes into `backends`; absent: nothing usable
  std::vector<int32_t> position_of_id;  // backend id -> index in `backends`, -1 if removed

  // Index into `backends` of a tracked flow's backend id, or -1 if that backend is gone.
  int32_t PositionOf(uint32_t id) const {
    return id < position_of_id.size() ? position_of_id[id] : -1;
  }
};

struct HostInfo {
  MacAddr port_mac;      // the data port's MAC (also the exception TAP's)
  IpAddr address;        // this host's own IPv4 address
  IpAddr tunnel_source;  // GRE outer source
  uint16_t mtu = 1500;   // IP MTU of the data port
  uint8_t prefix_length = 24;  // of `address`'s subnet (OSPF and BFD come from it)
  ExceptionPolicy exception;   // what goes to the kernel, and how much (exception_policy.h)
};

class Snapshot {
 public:
  using AddrSet = absl::flat_hash_set<IpAddr>;
  // `backend_addrs`: every backend's address, when the caller keeps that set between
  // snapshots (the snapshot builder shares it while no address comes or goes); computed here
  // when null.
  Snapshot(uint64_t generation, HostInfo host, std::vector<std::shared_ptr<const Service>> services,
           std::shared_ptr<const AddrSet> backend_addrs = nullptr)
      : generation_(generation),
        host_(host),
        services_(std::move(services)),
        backend_addrs_(std::move(backend_addrs)) {
    std::shared_ptr<AddrSet> own;
    if (backend_addrs_ == nullptr) own = std::make_shared<AddrSet>();
    by_key_.reserve(services_.size());
    for (const auto& s : services_) {
      by_key_.emplace(s->key, s.get());
      vips_.insert(s->key.vip);
      service_slots_ = std::max<size_t>(service_slots_, size_t{s->counter_slot} + 1);
      for (const auto& b : s->backends) {
        if (own != nullptr) own->insert(b.addr);
        backend_slots_ = std::max<size_t>(backend_slots_, size_t{b.counter_slot} + 1);
      }
    }
    if (own != nullptr) backend_addrs_ = std::move(own);
    BuildV4Index();
  }

  uint64_t generation() const { return generation_; }
  const HostInfo& host() const { return host_; }
  const std::vector<std::shared_ptr<const Service>>& services() const { return services_; }
  // One past the highest service / backend counter slot in use: what WorkerCounters must
  // cover (EnsureSlots) before the snapshot is published.
  size_t service_slots() const { return service_slots_; }
  size_t backend_slots() const { return backend_slots_; }

  // Per packet: IPv4 goes through a small open-addressing index keyed by one 64-bit word
  // (VIP, port, protocol), a multiply and a few compares; IPv6 through the hash map.
  [[gnu::always_inline]] const Service* Find(const IpAddr& vip, uint16_t port,
                                             uint8_t proto) const {
    if (vip.family == 4) {
      const uint64_t key = V4Key(vip.v4_host(), port, proto);
      for (size_t i = Slot(key);; i = (i + 1) & v4_mask_) {
        const V4Entry& e = v4_[i];
        if (e.key == key) return e.service;
        if (e.key == 0) return nullptr;
      }
    }
    return FindInMap(vip, port, proto);
  }
  // IPv6 (and any other family): the hash map, out of line.
  [[gnu::noinline]] const Service* FindInMap(const IpAddr& vip, uint16_t port,
                                             uint8_t proto) const {
    auto it = by_key_.find(ServiceKey{vip, port, proto});
    return it == by_key_.end() ? nullptr : it->second;
  }
  // Whether `addr` is some service's backend (health-check replies come from them).
  bool IsBackend(const IpAddr& addr) const { return backend_addrs_->contains(addr); }
  bool IsVip(const IpAddr& addr) const {
    if (addr.family == 4) return Find(addr, 0, 0) != nullptr;  // port 0: the VIP's own entry
    return vips_.contains(addr);
  }

 private:
  // Key of an IPv4 (VIP, port, proto); never 0 for a real service (port >= 1) or VIP entry
  // (proto 0, port 0, bit 0 set).
  static uint64_t V4Key(uint32_t vip, uint16_t port, uint8_t proto) {
    return (uint64_t{vip} << 32) | (uint64_t{port} << 16) | (uint64_t{proto} << 8) | 1;
  }
  size_t Slot(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> v4_shift_);
  }
  void Insert(uint64_t key, const Service* s) {
    size_t i = Slot(key);
    while (v4_[i].key != 0 && v4_[i].key != key) i = (i + 1) & v4_mask_;
    v4_[i] = V4Entry{key, s};
  }
  void BuildV4Index() {
    size_t n = 2 * services_.size() + 2;  // services plus one entry per VIP
    size_t cap = 16;
    while (cap < 2 * n) cap *= 2;  // at most half full: short probes
    v4_.assign(cap, V4Entry{});
    v4_mask_ = cap - 1;
    v4_shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(cap));
    for (const auto& s : services_) {
      if (s->key.vip.family != 4) continue;
      uint32_t vip = s->key.vip.v4_host();
      Insert(V4Key(vip, s->key.port, s->key.proto), s.get());
      // The VIP itself (port 0, proto 0) maps to any of its services: IsVip only needs non-null.
      Insert(V4Key(vip, 0, 0), s.get());
    }
  }

  struct V4Entry {
    uint64_t key = 0;
    const Service* service = nullptr;
  };

  uint64_t generation_;
  HostInfo host_;
  std::vector<V4Entry> v4_;
  size_t v4_mask_ = 0;
  unsigned v4_shift_ = 60;
  std::vector<std::shared_ptr<const Service>> services_;
  size_t service_slots_ = 0;
  size_t backend_slots_ = 0;
  absl::flat_hash_map<ServiceKey, const Service*> by_key_;
  std::shared_ptr<const AddrSet> backend_addrs_;
  absl::flat_hash_set<IpAddr> vips_;
};

}  // namespace ecmplb::dataplane
