#include "conntrack/flow_key.h"

// Inline XXH3 so hashing a key costs no library call.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <bit>
#include <cstring>

namespace ecmplb::conntrack {

static_assert(std::endian::native == std::endian::little,
              "kFlowHashHeaderMask assumes a little-endian host");

uint64_t FlowHash(const FlowKey& key) noexcept {
  // The canonical bytes with the service field (bytes 4..5) zeroed.
  if (!key.is_v6()) {
    uint64_t w[2];
    std::memcpy(w, &key, sizeof(w));
    w[0] &= kFlowHashHeaderMask;
    return XXH3_64bits_withSeed(w, sizeof(w), kFlowHashSeed);
  }
  uint64_t w[5];
  std::memcpy(w, &key, sizeof(w));
  w[0] &= kFlowHashHeaderMask;
  return XXH3_64bits_withSeed(w, sizeof(w), kFlowHashSeed);
}

}  // namespace ecmplb::conntrack
