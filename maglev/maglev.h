// Maglev consistent-hash lookup table (Eisenbud et al., NSDI 2016, section
// 3.4) with plain-ratio weights, plus the backend identity it hashes.
//
// Thread-safety: BackendId and Backend are plain values. A Table is immutable
// once Build() returns: any number of threads may call its const methods at
// the same time. Build() allocates and is meant for the control thread;
// Lookup()/LookupBurst() are the per-packet path (no allocation, no branch on
// data, one multiply and one load per flow).
//
// Determinism: the table depends only on the set of (identity, weight) pairs
// and on the table size M, never on input order, pointers or the machine, so
// every LB host given the same configuration builds a byte-identical table
// (compare TableFingerprint() across hosts to check).
//
// Canonical identity bytes (19 bytes, what is hashed):
//   byte  0      family: 4 for IPv4, 6 for IPv6
//   bytes 1..16  address: IPv6 as is; IPv4 as the v4-mapped IPv6 address
//                ::ffff:a.b.c.d (ten 0x00, two 0xff, the four IPv4 bytes)
//   bytes 17..18 port, big-endian (network order)
// Permutation of backend b (paper's notation):
//   offset = XXH64(bytes, 19, kOffsetSeed) mod M
//   skip   = XXH64(bytes, 19, kSkipSeed) mod (M - 1) + 1
//   preference j = (offset + j * skip) mod M, walked incrementally.
// Fill order: backends are sorted by canonical bytes. Round r = 1, 2, ...;
// a backend of weight w has taken floor(r * w / max_weight) turns after
// round r (an integer credit scheme: it earns w/max_weight per round and
// takes a turn when its credit reaches 1). On each turn it claims its next
// preferred empty slot, exactly as in the paper; the build stops when the
// table is full. Within a round, backends take turns ordered by when their
// previous turn was (those without one first, in sorted order); for equal
// weights that is sorted order every round, the paper's loop.
// Slot counts are therefore proportional to weights, whatever they sum to;
// weight 0 takes no slot and gives exactly the table of the same set
// without that backend (drain == remove for new flows).
#pragma once

#include <array>
#include <compare>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace ecmplb::maglev {

inline constexpr uint32_t kDefaultTableSize = 65537;
inline constexpr uint32_t kMinTableSize = 251;
// Largest accepted table size (a bound, not necessarily prime: the largest
// accepted prime is the largest prime <= this, 16777213).
inline constexpr uint32_t kMaxTableSize = 1u << 24;
// Entries are 16-bit indices into the input; 0xffff marks an empty slot
// while building, so at most 65535 backends.
inline constexpr uint32_t kMaxBackends = 65535;

inline constexpr uint64_t kOffsetSeed = 0x6d61676c65764f46ULL;  // "maglevOF"
inline constexpr uint64_t kSkipSeed = 0x6d61676c65765350ULL;    // "maglevSP"

inline constexpr size_t kCanonicalIdSize = 19;

// Stable identity of a backend: IPv4 or IPv6 address plus port. Ordered and
// compared by its canonical bytes.
class BackendId {
 public:
  // 0.0.0.0:0.
  BackendId();

  static BackendId V4(std::array<uint8_t, 4> addr, uint16_t port);
  // `addr_be` as it sits in a packet or in_addr.s_addr: its memory bytes are
  // the address in network order.
  static BackendId V4Be(uint32_t addr_be, uint16_t port);
  static BackendId V6(const std::array<uint8_t, 16>& addr, uint16_t port);

  // "10.0.0.1", "10.0.0.1:80", "2001:db8::1", "[2001:db8::1]",
  // "[2001:db8::1]:80". A missing port is port 0. InvalidArgument otherwise.
  static absl::StatusOr<BackendId> Parse(std::string_view text);

