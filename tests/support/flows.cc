// flows.cc: see flows.h.
#include "tests/support/flows.h"

#include <arpa/inet.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace ecmplb::test_support {

conntrack::FlowKey ClientFlowV4(uint32_t i, uint8_t proto, uint16_t service) {
  return conntrack::FlowKey::V4(htonl(0x0a000000u + i), htonl(0xc0a80001u),
                                htons(static_cast<uint16_t>(1024 + i % 60000)), htons(80), proto,
                                service);
}

conntrack::FlowKey ClientFlowV6(uint32_t i, uint8_t proto, uint16_t service) {
  std::array<uint8_t, 16> src{}, dst{};
  src[0] = 0x20;
  src[1] = 0x01;
  std::memcpy(&src[12], &i, 4);
  dst[0] = 0xfd;
  dst[15] = 1;
  return conntrack::FlowKey::V6(src, dst, htons(static_cast<uint16_t>(2000 + i % 60000)),
                                htons(443), proto, service);
}

dataplane::FlowTuple FlowOf(const char* src, uint16_t sport, const char* dst, uint16_t dport,
                            uint8_t proto) {
  auto s = dataplane::IpAddr::Parse(src), d = dataplane::IpAddr::Parse(dst);
  if (!s.ok() || !d.ok() || s->family != d->family) {
    std::fprintf(stderr, "FlowOf: bad addresses %s -> %s\n", src, dst);
    std::abort();
  }
  dataplane::FlowTuple t;
  t.family = s->family;
  t.proto = proto;
  t.src = *s;
  t.dst = *d;
  t.sport = sport;
  t.dport = dport;
  return t;
}

}  // namespace ecmplb::test_support
