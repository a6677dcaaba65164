// Internet checksum (RFC 1071) over byte spans, incremental update
// (RFC 1624), the IPv4 header checksum and the TCP/UDP/ICMPv6 checksum with
// the IPv4/IPv6 pseudo-header.
//
// Conventions: every 16-bit value here is the number you would read from or
// write to the wire with LoadBe16/StoreBe16 (a "network word" held in a host
// integer). A "sum" is a folded one's-complement sum, not yet complemented; a
// "checksum" is the complemented value that goes into the header field.
//
// Thread-safety: pure functions. Fast path: no allocation, no branches on
// data other than the length.
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>

#include "dataplane/packet/headers.h"

namespace ecmplb::dataplane {

// Folds a wide one's-complement accumulator to 16 bits (end-around carry).
// Adding a value to itself rotated by half its width sums its two halves in
// the upper half, and the carry out of the lower half is exactly the
// end-around carry (as in Linux's csum_fold). The result is 0 only for 0.
inline uint16_t FoldSum(uint64_t acc) {
  const uint32_t s = static_cast<uint32_t>((acc + std::rotr(acc, 32)) >> 32);
  return static_cast<uint16_t>((s + std::rotr(s, 16)) >> 16);
}

// One's-complement sum of `data` read as big-endian 16-bit words (an odd
// final byte is padded with a zero byte), plus `initial` (a previous sum).
// Chain sums over consecutive pieces only if every piece but the last has an
// even length.
inline uint16_t OnesSum(std::span<const uint8_t> data, uint32_t initial = 0) {
  // Sum native-order words; the one's-complement sum is byte-order
  // independent (RFC 1071 section 2(B)), so swap once at the end.
  const uint8_t* p = data.data();
  size_t n = data.size();
  uint64_t acc = 0;
  while (n >= 8) {
    uint32_t a;
    uint32_t b;
    std::memcpy(&a, p, 4);
    std::memcpy(&b, p + 4, 4);
    acc += uint64_t{a} + uint64_t{b};
    p += 8;
    n -= 8;
  }
  if (n >= 4) {
    uint32_t a;
    std::memcpy(&a, p, 4);
    acc += a;
    p += 4;
    n -= 4;
  }
  if (n >= 2) {
    uint16_t a;
    std::memcpy(&a, p, 2);
    acc += a;
    p += 2;
    n -= 2;
  }
  if (n == 1) {
    uint16_t a = 0;
    std::memcpy(&a, p, 1);  // the byte lands first in memory: zero padding
    acc += a;
  }
  uint16_t sum = FoldSum(acc);
  if constexpr (std::endian::native == std::endian::little) {
    sum = static_cast<uint16_t>((sum >> 8) | (sum << 8));
  }
  return FoldSum(uint64_t{sum} + initial);
}

// RFC 1071 checksum of `data`: the value for a checksum field that was zero
// while summing. Over data that includes a correct checksum field it is 0.
inline uint16_t InternetChecksum(std::span<const uint8_t> data, uint32_t initial = 0) {
  return static_cast<uint16_t>(~OnesSum(data, initial));
}

// RFC 1624 eqn. 3: new checksum after one 16-bit word of the covered data
// changes from old_word to new_word: HC' = ~(~HC + ~m + m').
inline uint16_t ChecksumUpdate16(uint16_t checksum, uint16_t old_word, uint16_t new_word) {
  const uint64_t acc = uint64_t{static_cast<uint16_t>(~checksum)} +
                       uint64_t{static_cast<uint16_t>(~old_word)} + new_word;
  return static_cast<uint16_t>(~FoldSum(acc));
}

// Same for a 32-bit field (e.g. an IPv4 address) changing; both words at
// once.
inline uint16_t ChecksumUpdate32(uint16_t checksum, uint32_t old_value, uint32_t new_value) {
  const uint64_t acc = uint64_t{static_cast<uint16_t>(~checksum)} +
                       uint64_t{static_cast<uint16_t>(~(old_value >> 16))} +
                       uint64_t{static_cast<uint16_t>(~old_value)} + (new_value >> 16) +
                       (new_value & 0xFFFFu);
  return static_cast<uint16_t>(~FoldSum(acc));
}

// Checksum for an IPv4 header (IHL*4 bytes), computed as if its checksum
// field (bytes 10..11) were zero. Requires header.size() >= 20.
inline uint16_t Ipv4HeaderChecksum(std::span<const uint8_t> header) {
  const uint16_t before = OnesSum(header.first(10));
  return InternetChecksum(header.subspan(12), before);
}

// True if an IPv4 header (IHL*4 bytes, checksum field included) verifies.
inline bool Ipv4HeaderChecksumOk(std::span<const uint8_t> header) {
  if (header.size() == kIpv4MinHeaderLen) {  // no options: five words, no loop
    // Five separate loads (one 20-byte copy becomes a vector store and
    // reloads through the stack). 0xFFFF is the same in either byte order:
    // no swap needed.
    const uint8_t* h = header.data();
    uint64_t acc = 0;
    for (int i = 0; i < 5; ++i) {
      uint32_t w;
      std::memcpy(&w, h + 4 * i, sizeof(w));
      acc += w;
    }
    return FoldSum(acc) == 0xFFFF;
  }
  return OnesSum(header) == 0xFFFF;
}

// Sum of the pseudo-header for a TCP/UDP/ICMPv6 checksum: IPv4 (RFC 793:
// src, dst, zero, protocol, L4 length) or IPv6 (RFC 8200 section 8.1: src,
// dst, 32-bit upper-layer length, zeros, next header). src and dst must be
// the same family.
inline uint16_t PseudoHeaderSum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                                uint32_t l4_len) {
  const size_t n = src.size();
  const uint32_t addr =
      uint32_t{OnesSum(std::span(src.bytes.data(), n))} + OnesSum(std::span(dst.bytes.data(), n));
  return FoldSum(uint64_t{addr} + proto + (l4_len >> 16) + (l4_len & 0xFFFF));
}

// TCP/UDP/ICMPv6 checksum of `l4` (header + payload, checksum field zero)
// under the pseudo-header of src/dst/proto. Over a segment whose checksum
// field is correct the result is 0. (UDP: a computed 0 goes on the wire as
// 0xFFFF, RFC 768.)
inline uint16_t L4Checksum(const IpAddr& src, const IpAddr& dst, uint8_t proto,
                           std::span<const uint8_t> l4) {
  return InternetChecksum(l4, PseudoHeaderSum(src, dst, proto, static_cast<uint32_t>(l4.size())));
}

}  // namespace ecmplb::dataplane
