// Wire constants and small value types for packet code: Ethernet/IP header
// sizes, EtherTypes, big-endian load/store helpers, MacAddr and IpAddr (IP
// protocol numbers and TCP flags: common/inet.h).
//
// Thread-safety: everything here is a constant, a pure function or a plain
// value type; values are safe to share read-only between threads.
// Fast path: the inline helpers and the accessors/comparisons are
// allocation-free; ToString/Parse allocate and are for the control plane and
// tests only.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <functional>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "common/inet.h"

namespace ecmplb::dataplane {

// Header sizes in bytes.
inline constexpr size_t kEthAddrLen = 6;
inline constexpr size_t kEthHeaderLen = 14;
inline constexpr size_t kVlanTagLen = 4;
inline constexpr size_t kEthVlanHeaderLen = kEthHeaderLen + kVlanTagLen;
inline constexpr size_t kIpv4MinHeaderLen = 20;
inline constexpr size_t kIpv4MaxHeaderLen = 60;
inline constexpr size_t kIpv6HeaderLen = 40;
inline constexpr size_t kTcpMinHeaderLen = 20;
inline constexpr size_t kUdpHeaderLen = 8;
inline constexpr size_t kIcmpHeaderLen = 8;  // type, code, checksum, 4 more
inline constexpr size_t kGreHeaderLen = 4;   // RFC 2784 without options

// EtherType values (host order).
namespace ether_type {
inline constexpr uint16_t kIpv4 = 0x0800;
inline constexpr uint16_t kArp = 0x0806;
inline constexpr uint16_t kVlan = 0x8100;     // 802.1Q C-tag
inline constexpr uint16_t kQinQ = 0x88A8;     // 802.1ad S-tag
inline constexpr uint16_t kQinQOld = 0x9100;  // pre-standard S-tag
inline constexpr uint16_t kIpv6 = 0x86DD;
inline constexpr uint16_t kLldp = 0x88CC;
}  // namespace ether_type

// IPv4 flags/fragment-offset field (host order).
inline constexpr uint16_t kIpv4FlagDf = 0x4000;
inline constexpr uint16_t kIpv4FlagMf = 0x2000;
inline constexpr uint16_t kIpv4FragOffsetMask = 0x1FFF;

// Big-endian loads and stores at unaligned addresses. The caller guarantees
// the bytes are inside its buffer.
inline uint16_t LoadBe16(const uint8_t* p) {
  return static_cast<uint16_t>((uint16_t{p[0]} << 8) | p[1]);
}
inline uint32_t LoadBe32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | uint32_t{p[3]};
}
inline void StoreBe16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void StoreBe32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// A 48-bit Ethernet address, in wire order.
struct MacAddr {
  std::array<uint8_t, kEthAddrLen> bytes{};

  static MacAddr FromBytes(const uint8_t* p) {
    MacAddr m;
    std::memcpy(m.bytes.data(), p, kEthAddrLen);
    return m;
  }
  // "aa:bb:cc:dd:ee:ff" (lower case).
  std::string ToString() const;
  // Accepts six colon-separated pairs of hex digits, either case.
  static absl::StatusOr<MacAddr> Parse(std::string_view text);

  friend bool operator==(const MacAddr&, const MacAddr&) = default;
};

// An IPv4 or IPv6 address. family is 4 or 6 (0 = unset). An IPv4 address
// lives in bytes[0..4) in wire order; all unused bytes are zero, so equality
// and hashing can look at the whole array.
struct IpAddr {
  uint8_t family = 0;
  std::array<uint8_t, 16> bytes{};

  static IpAddr V4FromBytes(const uint8_t* p) {
    IpAddr a;
    a.AssignV4(p);
    return a;
  }
  // In-place forms for the parser: they write every byte with plain stores
  // (no read of the old value, so no store-forwarding stall on a later copy).
  void AssignV4(const uint8_t* p) {
    family = 4;
    std::memcpy(bytes.data(), p, 4);
    std::memset(bytes.data() + 4, 0, 12);
  }
  void AssignV6(const uint8_t* p) {
    family = 6;
    std::memcpy(bytes.data(), p, 16);
  }
  // From a host-order 32-bit value, e.g. V4(0x0a000001) is 10.0.0.1.
  static IpAddr V4(uint32_t host_order) {
    IpAddr a;
    a.family = 4;
    StoreBe32(a.bytes.data(), host_order);
    return a;
  }
  static IpAddr V6FromBytes(const uint8_t* p) {
    IpAddr a;
    a.family = 6;
    std::memcpy(a.bytes.data(), p, 16);
    return a;
  }
  bool is_v4() const { return family == 4; }
  bool is_v6() const { return family == 6; }
  // Number of address bytes on the wire: 4, 16, or 0 when unset.
  size_t size() const { return family == 4 ? 4 : family == 6 ? 16 : 0; }
  // Host-order value of an IPv4 address.
  uint32_t v4_host() const { return LoadBe32(bytes.data()); }

  // Dotted quad or RFC 5952 text; "unset" when family is 0.
  std::string ToString() const;
  // Parses an IPv4 dotted quad or IPv6 text address.
  static absl::StatusOr<IpAddr> Parse(std::string_view text);

  friend bool operator==(const IpAddr&, const IpAddr&) = default;

  template <typename H>
  friend H AbslHashValue(H h, const IpAddr& a) {
    return H::combine(H::combine_contiguous(std::move(h), a.bytes.data(), a.bytes.size()),
                      a.family);
  }
  // A cheap, allocation-free 64-bit hash (for std::hash and small tables).
  uint64_t Hash() const {
    uint64_t lo;
    uint64_t hi;
    std::memcpy(&lo, bytes.data(), 8);
    std::memcpy(&hi, bytes.data() + 8, 8);
    uint64_t h = (lo ^ (uint64_t{family} << 56)) * 0x9E3779B97F4A7C15ULL;
    h ^= (h >> 29);
    h += hi * 0xC2B2AE3D27D4EB4FULL;
    h ^= (h >> 32);
    h *= 0x165667B19E3779F9ULL;
    h ^= (h >> 29);
    return h;
  }
};

}  // namespace ecmplb::dataplane

template <>
struct std::hash<ecmplb::dataplane::IpAddr> {
  size_t operator()(const ecmplb::dataplane::IpAddr& a) const {
    return static_cast<size_t>(a.Hash());
  }
};
