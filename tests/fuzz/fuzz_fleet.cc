// fuzz_fleet: libFuzzer target for what fleet mode reads from etcd (control/fleet.h,
// fleet_agent.h): config pointers, services blobs and host statuses, whoever wrote them.
// The input is POINTER \0 BLOB (no \0: the whole input is both); POINTER is also read as a
// line of etcd's watch stream (etcd_store.h's ParseWatchLine). Invariants: a pointer or
// status that parses serializes back to an equal value; an agent following an in-memory etcd
// that holds BLOB (under its digest, named by a good pointer) and then POINTER applies a
// revision exactly when its services validate, keeps its last good state otherwise, and
// never applies a version it did not see.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "control/fleet.h"
#include "control/etcd_store.h"
#include "control/fleet_agent.h"
#include "tests/control/fake_store.h"

namespace {

using namespace ecmplb::control;
using namespace ecmplb::control::fleet;

[[noreturn]] void Fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz_fleet: %s\n%s\n", what, detail.c_str());
  std::abort();
}

const Config& Host() {
  static const Config host = *ParseConfig(
      R"({"host": {"address": "10.0.0.11", "prefix_length": 24, "address6": "fd00::11",
                   "prefix_length6": 64},
          "fleet": {"endpoints": ["http://127.0.0.1:2379"], "cluster": "f",
                    "cache_file": "/nonexistent/cache"}})");
  return host;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string in(reinterpret_cast<const char*>(data), size);
  const size_t nul = in.find('\0');
  const std::string pointer_text = nul == std::string::npos ? in : in.substr(0, nul);
  const std::string blob = nul == std::string::npos ? in : in.substr(nul + 1);

  // etcd's watch stream, one line as its gateway writes it: never throws; a response that
  // ends the watch says why.
  const WatchResponse w = ParseWatchLine(pointer_text);
  if (w.ended && w.error.empty()) Fail("a watch ended without a reason", pointer_text);

  if (auto p = ParsePointer(pointer_text); p.ok()) {
    auto again = ParsePointer(SerializePointer(*p));
    if (!again.ok() || !(*again == *p)) Fail("pointer does not round-trip", pointer_text);
  }
  if (auto s = ParseHostStatus(pointer_text); s.ok()) {
    auto again = ParseHostStatus(SerializeHostStatus(*s));
    if (!again.ok() || !(*again == *s)) Fail("status does not round-trip", pointer_text);
  }

  testing::FakeEtcd etcd;
  testing::FakeClient client(&etcd);
  const Layout L = Layout::For(Host().fleet);
  Config running = Host();
  int64_t applied_version = 0;
  AgentOptions o;
  o.layout = L;
  o.host = "lb1";
  o.unix_ms = [] { return uint64_t{1}; };
  FleetAgent agent(
      &client, o,
      [&](const std::string& services, int64_t version)
          -> absl::StatusOr<std::vector<ServiceConfig>> {
        Config base = running;
        base.services.clear();
        auto c = WithServices(base, services);
        if (!c.ok()) return c.status();
        running = *c;
        applied_version = version;
        return c->services;
      },
      nullptr, nullptr, log::Sink());
  Pointer good;
  good.blobs.push_back({Sha256Hex(blob), 0, blob.size()});
  etcd.Put(L.BlobKey(Sha256Hex(blob)), blob);
  const int64_t v1 = etcd.Put(L.ConfigKey(), SerializePointer(good));
  for (uint64_t t = 0; t < 500; t += 100) agent.Tick(t);
  auto joined = JoinBlobs(good, {{Sha256Hex(blob), blob}});
  const bool blob_valid = joined.ok() && WithServices(Host(), *joined).ok();
  if (blob_valid != (agent.applied_version() == v1)) {
    Fail(blob_valid ? "a valid revision was not applied" : "an invalid revision was applied", blob);
  }
  const Config before = running;
  const int64_t v2 = etcd.Put(L.ConfigKey(), pointer_text);
  for (uint64_t t = 500; t < 1000; t += 100) agent.Tick(t);
  const int64_t now = agent.applied_version();
  if (now != 0 && now != v1 && now != v2) Fail("applied a version it never saw", pointer_text);
  if (now != v2 && !(running == before)) Fail("a refused revision changed the state", pointer_text);
  if (now != applied_version) Fail("the agent's version is not the one applied", pointer_text);
  return 0;
}
