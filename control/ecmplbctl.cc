// ecmplbctl.cc: command-line client of the ecmplb control socket.
//
//   ecmplbctl [--socket PATH] [--json] COMMAND ...
//
// Every command sends one request (see control/protocol.h) and prints the reply, as text or
// with --json as JSON; exit status 0 on success, 1 with one line "ecmplbctl: COMMAND: reason"
// on stderr when the daemon refuses or cannot be reached, 2 on a usage error.
// `import-keepalived FILE` works offline: 0 when everything translated, 3 when it printed a
// config but listed settings it could not translate, 1 when the file cannot be read.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "control/config.h"
#include "control/ecmplbctl_fleet.h"
#include "control/frr_render.h"
#include "control/keepalived.h"
#include "control/protocol.h"
#include "frr_template.h"

namespace {

using ecmplb::control::CommandId;
using ecmplb::control::CommandSpec;
using ecmplb::control::Request;
using nlohmann::json;

// Sends one request line and reads one reply line (10 s timeout each way).
absl::StatusOr<json> Call(const std::string& path, const Request& request) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path))
    return absl::InvalidArgumentError("socket path too long");
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::UnavailableError(absl::StrCat("socket: ", std::strerror(errno)));
  timeval tv{10, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    absl::Status s = absl::UnavailableError(absl::StrCat(
        "cannot connect to ", path, ": ", std::strerror(errno), " (is ecmplb running?)"));
    ::close(fd);
    return s;
  }
  std::string line = ecmplb::control::EncodeRequest(request) + "\n";
  for (size_t sent = 0; sent < line.size();) {
    ssize_t n = ::send(fd, line.data() + sent, line.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) {
      ::close(fd);
      return absl::UnavailableError(
          absl::StrCat("cannot send to ", path, ": ", std::strerror(errno)));
    }
    sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[65536];
  while (reply.find('\n') == std::string::npos) {
    ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0) {
      ::close(fd);
      return absl::UnavailableError(
          n == 0 ? std::string("the daemon closed the connection without a reply")
                 : absl::StrCat("no reply from ", path, ": ", std::strerror(errno)));
    }
    reply.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  reply.resize(reply.find('\n'));
  return ecmplb::control::DecodeReply(reply);
}

std::string Str(const json& j) {
  return j.is_string() ? j.get<std::string>() : j.dump();
}

void PrintShow(const json& r) {
  std::printf("generation %s\n", Str(r["generation"]).c_str());
  for (const auto& s : r["services"]) {
    std::printf("service %s  forward %s  hash %s  table %s  %s\n", Str(s["service"]).c_str(),
                Str(s["forward"]).c_str(), Str(s["hash"]).c_str(), Str(s["table_size"]).c_str(),
                Str(s["state"]).c_str());
    std::printf("  %-5s %-40s %-7s %-9s %-12s %s\n", "id", "backend", "weight", "state",
                "maglev_slots", "flows");
    for (const auto& b : s["backends"]) {
      std::printf("  %-5s %-40s %-7s %-9s %-12s %s\n", Str(b["id"]).c_str(),
                  Str(b["address"]).c_str(), Str(b["weight"]).c_str(), Str(b["state"]).c_str(),
                  Str(b["maglev_slots"]).c_str(), Str(b["flows"]).c_str());
    }
    for (const auto& id : s["reserved_ids"]) {
      std::printf("  id %s reserved for %s s (recently removed)\n", Str(id["id"]).c_str(),
                  Str(id["seconds_left"]).c_str());
    }
  }
}

void PrintCounters(const char* title, const json& obj, bool skip_zero) {
  std::printf("%s\n", title);
  for (const auto& [k, v] : obj.items()) {
    if (skip_zero && v.is_number() && v.get<uint64_t>() == 0) continue;
    std::printf("  %-28s %s\n", k.c_str(), Str(v).c_str());
  }
}

void PrintStats(const json& r) {
  PrintCounters("total (non-zero)", r["total"], true);
  PrintCounters("drops by reason", r["drops"], false);
  for (const auto& w : r["workers"]) {
    PrintCounters(absl::StrCat(Str(w["worker"]), " (non-zero)").c_str(), w["counters"], true);
    if (w.contains("conntrack")) PrintCounters("  conntrack", w["conntrack"], false);
  }
  for (const auto& s : r["services"]) {
    std::printf("service %s  packets %s  bytes %s\n", Str(s["service"]).c_str(),
                Str(s["packets"]).c_str(), Str(s["bytes"]).c_str());
    for (const auto& b : s["backends"]) {
      std::printf("  backend %s (id %s)  packets %s  bytes %s\n", Str(b["address"]).c_str(),
                  Str(b["id"]).c_str(), Str(b["packets"]).c_str(), Str(b["bytes"]).c_str());
    }
  }
}

