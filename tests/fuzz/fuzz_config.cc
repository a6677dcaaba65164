// fuzz_config: libFuzzer target for the config file parser. Arbitrary bytes go through
// control::ParseConfig; when it accepts them, SerializeConfig then ParseConfig again must
// succeed, give the same model, and serialize to the same text.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/string_view.h"
#include "control/config.h"

namespace {

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_config: %s\n%s\n", what, detail.c_str());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace ecmplb::control;
  absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = ParseConfig(text);
  if (!config.ok()) return 0;
  const std::string once = SerializeConfig(*config);
  auto again = ParseConfig(once);
  if (!again.ok()) Fail("serialized config does not parse again", again.status().ToString());
  if (!(*again == *config)) Fail("config changed across serialize/parse", once);
  const std::string twice = SerializeConfig(*again);
  if (twice != once) Fail("serialization not stable", once + "\n---\n" + twice);
  return 0;
}
