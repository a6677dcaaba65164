// fuzz_control_request: libFuzzer target for the control socket's request handler. Each input
// is one request line, handled by control::HandleRequest against a ControlPlane holding a fixed
// config (no save path; the publish callback keeps the latest snapshot). The plane is built
// once and built again only after a request changed its configuration, so every input starts
// from the same configuration (reproducible alone) without paying a plane per input (most
// inputs are refused before they change anything). The reply must be one JSON object with a
// boolean "ok".
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/string_view.h"
#include "control/config.h"
#include "control/control_plane.h"
#include "control/protocol.h"
#include "nlohmann/json.hpp"

namespace {

// Small prime Maglev tables keep a fresh plane per input cheap.
constexpr char kConfig[] = R"({
  "host": {"address": "10.0.0.11", "prefix_length": 24, "gateway": "10.0.0.1"},
  "conntrack": {"capacity": 1024},
  "services": [
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "dr", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22", "weight": 3}]},
    {"vip": "10.100.0.1", "port": 53, "protocol": "udp", "forward": "gre", "table_size": 251,
     "backends": [{"id": 1, "address": "192.168.5.21"}]},
    {"vip": "2001:db8::1", "port": 443, "protocol": "tcp", "forward": "dr", "hash": "source-ip",
     "table_size": 251, "backends": [{"id": 7, "address": "2001:db8::21"}]}
  ]})";

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_control_request: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ecmplb::control;
  static const Config config = [] {
    auto c = ParseConfig(kConfig);
    if (!c.ok()) Fail("fixed config does not parse", c.status().ToString());
    return *c;
  }();
  static std::unique_ptr<const ecmplb::dataplane::Snapshot> latest;
  static std::unique_ptr<ControlPlane> plane;
  if (plane == nullptr || !(plane->config() == config)) {
    plane.reset();
    latest.reset();
    auto p = ControlPlane::Create(
        config, ecmplb::dataplane::MacAddr{},
        [](std::unique_ptr<const ecmplb::dataplane::Snapshot> s) { latest = std::move(s); },
        ControlPlane::Options{.clock = [] { return uint64_t{1000}; }});
    if (!p.ok()) Fail("fixed control plane", p.status().ToString());
    plane = std::move(*p);
  }

  const std::string reply =
      HandleRequest(*plane, absl::string_view(reinterpret_cast<const char*>(data), size));
  auto j = nlohmann::json::parse(reply, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) Fail("reply is not one JSON object", reply);
  auto ok = j.find("ok");
  if (ok == j.end() || !ok->is_boolean()) Fail("reply without a boolean \"ok\"", reply);
  if (reply.find('\n') != std::string::npos) Fail("reply spans lines", reply);
  if (!ok->get<bool>() && !j.contains("error")) Fail("error reply without \"error\"", reply);
  return 0;
}