void PrintConns(const json& r) {
  std::printf("%s tracked flows, %s shown\n", Str(r["total"]).c_str(), Str(r["shown"]).c_str());
  for (const auto& f : r["flows"]) {
    std::printf("  worker %s  %s  %s %s -> backend %s (id %s)  %s\n", Str(f["worker"]).c_str(),
                Str(f["service"]).c_str(), Str(f["protocol"]).c_str(), Str(f["client"]).c_str(),
                Str(f["backend"]).c_str(), Str(f["backend_id"]).c_str(), Str(f["state"]).c_str());
  }
}

void PrintLookup(const json& r) {
  if (r["backend"].is_null()) {
    std::printf("%s from %s: no usable backend\n", Str(r["service"]).c_str(),
                Str(r["client"]).c_str());
  } else {
    std::printf("%s from %s -> backend %s (id %s)\n", Str(r["service"]).c_str(),
                Str(r["client"]).c_str(), Str(r["backend"]["address"]).c_str(),
                Str(r["backend"]["id"]).c_str());
  }
  if (!r["tracked"].get<bool>()) {
    std::printf("  not tracked (a new flow would get the Maglev pick)\n");
  }
  for (const auto& t : r["tracked_by"]) {
    std::printf("  tracked on worker %s with backend id %s (%s)\n", Str(t["worker"]).c_str(),
                Str(t["backend_id"]).c_str(), Str(t["state"]).c_str());
  }
}

void PrintText(const CommandSpec& cmd, const json& r) {
  switch (cmd.id) {
    case CommandId::kShow:
      return PrintShow(r);
    case CommandId::kStats:
      return PrintStats(r);
    case CommandId::kConns:
      return PrintConns(r);
    case CommandId::kLookup:
      return PrintLookup(r);
    case CommandId::kConfigDump:
      std::printf("%s\n", r.dump(2).c_str());
      return;
    case CommandId::kConfigReload:
      std::printf("ok: reloaded: %s services added, %s removed, %s changed; %s tables rebuilt "
                  "(generation %s)\n",
                  Str(r["services_added"]).c_str(), Str(r["services_removed"]).c_str(),
                  Str(r["services_changed"]).c_str(), Str(r["services_rebuilt"]).c_str(),
                  Str(r["generation"]).c_str());
      return;
    case CommandId::kDrain:
      std::printf("ok: draining: VIPs withdrawn, the daemon stops in %s s\n",
                  Str(r["drain_s"]).c_str());
      return;
    case CommandId::kFault:
      if (r.contains("worker")) {
        std::printf("ok: worker %s stalls for %s ms\n", Str(r["worker"]).c_str(),
                    Str(r["ms"]).c_str());
      } else {
        std::printf("ok: the control loop stalled for %s ms\n", Str(r["ms"]).c_str());
      }
      return;
    case CommandId::kServiceList:
      for (const auto& s : r["services"]) {
        std::printf("%s  forward %s  hash %s  table %s  %s backend(s)\n", Str(s["service"]).c_str(),
                    Str(s["forward"]).c_str(), Str(s["hash"]).c_str(), Str(s["table_size"]).c_str(),
                    Str(s["backends"]).c_str());
      }
      return;
    default:
      break;
  }
  // Changes.
  std::string what = absl::StrCat("ok: ", cmd.name, " ", Str(r["service"]));
  if (r.contains("backend_id")) absl::StrAppend(&what, " backend id ", Str(r["backend_id"]));
  std::printf("%s (generation %s, %s Maglev table(s) rebuilt, applied in %.2f ms)\n",
              what.c_str(), Str(r["generation"]).c_str(), Str(r["services_rebuilt"]).c_str(),
              r.value("apply_ms", 0.0));
}

}  // namespace

