// FlowHashInline: FlowHash (flow_key.h) as an inline function, for the few
// translation units that hash per packet (the connection table, the
// pipeline through dataplane/flow_hash.h). Everything else calls FlowHash,
// which is defined with it.
// Pure function: safe from any thread.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>

#include "conntrack/flow_key.h"

// XXH3 inlined: hashing a key costs no library call.
#ifndef XXH_INLINE_ALL
#define XXH_INLINE_ALL
#endif
#include <xxhash.h>

namespace ecmplb::conntrack {

static_assert(std::endian::native == std::endian::little,
              "kFlowHashHeaderMask assumes a little-endian host");

// FlowHash of an IPv4 key given as its two words (FlowKey::HeaderWord and the
// address word of FlowKey::SetV4Words), so a caller holding them in registers
// need not read the key back.
[[gnu::always_inline]] inline uint64_t FlowHashV4Words(uint64_t header_word,
                                                       uint64_t addr_word) noexcept {
  const uint64_t w[2] = {header_word & kFlowHashHeaderMask, addr_word};
  return XXH3_64bits_withSeed(w, sizeof(w), kFlowHashSeed);
}

// The canonical bytes with the service field (bytes 4..5) zeroed.
[[gnu::always_inline]] inline uint64_t FlowHashInline(const FlowKey& key) noexcept {
  if (!key.is_v6()) {
    uint64_t w[2];
    std::memcpy(w, &key, sizeof(w));
    return FlowHashV4Words(w[0], w[1]);
  }
  uint64_t w[5];
  std::memcpy(w, &key, sizeof(w));
  w[0] &= kFlowHashHeaderMask;
  return XXH3_64bits_withSeed(w, sizeof(w), kFlowHashSeed);
}

}  // namespace ecmplb::conntrack
