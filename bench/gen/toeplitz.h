// toeplitz.h: the Toeplitz (RSS) hash in software, table-driven, for peer steering: the
// generator picks, for every flow, the queue the balancer's RSS would pick (dataplane/rss.h).
// It equals DPDK's rte_softrss() over an rte_ipv4_tuple / rte_ipv6_tuple in host order (a unit
// test checks this against the real rte_softrss) but costs one table load per input byte
// instead of a loop over the set bits.
//
// Thread-safety: a ToeplitzHasher is immutable after construction; share it freely.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace ecmplb::gen {

class ToeplitzHasher {
 public:
  // Input of up to max_input bytes (key.size() must be >= max_input + 4).
  ToeplitzHasher(std::span<const uint8_t> key, size_t max_input) : table_(max_input * 256) {
    for (size_t pos = 0; pos < max_input; ++pos) {
      // The 32-bit window of the key that starts at bit 8*pos + b is the contribution of input
      // bit b (MSB first) of byte pos.
      for (unsigned value = 0; value < 256; ++value) {
        uint32_t h = 0;
        for (unsigned b = 0; b < 8; ++b) {
          if ((value & (0x80u >> b)) == 0) continue;
          h ^= Window(key, pos * 8 + b);
        }
        table_[pos * 256 + value] = h;
      }
    }
  }

  // Hash of `input` (bytes in wire order: source address, destination address, source port,
  // destination port, all big-endian). input.size() <= max_input.
  uint32_t Hash(std::span<const uint8_t> input) const {
    uint32_t h = 0;
    for (size_t i = 0; i < input.size(); ++i) h ^= table_[i * 256 + input[i]];
    return h;
  }

 private:
  static uint32_t Window(std::span<const uint8_t> key, size_t bit) {
    uint64_t w = 0;
    for (size_t k = 0; k < 5; ++k) {
      const size_t i = bit / 8 + k;
      w = (w << 8) | (i < key.size() ? key[i] : 0);
    }
    return static_cast<uint32_t>(w >> (8 - bit % 8));
  }

  std::vector<uint32_t> table_;
};

}  // namespace ecmplb::gen