// ecmplbctl import-keepalived: the translation on stdout, its notes on stderr.
int ImportKeepalived(const std::string& file, const std::string& host, uint32_t prefix_length) {
  namespace ka = ecmplb::control::keepalived;
  absl::StatusOr<std::vector<ka::Statement>> tree = ka::Parse(file);
  if (!tree.ok()) {
    std::fprintf(stderr, "ecmplbctl: import-keepalived: %s\n",
                 std::string(tree.status().message()).c_str());
    return 1;
  }
  ka::Translation t = ka::Translate(*tree);
  for (const ka::Note& n : t.notes) std::fprintf(stderr, "%s\n", ka::FormatNote(n).c_str());
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  // Checked as the daemon would read it; without --host-address under a stand-in host.
  // (the stand-in has an IPv6 address too, which IPv6 tunnel backends need).
  doc["host"] = {{"address", host.empty() ? "192.0.2.1" : host},
                 {"prefix_length", prefix_length}};
  if (host.empty()) {
    doc["host"]["address6"] = "2001:db8:ffff::1";
    doc["host"]["prefix_length6"] = 64;
  }
  doc["services"] = t.services;
  absl::StatusOr<ecmplb::control::Config> check = ecmplb::control::ParseConfig(doc.dump());
  if (!check.ok()) {
    std::fprintf(stderr, "ecmplbctl: import-keepalived: the translation does not validate: %s\n",
                 std::string(check.status().message()).c_str());
    return 1;
  }
  if (host.empty()) doc.erase("host");
  std::printf("%s\n", doc.dump(2).c_str());
  std::fprintf(stderr, "ecmplbctl: import-keepalived: %zu services%s\n", t.services.size(),
               t.complete() ? "" : "; the settings listed above were not translated");
  return t.complete() ? 0 : 3;
}

