// neighbor_sync.cc: see neighbor_sync.h.
#include "control/neighbor_sync.h"

namespace ecmplb::control {

void NeighborSync::Run(const std::map<uint32_t, dataplane::IpAddr>& slots) {
  auto dump = nl_->DumpNeighbors(ifindex_);
  if (!dump.ok()) return;
  ++runs_;
  for (const auto& [slot, addr] : slots) {
    const Neighbor* found = nullptr;
    for (const auto& n : *dump) {
      if (n.addr == addr && n.usable()) found = &n;
    }
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
