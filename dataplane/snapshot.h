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
#include <array>
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

// DR rewrites MACs; the others encapsulate with an IPv4 outer header (packet/encap.h).
enum class ForwardMode : uint8_t { kDr, kGre, kIpip, kGue };
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
  IpAddr address6;       // and its IPv6 address (family 0: none)
  IpAddr tunnel_source;  // tunnels' outer source
  IpAddr tunnel_source6;  // ... towards IPv6 backends (family 0: none)
  uint16_t mtu = 1500;   // IP MTU of the data port
  uint16_t gue_port = 6080;  // GUE's UDP destination port
  uint8_t prefix_length = 24;  // of `address`'s subnet (OSPF and BFD come from it)
  uint8_t prefix_length6 = 64;  // of `address6`'s subnet (BFD over IPv6 comes from it)
  ExceptionPolicy exception;   // what goes to the kernel, and how much (exception_policy.h)
};

// A snapshot's service lookup. IPv4, per packet: an open-addressing array keyed by one 64-bit
// word (VIP, port, protocol), at most half full, holding the Service pointers. IPv6 and the VIP
// set: hash maps of positions in the snapshot's services, shared between snapshots while no key
// comes or goes. The snapshot builder keeps the last index and updates it for a change that
// touches a few services (Update: a copy of the array and a few inserts) rather than rebuilding
// it (at 10,000 services a rebuild costs ~1.5 ms, the whole budget of a pool change).
class ServiceLookup {
 public:
  using Services = std::vector<std::shared_ptr<const Service>>;
  // Everything from `services`; without `count_slots` the counter-slot bounds start at 0
  // (the caller sets them with Cover: a removal keeps the old bounds rather than look at every
  // backend again).
  explicit ServiceLookup(const Services& services = {}, bool count_slots = true);
  // Raises the counter-slot bounds to cover `s`, or to the given ones.
  void Cover(const Service& s) { Count(s); }
  void Cover(size_t service_slots, size_t backend_slots) {
    service_slots_ = std::max(service_slots_, service_slots);
    backend_slots_ = std::max(backend_slots_, backend_slots);
  }
  // `services` differs from the one this index describes only at `changed` positions: a new
  // Service with the same key at the same position, or a service appended past the old end
  // (a removal or a re-ordering needs a new index).
  void Update(const Services& services, const std::vector<size_t>& changed);

  [[gnu::always_inline]] const Service* FindV4(uint32_t vip, uint16_t port, uint8_t proto) const {
    const uint64_t key = V4Key(vip, port, proto);
    for (size_t i = Slot(key);; i = (i + 1) & v4_mask_) {
      const V4Entry& e = v4_[i];
      if (e.key == key) return e.service;
      if (e.key == 0) return nullptr;
    }
  }
  // Position in the services of (vip, port, proto), or -1.
  int64_t Position(const ServiceKey& key) const {
    auto it = keys_->position.find(key);
    return it == keys_->position.end() ? -1 : int64_t{it->second};
  }
  bool IsVip(const IpAddr& addr) const { return keys_->vips.contains(addr); }
  size_t service_slots() const { return service_slots_; }
  size_t backend_slots() const { return backend_slots_; }

 private:
  struct V4Entry {
    uint64_t key = 0;
    const Service* service = nullptr;
  };
  struct Keys {
    absl::flat_hash_map<ServiceKey, uint32_t> position;
    absl::flat_hash_set<IpAddr> vips;
  };
  // Key of an IPv4 (VIP, port, proto); never 0 for a real service (port >= 1) or VIP entry
  // (proto 0, port 0, bit 0 set).
  static uint64_t V4Key(uint32_t vip, uint16_t port, uint8_t proto) {
    return (uint64_t{vip} << 32) | (uint64_t{port} << 16) | (uint64_t{proto} << 8) | 1;
  }
  size_t Slot(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> v4_shift_);
  }
  V4Entry& Entry(uint64_t key) {
    size_t i = Slot(key);
    while (v4_[i].key != 0 && v4_[i].key != key) i = (i + 1) & v4_mask_;
    return v4_[i];
  }
  void Count(const Service& s);  // its counter slots into service_slots_ / backend_slots_
  void BuildV4(const Services& services);

  std::vector<V4Entry> v4_;
  size_t v4_mask_ = 0;
  unsigned v4_shift_ = 60;
  size_t v4_used_ = 0;  // entries in v4_
  std::shared_ptr<const Keys> keys_;
  size_t service_slots_ = 0;
  size_t backend_slots_ = 0;
};

