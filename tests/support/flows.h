// flows.h: flow generators for tests and benchmarks: a 32-bit mixer for deterministic
// pseudo-random ids, numbered client flows as connection-table keys (IPv4 and IPv6), and a
// FlowTuple from text. Thread-safety: pure functions; safe from any thread.
#pragma once

#include <cstdint>

#include "common/inet.h"
#include "conntrack/flow_key.h"
#include "dataplane/packet/parse.h"

namespace ecmplb::test_support {

// A bijective 32-bit mixer (the murmur3/"lowbias32" finaliser): deterministic pseudo-random
// numbers from an index, the same on every run and host.
inline uint32_t Mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// Flow i of a client population towards one service, as a connection-table key:
//   IPv4: 10.0.0.0 + i : 1024 + i % 60000 -> 192.168.0.1:80
//   IPv6: 2001::<i, 4 bytes as in memory> : 2000 + i % 60000 -> fd00::1:443
// Distinct i give distinct keys (within 2^24 for IPv4).
conntrack::FlowKey ClientFlowV4(uint32_t i, uint8_t proto = inet::ip_proto::kTcp,
                                uint16_t service = 1);
conntrack::FlowKey ClientFlowV6(uint32_t i, uint8_t proto = inet::ip_proto::kTcp,
                                uint16_t service = 1);

// The flow src:sport -> dst:dport (ports in host order, addresses as text; aborts on a bad
// address). The family is the addresses'.
dataplane::FlowTuple FlowOf(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                            uint8_t proto = inet::ip_proto::kTcp);

}  // namespace ecmplb::test_support
