// flow_compare.cc: see flow_compare.h.
#include "tests/support/flow_compare.h"

#include <arpa/inet.h>

#include "absl/strings/str_cat.h"
#include "common/inet.h"

namespace ecmplb::conntrack {
namespace {

std::string Addr(const FlowKey& k, int which) {
  char buf[INET6_ADDRSTRLEN] = "?";
  if (k.is_v6()) {
    inet_ntop(AF_INET6, &k.addr[16 * which], buf, sizeof(buf));
  } else {
    inet_ntop(AF_INET, &k.addr[4 * which], buf, sizeof(buf));
  }
  return k.is_v6() ? absl::StrCat("[", buf, "]") : std::string(buf);
}

std::string ProtoText(uint8_t p) {
  if (p == inet::ip_proto::kTcp) return "tcp";
  if (p == inet::ip_proto::kUdp) return "udp";
  return absl::StrCat("proto ", p);
}

}  // namespace

std::string FlowKeyText(const FlowKey& k) {
  if (!k.is_v6() && k.family != kFamilyV4) return absl::StrCat("invalid family ", k.family);
  return absl::StrCat(ProtoText(k.proto), " ", Addr(k, 0), ":", ntohs(k.sport), " -> ", Addr(k, 1),
                      ":", ntohs(k.dport), " svc ", k.service);
}

void PrintTo(const FlowKey& k, std::ostream* os) {
  *os << FlowKeyText(k);
}

void PrintTo(const FlowSnapshot& s, std::ostream* os) {
  *os << FlowKeyText(s.key) << " | backend " << s.backend_id << " seen " << s.last_seen << " "
      << FlowStateName(s.state);
}

}  // namespace ecmplb::conntrack
