// ecmplbctl_fleet.cc: see ecmplbctl_fleet.h.
#include "control/ecmplbctl_fleet.h"

#include <cstdio>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "control/etcd_store.h"
#include "control/fleet_client.h"

namespace ecmplb::control::ctl {
namespace {

using nlohmann::json;
using namespace ecmplb::control::fleet;

struct Session {
  explicit Session(const FleetTarget& t)
      : store(EtcdOptions{t.fleet.endpoints, t.fleet.ca_file, t.fleet.cert_file, t.fleet.key_file}),
        client(&store, Layout::For(t.fleet),
               [this](const std::function<bool()>& done, long ms) { return store.RunUntil(done, ms); }) {}
  EtcdStore store;
  FleetClient client;
};

int Fail(const char* what, const absl::Status& st, bool as_json) {
  const bool conflict = st.code() == absl::StatusCode::kAborted;
  std::fprintf(stderr, "ecmplbctl: %s: %s\n", what, std::string(st.message()).c_str());
  if (as_json) {
    std::printf("%s\n", json{{"ok", false},
                             {"code", absl::StatusCodeToString(st.code())},
                             {"conflict", conflict},
                             {"error", std::string(st.message())}}
                            .dump(2, ' ', false, json::error_handler_t::replace)
                            .c_str());
  }
  return conflict ? kExitConflict : 1;
}

// Every host's status with what disagrees: versions behind the newest, fingerprints unlike
// the majority at their version, services whose fingerprints differ, backends seen
// differently.
json StatusReport(const FleetDoc& doc, const std::map<std::string, HostStatus>& hosts) {
  json out = {{"version", doc.version}, {"writer", doc.pointer.writer},
              {"written_unix_ms", doc.pointer.written_unix_ms}};
  int64_t newest = 0;
  std::map<int64_t, std::map<std::string, size_t>> votes;  // version -> root -> hosts
  for (const auto& [name, h] : hosts) {
    newest = std::max(newest, h.applied_version);
    votes[h.applied_version][h.root]++;
  }
  json list = json::array(), disagreements = json::array();
  std::map<std::string, std::set<std::string>> down_on;  // backend -> hosts that see it down
  for (const auto& [name, h] : hosts) {
    json j = json::parse(SerializeHostStatus(h));
    std::vector<std::string> flags;
    if (h.applied_version < doc.version) {
      flags.push_back(h.refused_version == doc.version ? "refused the current version"
                                                      : "not at the current version");
    }
    const auto& at = votes[h.applied_version];
    size_t total = 0, mine = at.count(h.root) ? at.at(h.root) : 0;
    for (const auto& [r, n] : at) total += n;
    if (at.size() > 1 && 2 * mine <= total) flags.push_back("fingerprint differs from its version's majority");
    if (!h.withdrawn.empty()) flags.push_back(absl::StrCat("withdrawn: ", h.withdrawn));
    for (const std::string& b : h.down) down_on[b].insert(name);
    j["flags"] = flags;
    for (const std::string& f : flags) disagreements.push_back(absl::StrCat(name, ": ", f));
    list.push_back(std::move(j));
  }
  // Services whose fingerprints differ between hosts that published them.
  std::map<std::string, std::map<std::string, std::vector<std::string>>> svc;  // service -> fp -> hosts
  for (const auto& [name, h] : hosts) {
    for (const auto& [s, fp] : h.service_fps) svc[s][fp].push_back(name);
  }
  for (const auto& [s, fps] : svc) {
    if (fps.size() < 2) continue;
    std::vector<std::string> parts;
    for (const auto& [fp, hs] : fps) parts.push_back(absl::StrCat(fp, " on ", absl::StrJoin(hs, ",")));
    disagreements.push_back(absl::StrCat("service ", s, ": tables differ: ", absl::StrJoin(parts, "; ")));
  }
  for (const auto& [b, on] : down_on) {
    if (on.size() < hosts.size()) {
      disagreements.push_back(absl::StrCat("health: ", b, " down on ", absl::StrJoin(on, ","),
                                           " only (health is local to each host)"));
    }
  }
  out["hosts"] = std::move(list);
  out["disagreements"] = std::move(disagreements);
  out["newest_applied"] = newest;
  return out;
}

}  // namespace

int FleetEdit(const FleetTarget& t, const Command& cmd, const std::string& name, bool as_json) {
  Session s(t);
  auto r = s.client.Edit(t.host, cmd, t.writer);
  if (!r.ok()) return Fail(name.c_str(), r.status(), as_json);
  json out = {{"service", r->second.name}, {"fleet_version", r->first}};
  if (r->second.backend_id) out["backend_id"] = *r->second.backend_id;
  if (as_json) {
    std::printf("%s\n", out.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  } else {
    std::printf("ok: %s %s%s written to the fleet (%s), version %lld: every host applies it "
                "(ecmplbctl fleet status)\n",
                name.c_str(), r->second.name.c_str(),
                r->second.backend_id ? absl::StrCat(" backend id ", *r->second.backend_id).c_str()
                                     : "",
                Layout::For(t.fleet).root.c_str(), static_cast<long long>(r->first));
  }
  return 0;
}

int FleetStatus(const FleetTarget& t, bool as_json) {
  Session s(t);
  auto doc = s.client.Read(/*tolerant=*/true);
  if (!doc.ok()) return Fail("fleet status", doc.status(), as_json);
  auto hosts = s.client.Statuses();
  if (!hosts.ok()) return Fail("fleet status", hosts.status(), as_json);
  json r = StatusReport(*doc, *hosts);
  r["cluster"] = Layout::For(t.fleet).root;
  if (!doc->error.empty()) {
    r["config_error"] = doc->error;
    r["disagreements"].push_back(absl::StrCat("the configuration (version ", doc->version,
                                              ") cannot be read: ", doc->error));
  }
  if (as_json) {
    std::printf("%s\n", r.dump(2, ' ', false, json::error_handler_t::replace).c_str());
    return 0;
  }
  std::printf("fleet %s  version %lld  written by %s\n", Layout::For(t.fleet).root.c_str(),
              static_cast<long long>(doc->version), doc->pointer.writer.c_str());
  std::printf("%-16s %-8s %-17s %-5s %-32s %s\n", "host", "version", "fingerprint", "down",
              "announced", "flags");
  for (const json& h : r["hosts"]) {
    const auto vips = h["announced"].get<std::vector<std::string>>();
    const std::string announced = vips.empty() ? std::string(1, '-') : absl::StrJoin(vips, ",");
    std::printf("%-16s %-8lld %-17s %-5zu %-32s %s\n", h["host"].get<std::string>().c_str(),
                static_cast<long long>(h["applied_version"].get<int64_t>()),
                h["root"].get<std::string>().c_str(), h["down"].size(), announced.c_str(),
                absl::StrJoin(h["flags"].get<std::vector<std::string>>(), "; ").c_str());
  }
  if (r["disagreements"].empty()) {
    std::printf("agreement: every host at version %lld with the same fingerprint\n",
                static_cast<long long>(doc->version));
  } else {
    for (const json& d : r["disagreements"]) std::printf("DISAGREE %s\n", d.get<std::string>().c_str());
  }
  return 0;
}

int FleetGet(const FleetTarget& t, bool as_json) {
  Session s(t);
  auto doc = s.client.Read();
  if (!doc.ok()) return Fail("fleet get", doc.status(), as_json);
  json services;
  try {
    services = json::parse(doc->services);
  } catch (const json::exception& e) {
    return Fail("fleet get", absl::DataLossError(absl::StrCat("the services are not JSON: ", e.what())),
                as_json);
  }
  json out = {{"version", doc->version}, {"writer", doc->pointer.writer},
              {"services", std::move(services)}};
  std::printf("%s\n", out.dump(2, ' ', false, json::error_handler_t::replace).c_str());
  return 0;
}

int FleetPut(const FleetTarget& t, const std::string& file, std::optional<int64_t> expect_version,
             bool as_json) {
  auto text = ReadConfigText(file);
  if (!text.ok()) return Fail("fleet put", text.status(), as_json);
  std::string services;
  try {
    const json j = json::parse(*text);
    if (!j.is_object() || !j.contains("services")) {
      return Fail("fleet put", absl::InvalidArgumentError(absl::StrCat(
                                   file, ": want a config file or {\"services\": [...]}")),
                  as_json);
    }
    services = j["services"].dump();
  } catch (const json::exception& e) {
    return Fail("fleet put", absl::InvalidArgumentError(absl::StrCat(file, ": ", e.what())),
                as_json);
  }
  Config base = t.host;
  base.services.clear();
  auto candidate = WithServices(base, services);
  if (!candidate.ok()) {
    return Fail("fleet put",
                absl::InvalidArgumentError(absl::StrCat(file, ": ", candidate.status().message())),
                as_json);
  }
  Session s(t);
  auto doc = s.client.Read(/*tolerant=*/true);  // a broken configuration can be replaced
  if (!doc.ok()) return Fail("fleet put", doc.status(), as_json);
  if (expect_version) doc->version = *expect_version;  // CAS against what the operator saw
  auto v = s.client.Write(*doc, candidate->services, t.writer);
  if (!v.ok()) return Fail("fleet put", v.status(), as_json);
  if (as_json) {
    std::printf("%s\n", json{{"fleet_version", *v}, {"services", candidate->services.size()}}
                            .dump(2, ' ', false, json::error_handler_t::replace)
                            .c_str());
  } else {
    std::printf("ok: %zu services written to the fleet (%s), version %lld\n",
                candidate->services.size(), Layout::For(t.fleet).root.c_str(),
                static_cast<long long>(*v));
  }
  return 0;
}

}  // namespace ecmplb::control::ctl
