// neighbor_sync.h: keeps the workers' neighbour table (next-hop MACs of DR backends and GRE
// next hops) in step with the kernel's neighbour table of the exception interface, and asks
// the kernel to resolve next hops that have no usable entry (at once when a worker asked,
// otherwise every tenth run).
//
// With neighbour events (NeighborEvents, the daemon's), a change reaches its slot when the
// kernel reports it (OnEvents: one hash lookup per change), and Run dumps the kernel's table
// only when the set of next hops changed, after events were lost, and every 100th run (a
// safety resync): work per run grows with the next hops asked for, not with the table. Without
// events every Run dumps and matches (one hash lookup per slot).
//
// Thread-safety: control thread only (the NeighborTable is written here, read by workers).
#pragma once

#include <cstdint>
#include <map>
#include <memory>

#include "absl/container/flat_hash_map.h"
#include "control/netlink.h"
#include "dataplane/neighbor_table.h"
#include "dataplane/packet/headers.h"

namespace ecmplb::control {

class NeighborSync {
 public:
  // `events` may be null (every Run dumps).
  NeighborSync(Netlink* nl, int ifindex, dataplane::NeighborTable* table,
               std::unique_ptr<NeighborEvents> events = nullptr)
      : nl_(nl), ifindex_(ifindex), table_(table), events_(std::move(events)) {}

  // `slots`: neighbour-table slot -> next-hop address (SnapshotBuilder::neighbor_slots()).
  void Run(const std::map<uint32_t, dataplane::IpAddr>& slots);
  // The events' socket (-1 without events), and what to call when it is readable.
  int events_fd() const { return events_ != nullptr ? events_->fd() : -1; }
  void OnEvents();

 private:
  void Apply(uint32_t slot, const Neighbor* n);

  Netlink* nl_;
  int ifindex_;
  dataplane::NeighborTable* table_;
  std::unique_ptr<NeighborEvents> events_;
  absl::flat_hash_map<dataplane::IpAddr, uint32_t> slot_of_;  // the next hops of the last Run
  bool resync_ = true;  // dump at the next Run (first run, lost events)
  uint64_t runs_ = 0;
};

}  // namespace ecmplb::control
