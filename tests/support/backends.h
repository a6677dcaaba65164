// backends.h: backend generators for tests and benchmarks: numbered Maglev backends and the
// MAC address a test's neighbour table gives a backend. Thread-safety: pure functions; safe
// from any thread.
#pragma once

#include <cstdint>
#include <vector>

#include "dataplane/packet/headers.h"
#include "maglev/maglev.h"

namespace ecmplb::test_support {

// Backend i (from 0) as a Maglev identity: 10.x.y.z:port with x.y.z = i + 1
// (10.0.0.1, 10.0.0.2, ...).
maglev::BackendId NumberedBackendId(uint32_t i, uint16_t port = 80);
// n numbered backends, all of weight `weight`.
std::vector<maglev::Backend> NumberedBackends(uint32_t n, uint32_t weight = 1, uint16_t port = 80);

// The MAC a test resolves backend `a` to: 02:be:00:00:00:<last address byte>.
dataplane::MacAddr BackendMac(const dataplane::IpAddr& a);

}  // namespace ecmplb::test_support
