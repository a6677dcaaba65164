// ecmplbctl.cc: command-line client of the ecmplb control socket.
//
//   ecmplbctl [--socket PATH] [--json] COMMAND ...
//
// Every command sends one request (see control/protocol.h) and prints the reply, as text or
// with --json as JSON; exit status 0 on success, 1 with one line "ecmplbctl: COMMAND: reason"
// on stderr when the daemon refuses or cannot be reached, 2 on a usage error.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "control/frr_render.h"
#include "control/protocol.h"
#include "frr_template.h"

namespace {

using nlohmann::json;

// Sends one request line and reads one reply line (10 s timeout each way).
absl::StatusOr<json> Call(const std::string& path, const json& request) {
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
  std::string line = request.dump() + "\n";
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

void PrintText(const std::string& cmd, const json& r) {
  if (cmd == "show") return PrintShow(r);
  if (cmd == "stats") return PrintStats(r);
  if (cmd == "conns") return PrintConns(r);
  if (cmd == "lookup") return PrintLookup(r);
  if (cmd == "service list") {
    for (const auto& s : r["services"]) {
      std::printf("%s  forward %s  hash %s  table %s  %s backend(s)\n", Str(s["service"]).c_str(),
                  Str(s["forward"]).c_str(), Str(s["hash"]).c_str(), Str(s["table_size"]).c_str(),
                  Str(s["backends"]).c_str());
    }
    return;
  }
  // Changes.
  std::string what = absl::StrCat("ok: ", cmd, " ", Str(r["service"]));
  if (r.contains("backend_id")) absl::StrAppend(&what, " backend id ", Str(r["backend_id"]));
  std::printf("%s (generation %s, %s Maglev table(s) rebuilt)\n", what.c_str(),
              Str(r["generation"]).c_str(), Str(r["services_rebuilt"]).c_str());
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ecmplbctl: control the ecmplb load balancer over its Unix socket", "ecmplbctl"};
  app.require_subcommand(1);
  std::string socket_path = "/run/ecmplb/ecmplb.sock";
  bool as_json = false;
  app.add_option("--socket", socket_path, "control socket of the daemon")->capture_default_str();
  app.add_flag("--json", as_json, "machine-readable output (JSON)");
  app.fallthrough();

  json req;
  std::string cmd;
  std::string service, backend, forward, hash, client;
  std::optional<uint32_t> weight, table_size, id;
  uint32_t limit = 100;

  auto svc = app.add_subcommand("service", "add, delete, list services")
                 ->require_subcommand(1)
                 ->fallthrough();
  auto svc_add = svc->add_subcommand("add", "add a service (no backends yet)")->fallthrough();
  svc_add
      ->add_option("service", service, "VIP:PORT/PROTO, e.g. 10.1.1.1:80/tcp, [2001:db8::1]:80/tcp")
      ->required();
  svc_add->add_option("--forward", forward, "dr (MAC rewrite, default) or gre")
      ->check(CLI::IsMember({"dr", "gre"}));
  svc_add->add_option("--hash", hash, "5tuple (default) or source-ip")
      ->check(CLI::IsMember({"5tuple", "source-ip"}));
  svc_add->add_option("--table-size", table_size, "Maglev table size, a prime (default 65537)");
  auto svc_del = svc->add_subcommand("del", "delete a service and its backends")->fallthrough();
  svc_del->add_option("service", service, "VIP:PORT/PROTO")->required();
  auto svc_list = svc->add_subcommand("list", "list services")->fallthrough();

  auto be = app.add_subcommand("backend", "add, change, delete backends")
                ->require_subcommand(1)
                ->fallthrough();
  auto be_add = be->add_subcommand("add", "add a backend to a service")->fallthrough();
  auto be_set = be->add_subcommand("set", "change a backend's weight (0 drains)")->fallthrough();
  auto be_del = be->add_subcommand("del", "remove a backend (its flows move)")->fallthrough();
  for (CLI::App* sc : {be_add, be_set, be_del}) {
    sc->add_option("service", service, "VIP:PORT/PROTO")->required();
    sc->add_option("backend", backend, "ADDRESS[:PORT] (the port, if given, is the service's)")
        ->required();
  }
  be_add->add_option("--weight", weight, "relative weight 0..65535 (default 1; 0 drains)")
      ->check(CLI::Range(0u, 65535u));
  be_add->add_option("--id", id, "stable backend id (default: lowest free id)")
      ->check(CLI::Range(1u, 65535u));
  be_set->add_option("--weight", weight, "relative weight 0..65535 (0 drains)")
      ->required()
      ->check(CLI::Range(0u, 65535u));

  auto show =
      app.add_subcommand("show", "services, backends, weights, Maglev slots, flows")->fallthrough();
  auto stats = app.add_subcommand("stats", "counters per worker, service, backend; drops by reason")
                   ->fallthrough();
  auto conns = app.add_subcommand("conns", "tracked flows of every worker")->fallthrough();
  conns->add_option("--limit", limit, "at most this many flows")
      ->capture_default_str()
      ->check(CLI::Range(0u, static_cast<uint32_t>(ecmplb::control::kMaxConnsLimit)));
  auto lookup = app.add_subcommand("lookup", "which backend a flow gets, and whether it is tracked")
                    ->fallthrough();
  lookup->add_option("service", service, "VIP:PORT/PROTO")->required();
  lookup->add_option("--client", client, "client ADDRESS:PORT ([2001:db8::7]:40000 for IPv6)")
      ->required();
  auto config =
      app.add_subcommand("config", "running configuration")->require_subcommand(1)->fallthrough();
  auto config_dump =
      config->add_subcommand("dump", "print the running configuration (config file format)")
          ->fallthrough();
  auto drain =
      app.add_subcommand(
             "drain",
             "withdraw every VIP, keep forwarding host.drain_s seconds, then stop the daemon")
          ->fallthrough();
  auto fault = app.add_subcommand("fault", "fault injection for tests of health handling")
                   ->require_subcommand(1)
                   ->fallthrough();
  uint32_t fault_worker = 0, fault_ms = 0;
  auto stall =
      fault->add_subcommand("stall-worker", "make a worker stop making progress for a while")
          ->fallthrough();
  stall->add_option("WORKER", fault_worker, "worker id (0..)")->required();
  stall->add_option("--ms", fault_ms, "how long, in milliseconds")
      ->required()
      ->check(CLI::Range(1u, 60000u));
  std::string frr_hostname;
  auto frr = app.add_subcommand("frr-config",
                                "print this host's FRR configuration "
                                "(frr-conf/lb-host.frr.conf.in) for the running config")
                 ->fallthrough();
  frr->add_option("--hostname", frr_hostname, "FRR hostname (default: this host's name)");

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

  if (svc_add->parsed()) cmd = "service add";
  if (svc_del->parsed()) cmd = "service del";
  if (svc_list->parsed()) cmd = "service list";
  if (be_add->parsed()) cmd = "backend add";
  if (be_set->parsed()) cmd = "backend set";
  if (be_del->parsed()) cmd = "backend del";
  if (show->parsed()) cmd = "show";
  if (stats->parsed()) cmd = "stats";
  if (conns->parsed()) cmd = "conns";
  if (lookup->parsed()) cmd = "lookup";
  if (config_dump->parsed()) cmd = "config dump";
  if (drain->parsed()) cmd = "drain";
  if (stall->parsed()) {
    cmd = "fault";
    req["fault"] = "stall-worker";
    req["worker"] = fault_worker;
    req["ms"] = fault_ms;
  }
  if (frr->parsed()) {
    // Rendered here from the daemon's running configuration and the embedded template.
    absl::StatusOr<json> dump = Call(socket_path, json{{"cmd", "config dump"}});
    absl::StatusOr<std::string> text = dump.ok() ? [&]() -> absl::StatusOr<std::string> {
      ECMPLB_ASSIGN_OR_RETURN(const auto cfg, ecmplb::control::ParseConfig(dump->dump()));
      if (frr_hostname.empty()) {
        char h[256] = {};
        gethostname(h, sizeof(h) - 1);
        frr_hostname = h;
      }
      return ecmplb::control::RenderLbHostFrr(cfg, frr_hostname, kLbHostFrrTemplate);
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

  req["cmd"] = cmd;
  if (!service.empty()) req["service"] = service;
  if (!backend.empty()) req["backend"] = backend;
  if (!forward.empty()) req["forward"] = forward;
  if (!hash.empty()) req["hash"] = hash;
  if (!client.empty()) req["client"] = client;
  if (weight) req["weight"] = *weight;
  if (table_size) req["table_size"] = *table_size;
  if (id) req["id"] = *id;
  if (cmd == "conns") req["limit"] = limit;

  absl::StatusOr<json> reply = Call(socket_path, req);
  if (!reply.ok()) {
    std::fprintf(stderr, "ecmplbctl: %s: %s\n", cmd.c_str(),
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
  if (as_json || cmd == "config dump") {
    std::printf("%s\n", reply->dump(2).c_str());
  } else if (cmd == "drain") {
    std::printf("ok: draining: VIPs withdrawn, the daemon stops in %s s\n",
                Str((*reply)["drain_s"]).c_str());
  } else if (cmd == "fault") {
    std::printf("ok: worker %s stalls for %s ms\n", Str((*reply)["worker"]).c_str(),
                Str((*reply)["ms"]).c_str());
  } else {
    PrintText(cmd, *reply);
  }
  return 0;
}