  bool is_v4() const { return family_ == 4; }
  bool is_v6() const { return family_ == 6; }
  uint8_t family() const { return family_; }  // 4 or 6
  uint16_t port() const { return port_; }     // host order
  // IPv6 address, or the v4-mapped form of an IPv4 address.
  const std::array<uint8_t, 16>& addr16() const { return addr_; }
  // IPv4 address bytes (network order); only meaningful if is_v4().
  std::array<uint8_t, 4> v4() const { return {addr_[12], addr_[13], addr_[14], addr_[15]}; }

  std::array<uint8_t, kCanonicalIdSize> CanonicalBytes() const;

  // "10.0.0.1:80", "[2001:db8::1]:80" (port always printed; Parse() reads it
  // back to an equal id).
  std::string ToString() const;

  // Member order matches the canonical bytes, so this is their
  // lexicographic order.
  friend auto operator<=>(const BackendId&, const BackendId&) = default;
  friend bool operator==(const BackendId&, const BackendId&) = default;

 private:
  uint8_t family_;
  std::array<uint8_t, 16> addr_;
  uint16_t port_;
};

struct Backend {
  BackendId id;
  uint32_t weight = 1;  // 0 = drain: no slots
};

class Table {
 public:
  // Entries index into `backends` as given (position in the span).
  // Errors, each leaving nothing built:
  //   InvalidArgument     table_size not a prime in [251, kMaxTableSize];
  //                       backends.size() >= table_size; duplicate identity
  //   ResourceExhausted   more than kMaxBackends backends
  //   FailedPrecondition  no backend, or every weight is 0
  static absl::StatusOr<Table> Build(std::span<const Backend> backends,
                                     uint32_t table_size = kDefaultTableSize);

  static absl::Status ValidateTableSize(uint32_t m);
  // The table size for a service expected to reach `expected_backends` backends: the smallest
  // prime >= 100 x that (Maglev's recommendation), at least kMinTableSize, at most the
  // largest prime <= kMaxTableSize. Chosen once, when a service is created, and kept: a size
  // that followed the backend count would remap every flow on each change.
  static uint32_t SizeFor(uint32_t expected_backends);

  Table(Table&&) noexcept = default;
  Table& operator=(Table&&) noexcept = default;
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  uint32_t size() const { return size_; }
  // Number of backends Build() was given (weight-0 ones included).
  uint32_t num_backends() const { return num_backends_; }

  // Slot of a flow hash: Lemire's multiply-shift on the hash's high 32 bits,
  // uniform over [0, size()) without a division.
  uint32_t SlotOf(uint64_t flow_hash) const {
    return static_cast<uint32_t>(
        (static_cast<uint64_t>(static_cast<uint32_t>(flow_hash >> 32)) * size_) >> 32);
  }

  // Flow hash -> index into the span given to Build().
  uint32_t Lookup(uint64_t flow_hash) const { return entries_[SlotOf(flow_hash)]; }

  // Looks up min(hashes.size(), out.size()) hashes; returns that count.
  size_t LookupBurst(std::span<const uint64_t> hashes, std::span<uint32_t> out) const {
    const size_t n = hashes.size() < out.size() ? hashes.size() : out.size();
    const uint16_t* entries = entries_.get();
    for (size_t i = 0; i < n; ++i) out[i] = entries[SlotOf(hashes[i])];
    return n;
  }

  // Slot -> index into the span given to Build().
  std::span<const uint16_t> entries() const { return {entries_.get(), size_}; }

  // Slots owned by each input index (size num_backends()).
  std::vector<uint32_t> SlotCounts() const;

 private:
  Table(uint32_t size, uint32_t num_backends, std::unique_ptr<uint16_t[]> entries)
      : size_(size), num_backends_(num_backends), entries_(std::move(entries)) {}

  uint32_t size_;
  uint32_t num_backends_;
  std::unique_ptr<uint16_t[]> entries_;  // size_ slots
};

// XXH64 over the canonical identity bytes of each slot's backend, slot by
// slot (seed 0): equal on two hosts iff they would send every flow hash to
// the same backend identity. `backends` must be the span the table was built
// from (InvalidArgument if its size differs).
absl::StatusOr<uint64_t> TableFingerprint(const Table& table, std::span<const Backend> backends);

}  // namespace ecmplb::maglev
