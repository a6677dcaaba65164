// snapshot_builder.h: turns the configuration model into the workers' Snapshot.
//
// Owns the host-local numbering the dataplane needs: a stable counter slot per service and per
// backend, and a neighbour slot per next-hop address (DR: the backend; tunnels: the backend
// when on-link, else host.gateway), reference-counted by the backends that use it. Slots live as
// long as their service/backend/next hop and are reused only after every other slot has been
// used once. A service whose configuration and health did not change is reused as is (same
// shared Service object, same Maglev table): a change rebuilds only the services it touches.
//
// Thread-safety: control thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "control/config.h"
#include "dataplane/counters.h"
#include "dataplane/neighbor_table.h"
#include "dataplane/snapshot.h"

namespace ecmplb::control {

// (service name, backend id) of a backend that failed its health checks: it takes no new
// flows and its tracked flows are re-picked, as if removed.
using BackendRef = std::pair<std::string, uint32_t>;

class SnapshotBuilder {
 public:
  explicit SnapshotBuilder(dataplane::MacAddr port_mac) : port_mac_(port_mac) {}

  // Builds the snapshot for `config`. Fails (changing nothing) if slots run out or a backend
  // has no next hop (off-link without host.gateway, or a DR backend off-link). Incremental:
  // a service whose configuration, failed backends and host next-hop settings did not change
  // is reused without looking at its backends; only the others are rebuilt, and slots and
  // next-hop references change only for them (a change to one service of 10,000 costs a
  // pass over the service names, not over every backend).
  absl::StatusOr<std::unique_ptr<const dataplane::Snapshot>> Build(
      const Config& config, const std::set<BackendRef>& unhealthy = {});

  // What changed since the last successful Build, when the caller knows (a command touches one
  // service): the positions in config.services that may differ (a changed service, or one
  // appended past the old end), and the position of a service removed (the ones after it moved
  // up by one). Every other service, its failed backends and the host settings are as they
  // were. With it, Build looks only at those services: a change or an addition costs about the
  // same at 10 or 10,000 services, bar copying the snapshot's service list and IPv4 array; a
  // removal also rebuilds the lookup (positions shift: ~1.5 ms at 10,000 services).
  struct Delta {
    std::vector<size_t> changed;
    std::optional<size_t> erased;
  };
  absl::StatusOr<std::unique_ptr<const dataplane::Snapshot>> Build(
      const Config& config, const std::set<BackendRef>& unhealthy, const Delta& delta);

  // Makes the next Build a full pass (the caller did not keep what the last Build describes).
  void ForgetLast() { built_ = false; }

  // Next-hop address of every neighbour slot in use, for the resolver.
  const std::map<uint32_t, dataplane::IpAddr>& neighbor_slots() const { return neighbor_addr_; }
  uint64_t generation() const { return generation_; }
  size_t services_rebuilt() const { return rebuilt_; }  // by the last Build

  // Slot lookups for the control plane (stats, lookup); -1 if unknown.
  int ServiceSlot(const std::string& service_name) const;
  int BackendSlot(const std::string& service_name, uint32_t backend_id) const;

 private:
  class SlotPool {
   public:
    explicit SlotPool(uint32_t capacity) : capacity_(capacity) {}
    // Slots Take can still hand out.
    size_t available() const { return capacity_ - next_ + free_.size(); }
    // Never fails when available() > 0 (callers check first).
    uint32_t Take();
    void Give(uint32_t slot) { free_.insert(slot); }

   private:
    uint32_t capacity_;
    uint32_t next_ = 0;
    std::set<uint32_t> free_;
  };
  // One configured service as built: its configuration, failed backend ids (sorted), its
  // backend slots and next-hop addresses (parallel to config.backends, then the sorry
  // backend's), and the immutable Service the snapshots share.
  struct Entry {
    ServiceConfig config;
    std::vector<uint32_t> down;
    uint32_t slot = 0;
    std::vector<uint32_t> backend_slots;
    std::vector<dataplane::IpAddr> hops;
    std::shared_ptr<const dataplane::Service> service;
    std::vector<dataplane::IpAddr> addrs;  // of service->backends (the sorry one while it serves)
  };
  struct Hop {
    uint32_t slot = 0;
    uint32_t refs = 0;  // backends (of every service) sent through it
  };
  // What decides next hops: a change rebuilds every service.
  struct HostKey {
    std::string address, gateway;
    uint8_t prefix_length = 0;
    std::string address6, gateway6;
    uint8_t prefix_length6 = 0;
    bool operator==(const HostKey&) const = default;
  };

  // Both Builds; `delta` null: look at every service.
  absl::StatusOr<std::unique_ptr<const dataplane::Snapshot>> BuildFrom(
      const Config& config, const std::set<BackendRef>& unhealthy, const Delta* delta);
  absl::StatusOr<dataplane::IpAddr> NextHop(const Config& config, const ServiceConfig& s,
                                            const BackendConfig& b) const;

  dataplane::MacAddr port_mac_;
  uint64_t generation_ = 0;
  size_t rebuilt_ = 0;
  SlotPool service_pool_{static_cast<uint32_t>(dataplane::kMaxServiceSlots)};
  SlotPool backend_pool_{static_cast<uint32_t>(dataplane::kMaxBackendSlots)};
  SlotPool neighbor_pool_{dataplane::NeighborTable::kCapacity};
  absl::flat_hash_map<std::string, Entry> entries_;
  absl::flat_hash_map<dataplane::IpAddr, Hop> hops_;
  std::map<uint32_t, dataplane::IpAddr> neighbor_addr_;
  HostKey host_;
  // Every snapshot backend's address, counted, and the set the snapshots share (shards
  // replaced only when an address in them comes or goes).
  absl::flat_hash_map<dataplane::IpAddr, uint32_t> addr_refs_;
  dataplane::BackendAddrs addrs_;
  // The last Build's services (positions of its config), their names and lookup index: what a
  // Build with a Delta starts from.
  std::vector<std::shared_ptr<const dataplane::Service>> last_services_;
  std::vector<std::string> last_names_;
  dataplane::ServiceLookup index_;
  bool built_ = false;
};

// Converts the config's enums and addresses to the dataplane's.
dataplane::ServiceKey ToServiceKey(const ServiceConfig& s);

}  // namespace ecmplb::control
