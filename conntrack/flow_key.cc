#include "conntrack/flow_key.h"

#include "conntrack/flow_hash_inline.h"

namespace ecmplb::conntrack {

uint64_t FlowHash(const FlowKey& key) noexcept {
  return FlowHashInline(key);
}

}  // namespace ecmplb::conntrack
