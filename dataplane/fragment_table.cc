// fragment_table.cc: see fragment_table.h.
#include "dataplane/fragment_table.h"

#include <cstring>

#include <xxhash.h>

namespace ecmplb::dataplane {

FragmentKey FragmentKey::Of(const IpAddr& src, const IpAddr& dst, uint32_t id, uint8_t proto) {
  FragmentKey k;
  std::memcpy(k.src, src.bytes.data(), 16);
  std::memcpy(k.dst, dst.bytes.data(), 16);
  k.id = id;
  k.family = src.family;
  k.proto = src.family == 6 ? uint8_t{0} : proto;
  k.zero = 0;
  return k;
}

FragmentTable::FragmentTable(size_t capacity, uint32_t timeout_s) : timeout_s_(timeout_s) {
  size_t buckets = 1;
  while (buckets * kWays < capacity) buckets <<= 1;
  mask_ = buckets - 1;
  entries_.reset(new Entry[buckets * kWays]);
  std::memset(static_cast<void*>(entries_.get()), 0, sizeof(Entry) * buckets * kWays);
}

FragmentTable::~FragmentTable() = default;

FragmentTable::Entry* FragmentTable::Bucket(const FragmentKey& key) const {
  const uint64_t h = XXH3_64bits(&key, sizeof(key));
  return entries_.get() + (h & mask_) * kWays;
}

bool FragmentTable::Record(const FragmentKey& key, const FragmentPlacement& placement,
                           uint32_t now_s) {
  Entry* b = Bucket(key);
  Entry* slot = nullptr;
  for (size_t w = 0; w < kWays; ++w) {
    if (b[w].used && b[w].key == key) {
      slot = &b[w];
      break;
    }
  }
  bool displaced = false;
  if (slot == nullptr) {
    // A free or expired way, else the oldest live one.
    for (size_t w = 0; w < kWays; ++w) {
      if (!Live(b[w], now_s)) {
        slot = &b[w];
        break;
      }
      if (slot == nullptr || now_s - b[w].stamp > now_s - slot->stamp) slot = &b[w];
    }
    displaced = Live(*slot, now_s);
  }
  slot->key = key;
  slot->placement = placement;
  slot->stamp = now_s;
  slot->used = true;
  return displaced;
}

const FragmentPlacement* FragmentTable::Find(const FragmentKey& key, uint32_t now_s) const {
  const Entry* b = Bucket(key);
  for (size_t w = 0; w < kWays; ++w) {
    if (Live(b[w], now_s) && b[w].key == key) return &b[w].placement;
  }
  return nullptr;
}

}  // namespace ecmplb::dataplane