// Every backend address of a snapshot (health-check replies come from them), in 64 shards
// that snapshots share: a change copies only the shards of the addresses that came or went
// (a copy of the whole set costs ~3 ms at 60,000 addresses).
class BackendAddrs {
 public:
  static constexpr size_t kShards = 64;
  BackendAddrs();
  bool contains(const IpAddr& addr) const { return shards_[ShardOf(addr)]->contains(addr); }
  // Removes `removed`, then adds `added`, copying the shards they fall in.
  void Change(const std::vector<IpAddr>& added, const std::vector<IpAddr>& removed);
  size_t size() const;

 private:
  using Shard = absl::flat_hash_set<IpAddr>;
  static size_t ShardOf(const IpAddr& addr) { return absl::HashOf(addr) % kShards; }
  std::array<std::shared_ptr<const Shard>, kShards> shards_;
};

class Snapshot {
 public:
  // `backend_addrs` and `index`: every backend's address and the lookup of `services`, when
  // the caller keeps them between snapshots (the snapshot builder updates its own); computed
  // here when absent.
  Snapshot(uint64_t generation, HostInfo host, std::vector<std::shared_ptr<const Service>> services,
           std::optional<BackendAddrs> backend_addrs = std::nullopt,
           std::optional<ServiceLookup> index = std::nullopt)
      : generation_(generation),
        host_(host),
        services_(std::move(services)),
        index_(index ? std::move(*index) : ServiceLookup(services_)) {
    if (backend_addrs) {
      backend_addrs_ = std::move(*backend_addrs);
    } else {
      absl::flat_hash_set<IpAddr> all;
      for (const auto& s : services_) {
        for (const auto& b : s->backends) all.insert(b.addr);
      }
      backend_addrs_.Change(std::vector<IpAddr>(all.begin(), all.end()), {});
    }
  }

  uint64_t generation() const { return generation_; }
  const HostInfo& host() const { return host_; }
  const std::vector<std::shared_ptr<const Service>>& services() const { return services_; }
  // One past the highest service / backend counter slot in use: what WorkerCounters must
  // cover (EnsureSlots) before the snapshot is published.
  size_t service_slots() const { return index_.service_slots(); }
  size_t backend_slots() const { return index_.backend_slots(); }

  // Per packet: IPv4 goes through the index's open-addressing array, a multiply and a few
  // compares; IPv6 through the hash map.
  [[gnu::always_inline]] const Service* Find(const IpAddr& vip, uint16_t port,
                                             uint8_t proto) const {
    if (vip.family == 4) return index_.FindV4(vip.v4_host(), port, proto);
    return FindInMap(vip, port, proto);
  }
  // IPv6 (and any other family): the hash map, out of line.
  [[gnu::noinline]] const Service* FindInMap(const IpAddr& vip, uint16_t port,
                                             uint8_t proto) const {
    const int64_t pos = index_.Position(ServiceKey{vip, port, proto});
    return pos < 0 ? nullptr : services_[static_cast<size_t>(pos)].get();
  }
  // Whether `addr` is some service's backend (health-check replies come from them).
  bool IsBackend(const IpAddr& addr) const { return backend_addrs_.contains(addr); }
  bool IsVip(const IpAddr& addr) const {
    // port 0: the VIP's own entry
    if (addr.family == 4) return index_.FindV4(addr.v4_host(), 0, 0) != nullptr;
    return index_.IsVip(addr);
  }

 private:
  uint64_t generation_;
  HostInfo host_;
  std::vector<std::shared_ptr<const Service>> services_;
  ServiceLookup index_;
  BackendAddrs backend_addrs_;
};

}  // namespace ecmplb::dataplane