int main(int argc, char** argv) {
  CLI::App app{"ecmplbctl: control the ecmplb load balancer over its Unix socket", "ecmplbctl"};
  app.require_subcommand(1);
  std::string socket_path = "/run/ecmplb/ecmplb.sock";
  bool as_json = false;
  app.add_option("--socket", socket_path, "control socket of the daemon")->capture_default_str();
  app.add_flag("--json", as_json, "machine-readable output (JSON)");
  app.fallthrough();

  Request req;  // the options write its string arguments
  std::optional<uint32_t> weight, table_size, expected_backends, id;
  uint32_t limit = 100;

  // One subcommand per command of the table; "service add" is `service` then `add`.
  const std::map<std::string, const char*> group_help = {
      {"service", "add, delete, list services"},
      {"backend", "add, change, delete backends"},
      {"config", "running configuration"}};
  std::map<std::string, CLI::App*> groups;
  std::map<CommandId, CLI::App*> sub;
  for (const CommandSpec& spec : ecmplb::control::Commands()) {
    const std::string name = spec.name;
    const size_t space = name.find(' ');
    CLI::App* parent = &app;
    if (space != std::string::npos) {
      const std::string group = name.substr(0, space);
      CLI::App*& g = groups[group];
      if (g == nullptr)
        g = app.add_subcommand(group, group_help.at(group))->require_subcommand(1)->fallthrough();
      parent = g;
    }
    sub[spec.id] = parent->add_subcommand(name.substr(space + 1), spec.help)->fallthrough();
  }

  sub[CommandId::kServiceAdd]
      ->add_option("service", req.service,
                   "VIP:PORT/PROTO, e.g. 10.1.1.1:80/tcp, [2001:db8::1]:80/tcp")
      ->required();
  sub[CommandId::kServiceAdd]
      ->add_option("--forward", req.forward, "dr (MAC rewrite, default) or gre")
      ->check(CLI::IsMember({"dr", "gre", "ipip", "gue"}));
  sub[CommandId::kServiceAdd]
      ->add_option("--hash", req.hash, "5tuple (default) or source-ip")
      ->check(CLI::IsMember({"5tuple", "source-ip"}));
  CLI::Option* table_size_opt = sub[CommandId::kServiceAdd]->add_option(
      "--table-size", table_size,
      "Maglev table size, a prime (default: from --expected-backends); kept for the service's "
      "life and saved in the configuration");
  sub[CommandId::kServiceAdd]
      ->add_option("--expected-backends", expected_backends,
                   "backends the service may grow to (default 100): its table gets the "
                   "smallest prime >= 100 x that many slots (10,007 by default)")
      ->excludes(table_size_opt);
  sub[CommandId::kServiceDel]->add_option("service", req.service, "VIP:PORT/PROTO")->required();

  CLI::App* be_add = sub[CommandId::kBackendAdd];
  CLI::App* be_set = sub[CommandId::kBackendSet];
  for (CLI::App* sc : {be_add, be_set, sub[CommandId::kBackendDel]}) {
    sc->add_option("service", req.service, "VIP:PORT/PROTO")->required();
    sc->add_option("backend", req.backend, "ADDRESS[:PORT] (the port, if given, is the service's)")
        ->required();
  }
  be_add->add_option("--weight", weight, "relative weight 0..65535 (default 1; 0 drains)")
      ->check(CLI::Range(0u, 65535u));
  be_add->add_option("--id", id, "stable backend id (default: lowest free id)")
      ->check(CLI::Range(1u, 65535u));
  be_set->add_option("--weight", weight, "relative weight 0..65535 (0 drains)")
      ->required()
      ->check(CLI::Range(0u, 65535u));

  for (CommandId c : {CommandId::kShow, CommandId::kStats}) {
    sub[c]->add_option("--service", req.service, "only this service (VIP:PORT/PROTO)");
  }
  sub[CommandId::kConns]
      ->add_option("--limit", limit, "at most this many flows")
      ->capture_default_str()
      ->check(CLI::Range(0u, static_cast<uint32_t>(ecmplb::control::kMaxConnsLimit)));
  CLI::App* lookup = sub[CommandId::kLookup];
  lookup->add_option("service", req.service, "VIP:PORT/PROTO")->required();
  lookup->add_option("--client", req.client, "client ADDRESS:PORT ([2001:db8::7]:40000 for IPv6)")
      ->required();
  CLI::App* fault = sub[CommandId::kFault]->require_subcommand(1);
  uint32_t fault_worker = 0, fault_ms = 0;
  auto stall =
      fault->add_subcommand("stall-worker", "make a worker stop making progress for a while")
          ->fallthrough();
  stall->add_option("WORKER", fault_worker, "worker id (0..)")->required();
  stall->add_option("--ms", fault_ms, "how long, in milliseconds")
      ->required()
      ->check(CLI::Range(1u, 60000u));
  uint32_t control_stall_ms = 0;
  auto stall_control =
      fault
          ->add_subcommand("stall-control",
                           "make the daemon's control loop busy for a while (a long apply): "
                           "forwarding and the exception path must go on")
          ->fallthrough();
  stall_control->add_option("--ms", control_stall_ms, "how long, in milliseconds")
      ->required()
      ->check(CLI::Range(1u, 60000u));
  // Fleet mode: the fleet's configuration in etcd, and every host's status.
  auto fleet = app.add_subcommand("fleet",
                                  "fleet mode: the configuration every LB host follows in etcd "
                                  "(status, get, put); in fleet mode service and backend "
                                  "changes go there too")
                   ->require_subcommand(1)
                   ->fallthrough();
  std::vector<std::string> fleet_etcd;
  std::string fleet_cluster, fleet_prefix = "/ecmplb";
  fleet->add_option("--etcd", fleet_etcd,
                    "etcd client URL (repeatable; default: the daemon's fleet.endpoints)");
  fleet->add_option("--cluster", fleet_cluster, "with --etcd: the fleet's cluster name");
  fleet->add_option("--prefix", fleet_prefix, "with --etcd: the key prefix")->capture_default_str();
  std::string fleet_ca, fleet_cert, fleet_key;
  fleet->add_option("--ca-file", fleet_ca, "with --etcd https://: the CA that signed etcd's certificate");
  fleet->add_option("--cert-file", fleet_cert, "with --etcd https://: a client certificate");
  fleet->add_option("--key-file", fleet_key, "with --etcd https://: its key");
  auto fleet_status = fleet->add_subcommand(
      "status", "every host's applied version, fingerprint, announced VIPs and health side by "
                "side; disagreements flagged")->fallthrough();
  auto fleet_get = fleet->add_subcommand("get", "print the fleet's services and version")->fallthrough();
  std::string fleet_file;
  std::optional<int64_t> fleet_expect;
  auto fleet_put = fleet->add_subcommand(
      "put", "replace the fleet's services with FILE's (a config file or {\"services\": [...]}), "
             "validated first; compare-and-swap on the version read")->fallthrough();
  fleet_put->add_option("file", fleet_file, "JSON file")->required();
  fleet_put->add_option("--expect-version", fleet_expect,
                        "write only if the fleet is still at this version");
  std::string ka_file, ka_host;
  uint32_t ka_prefix_length = 24;
  auto import_ka =
      app.add_subcommand("import-keepalived",
                         "print an ecmplb config translated from a keepalived.conf (virtual "
                         "servers and groups, real servers, TCP_CHECK and HTTP_GET; includes "
                         "followed); every setting not translated, or whose meaning changes, is "
                         "listed on stderr with its file and line. Works without the daemon. "
                         "Exit 0: all translated; 3: some settings listed as not translated")
          ->fallthrough();
  import_ka->add_option("file", ka_file, "keepalived.conf")->required();
  import_ka->add_option("--host-address", ka_host,
                        "this LB host's address: print a whole config (host + services)");
  import_ka->add_option("--prefix-length", ka_prefix_length, "the host address's prefix length")
      ->capture_default_str();
  std::string frr_hostname;
  auto frr = app.add_subcommand("frr-config",
                                "print this host's FRR configuration for the running config: "
                                "OSPF (frr-conf/lb-host.frr.conf.in, and lb-host.ospf6.frr.conf.in "
                                "when an IPv6 VIP is configured) or BGP (--protocol bgp)")
                 ->fallthrough();
  frr->add_option("--hostname", frr_hostname, "FRR hostname (default: this host's name)");
  std::string frr_protocol = "ospf";
  ecmplb::control::BgpPeering bgp;
  frr->add_option("--protocol", frr_protocol,
                  "how the VIPs are announced: ospf (OSPFv2/v3) or bgp (eBGP to the router: "
                  "frr-conf/lb-host.bgp.frr.conf.in, and lb-host.bgp6.frr.conf.in for IPv6 VIPs)")
      ->check(CLI::IsMember({"ospf", "bgp"}))
      ->capture_default_str();
  frr->add_option("--local-as", bgp.local_as, "bgp: every LB host's AS")->capture_default_str();
  frr->add_option("--peer-as", bgp.peer_as, "bgp: the router's AS")->capture_default_str();
  frr->add_option("--peer", bgp.peer, "bgp: the router's IPv4 address (default: host.gateway)");
  frr->add_option("--peer6", bgp.peer6,
                  "bgp: the router's IPv6 address, for IPv6 VIPs (default: host.gateway6)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      std::string help = app.help();
      for (CLI::App* sub = &app; !sub->get_subcommands().empty();) {
        sub = sub->get_subcommands().front();
        help = sub->help();
      }
      std::printf("%s", help.c_str());
      return 0;
    }
    std::fprintf(stderr, "ecmplbctl: %s (see ecmplbctl --help)\n", e.what());
    return 2;
  }

  if (import_ka->parsed()) return ImportKeepalived(ka_file, ka_host, ka_prefix_length);

  // Fleet mode's target: the daemon's fleet section and host settings, or --etcd/--cluster.
  auto fleet_target = [&](bool need) -> std::optional<ecmplb::control::ctl::FleetTarget> {
    ecmplb::control::ctl::FleetTarget t;
    char h[256] = {};
    gethostname(h, sizeof(h) - 1);
    t.writer = absl::StrCat("ecmplbctl@", h);
    Request dump_request;
    dump_request.command = CommandId::kConfigDump;
    absl::StatusOr<json> dump = Call(socket_path, dump_request);
    absl::StatusOr<ecmplb::control::Config> running =
        dump.ok() ? ecmplb::control::ParseConfig(dump->dump())
                  : absl::StatusOr<ecmplb::control::Config>(dump.status());
    if (running.ok()) t.host = *running;
    if (!fleet_etcd.empty()) {
      t.fleet.endpoints = fleet_etcd;
      t.fleet.cluster = fleet_cluster;
      t.fleet.prefix = fleet_prefix;
      t.fleet.ca_file = fleet_ca;
      t.fleet.cert_file = fleet_cert;
      t.fleet.key_file = fleet_key;
      if (fleet_cluster.empty()) {
        std::fprintf(stderr, "ecmplbctl: fleet: --etcd needs --cluster\n");
        return std::nullopt;
      }
      if (!running.ok()) {  // no daemon here: validate under a stand-in host
        auto standin = ecmplb::control::ParseConfig(
            R"({"host": {"address": "192.0.2.1", "prefix_length": 24,
                         "address6": "2001:db8:ffff::1", "prefix_length6": 64}})");
        t.host = *standin;
      }
      return t;
    }
    if (running.ok() && running->fleet.enabled()) {
      t.fleet = running->fleet;
      return t;
    }
    if (need) {
      std::fprintf(stderr, "ecmplbctl: fleet: %s; give --etcd URL --cluster NAME\n",
                   running.ok() ? "this host's ecmplb is not in fleet mode (no fleet section)"
                                : std::string(running.status().message()).c_str());
    }
    return std::nullopt;
  };
  if (fleet->parsed()) {
    auto t = fleet_target(true);
    if (!t) return 1;
    if (fleet_status->parsed()) return ecmplb::control::ctl::FleetStatus(*t, as_json);
    if (fleet_get->parsed()) return ecmplb::control::ctl::FleetGet(*t, as_json);
    if (fleet_put->parsed()) {
      return ecmplb::control::ctl::FleetPut(*t, fleet_file, fleet_expect, as_json);
    }
  }

  const CommandSpec* cmd = nullptr;
  for (const CommandSpec& spec : ecmplb::control::Commands()) {
    if (sub[spec.id]->parsed()) cmd = &spec;
  }
  if (cmd != nullptr) {
    req.command = cmd->id;
    req.limit = limit;
    req.weight = weight;
    req.table_size = table_size;
    req.expected_backends = expected_backends;
    req.id = id;
    if (stall->parsed()) {
      req.fault = "stall-worker";
      req.worker = fault_worker;
      req.ms = fault_ms;
    }
    if (stall_control->parsed()) {
      req.fault = "stall-control";
      req.ms = control_stall_ms;
    }
  }
  if (frr->parsed()) {
    // Rendered here from the daemon's running configuration and the embedded template.
    Request dump_request;
    dump_request.command = CommandId::kConfigDump;
    absl::StatusOr<json> dump = Call(socket_path, dump_request);
    absl::StatusOr<std::string> text = dump.ok() ? [&]() -> absl::StatusOr<std::string> {
      ECMPLB_ASSIGN_OR_RETURN(const auto cfg, ecmplb::control::ParseConfig(dump->dump()));
      if (frr_hostname.empty()) {
        char h[256] = {};
        gethostname(h, sizeof(h) - 1);
        frr_hostname = h;
      }
      if (frr_protocol == "bgp") {
        return ecmplb::control::RenderLbHostBgp(cfg, frr_hostname, bgp, kLbHostBgpFrrTemplate,
                                               kLbHostBgp6FrrTemplate);
      }
      return ecmplb::control::RenderLbHostFrr(cfg, frr_hostname, kLbHostFrrTemplate,
                                             kLbHostOspf6FrrTemplate);
    }()
        : absl::StatusOr<std::string>(dump.status());
    if (!text.ok()) {
      std::fprintf(stderr, "ecmplbctl: frr-config: %s\n",
                   std::string(text.status().message()).c_str());
      return 1;
    }
    if (as_json) {
      std::printf("%s\n", json{{"frr_conf", *text}}.dump(2).c_str());
    } else {
      std::printf("%s", text->c_str());
    }
    return 0;
  }

  // In fleet mode a change goes to etcd (every host applies it), not to this daemon.
  const bool change = cmd->id == CommandId::kServiceAdd || cmd->id == CommandId::kServiceDel ||
                      cmd->id == CommandId::kBackendAdd || cmd->id == CommandId::kBackendSet ||
                      cmd->id == CommandId::kBackendDel;
  if (change) {
    if (auto t = fleet_target(false)) {
      return ecmplb::control::ctl::FleetEdit(*t, ecmplb::control::ToCommand(req), cmd->name,
                                             as_json);
    }
  }
  absl::StatusOr<json> reply = Call(socket_path, req);
  if (!reply.ok()) {
    std::fprintf(stderr, "ecmplbctl: %s: %s\n", cmd->name,
                 std::string(reply.status().message()).c_str());
    if (as_json) {
      std::printf("%s\n", json{{"ok", false},
                               {"code", absl::StatusCodeToString(reply.status().code())},
                               {"error", std::string(reply.status().message())}}
                              .dump(2)
                              .c_str());
    }
    return 1;
  }
  if (as_json) {
    std::printf("%s\n", reply->dump(2).c_str());
  } else {
    PrintText(*cmd, *reply);
  }
  return 0;
}
