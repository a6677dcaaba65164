// FlowKey: the identity of one tracked flow (full 5-tuple for IPv4 or IPv6 plus
// the service index), and FlowHash, the deterministic flow hash the dataplane
// can reuse. Plain value types and a pure function: safe from any thread.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "common/inet.h"

namespace ecmplb::conntrack {

inline constexpr uint8_t kFamilyV4 = 4;
inline constexpr uint8_t kFamilyV6 = 6;

// Byte order: addresses and ports are kept exactly as they appear on the wire
// (network byte order; the dataplane memcpy()s them out of the header).
// `service` is a host-order index chosen by the control plane.
//
// Layout (40 bytes, no padding) is also the canonical byte form hashed by
// FlowHash: the 8-byte header followed by the addresses. An IPv4 key uses
// addr[0..3] = source, addr[4..7] = destination and keeps addr[8..31] zero;
// an IPv6 key uses addr[0..15] = source, addr[16..31] = destination.
// Build keys with V4()/V6() so the unused bytes are zero; two keys are the
// same flow iff all 40 bytes are equal.
struct FlowKey {
  uint16_t sport = 0;    // network byte order
  uint16_t dport = 0;    // network byte order
  uint16_t service = 0;  // host order
  uint8_t proto = 0;     // IP protocol number (inet::ip_proto)
  uint8_t family = 0;    // kFamilyV4 or kFamilyV6
  uint8_t addr[32] = {};

  // src_be/dst_be: the 4 address bytes as loaded from the packet. Inline: the
  // dataplane builds one per packet.
  static FlowKey V4(uint32_t src_be, uint32_t dst_be, uint16_t sport_be, uint16_t dport_be,
                    uint8_t proto, uint16_t service) {
    FlowKey k = Header(sport_be, dport_be, proto, service, kFamilyV4);
    std::memcpy(&k.addr[0], &src_be, 4);
    std::memcpy(&k.addr[4], &dst_be, 4);
    return k;
  }
  static FlowKey V6(std::span<const uint8_t, 16> src, std::span<const uint8_t, 16> dst,
                    uint16_t sport_be, uint16_t dport_be, uint8_t proto, uint16_t service) {
    FlowKey k = Header(sport_be, dport_be, proto, service, kFamilyV6);
    std::memcpy(&k.addr[0], src.data(), 16);
    std::memcpy(&k.addr[16], dst.data(), 16);
    return k;
  }

  // The first eight bytes (sport, dport, service, proto, family) as a
  // little-endian word, and the IPv4 key made of that word and an address
  // word (source bytes then destination bytes, as loaded), written with whole
  // words: code that reads the key right away (a hash, a copy) then gets it
  // from the store buffer instead of stalling on narrow stores.
  static constexpr uint64_t HeaderWord(uint16_t sport_be, uint16_t dport_be, uint8_t proto,
                                       uint16_t service, uint8_t family) {
    return uint64_t{sport_be} | uint64_t{dport_be} << 16 | uint64_t{service} << 32 |
           uint64_t{proto} << 48 | uint64_t{family} << 56;
  }
  void SetV4Words(uint64_t header_word, uint64_t addr_word) {
    static_assert(std::endian::native == std::endian::little,
                  "HeaderWord is the little-endian load of the header");
    std::memcpy(static_cast<void*>(this), &header_word, 8);
    std::memcpy(addr, &addr_word, 8);
    std::memset(addr + 8, 0, sizeof(addr) - 8);
  }

  bool is_v6() const { return family == kFamilyV6; }
  // Number of canonical bytes: 16 for IPv4 (header + 8 address bytes), 40
  // for IPv6.
  size_t canonical_size() const { return is_v6() ? 40 : 16; }
  std::span<const std::byte> canonical_bytes() const {
    return {reinterpret_cast<const std::byte*>(this), canonical_size()};
  }

  friend bool operator==(const FlowKey&, const FlowKey&) = default;

 private:
  // A key with these header fields and all address bytes zero.
  static FlowKey Header(uint16_t sport_be, uint16_t dport_be, uint8_t proto, uint16_t service,
                        uint8_t family) {
    FlowKey k;
    k.sport = sport_be;
    k.dport = dport_be;
    k.service = service;
    k.proto = proto;
    k.family = family;
    return k;
  }
};
static_assert(sizeof(FlowKey) == 40, "FlowKey must have no padding");

// Fixed seed of FlowHash; changing it changes every host's flow placement.
inline constexpr uint64_t kFlowHashSeed = 0x65636d706c62ULL;  // "ecmplb"

// XXH3-64 with kFlowHashSeed over key.canonical_bytes() with the two service
// bytes zeroed. Deterministic across processes and hosts of the same
// endianness. The service is not hashed: it is a host-local index, and the
// 5-tuple already names the service (VIP, port, protocol), so every LB host
// computes the same hash for a flow whatever its service numbering, and the
// dataplane reuses the connection table's hash of a flow as its Maglev hash.
// Keys that differ only in service hash alike (and still compare unequal).
uint64_t FlowHash(const FlowKey& key) noexcept;

// Mask of the first canonical word (little-endian load) that clears the
// service bytes.
inline constexpr uint64_t kFlowHashHeaderMask = 0xffff'0000'ffff'ffffULL;

}  // namespace ecmplb::conntrack
