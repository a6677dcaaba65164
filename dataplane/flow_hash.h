// flow_hash.h: a flow's service key (its connection-table key: the 5-tuple as on the wire plus
// the service's counter slot) and its Maglev placement hash (the 5-tuple, or the client address
// alone for a source-IP service). The one definition the pipeline (per packet), the control
// plane's `lookup`, tests and benchmarks use, so a flow lands on the same backend whoever
// computes it. Header-inline: the pipeline calls it for every packet.
//
// The Maglev hash must be the same on every LB host: it covers the flow only, never host-local
// numbers such as the service's counter slot (conntrack::FlowHash leaves the key's service
// out, so the connection table's hash of a key is also its 5-tuple Maglev hash).
//
// Thread-safety: pure functions on values; safe from any thread. Fast path: no allocation.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>

#include "conntrack/flow_hash_inline.h"
#include "conntrack/flow_key.h"
#include "dataplane/packet/parse.h"
#include "dataplane/snapshot.h"

namespace ecmplb::dataplane {

// The key's service field for flows of `s`.
inline uint16_t ServiceIndex(const Service& s) {
  return static_cast<uint16_t>(s.counter_slot);
}

// The connection-table key of a flow of `s`, from a FlowTuple (ICMP error steering, the
// control plane) or straight from a ParsedPacket (no FlowTuple copy): both name the fields
// alike. Addresses as on the wire, ports turned to network order.
template <typename Flow>
inline conntrack::FlowKey ServiceFlowKey(const Service& s, const Flow& t) {
  const uint16_t sport_be = __builtin_bswap16(t.sport), dport_be = __builtin_bswap16(t.dport);
  if (t.family == 4) {
    uint32_t src, dst;
    std::memcpy(&src, t.src.bytes.data(), 4);
    std::memcpy(&dst, t.dst.bytes.data(), 4);
    return conntrack::FlowKey::V4(src, dst, sport_be, dport_be, t.proto, ServiceIndex(s));
  }
  return conntrack::FlowKey::V6(std::span<const uint8_t, 16>(t.src.bytes.data(), 16),
                                std::span<const uint8_t, 16>(t.dst.bytes.data(), 16), sport_be,
                                dport_be, t.proto, ServiceIndex(s));
}

// The per-packet IPv4 form of ServiceFlowKey: writes the key of IPv4 packet `p` to *key and
// returns its flow hash (conntrack::FlowHash(*key)). The key's two words are built in
// registers, stored whole and hashed from the registers (a key assembled from narrow stores
// stalls the loads that follow).
[[gnu::always_inline]] inline uint64_t SetServiceFlowKeyV4(const Service& s, const ParsedPacket& p,
                                                           conntrack::FlowKey* key) {
  uint32_t src, dst;
  std::memcpy(&src, p.src.bytes.data(), 4);
  std::memcpy(&dst, p.dst.bytes.data(), 4);
  const uint64_t header =
      conntrack::FlowKey::HeaderWord(__builtin_bswap16(p.sport), __builtin_bswap16(p.dport),
                                     p.proto, ServiceIndex(s), conntrack::kFamilyV4);
  const uint64_t addr = uint64_t{src} | uint64_t{dst} << 32;
  key->SetV4Words(header, addr);
  return conntrack::FlowHashV4Words(header, addr);
}

// The Maglev hash of a flow of `s` whose key is `key` and whose flow hash is `flow_hash`
// (conntrack::FlowHash(key)): a five-tuple service uses that hash itself, a source-IP service
// the hash of the client address alone.
inline uint64_t MaglevHash(const Service& s, const conntrack::FlowKey& key, uint64_t flow_hash) {
  if (s.hash != HashMode::kSourceIp) return flow_hash;
  if (!key.is_v6()) {
    uint32_t src;
    std::memcpy(&src, key.addr, 4);
    return conntrack::FlowHash(conntrack::FlowKey::V4(src, 0, 0, 0, 0, 0));
  }
  static constexpr uint8_t kZero[16] = {};
  return conntrack::FlowHash(conntrack::FlowKey::V6(std::span<const uint8_t, 16>(key.addr, 16),
                                                    std::span<const uint8_t, 16>(kZero, 16), 0, 0,
                                                    0, 0));
}

// A flow of a service, all at once (control plane, tests, benchmarks): its connection-table
// key, that key's flow hash, and its Maglev hash (index the service's Maglev table with it).
struct FlowPlacement {
  conntrack::FlowKey key;
  uint64_t flow_hash = 0;
  uint64_t maglev_hash = 0;
};
inline FlowPlacement PlaceFlow(const Service& s, const FlowTuple& flow) {
  FlowPlacement out;
  out.key = ServiceFlowKey(s, flow);
  out.flow_hash = conntrack::FlowHash(out.key);
  out.maglev_hash = MaglevHash(s, out.key, out.flow_hash);
  return out;
}

}  // namespace ecmplb::dataplane
