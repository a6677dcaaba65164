// neighbor_sync.h: keeps the workers' neighbour table (next-hop MACs of DR backends and GRE
// next hops) in step with the kernel's neighbour table of the exception interface, and asks
// the kernel to resolve next hops that have no usable entry (at once when a worker asked,
// otherwise every tenth run).
//
// Thread-safety: control thread only (the NeighborTable is written here, read by workers).
#pragma once

#include <cstdint>
#include <map>

#include "control/netlink.h"
#include "dataplane/neighbor_table.h"
#include "dataplane/packet/headers.h"

namespace ecmplb::control {

class NeighborSync {
 public:
  NeighborSync(Netlink* nl, int ifindex, dataplane::NeighborTable* table)
      : nl_(nl), ifindex_(ifindex), table_(table) {}

  // `slots`: neighbour-table slot -> next-hop address (SnapshotBuilder::neighbor_slots()).
  void Run(const std::map<uint32_t, dataplane::IpAddr>& slots);

 private:
  Netlink* nl_;
  int ifindex_;
  dataplane::NeighborTable* table_;
  uint64_t runs_ = 0;
};

}  // namespace ecmplb::control
