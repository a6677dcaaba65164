// config.cc: JSON form of the configuration model, and its validation.
#include "control/config.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>
#include <tuple>

#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "conntrack/flow_state.h"
#include "control/access.h"
#include "maglev/maglev.h"

namespace ecmplb::control {
absl::StatusOr<std::pair<Protocol, uint16_t>> ParseAllowedPort(absl::string_view text) {
  const size_t slash = text.find('/');
  if (slash == absl::string_view::npos) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': want PROTO/PORT, e.g. tcp/22"));
  }
  auto proto = ParseProtocol(text.substr(0, slash));
  uint32_t port = 0;
  if (!proto.ok() || !absl::SimpleAtoi(text.substr(slash + 1), &port) || port == 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(absl::StrCat("'", text, "': want PROTO/PORT, e.g. tcp/22"));
  }
  return std::make_pair(*proto, static_cast<uint16_t>(port));
}

namespace {

using nlohmann::json;

absl::Status FieldError(absl::string_view path, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat(path, ": ", what));
}

// Reads an object's members into typed fields, refusing unknown and mistyped members.
class ObjectReader {
 public:
  ObjectReader(const json& j, std::string path) : j_(j), path_(std::move(path)) {}

  absl::Status CheckObject(std::initializer_list<absl::string_view> known) const {
    if (!j_.is_object()) return FieldError(path_, "must be an object");
    for (auto it = j_.begin(); it != j_.end(); ++it) {
      bool ok = false;
      for (auto k : known) ok = ok || it.key() == k;
      if (!ok) return FieldError(Path(it.key()), "unknown field");
    }
    return absl::OkStatus();
  }

  std::string Path(absl::string_view key) const {
    return path_.empty() ? std::string(key) : absl::StrCat(path_, ".", key);
  }
  bool Has(const char* key) const { return j_.contains(key); }
  const json& At(const char* key) const { return j_.at(key); }

  absl::Status String(const char* key, std::string* out, bool required) const {
    if (!j_.contains(key))
      return required ? FieldError(Path(key), "is required") : absl::OkStatus();
    if (!j_[key].is_string()) return FieldError(Path(key), "must be a string");
    *out = j_[key].get<std::string>();
    return absl::OkStatus();
  }

