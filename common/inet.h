// inet.h: Internet protocol numbers (IPv4 protocol / IPv6 next header) and TCP header flag
// bits, the one definition every layer uses (packet parsing, the connection table's keys and
// states, the control plane's service protocols). Thread-safety: constants only.
#pragma once

#include <cstdint>

namespace ecmplb::inet {

// IP protocol / IPv6 next-header numbers (IANA).
namespace ip_proto {
inline constexpr uint8_t kIcmp = 1;
inline constexpr uint8_t kTcp = 6;
inline constexpr uint8_t kUdp = 17;
inline constexpr uint8_t kGre = 47;
inline constexpr uint8_t kIcmpv6 = 58;
inline constexpr uint8_t kOspf = 89;
}  // namespace ip_proto

// TCP flag bits (byte 13 of the TCP header).
namespace tcp_flag {
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;
inline constexpr uint8_t kUrg = 0x20;
}  // namespace tcp_flag

}  // namespace ecmplb::inet
