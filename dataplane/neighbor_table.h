// neighbor_table.h: next-hop MAC addresses shared by the control thread and the workers.
//
// The snapshot gives every backend a neighbour slot (DR: the backend itself; GRE: the backend
// or the gateway). The control thread fills slots from the kernel's neighbour table of the
// exception interface and invalidates them when the kernel forgets them; workers read a slot
// with one relaxed 64-bit load per packet. A worker that meets an unresolved slot drops the
// packet (counted) and raises the slot's request flag; the control thread collects requests
// and asks the kernel to resolve those addresses. MACs therefore change without a new snapshot.
//
// Thread-safety: any number of readers and request raisers, one writer (the control thread).
// Slots are 64-bit atomics: a MAC (48 bits) and a valid bit, never torn.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstring>
#include <memory>

namespace ecmplb::dataplane {

static_assert(std::endian::native == std::endian::little, "NeighborTable packs MACs little-endian");

class NeighborTable {
 public:
  // One slot per distinct next hop (a backend, or the gateway of off-link GRE backends):
  // 2.3 MiB for the whole table.
  static constexpr uint32_t kCapacity = uint32_t{1} << 18;

  // Worker side. Returns false (and leaves `mac` alone) while the slot is unresolved.
  bool Get(uint32_t slot, uint8_t mac[6]) const {
    uint64_t w = macs_[slot].load(std::memory_order_relaxed);
    if ((w & kValid) == 0) return false;
    // The low six bytes hold the MAC in wire order (little-endian host): one copy.
    std::memcpy(mac, &w, 6);
    return true;
  }
  // Worker side: asks the control thread to resolve `slot`. Cheap when already asked.
  void RequestResolve(uint32_t slot) const {
    if (!wants_[slot].load(std::memory_order_relaxed)) {
      wants_[slot].store(true, std::memory_order_relaxed);
    }
  }

  // Control side.
  void Set(uint32_t slot, const uint8_t mac[6]) {
    uint64_t w = 0;
    std::memcpy(&w, mac, 6);
    macs_[slot].store(w | kValid, std::memory_order_relaxed);
  }
  void Invalidate(uint32_t slot) { macs_[slot].store(0, std::memory_order_relaxed); }
  bool Resolved(uint32_t slot) const {
    return (macs_[slot].load(std::memory_order_relaxed) & kValid) != 0;
  }
  // Returns and clears the request flag of `slot`.
  bool TakeRequest(uint32_t slot) {
    return wants_[slot].exchange(false, std::memory_order_relaxed);
  }

 private:
  static constexpr uint64_t kValid = uint64_t{1} << 48;
  // On the heap (2.3 MiB), zeroed. Request flags live apart from the MACs so that raising one
  // does not bounce the cache lines every worker reads on each packet.
  std::unique_ptr<std::atomic<uint64_t>[]> macs_{new std::atomic<uint64_t>[kCapacity]{}};
  std::unique_ptr<std::atomic<bool>[]> wants_{new std::atomic<bool>[kCapacity]{}};
};

}  // namespace ecmplb::dataplane
