// neighbor_sync.cc: see neighbor_sync.h.
#include "control/neighbor_sync.h"

#include <vector>

namespace ecmplb::control {

void NeighborSync::Apply(uint32_t slot, const Neighbor* n) {
  if (n != nullptr && n->usable()) {
    table_->Set(slot, n->mac.bytes.data());
  } else {
    table_->Invalidate(slot);
  }
}

void NeighborSync::Run(const std::map<uint32_t, dataplane::IpAddr>& slots) {
  ++runs_;
  // A new set of next hops (a configuration change): re-index and resync.
  bool changed = slots.size() != slot_of_.size();
  if (!changed) {
    for (const auto& [slot, addr] : slots) {
      auto it = slot_of_.find(addr);
      if (it == slot_of_.end() || it->second != slot) {
        changed = true;
        break;
      }
    }
  }
  if (changed) {
    slot_of_.clear();
    slot_of_.reserve(slots.size());
    for (const auto& [slot, addr] : slots) slot_of_[addr] = slot;
    resync_ = true;
  }
  if (events_ == nullptr || resync_ || runs_ % 100 == 0) {
    auto dump = nl_->DumpNeighbors(ifindex_);
    if (dump.ok()) {
      resync_ = false;
      // One pass over the dump, one lookup per slot (not slots x dump).
      absl::flat_hash_map<dataplane::IpAddr, const Neighbor*> usable;
      usable.reserve(dump->size());
      for (const auto& n : *dump) {
        if (n.usable()) usable[n.addr] = &n;
      }
      for (const auto& [slot, addr] : slots) {
        auto it = usable.find(addr);
        Apply(slot, it == usable.end() ? nullptr : it->second);
      }
    }
  }
  // Resolution: at once for the slots a worker asked for, every tenth run for the others.
  for (const auto& [slot, addr] : slots) {
    const bool asked = table_->TakeRequest(slot);
    if (!table_->Resolved(slot) && (asked || runs_ % 10 == 0)) {
      (void)nl_->ResolveNeighbor(ifindex_, addr);
    }
  }
}

void NeighborSync::OnEvents() {
  if (events_ == nullptr) return;
  std::vector<Neighbor> changes;
  bool overflow = false;
  events_->Read(&changes, &overflow);
  if (overflow) resync_ = true;  // the next Run dumps
  for (const Neighbor& n : changes) {
    auto it = slot_of_.find(n.addr);
    if (it == slot_of_.end()) continue;  // not a next hop of ours
    Apply(it->second, &n);
  }
}

}  // namespace ecmplb::control
