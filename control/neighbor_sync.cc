// neighbor_sync.cc: see neighbor_sync.h.
#include "control/neighbor_sync.h"

#include "absl/container/flat_hash_map.h"

namespace ecmplb::control {

void NeighborSync::Run(const std::map<uint32_t, dataplane::IpAddr>& slots) {
  auto dump = nl_->DumpNeighbors(ifindex_);
  if (!dump.ok()) return;
  ++runs_;
  // One pass over the dump, one lookup per slot (not slots x dump).
  absl::flat_hash_map<dataplane::IpAddr, const Neighbor*> usable;
  usable.reserve(dump->size());
  for (const auto& n : *dump) {
    if (n.usable()) usable[n.addr] = &n;
  }
  for (const auto& [slot, addr] : slots) {
    auto it = usable.find(addr);
    const Neighbor* found = it == usable.end() ? nullptr : it->second;
    if (found != nullptr) {
      table_->Set(slot, found->mac.bytes.data());
    } else {
      table_->Invalidate(slot);
    }
    const bool asked = table_->TakeRequest(slot);
    if (found == nullptr && (asked || runs_ % 10 == 0)) {
      (void)nl_->ResolveNeighbor(ifindex_, addr);
    }
  }
}

}  // namespace ecmplb::control
