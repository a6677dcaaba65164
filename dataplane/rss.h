// rss.h: how flows are spread over a data port's RX queues, one queue per worker, so that every
// packet of a flow reaches the same worker (its connection table has one writer).
//
// ecmplb programs its own Toeplitz key (kRssKey) into a port that has RSS instead of keeping
// the PMD's default, so that a peer that cannot rely on a NIC (the traffic generator on memif,
// which has no RSS) can compute the same hash with rte_softrss() and choose the queue itself
// ("peer steering"). The queue of a flow under peer steering is PeerSteeredQueue(hash, queues):
// the hash over the IPv4/IPv6 source and destination addresses and L4 ports in the order of
// DPDK's rte_ipv4_tuple / rte_ipv6_tuple (host byte order, as rte_softrss expects), reduced
// modulo the queue count. A fragment (IPv4 MF or offset, IPv6 fragment header), the first one
// included, is hashed over its addresses alone, as NICs do with the RTE_ETH_RSS_FRAG_* types
// (rte_softrss over the addresses only): every fragment of a datagram must reach the worker
// that holds its fragment table entry (fragment_table.h).
//
// The key is the one from Microsoft's RSS specification (also many PMDs' default): well known,
// so a capture can be checked against any Toeplitz implementation.
//
// Thread-safety: constants and a pure function.
#pragma once

#include <cstdint>

namespace ecmplb::dataplane {

inline constexpr uint8_t kRssKeyLength = 40;
inline constexpr uint8_t kRssKey[kRssKeyLength] = {
    0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3,
    0x8f, 0xb0, 0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3,
    0x80, 0x30, 0xf2, 0x0c, 0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
};

inline uint16_t PeerSteeredQueue(uint32_t toeplitz_hash, uint16_t queues) {
  return queues <= 1 ? 0 : static_cast<uint16_t>(toeplitz_hash % queues);
}

}  // namespace ecmplb::dataplane
