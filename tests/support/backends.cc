// backends.cc: see backends.h.
#include "tests/support/backends.h"

namespace ecmplb::test_support {

maglev::BackendId NumberedBackendId(uint32_t i, uint16_t port) {
  const uint32_t a = i + 1;
  return maglev::BackendId::V4(
      {10, static_cast<uint8_t>(a >> 16), static_cast<uint8_t>(a >> 8), static_cast<uint8_t>(a)},
      port);
}

std::vector<maglev::Backend> NumberedBackends(uint32_t n, uint32_t weight, uint16_t port) {
  std::vector<maglev::Backend> v;
  v.reserve(n);
  for (uint32_t i = 0; i < n; ++i) v.push_back({NumberedBackendId(i, port), weight});
  return v;
}

dataplane::MacAddr BackendMac(const dataplane::IpAddr& a) {
  dataplane::MacAddr m{};
  m.bytes = {0x02, 0xbe, 0, 0, 0, a.is_v6() ? a.bytes[15] : a.bytes[3]};
  return m;
}

}  // namespace ecmplb::test_support
