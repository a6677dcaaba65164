#include "conntrack/flow_key.h"

// Inline XXH3 so hashing a key costs no library call.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <cstring>

namespace ecmplb::conntrack {

FlowKey FlowKey::V4(uint32_t src_be, uint32_t dst_be, uint16_t sport_be,
                    uint16_t dport_be, uint8_t proto, uint16_t service) {
  FlowKey k;
  k.sport = sport_be;
  k.dport = dport_be;
  k.service = service;
  k.proto = proto;
  k.family = kFamilyV4;
  std::memcpy(&k.addr[0], &src_be, 4);
  std::memcpy(&k.addr[4], &dst_be, 4);
  return k;
}

FlowKey FlowKey::V6(std::span<const uint8_t, 16> src,
                    std::span<const uint8_t, 16> dst, uint16_t sport_be,
                    uint16_t dport_be, uint8_t proto, uint16_t service) {
  FlowKey k;
  k.sport = sport_be;
  k.dport = dport_be;
  k.service = service;
  k.proto = proto;
  k.family = kFamilyV6;
  std::memcpy(&k.addr[0], src.data(), 16);
  std::memcpy(&k.addr[16], dst.data(), 16);
  return k;
}

uint64_t FlowHash(const FlowKey& key) noexcept {
  return XXH3_64bits_withSeed(&key, key.canonical_size(), kFlowHashSeed);
}

}  // namespace ecmplb::conntrack
