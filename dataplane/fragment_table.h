// fragment_table.h: where the later fragments of a datagram go, per worker.
//
// Only a datagram's first fragment carries the transport header, so only it can be placed like
// the rest of its flow (connection table, Maglev). The worker records that placement here, keyed
// by the datagram (addresses, protocol, IP identification), and its later fragments, which have
// no ports, find their backend by the same key. Fixed memory: a power-of-two number of 4-way
// buckets of one cache line per entry; an entry lives `timeout_s` whole seconds of the
// worker's clock (so between timeout_s and timeout_s + 1 seconds). When every way of a
// bucket is live, the oldest is displaced (Record says so; the pipeline counts it as
// fragment_table_full): a flood of fragmented datagrams then costs the oldest datagrams their
// later fragments, never the newest ones, which are the ones whose fragments are still arriving.
//
// Why one table per worker is enough: a NIC hashes every fragment of a datagram (the first one
// too) over the addresses only (RTE_ETH_RSS_FRAG_IPV4/IPV6), and the upstream router hashes
// fragments the same way, so one datagram's fragments all reach one LB host and one worker.
//
// Thread-safety: one table per worker, used only by that worker. Fast path: no allocation
// (the table is allocated once, by the constructor).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "dataplane/packet/headers.h"

namespace ecmplb::dataplane {

// One datagram: the fragments that share it are one datagram's. IPv4 (RFC 791): source,
// destination, protocol and identification. IPv6 (RFC 8200): source, destination and
// identification; the protocol is left out (0), since a later fragment names the first header
// of the fragmentable part, which is not the transport's when extension headers follow the
// fragment header.
struct FragmentKey {
  uint8_t src[16];  // IPv4 addresses in the first 4 bytes, the rest zero
  uint8_t dst[16];
  uint32_t id;  // IPv4 identification (16 bits) or the IPv6 fragment header's (32 bits)
  uint8_t family;
  uint8_t proto;
  uint16_t zero;  // padding, always 0 (keys are compared and hashed as bytes)

  // `proto` is ignored for IPv6 (see above).
  static FragmentKey Of(const IpAddr& src, const IpAddr& dst, uint32_t id, uint8_t proto);
  bool operator==(const FragmentKey&) const = default;
};
static_assert(sizeof(FragmentKey) == 40);

// Where the datagram's first fragment went: its service (the VIP is the key's destination)
// and backend, and its flow hash (a GUE header's source port, an IPv6 outer flow label).
struct FragmentPlacement {
  uint64_t flow_hash = 0;
  uint32_t backend_id = 0;
  uint16_t dport = 0;  // host order
  uint8_t proto = 0;   // the service's: TCP or UDP
};

class FragmentTable {
 public:
  static constexpr size_t kWays = 4;

  // `capacity` entries, rounded up to a power of two of at least kWays.
  FragmentTable(size_t capacity, uint32_t timeout_s);
  ~FragmentTable();
  FragmentTable(const FragmentTable&) = delete;
  FragmentTable& operator=(const FragmentTable&) = delete;

  size_t capacity() const { return mask_ + 1 == 0 ? 0 : (mask_ + 1) * kWays; }
  uint32_t timeout_s() const { return timeout_s_; }

  // Records (or refreshes) where `key`'s first fragment went. Returns true when a live entry of
  // another datagram was displaced to make room.
  bool Record(const FragmentKey& key, const FragmentPlacement& placement, uint32_t now_s);

  // Where `key`'s first fragment went, if it was recorded within timeout_s; else nullptr.
  const FragmentPlacement* Find(const FragmentKey& key, uint32_t now_s) const;

 private:
  struct alignas(64) Entry {
    FragmentKey key;
    FragmentPlacement placement;
    uint32_t stamp;  // now_s of the Record
    bool used;
  };
  static_assert(sizeof(Entry) == 64);

  bool Live(const Entry& e, uint32_t now_s) const { return e.used && now_s - e.stamp <= timeout_s_; }
  Entry* Bucket(const FragmentKey& key) const;

  std::unique_ptr<Entry[]> entries_;
  size_t mask_ = 0;  // buckets - 1
  uint32_t timeout_s_;
};

}  // namespace ecmplb::dataplane