  absl::Status Address(const char* key, std::string* out, bool required) const {
    std::string text;
    if (!j_.contains(key))
      return required ? FieldError(Path(key), "is required") : absl::OkStatus();
    ECMPLB_RETURN_IF_ERROR(String(key, &text, required));
    auto canon = CanonicalAddress(text);
    if (!canon.ok()) return FieldError(Path(key), canon.status().message());
    *out = *canon;
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Unsigned(const char* key, T* out, uint64_t min, uint64_t max, bool required) const {
    if (!j_.contains(key))
      return required ? FieldError(Path(key), "is required") : absl::OkStatus();
    const json& v = j_[key];
    if (!v.is_number_unsigned() && !(v.is_number_integer() && v.get<int64_t>() >= 0)) {
      return FieldError(Path(key), "must be a non-negative integer");
    }
    uint64_t x = v.get<uint64_t>();
    if (x < min || x > max) {
      return FieldError(Path(key), absl::StrCat("must be in [", min, ", ", max, "], got ", x));
    }
    *out = static_cast<T>(x);
    return absl::OkStatus();
  }

  absl::Status Bool(const char* key, bool* out) const {
    if (!j_.contains(key)) return absl::OkStatus();
    if (!j_[key].is_boolean()) return FieldError(Path(key), "must be true or false");
    *out = j_[key].get<bool>();
    return absl::OkStatus();
  }

  template <typename E>
  absl::Status Enum(const char* key, E* out, absl::StatusOr<E> (*parse)(absl::string_view)) const {
    if (!j_.contains(key)) return absl::OkStatus();
    std::string text;
    ECMPLB_RETURN_IF_ERROR(String(key, &text, true));
    auto v = parse(text);
    if (!v.ok()) return FieldError(Path(key), v.status().message());
    *out = *v;
    return absl::OkStatus();
  }

 private:
  const json& j_;
  std::string path_;
};

absl::Status ParseException(const json& j, ExceptionConfig* e) {
  ObjectReader r(j, "host.exception");
  ECMPLB_RETURN_IF_ERROR(
      r.CheckObject({"rate_pps", "burst", "priority_pps", "drop_unsolicited", "allow"}));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("rate_pps", &e->rate_pps, 0, 100000000, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("burst", &e->burst, 1, 1000000, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("priority_pps", &e->priority_pps, 0, 100000000, false));
  ECMPLB_RETURN_IF_ERROR(r.Bool("drop_unsolicited", &e->drop_unsolicited));
  if (r.Has("allow")) {
    const json& a = r.At("allow");
    if (!a.is_array()) return FieldError("host.exception.allow", "must be an array");
    e->allow.clear();
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string path = absl::StrCat("host.exception.allow[", i, "]");
      if (!a[i].is_string()) return FieldError(path, "must be a string like \"tcp/22\"");
      auto port = ParseAllowedPort(a[i].get<std::string>());
      if (!port.ok()) return FieldError(path, port.status().message());
      e->allow.push_back(a[i].get<std::string>());
    }
  }
  return absl::OkStatus();
}

// host.control: the group names, each of which must exist on this host. They are looked up
// here, when a configuration is read, not in Validate: that runs on every change made through
// the control socket, which should neither fail nor wait on the group database.
absl::Status ParseControlAccess(const json& j, ControlAccessConfig* c) {
  ObjectReader r(j, "host.control");
  ECMPLB_RETURN_IF_ERROR(r.CheckObject({"group", "read_only_group"}));
  auto group = [&r](const char* key, std::string* name) -> absl::Status {
    if (!r.Has(key)) return absl::OkStatus();
    ECMPLB_RETURN_IF_ERROR(r.String(key, name, true));
    if (name->empty()) return FieldError(r.Path(key), "must be a group name (or be left out)");
    if (auto gid = LookupGroup(*name); !gid.ok()) {
      return FieldError(r.Path(key), gid.status().message());
    }
    return absl::OkStatus();
  };
  ECMPLB_RETURN_IF_ERROR(group("group", &c->group));
  return group("read_only_group", &c->read_only_group);
}

absl::Status ParseHost(const json& j, HostConfig* h) {
  ObjectReader r(j, "host");
  ECMPLB_RETURN_IF_ERROR(r.CheckObject(
      {"address", "prefix_length", "address6", "prefix_length6", "tunnel_source", "tunnel_source6",
       "gateway", "gateway6", "mtu", "gue_port",
       "exception_interface",
       "control_socket", "control", "announce", "announce_interface", "drain_s", "worker_stall_ms",
       "metrics_listen", "metrics_per_backend", "exception"}));
  if (r.Has("exception")) ECMPLB_RETURN_IF_ERROR(ParseException(r.At("exception"), &h->exception));
  if (r.Has("control")) ECMPLB_RETURN_IF_ERROR(ParseControlAccess(r.At("control"), &h->control));
  ECMPLB_RETURN_IF_ERROR(r.Address("address", &h->address, true));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("prefix_length", &h->prefix_length, 1, 32, false));
  ECMPLB_RETURN_IF_ERROR(r.Address("address6", &h->address6, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("prefix_length6", &h->prefix_length6, 1, 128, false));
  ECMPLB_RETURN_IF_ERROR(r.Address("tunnel_source", &h->tunnel_source, false));
  ECMPLB_RETURN_IF_ERROR(r.Address("tunnel_source6", &h->tunnel_source6, false));
  ECMPLB_RETURN_IF_ERROR(r.Address("gateway", &h->gateway, false));
  ECMPLB_RETURN_IF_ERROR(r.Address("gateway6", &h->gateway6, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("mtu", &h->mtu, 576, 9000, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("gue_port", &h->gue_port, 1, 65535, false));
  ECMPLB_RETURN_IF_ERROR(r.String("exception_interface", &h->exception_interface, false));
  ECMPLB_RETURN_IF_ERROR(r.String("control_socket", &h->control_socket, false));
  ECMPLB_RETURN_IF_ERROR(r.Bool("announce", &h->announce));
  ECMPLB_RETURN_IF_ERROR(r.String("announce_interface", &h->announce_interface, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("drain_s", &h->drain_s, 0, 3600, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("worker_stall_ms", &h->worker_stall_ms, 50, 600000, false));
  ECMPLB_RETURN_IF_ERROR(r.String("metrics_listen", &h->metrics_listen, false));
  ECMPLB_RETURN_IF_ERROR(r.Bool("metrics_per_backend", &h->metrics_per_backend));
  return absl::OkStatus();
}

absl::Status ParseConntrack(const json& j, ConntrackConfig* c) {
  ObjectReader r(j, "conntrack");
  ECMPLB_RETURN_IF_ERROR(
      r.CheckObject({"capacity", "tcp_established_s", "tcp_syn_s", "tcp_closing_s",
                     "tcp_probation_s", "udp_s"}));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("capacity", &c->capacity, 1024, uint64_t{1} << 32, false));
  ECMPLB_RETURN_IF_ERROR(
      r.Unsigned("tcp_established_s", &c->tcp_established_s, 1, 86400 * 7, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("tcp_syn_s", &c->tcp_syn_s, 1, 86400, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("tcp_closing_s", &c->tcp_closing_s, 1, 86400, false));
  // A flow first seen mid-stream proves itself by a packet 2 s after its first (flow_state.h).
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("tcp_probation_s", &c->tcp_probation_s,
                                    conntrack::kProbationProofSeconds + 1, 3600, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("udp_s", &c->udp_s, 1, 86400 * 7, false));
  return absl::OkStatus();
}

absl::Status ParseFragments(const json& j, FragmentsConfig* c) {
  ObjectReader r(j, "fragments");
  ECMPLB_RETURN_IF_ERROR(r.CheckObject({"capacity", "hold", "timeout_s"}));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("capacity", &c->capacity, 0, 1u << 20, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("hold", &c->hold, 1, 4096, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("timeout_s", &c->timeout_s, 1, 30, false));
  return absl::OkStatus();
}

absl::Status ParseSync(const json& j, SyncConfig* c) {
  ObjectReader r(j, "sync");
  ECMPLB_RETURN_IF_ERROR(r.CheckObject(
      {"peers", "port", "key_file", "rate_per_worker", "refresh_s", "peer_capacity", "bulk_wait",
       "bulk_timeout_s"}));
  if (r.Has("peers")) {
    const json& a = r.At("peers");
    if (!a.is_array()) return FieldError("sync.peers", "must be an array of IPv4 addresses");
    c->peers.clear();
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string path = absl::StrCat("sync.peers[", i, "]");
      if (!a[i].is_string()) return FieldError(path, "must be an IPv4 address");
      auto canon = CanonicalAddress(a[i].get<std::string>());
      if (!canon.ok()) return FieldError(path, canon.status().message());
      c->peers.push_back(*canon);
    }
  }
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("port", &c->port, 1, 65535, false));
  ECMPLB_RETURN_IF_ERROR(r.String("key_file", &c->key_file, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("rate_per_worker", &c->rate_per_worker, 0, 100000000, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("refresh_s", &c->refresh_s, 5, 86400, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("peer_capacity", &c->peer_capacity, 0, uint64_t{1} << 32, false));
  ECMPLB_RETURN_IF_ERROR(r.Bool("bulk_wait", &c->bulk_wait));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("bulk_timeout_s", &c->bulk_timeout_s, 1, 600, false));
  return absl::OkStatus();
}

absl::Status ParseFleet(const json& j, FleetConfig* c) {
  ObjectReader r(j, "fleet");
  ECMPLB_RETURN_IF_ERROR(r.CheckObject({"endpoints", "prefix", "cluster", "host_name", "cache_file",
                                        "grace_s", "min_announcing", "lease_ttl_s", "ca_file",
                                        "cert_file", "key_file"}));
  if (!r.Has("endpoints")) return FieldError("fleet.endpoints", "is required (etcd client URLs)");
  const json& a = r.At("endpoints");
  if (!a.is_array() || a.empty()) {
    return FieldError("fleet.endpoints", "must be a non-empty array of URLs (http://HOST:2379)");
  }
  c->endpoints.clear();
  for (size_t i = 0; i < a.size(); ++i) {
    const std::string path = absl::StrCat("fleet.endpoints[", i, "]");
    if (!a[i].is_string()) return FieldError(path, "must be a URL (http://HOST:2379)");
    std::string url = a[i].get<std::string>();
    const bool https = absl::StartsWith(url, "https://");
    if (!https && !absl::StartsWith(url, "http://")) {
      return FieldError(path, "must start with http:// or https://");
    }
    if (url.size() <= (https ? 8u : 7u) || url.find_first_of(" \t\r\n") != std::string::npos) {
      return FieldError(path, "must be a URL (http://HOST:2379)");
    }
    while (absl::EndsWith(url, "/")) url.pop_back();
    c->endpoints.push_back(std::move(url));
  }
  ECMPLB_RETURN_IF_ERROR(r.String("prefix", &c->prefix, false));
  ECMPLB_RETURN_IF_ERROR(r.String("cluster", &c->cluster, true));
  ECMPLB_RETURN_IF_ERROR(r.String("host_name", &c->host_name, false));
  auto name_ok = [](absl::string_view v) {
    if (v.empty() || v.size() > 64) return false;
    for (char ch : v) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(ch)) && ch != '-' && ch != '_' &&
          ch != '.' && ch != ':') {
        return false;
      }
    }
    return true;
  };
  if (!name_ok(c->cluster)) {
    return FieldError("fleet.cluster", "must be 1-64 characters of letters, digits, - _ . :");
  }
  if (r.Has("host_name") && !name_ok(c->host_name)) {
    return FieldError("fleet.host_name", "must be 1-64 characters of letters, digits, - _ . :");
  }
  if (c->prefix.empty() || c->prefix[0] != '/' || absl::EndsWith(c->prefix, "/") ||
      c->prefix.find("//") != std::string::npos) {
    return FieldError("fleet.prefix", "must start with / and not end with / (e.g. /ecmplb)");
  }
  ECMPLB_RETURN_IF_ERROR(r.String("cache_file", &c->cache_file, false));
  if (c->cache_file.empty() || c->cache_file[0] != '/') {
    return FieldError("fleet.cache_file", "must be an absolute path");
  }
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("grace_s", &c->grace_s, 1, 3600, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("min_announcing", &c->min_announcing, 0, 1000, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("lease_ttl_s", &c->lease_ttl_s, 3, 600, false));
  ECMPLB_RETURN_IF_ERROR(r.String("ca_file", &c->ca_file, false));
  ECMPLB_RETURN_IF_ERROR(r.String("cert_file", &c->cert_file, false));
  ECMPLB_RETURN_IF_ERROR(r.String("key_file", &c->key_file, false));
  if (c->cert_file.empty() != c->key_file.empty()) {
    return FieldError("fleet.cert_file", "cert_file and key_file go together");
  }
  return absl::OkStatus();
}

absl::Status ParseBackend(const json& j, const std::string& path, BackendConfig* b) {
  ObjectReader r(j, path);
  ECMPLB_RETURN_IF_ERROR(r.CheckObject({"id", "address", "port", "weight"}));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("id", &b->id, 1, kMaxBackendId, false));
  ECMPLB_RETURN_IF_ERROR(r.Address("address", &b->address, true));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("port", &b->port, 0, 65535, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("weight", &b->weight, 0, kMaxWeight, false));
  return absl::OkStatus();
}

absl::StatusOr<HealthCheckConfig::Type> ParseCheckType(absl::string_view s) {
  using T = HealthCheckConfig::Type;
  for (T t : {T::kTcp, T::kHttp, T::kHttps, T::kUdp, T::kDns, T::kScript}) {
    if (s == CheckTypeName(t)) return t;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown check type '", s, "' (tcp, http, https, udp, dns or script)"));
}

absl::Status ParseHealthCheck(const json& j, const std::string& path, HealthCheckConfig* h) {
  using T = HealthCheckConfig::Type;
  ObjectReader r(j, path);
  ECMPLB_RETURN_IF_ERROR(r.CheckObject({"type", "port", "path", "expect_status", "expect_body",
                                        "send", "expect", "query", "query_type", "command",
                                        "interval_ms", "timeout_ms", "rise", "fall"}));
  ECMPLB_RETURN_IF_ERROR(r.Enum("type", &h->type, &ParseCheckType));
  // A field of another type is refused rather than kept unused: the model would hold what no
  // check uses and what the saved config (SerializeConfig) would not (found by fuzz_config).
  const std::pair<const char*, T> owned[] = {
      {"path", T::kHttp},  {"expect_status", T::kHttp}, {"expect_body", T::kHttp},
      {"send", T::kUdp},   {"expect", T::kUdp},         {"query", T::kDns},
      {"query_type", T::kDns}, {"command", T::kScript}};
  const T own = h->type == T::kHttps ? T::kHttp : h->type;  // https takes http's fields
  for (const auto& [key, type] : owned) {
    if (r.Has(key) && own != type) {
      return FieldError(r.Path(key), absl::StrCat("applies to \"type\": \"", CheckTypeName(type),
                                                  type == T::kHttp ? "\" or \"https" : "",
                                                  "\" only"));
    }
  }
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("port", &h->port, 0, 65535, false));
  ECMPLB_RETURN_IF_ERROR(r.String("path", &h->path, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("expect_status", &h->expect_status, 100, 599, false));
  ECMPLB_RETURN_IF_ERROR(r.String("expect_body", &h->expect_body, false));
  ECMPLB_RETURN_IF_ERROR(r.String("send", &h->send, false));
  ECMPLB_RETURN_IF_ERROR(r.String("expect", &h->expect, false));
  ECMPLB_RETURN_IF_ERROR(r.String("query", &h->query, h->type == T::kDns));
  ECMPLB_RETURN_IF_ERROR(r.String("query_type", &h->query_type, false));
  if (h->type == T::kScript) {
    if (!r.Has("command")) return FieldError(r.Path("command"), "is required");
    const json& a = r.At("command");
    if (!a.is_array() || a.empty() || a.size() > kMaxCheckArgs) {
      return FieldError(r.Path("command"),
                        absl::StrCat("must be an array of 1 to ", kMaxCheckArgs, " strings"));
    }
    for (size_t i = 0; i < a.size(); ++i) {
      const std::string at = absl::StrCat(r.Path("command"), "[", i, "]");
      if (!a[i].is_string()) return FieldError(at, "must be a string");
      const std::string& arg = a[i].get_ref<const std::string&>();
      if (arg.size() > kMaxCheckText || arg.find('\0') != std::string::npos) {
        return FieldError(at, absl::StrCat("must be at most ", kMaxCheckText,
                                           " bytes, without NUL"));
      }
      if (i == 0 && (arg.empty() || arg[0] != '/')) {
        return FieldError(at, "must be an absolute path (no $PATH search)");
      }
      h->command.push_back(arg);
    }
  }
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("interval_ms", &h->interval_ms, 10, 3600000, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("timeout_ms", &h->timeout_ms, 10, 600000, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("rise", &h->rise, 1, 100, false));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("fall", &h->fall, 1, 100, false));
  if (h->path.empty() || h->path[0] != '/' || h->path.find_first_of("\r\n ") != std::string::npos) {
    return FieldError(r.Path("path"), "must start with '/' and contain no spaces or line breaks");
  }
  for (const auto& [key, text] : {std::pair<const char*, const std::string*>{"expect_body", &h->expect_body},
                                  {"send", &h->send},
                                  {"expect", &h->expect}}) {
    if (text->size() > kMaxCheckText) {
      return FieldError(r.Path(key), absl::StrCat("must be at most ", kMaxCheckText, " bytes"));
    }
  }
  if (h->type == T::kDns) {
    if (!ValidDnsName(h->query)) {
      return FieldError(r.Path("query"), "must be a DNS name (labels of letters, digits, '-', "
                                         "'_', 1 to 63 long, at most 253 in all)");
    }
    if (DnsQueryType(h->query_type) == 0) {
      return FieldError(r.Path("query_type"), "must be A, AAAA, NS, SOA, MX, TXT, CNAME or PTR");
    }
  }
  if (h->timeout_ms > h->interval_ms)
    return FieldError(r.Path("timeout_ms"), "must not exceed interval_ms");
  return absl::OkStatus();
}

absl::Status ParseService(const json& j, const std::string& path, ServiceConfig* s) {
  ObjectReader r(j, path);
  ECMPLB_RETURN_IF_ERROR(r.CheckObject({"vip", "port", "protocol", "forward", "hash", "table_size",
                                        "backends", "health_check", "admin_up", "sorry_backend"}));
  if (r.Has("sorry_backend")) {
    BackendConfig b;
    ObjectReader sr(r.At("sorry_backend"), r.Path("sorry_backend"));
    ECMPLB_RETURN_IF_ERROR(sr.CheckObject({"address", "port"}));
    ECMPLB_RETURN_IF_ERROR(sr.Address("address", &b.address, true));
    ECMPLB_RETURN_IF_ERROR(sr.Unsigned("port", &b.port, 0, 65535, false));
    b.id = kSorryBackendId;
    s->sorry_backend = b;
  }
  ECMPLB_RETURN_IF_ERROR(r.Bool("admin_up", &s->admin_up));
  if (r.Has("health_check")) {
    HealthCheckConfig h;
    ECMPLB_RETURN_IF_ERROR(ParseHealthCheck(r.At("health_check"), r.Path("health_check"), &h));
    s->health_check = h;
  }
  ECMPLB_RETURN_IF_ERROR(r.Address("vip", &s->vip, true));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("port", &s->port, 1, 65535, true));
  ECMPLB_RETURN_IF_ERROR(r.Enum("protocol", &s->protocol, &ParseProtocol));
  ECMPLB_RETURN_IF_ERROR(r.Enum("forward", &s->forward, &ParseForwardMode));
  ECMPLB_RETURN_IF_ERROR(r.Enum("hash", &s->hash, &ParseHashMode));
  ECMPLB_RETURN_IF_ERROR(r.Unsigned("table_size", &s->table_size, 0, UINT32_MAX, false));
  if (r.Has("backends")) {
    const json& arr = r.At("backends");
    if (!arr.is_array()) return FieldError(r.Path("backends"), "must be an array");
    for (size_t i = 0; i < arr.size(); ++i) {
      BackendConfig b;
      ECMPLB_RETURN_IF_ERROR(ParseBackend(arr[i], absl::StrCat(path, ".backends[", i, "]"), &b));
      s->backends.push_back(std::move(b));
    }
  }
  // Backends given without ids get the lowest free ids, in file order.
  std::set<uint32_t> used;
  for (const auto& b : s->backends)
    if (b.id != 0) used.insert(b.id);
  uint32_t next = 1;
  for (auto& b : s->backends) {
    if (b.id != 0) continue;
    while (used.count(next)) ++next;
    b.id = next;
    used.insert(next);
  }
  return absl::OkStatus();
}

json HostJson(const Config& c) {
  json host = {{"address", c.host.address},
               {"prefix_length", c.host.prefix_length},
               {"mtu", c.host.mtu},
               {"gue_port", c.host.gue_port},
               {"exception_interface", c.host.exception_interface},
               {"control_socket", c.host.control_socket},
               {"announce", c.host.announce},
               {"announce_interface", c.host.announce_interface},
               {"drain_s", c.host.drain_s},
               {"worker_stall_ms", c.host.worker_stall_ms}};
  if (!c.host.metrics_listen.empty()) host["metrics_listen"] = c.host.metrics_listen;
  if (!c.host.metrics_per_backend) host["metrics_per_backend"] = false;
  if (c.host.control != ControlAccessConfig{}) {
    json control = json::object();
    if (!c.host.control.group.empty()) control["group"] = c.host.control.group;
    if (!c.host.control.read_only_group.empty()) {
      control["read_only_group"] = c.host.control.read_only_group;
    }
    host["control"] = std::move(control);
  }
  const ExceptionConfig& ex = c.host.exception;
  host["exception"] = {{"rate_pps", ex.rate_pps},
                       {"burst", ex.burst},
                       {"priority_pps", ex.priority_pps},
                       {"drop_unsolicited", ex.drop_unsolicited},
                       {"allow", ex.allow}};
  if (!c.host.tunnel_source.empty()) host["tunnel_source"] = c.host.tunnel_source;
  if (!c.host.tunnel_source6.empty()) host["tunnel_source6"] = c.host.tunnel_source6;
  if (!c.host.gateway6.empty()) host["gateway6"] = c.host.gateway6;
  if (!c.host.address6.empty()) {
    host["address6"] = c.host.address6;
    host["prefix_length6"] = c.host.prefix_length6;
  }
  if (!c.host.gateway.empty()) host["gateway"] = c.host.gateway;
  return host;
}

json ServicesJson(const std::vector<ServiceConfig>& list) {
  json services = json::array();
  for (const auto& s : list) {
    json backends = json::array();
    for (const auto& b : s.backends) {
      json jb = {{"id", b.id}, {"address", b.address}, {"weight", b.weight}};
      if (b.port != 0) jb["port"] = b.port;
      backends.push_back(std::move(jb));
    }
    json js = {{"vip", s.vip},
               {"port", s.port},
               {"protocol", ProtocolName(s.protocol)},
               {"forward", ForwardModeName(s.forward)},
               {"hash", HashModeName(s.hash)},
               {"table_size", s.table_size},
               {"admin_up", s.admin_up},
               {"backends", std::move(backends)}};
    if (s.sorry_backend) {
      json jsb = {{"address", s.sorry_backend->address}};
      if (s.sorry_backend->port != 0) jsb["port"] = s.sorry_backend->port;
      js["sorry_backend"] = std::move(jsb);
    }
    if (s.health_check) {
      const auto& h = *s.health_check;
      json jh = {{"type", CheckTypeName(h.type)},
                 {"interval_ms", h.interval_ms},
                 {"timeout_ms", h.timeout_ms},
                 {"rise", h.rise},
                 {"fall", h.fall}};
      if (h.port != 0) jh["port"] = h.port;
      switch (h.type) {
        case HealthCheckConfig::Type::kHttp:
        case HealthCheckConfig::Type::kHttps:
          jh["path"] = h.path;
          jh["expect_status"] = h.expect_status;
          if (!h.expect_body.empty()) jh["expect_body"] = h.expect_body;
          break;
        case HealthCheckConfig::Type::kUdp:
          jh["send"] = h.send;
          jh["expect"] = h.expect;
          break;
        case HealthCheckConfig::Type::kDns:
          jh["query"] = h.query;
          jh["query_type"] = h.query_type;
          break;
        case HealthCheckConfig::Type::kScript:
          jh["command"] = h.command;
          break;
        case HealthCheckConfig::Type::kTcp:
          break;
      }
      js["health_check"] = std::move(jh);
    }
    services.push_back(std::move(js));
  }
  return services;
}

json ToJson(const Config& c) {
  json host = HostJson(c);
  json ct = {{"capacity", c.conntrack.capacity},
             {"tcp_established_s", c.conntrack.tcp_established_s},
             {"tcp_syn_s", c.conntrack.tcp_syn_s},
             {"tcp_closing_s", c.conntrack.tcp_closing_s},
             {"tcp_probation_s", c.conntrack.tcp_probation_s},
             {"udp_s", c.conntrack.udp_s}};
  json services = ServicesJson(c.services);
  json sync;
  if (c.sync != SyncConfig{}) {
    sync = {{"peers", c.sync.peers},
            {"port", c.sync.port},
            {"key_file", c.sync.key_file},
            {"rate_per_worker", c.sync.rate_per_worker},
            {"refresh_s", c.sync.refresh_s},
            {"peer_capacity", c.sync.peer_capacity},
            {"bulk_wait", c.sync.bulk_wait},
            {"bulk_timeout_s", c.sync.bulk_timeout_s}};
  }
  // nlohmann's default object keeps keys sorted: output is stable.
  json out{
      {"host", std::move(host)}, {"conntrack", std::move(ct)}, {"services", std::move(services)}};
  if (!sync.is_null()) out["sync"] = std::move(sync);
  if (c.fragments != FragmentsConfig{}) {
    out["fragments"] = {{"capacity", c.fragments.capacity},
                        {"hold", c.fragments.hold},
                        {"timeout_s", c.fragments.timeout_s}};
  }
  if (c.fleet.enabled()) {
    const FleetConfig& f = c.fleet;
    json fleet = {{"endpoints", f.endpoints}, {"prefix", f.prefix},      {"cluster", f.cluster},
                  {"cache_file", f.cache_file}, {"grace_s", f.grace_s},  {"min_announcing", f.min_announcing},
                  {"lease_ttl_s", f.lease_ttl_s}};
    if (!f.host_name.empty()) fleet["host_name"] = f.host_name;
    if (!f.ca_file.empty()) fleet["ca_file"] = f.ca_file;
    if (!f.cert_file.empty()) fleet["cert_file"] = f.cert_file;
    if (!f.key_file.empty()) fleet["key_file"] = f.key_file;
    out["fleet"] = std::move(fleet);
  }
  return out;
}

}  // namespace

absl::string_view ProtocolName(Protocol p) {
  return p == Protocol::kTcp ? "tcp" : "udp";
}
absl::string_view ForwardModeName(ForwardMode m) {
  switch (m) {
    case ForwardMode::kDr:
      return "dr";
    case ForwardMode::kGre:
      return "gre";
    case ForwardMode::kIpip:
      return "ipip";
    case ForwardMode::kGue:
      return "gue";
  }
  return "?";
}
absl::string_view HashModeName(HashMode m) {
  return m == HashMode::kFiveTuple ? "5tuple" : "source-ip";
}

absl::StatusOr<Protocol> ParseProtocol(absl::string_view s) {
  if (s == "tcp") return Protocol::kTcp;
  if (s == "udp") return Protocol::kUdp;
  return absl::InvalidArgumentError(absl::StrCat("unknown protocol '", s, "' (tcp or udp)"));
}
absl::StatusOr<ForwardMode> ParseForwardMode(absl::string_view s) {
  if (s == "dr") return ForwardMode::kDr;
  if (s == "gre") return ForwardMode::kGre;
  if (s == "ipip") return ForwardMode::kIpip;
  if (s == "gue") return ForwardMode::kGue;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown forwarding mode '", s, "' (dr, gre, ipip or gue)"));
}
absl::StatusOr<HashMode> ParseHashMode(absl::string_view s) {
  if (s == "5tuple") return HashMode::kFiveTuple;
  if (s == "source-ip") return HashMode::kSourceIp;
  return absl::InvalidArgumentError(absl::StrCat("unknown hash '", s, "' (5tuple or source-ip)"));
}

absl::StatusOr<std::string> CanonicalAddress(absl::string_view text) {
  std::string t(text);
  char buf[INET6_ADDRSTRLEN];
  unsigned char bin[16];
  if (inet_pton(AF_INET, t.c_str(), bin) == 1) {
    return std::string(inet_ntop(AF_INET, bin, buf, sizeof(buf)));
  }
  if (inet_pton(AF_INET6, t.c_str(), bin) == 1) {
    return std::string(inet_ntop(AF_INET6, bin, buf, sizeof(buf)));
  }
  return absl::InvalidArgumentError(absl::StrCat("'", text, "' is not an IPv4 or IPv6 address"));
}

bool IsIpv6(absl::string_view a) {
  return a.find(':') != absl::string_view::npos;
}

std::string ServiceConfig::Name() const {
  return IsIpv6(vip) ? absl::StrCat("[", vip, "]:", port, "/", ProtocolName(protocol))
                     : absl::StrCat(vip, ":", port, "/", ProtocolName(protocol));
}

const ServiceConfig* Config::FindService(absl::string_view vip, uint16_t port,
                                         Protocol proto) const {
  auto canon = CanonicalAddress(vip);
  if (!canon.ok()) return nullptr;
  for (const auto& s : services) {
    if (s.vip == *canon && s.port == port && s.protocol == proto) return &s;
  }
  return nullptr;
}

namespace {
absl::Status ValidateSync(const Config& c) {
  const SyncConfig& s = c.sync;
  if (s.peers.size() > kMaxSyncPeers) {
    return FieldError("sync.peers", absl::StrCat("at most ", kMaxSyncPeers, " peers"));
  }
  std::set<std::string> seen;
  for (size_t i = 0; i < s.peers.size(); ++i) {
    const std::string path = absl::StrCat("sync.peers[", i, "]");
    if (IsIpv6(s.peers[i])) return FieldError(path, "must be an IPv4 address (a host.address)");
    if (s.peers[i] == c.host.address) {
      return FieldError(path, "is this host's own address (list the other LB hosts)");
    }
    if (!seen.insert(s.peers[i]).second) return FieldError(path, "is listed twice");
  }
  if (!s.peers.empty() && s.key_file.empty()) {
    return FieldError("sync.key_file", "is required with sync.peers (lines \"<id> <64 hex>\", "
                                       "mode 0600)");
  }
  if (s.refresh_s >= c.conntrack.tcp_established_s) {
    return FieldError("sync.refresh_s", absl::StrCat("must be below conntrack.tcp_established_s (",
                                                     c.conntrack.tcp_established_s,
                                                     "): peers would expire live flows"));
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status Validate(const Config& c) {
  return ValidateServices(c, [](size_t) { return true; });
}

namespace {
// The rules of one service (services[i]) on its own.
// `ipv6_tunnels`: the host has an IPv6 tunnel source (host.address6 or tunnel_source6).
absl::Status ValidateService(const ServiceConfig& s, size_t i, bool ipv6_tunnels);
bool HasIpv6TunnelSource(const Config& c) {
  return !c.host.address6.empty() || !c.host.tunnel_source6.empty();
}
}  // namespace

namespace {
// The host's rules and the per-host totals over every service.
absl::Status ValidateHostAndTotals(const Config& c) {
  if (c.host.address.empty() || IsIpv6(c.host.address)) {
    return FieldError("host.address", "an IPv4 address is required");
  }
  if (!c.host.address6.empty()) {
    in6_addr a6{};
    if (inet_pton(AF_INET6, c.host.address6.c_str(), &a6) != 1) {
      return FieldError("host.address6", "must be an IPv6 address");
    }
    // fe80::/10 (link-local: the kernel makes its own) and ff00::/8 (multicast).
    const uint8_t* b = a6.s6_addr;
    if ((b[0] == 0xfe && (b[1] & 0xc0) == 0x80) || b[0] == 0xff) {
      return FieldError("host.address6", "must be a global or unique-local unicast address");
    }
  }
  if (!c.host.tunnel_source.empty() && IsIpv6(c.host.tunnel_source)) {
    return FieldError("host.tunnel_source",
                      "must be an IPv4 address (tunnel_source6 is the IPv6 backends' source)");
  }
  if (!c.host.tunnel_source6.empty() && !IsIpv6(c.host.tunnel_source6)) {
    return FieldError("host.tunnel_source6", "must be an IPv6 address");
  }
  if (!c.host.gateway6.empty() && !IsIpv6(c.host.gateway6)) {
    return FieldError("host.gateway6", "must be an IPv6 address");
  }
  if (!c.host.gateway.empty() && IsIpv6(c.host.gateway)) {
    return FieldError("host.gateway", "must be an IPv4 address");
  }
  if (c.host.exception_interface.empty() || c.host.exception_interface.size() > 15) {
    return FieldError("host.exception_interface", "must be 1 to 15 characters (an interface name)");
  }
  if (c.host.announce_interface.empty() || c.host.announce_interface.size() > 15) {
    return FieldError("host.announce_interface", "must be 1 to 15 characters (an interface name)");
  }
  if (c.host.control_socket.empty() || c.host.control_socket.size() >= 108) {
    return FieldError("host.control_socket", "must be a path shorter than 108 characters");
  }
  const ControlAccessConfig& ctl = c.host.control;
  if (!ctl.group.empty() && ctl.group == ctl.read_only_group) {
    return FieldError("host.control.read_only_group",
                      absl::StrCat("names group '", ctl.group,
                                   "', which host.control.group already gives full access"));
  }
  if (absl::Status st = ValidateSync(c); !st.ok()) return st;
  if (c.services.size() > kMaxServices) {
    return FieldError("services", absl::StrCat("at most ", kMaxServices, " services (",
                                               c.services.size(), " given)"));
  }
  {
    size_t backends = 0;
    uint64_t slots = 0;
    for (const auto& s : c.services) {
      backends += s.backends.size() + (s.sorry_backend ? 1 : 0);
      slots += s.table_size;
    }
    if (backends > kMaxBackendsPerHost) {
      return FieldError("services", absl::StrCat("at most ", kMaxBackendsPerHost,
                                                 " backends over all services (", backends,
                                                 " given, sorry backends included)"));
    }
    if (slots > kMaxTableSlotsPerHost) {
      return FieldError(
          "services",
          absl::StrCat("the services' Maglev tables would hold ", slots, " slots (",
                       slots * 2 >> 20, " MiB); at most ", kMaxTableSlotsPerHost,
                       ": give services a table_size that fits their backends (100 x the "
                       "backends expected, prime; 65,537 when not set)"));
    }
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status ValidateServices(const Config& c, const std::function<bool(size_t)>& check) {
  ECMPLB_RETURN_IF_ERROR(ValidateHostAndTotals(c));
  absl::flat_hash_set<std::tuple<absl::string_view, uint16_t, Protocol>> seen;
  seen.reserve(c.services.size());
  for (size_t i = 0; i < c.services.size(); ++i) {
    const auto& s = c.services[i];
    if (!seen.insert({s.vip, s.port, s.protocol}).second) {
      return absl::AlreadyExistsError(
          absl::StrCat("services[", i, "] (", s.Name(), "): duplicate service"));
    }
    if (check(i)) ECMPLB_RETURN_IF_ERROR(ValidateService(s, i, HasIpv6TunnelSource(c)));
  }
  return absl::OkStatus();
}

absl::Status ValidateServiceEdit(const Config& c, std::optional<size_t> changed) {
  ECMPLB_RETURN_IF_ERROR(ValidateHostAndTotals(c));
  if (changed) {
    ECMPLB_RETURN_IF_ERROR(
        ValidateService(c.services[*changed], *changed, HasIpv6TunnelSource(c)));
  }
  return absl::OkStatus();
}

namespace {
absl::Status ValidateService(const ServiceConfig& s, size_t i, bool ipv6_tunnels) {
  {
    std::string path = absl::StrCat("services[", i, "] (", s.Name(), ")");
    if (s.port == 0) return FieldError(path, "port must be 1..65535");
    if (absl::Status st = maglev::Table::ValidateTableSize(s.table_size); !st.ok()) {
      return FieldError(absl::StrCat(path, ".table_size"), st.message());
    }
    if (s.backends.size() > kMaxBackendsPerService) {
      return FieldError(path, absl::StrCat("at most ", kMaxBackendsPerService, " backends"));
    }
    std::set<uint32_t> ids;
    std::set<std::pair<std::string, uint16_t>> addrs;
    const size_t total = s.backends.size() + (s.sorry_backend ? 1 : 0);
    for (size_t k = 0; k < total; ++k) {
      const bool sorry = k == s.backends.size();
      const auto& b = sorry ? *s.sorry_backend : s.backends[k];
      std::string bpath = sorry ? absl::StrCat(path, ".sorry_backend (", b.address, ")")
                                : absl::StrCat(path, ".backends[", k, "] (", b.address, ")");
      if (sorry) {
        for (const auto& a : addrs) {
          if (a.first == b.address)
            return FieldError(bpath, "must not be one of the service's backends");
        }
      } else if (b.id == 0 || b.id > kMaxBackendId) {
        return FieldError(bpath, "id must be 1..65535");
      }
      if (!ids.insert(b.id).second) {
        return absl::AlreadyExistsError(absl::StrCat(bpath, ": duplicate backend id ", b.id));
      }
      if (!addrs.insert({b.address, b.port}).second) {
        return absl::AlreadyExistsError(absl::StrCat(bpath, ": duplicate backend address"));
      }
      if (b.weight > kMaxWeight) return FieldError(bpath, "weight must be 0..65535");
      if (s.forward == ForwardMode::kDr && IsIpv6(b.address) != IsIpv6(s.vip)) {
        return FieldError(bpath, "a DR backend must have the VIP's address family");
      }
      if (s.forward != ForwardMode::kDr && IsIpv6(b.address) && !ipv6_tunnels) {
        return FieldError(bpath, absl::StrCat("an IPv6 ",
                                              absl::AsciiStrToUpper(ForwardModeName(s.forward)),
                                              " backend needs host.address6 or "
                                              "host.tunnel_source6 (its outer header's source)"));
      }
      if (b.port != 0 && b.port != s.port) {
        return FieldError(bpath,
                          "port must equal the service port (DR and the tunnels do not translate "
                          "ports)");
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> ParseConfig(absl::string_view text) {
  json j;
  try {
    j = json::parse(text.begin(), text.end());
  } catch (const json::exception& e) {  // parse_error, and out_of_range for a number like 1e999
    return absl::InvalidArgumentError(absl::StrCat("config is not valid JSON: ", e.what()));
  }
  Config c;
  ObjectReader r(j, "");
  ECMPLB_RETURN_IF_ERROR(
      r.CheckObject({"host", "conntrack", "fragments", "sync", "fleet", "services"}));
  if (!r.Has("host")) return FieldError("host", "is required");
  ECMPLB_RETURN_IF_ERROR(ParseHost(r.At("host"), &c.host));
  if (r.Has("conntrack")) ECMPLB_RETURN_IF_ERROR(ParseConntrack(r.At("conntrack"), &c.conntrack));
  if (r.Has("fragments")) {
    ECMPLB_RETURN_IF_ERROR(ParseFragments(r.At("fragments"), &c.fragments));
  }
  if (r.Has("sync")) ECMPLB_RETURN_IF_ERROR(ParseSync(r.At("sync"), &c.sync));
  if (r.Has("fleet")) ECMPLB_RETURN_IF_ERROR(ParseFleet(r.At("fleet"), &c.fleet));
  if (r.Has("services")) {
    const json& arr = r.At("services");
    if (!arr.is_array()) return FieldError("services", "must be an array");
    for (size_t i = 0; i < arr.size(); ++i) {
      ServiceConfig s;
      ECMPLB_RETURN_IF_ERROR(ParseService(arr[i], absl::StrCat("services[", i, "]"), &s));
      c.services.push_back(std::move(s));
    }
  }
  ECMPLB_RETURN_IF_ERROR(Validate(c));
  return c;
}

absl::StatusOr<std::string> ReadConfigText(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(
        absl::StrCat("cannot read config file ", path, ": ", std::strerror(errno)));
  }
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) {
    return absl::InternalError(absl::StrCat("read ", path, ": ", std::strerror(errno)));
  }
  return ss.str();
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  ECMPLB_ASSIGN_OR_RETURN(const std::string text, ReadConfigText(path));
  auto c = ParseConfig(text);
  if (!c.ok())
    return absl::Status(c.status().code(), absl::StrCat(path, ": ", c.status().message()));
  return c;
}

std::vector<std::string> RestartOnlyChanges(const Config& running, const Config& candidate) {
  std::vector<std::string> out;
  const Config& a = running;
  const Config& b = candidate;
  // Field by field, named as in the file; a section that differs in a field not listed here
  // is named whole.
#define ECMPLB_RESTART_FIELD(section, name) \
  if (!(a.section.name == b.section.name)) out.push_back(#section "." #name)
  const size_t host_from = out.size();
  ECMPLB_RESTART_FIELD(host, address);
  ECMPLB_RESTART_FIELD(host, prefix_length);
  ECMPLB_RESTART_FIELD(host, address6);
  ECMPLB_RESTART_FIELD(host, prefix_length6);
  ECMPLB_RESTART_FIELD(host, tunnel_source);
  ECMPLB_RESTART_FIELD(host, tunnel_source6);
  ECMPLB_RESTART_FIELD(host, gateway);
  ECMPLB_RESTART_FIELD(host, gateway6);
  ECMPLB_RESTART_FIELD(host, mtu);
  ECMPLB_RESTART_FIELD(host, gue_port);
  ECMPLB_RESTART_FIELD(host, exception_interface);
  ECMPLB_RESTART_FIELD(host, control_socket);
  ECMPLB_RESTART_FIELD(host.control, group);
  ECMPLB_RESTART_FIELD(host.control, read_only_group);
  ECMPLB_RESTART_FIELD(host, announce);
  ECMPLB_RESTART_FIELD(host, announce_interface);
  ECMPLB_RESTART_FIELD(host, drain_s);
  ECMPLB_RESTART_FIELD(host, worker_stall_ms);
  ECMPLB_RESTART_FIELD(host, metrics_listen);
  ECMPLB_RESTART_FIELD(host, metrics_per_backend);
  ECMPLB_RESTART_FIELD(host.exception, rate_pps);
  ECMPLB_RESTART_FIELD(host.exception, burst);
  ECMPLB_RESTART_FIELD(host.exception, priority_pps);
  ECMPLB_RESTART_FIELD(host.exception, drop_unsolicited);
  ECMPLB_RESTART_FIELD(host.exception, allow);
  if (out.size() == host_from && !(a.host == b.host)) out.push_back("host");
  const size_t conntrack_from = out.size();
  ECMPLB_RESTART_FIELD(conntrack, capacity);
  ECMPLB_RESTART_FIELD(conntrack, tcp_established_s);
  ECMPLB_RESTART_FIELD(conntrack, tcp_syn_s);
  ECMPLB_RESTART_FIELD(conntrack, tcp_closing_s);
  ECMPLB_RESTART_FIELD(conntrack, tcp_probation_s);
  ECMPLB_RESTART_FIELD(conntrack, udp_s);
  if (out.size() == conntrack_from && !(a.conntrack == b.conntrack)) out.push_back("conntrack");
  const size_t fragments_from = out.size();
  ECMPLB_RESTART_FIELD(fragments, capacity);
  ECMPLB_RESTART_FIELD(fragments, hold);
  ECMPLB_RESTART_FIELD(fragments, timeout_s);
  if (out.size() == fragments_from && !(a.fragments == b.fragments)) out.push_back("fragments");
  const size_t sync_from = out.size();
  ECMPLB_RESTART_FIELD(sync, peers);
  ECMPLB_RESTART_FIELD(sync, port);
  ECMPLB_RESTART_FIELD(sync, key_file);
  ECMPLB_RESTART_FIELD(sync, rate_per_worker);
  ECMPLB_RESTART_FIELD(sync, refresh_s);
  ECMPLB_RESTART_FIELD(sync, peer_capacity);
  ECMPLB_RESTART_FIELD(sync, bulk_wait);
  ECMPLB_RESTART_FIELD(sync, bulk_timeout_s);
  if (out.size() == sync_from && !(a.sync == b.sync)) out.push_back("sync");
  if (!(a.fleet == b.fleet)) out.push_back("fleet");
#undef ECMPLB_RESTART_FIELD
  std::sort(out.begin(), out.end());
  return out;
}

const char* CheckTypeName(HealthCheckConfig::Type t) {
  switch (t) {
    case HealthCheckConfig::Type::kTcp:
      return "tcp";
    case HealthCheckConfig::Type::kHttp:
      return "http";
    case HealthCheckConfig::Type::kUdp:
      return "udp";
    case HealthCheckConfig::Type::kDns:
      return "dns";
    case HealthCheckConfig::Type::kScript:
      return "script";
    case HealthCheckConfig::Type::kHttps:
      return "https";
  }
  return "?";
}

bool ValidDnsName(absl::string_view name) {
  if (name == ".") return true;
  if (!name.empty() && name.back() == '.') name.remove_suffix(1);
  if (name.empty() || name.size() > 253) return false;
  for (absl::string_view label : absl::StrSplit(name, '.')) {
    if (label.empty() || label.size() > 63) return false;
    for (char c : label) {
      if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_') return false;
    }
  }
  return true;
}

uint16_t DnsQueryType(absl::string_view name) {
  static constexpr std::pair<absl::string_view, uint16_t> kTypes[] = {
      {"A", 1}, {"NS", 2}, {"CNAME", 5}, {"SOA", 6}, {"PTR", 12}, {"MX", 15}, {"TXT", 16},
      {"AAAA", 28}};
  for (const auto& [n, v] : kTypes) {
    if (name == n) return v;
  }
  return 0;
}

std::string SerializeConfig(const Config& config) {
  return ToJson(config).dump(2) + "\n";
}

std::string SerializeServices(const std::vector<ServiceConfig>& services) {
  return ServicesJson(services).dump();
}

absl::StatusOr<Config> WithServices(const Config& host, absl::string_view services_array) {
  json arr;
  try {
    arr = json::parse(services_array.begin(), services_array.end());
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("services are not valid JSON: ", e.what()));
  }
  if (!arr.is_array()) return FieldError("services", "must be an array");
  json doc = ToJson(host);
  doc["services"] = std::move(arr);
  return ParseConfig(doc.dump());
}

absl::Status SaveConfigFile(const Config& config, const std::string& path) {
  return WriteConfigText(SerializeConfig(config), path);
}

absl::Status WriteConfigText(const std::string& text, const std::string& path) {
  std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return absl::InternalError(absl::StrCat("open ", tmp, ": ", std::strerror(errno)));
  size_t off = 0;
  while (off < text.size()) {
    ssize_t n = ::write(fd, text.data() + off, text.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      int e = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      return absl::InternalError(absl::StrCat("write ", tmp, ": ", std::strerror(e)));
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("fsync ", tmp, ": ", std::strerror(errno)));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return absl::InternalError(absl::StrCat("rename ", tmp, " -> ", path, ": ", std::strerror(e)));
  }
  std::string dir =
      path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/'));
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    ::fsync(dfd);
    ::close(dfd);
  }
  return absl::OkStatus();
}

}  // namespace ecmplb::control
