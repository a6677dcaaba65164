// inet.h: Internet protocol numbers (IPv4 protocol / IPv6 next header) and TCP header flag
// bits, the one definition every layer uses (packet parsing, the connection table's keys and
// states, the control plane's service protocols). Thread-safety: constants only.
#pragma once

#include <cstdint>

namespace ecmplb::inet {

// IP protocol / IPv6 next-header numbers (IANA).
namespace ip_proto {
inline constexpr uint8_t kHopByHop = 0;  // IPv6 hop-by-hop options (RFC 8200)
inline constexpr uint8_t kIcmp = 1;
inline constexpr uint8_t kIpip = 4;  // IPv4 in IP (RFC 2003)
inline constexpr uint8_t kTcp = 6;
inline constexpr uint8_t kUdp = 17;
inline constexpr uint8_t kIpv6 = 41;  // IPv6 in IP (RFC 4213)
inline constexpr uint8_t kIpv6Routing = 43;
inline constexpr uint8_t kIpv6Fragment = 44;
inline constexpr uint8_t kGre = 47;
inline constexpr uint8_t kIcmpv6 = 58;
inline constexpr uint8_t kIpv6NoNext = 59;
inline constexpr uint8_t kIpv6DestOptions = 60;
inline constexpr uint8_t kOspf = 89;
}  // namespace ip_proto

// TCP flag bits (byte 13 of the TCP header), FIN being bit 0.
namespace tcp_flag {
enum : uint8_t {
  kFin = 1 << 0,
  kSyn = 1 << 1,
  kRst = 1 << 2,
  kPsh = 1 << 3,
  kAck = 1 << 4,
  kUrg = 1 << 5
};
}  // namespace tcp_flag

}  // namespace ecmplb::inet
