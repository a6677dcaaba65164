// snapshot_builder.h: turns the configuration model into the workers' Snapshot.
//
// Owns the host-local numbering the dataplane needs: a stable counter slot per service and per
// backend, and a neighbour slot per next-hop address (DR: the backend; GRE: the backend when
// on-link, else host.gateway). Slots live as long as their service/backend/next hop and are
// reused only after every other slot has been used once. A service whose configuration and
// health did not change is reused as is (same shared Service object, same Maglev table):
// a change rebuilds only the services it touches.
//
// Thread-safety: control thread only.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <tuple>
#include <vector>

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
  // has no next hop (off-link without host.gateway, or a DR backend off-link).
  absl::StatusOr<std::unique_ptr<const dataplane::Snapshot>> Build(
      const Config& config, const std::set<BackendRef>& unhealthy = {});

  // Next-hop address of every neighbour slot in use, for the resolver.
  const std::map<uint32_t, dataplane::IpAddr>& neighbor_slots() const { return neighbor_addr_; }
  uint64_t generation() const { return generation_; }
  size_t services_rebuilt() const { return rebuilt_; }  // by the last Build

  // Slot lookups for the control plane (stats, lookup); -1 if unknown.
  int ServiceSlot(const std::string& service_name) const;
  int BackendSlot(const std::string& service_name, uint32_t backend_id) const;

 private:
  struct Cached {
    ServiceConfig config;
    std::set<uint32_t> unhealthy;
    std::shared_ptr<const dataplane::Service> service;
  };
  class SlotPool {
   public:
    explicit SlotPool(uint32_t capacity) : capacity_(capacity) {}
    absl::StatusOr<uint32_t> Take();
    void Give(uint32_t slot) { free_.insert(slot); }

   private:
    uint32_t capacity_;
    uint32_t next_ = 0;
    std::set<uint32_t> free_;
  };

  absl::StatusOr<dataplane::IpAddr> NextHop(const Config& config, const ServiceConfig& s,
                                            const BackendConfig& b) const;

  dataplane::MacAddr port_mac_;
  uint64_t generation_ = 0;
  size_t rebuilt_ = 0;
  SlotPool service_pool_{static_cast<uint32_t>(dataplane::kMaxServiceSlots)};
  SlotPool backend_pool_{static_cast<uint32_t>(dataplane::kMaxBackendSlots)};
  SlotPool neighbor_pool_{dataplane::NeighborTable::kCapacity};
  std::map<std::string, uint32_t> service_slot_;
  std::map<std::pair<std::string, uint32_t>, uint32_t> backend_slot_;
  std::map<dataplane::IpAddr, uint32_t,
           bool (*)(const dataplane::IpAddr&, const dataplane::IpAddr&)>
      neighbor_slot_{[](const dataplane::IpAddr& a, const dataplane::IpAddr& b) {
        return std::tie(a.family, a.bytes) < std::tie(b.family, b.bytes);
      }};
  std::map<uint32_t, dataplane::IpAddr> neighbor_addr_;
  std::map<std::string, Cached> cache_;
};

// Converts the config's enums and addresses to the dataplane's.
dataplane::ServiceKey ToServiceKey(const ServiceConfig& s);

}  // namespace ecmplb::control
