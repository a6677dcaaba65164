// fuzz_keepalived: libFuzzer target for `ecmplbctl import-keepalived`'s reader
// (control/keepalived.h). Arbitrary bytes are parsed as a keepalived.conf (includes resolve to
// nothing: an in-memory reader) and translated; invariants: every note points at a line of
// the input, every service names a canonical VIP and a port, and the translation of a file
// with at most 64 services (the size limits aside) is accepted by the config parser, as
// ecmplbctl checks it.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "control/config.h"
#include "control/keepalived.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_keepalived: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace ka = ecmplb::control::keepalived;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  ka::ParseOptions o;
  o.read = [](const std::string& path) -> absl::StatusOr<std::string> {
    return absl::NotFoundError("cannot read " + path);
  };
  o.glob = [](const std::string&) { return std::vector<std::string>{}; };
  auto tree = ka::ParseText(text, "in.conf", o);
  if (!tree.ok()) return 0;
  const ka::Translation t = ka::Translate(*tree);
  int lines = 1;
  for (char c : text) lines += c == '\n';
  for (const ka::Note& n : t.notes) {
    if (n.file != "in.conf" || n.line < 1 || n.line > lines) Fail("note off the input", ka::FormatNote(n));
  }
  for (const auto& s : t.services) {
    auto canon = ecmplb::control::CanonicalAddress(s["vip"].get<std::string>());
    if (!canon.ok() || *canon != s["vip"]) Fail("VIP not canonical", s.dump());
  }
  if (t.services.size() > 64) return 0;
  nlohmann::ordered_json doc = {{"host", {{"address", "192.0.2.1"}, {"prefix_length", 24},
                                          {"address6", "2001:db8:ffff::1"}, {"prefix_length6", 64}}},
                                {"services", t.services}};
  auto config = ecmplb::control::ParseConfig(doc.dump());
  if (!config.ok()) {
    const std::string why(config.status().message());
    // Pools bigger than the config allows are refused whole, as the daemon would.
    // (and so is an address that is the stand-in host's own).
    if (why.find("at most") == std::string::npos && why.find("192.0.2.1") == std::string::npos &&
        why.find("2001:db8:ffff::1") == std::string::npos) Fail("translation does not validate", why + "\n" + doc.dump(1));
  }
  return 0;
}
