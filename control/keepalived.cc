// keepalived.cc: keepalived.conf reader and translator (keepalived.h).
#include "control/keepalived.h"

#include <arpa/inet.h>
#include <glob.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/status_macros.h"
#include "control/config.h"

namespace ecmplb::control::keepalived {
namespace {

using ordered_json = nlohmann::ordered_json;

// ---------------------------------------------------------------- lexing and parsing

enum class Tok { kWord, kOpen, kClose, kEol };

struct Token {
  Tok kind;
  std::string text;
  size_t file;  // index into Lexer::files
  int line;
};

constexpr int kMaxNesting = 32;

absl::StatusOr<std::string> ReadFromDisk(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<std::string> GlobFromDisk(const std::string& pattern) {
  std::vector<std::string> out;
  glob_t g{};
  if (glob(pattern.c_str(), 0, nullptr, &g) == 0) {
    for (size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
  }
  globfree(&g);
  std::sort(out.begin(), out.end());
  return out;
}

// Whether `s` is well-formed UTF-8 (RFC 3629: no overlong forms, no surrogates, at most
// U+10FFFF). Words end up as JSON strings, which must be UTF-8.
bool ValidUtf8(absl::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    int more;
    uint32_t cp;
    if (c >= 0xc2 && c <= 0xdf) {
      more = 1;
      cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
      more = 2;
      cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
      more = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + more >= s.size()) return false;  // truncated sequence
    for (int k = 1; k <= more; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10ffff ||
        (cp >= 0xd800 && cp <= 0xdfff)) {
      return false;
    }
    i += more + 1;
  }
  return true;
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash == 0 ? 1 : slash);
}

class Lexer {
 public:
  explicit Lexer(const ParseOptions& o) : o_(o) {
    if (!o_.read) o_.read = ReadFromDisk;
    if (!o_.glob) o_.glob = GlobFromDisk;
  }

  absl::Status LexFile(const std::string& path, int depth) {
    ECMPLB_ASSIGN_OR_RETURN(const std::string text, o_.read(path));
    return LexText(text, path, depth);
  }

  absl::Status LexText(absl::string_view text, const std::string& name, int depth) {
    if (depth > o_.max_include_depth) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, ": includes nested deeper than ", o_.max_include_depth, " (an include loop?)"));
    }
    files.push_back(name);
    const size_t file = files.size() - 1;
    int line_no = 0;
    for (absl::string_view line : absl::StrSplit(text, '\n')) {
      ++line_no;
      std::vector<Token> words;
      size_t i = 0;
      while (i < line.size()) {
        const char c = line[i];
        if (c == ' ' || c == '\t' || c == '\r') {
          ++i;
        } else if (c == '#' || c == '!') {
          break;  // a comment, to the end of the line
        } else if (c == '{' || c == '}') {
          words.push_back({c == '{' ? Tok::kOpen : Tok::kClose, std::string(1, c), file, line_no});
          ++i;
        } else if (c == '"') {
          const size_t end = line.find('"', i + 1);
          if (end == absl::string_view::npos) {
            return absl::InvalidArgumentError(
                absl::StrCat(name, ":", line_no, ": unterminated \"string\""));
          }
          words.push_back({Tok::kWord, std::string(line.substr(i + 1, end - i - 1)), file, line_no});
          i = end + 1;
        } else {
          size_t end = i;
          while (end < line.size() && line[end] != ' ' && line[end] != '\t' && line[end] != '\r' &&
                 line[end] != '{' && line[end] != '}') {
            ++end;
          }
          words.push_back({Tok::kWord, std::string(line.substr(i, end - i)), file, line_no});
          i = end;
        }
      }
      for (const Token& w : words) {
        if (!ValidUtf8(w.text)) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ":", line_no, ": not UTF-8 text"));
        }
      }
      if (!words.empty() && words[0].kind == Tok::kWord && words[0].text == "include") {
        if (words.size() != 2 || words[1].kind != Tok::kWord) {
          return absl::InvalidArgumentError(
              absl::StrCat(name, ":", line_no, ": include takes one file or pattern"));
        }
        std::string pattern = words[1].text;
        if (pattern.empty() || pattern[0] != '/') pattern = DirOf(name) + "/" + pattern;
        const std::vector<std::string> matched = o_.glob(pattern);
        if (matched.empty()) {
          return absl::NotFoundError(
              absl::StrCat(name, ":", line_no, ": include ", words[1].text, " matches no file"));
        }
        for (const std::string& path : matched) ECMPLB_RETURN_IF_ERROR(LexFile(path, depth + 1));
        continue;
      }
      for (Token& t : words) tokens.push_back(std::move(t));
      tokens.push_back({Tok::kEol, "", file, line_no});
    }
    return absl::OkStatus();
  }

  std::vector<std::string> files;
  std::vector<Token> tokens;

 private:
  ParseOptions o_;
};

class TreeParser {
 public:
  explicit TreeParser(const Lexer& lx) : lx_(lx) {}

  absl::StatusOr<std::vector<Statement>> List(const Token* opener, int depth) {
    if (depth > kMaxNesting) return Error(*opener, "blocks nested deeper than 32");
    std::vector<Statement> out;
    const auto& t = lx_.tokens;
    while (true) {
      while (pos_ < t.size() && t[pos_].kind == Tok::kEol) ++pos_;
      if (pos_ == t.size()) {
        if (opener != nullptr) return Error(*opener, "'{' is never closed");
        return out;
      }
      const Token& tok = t[pos_];
      if (tok.kind == Tok::kClose) {
        if (opener == nullptr) return Error(tok, "'}' without an open block");
        ++pos_;
        return out;
      }
      if (tok.kind == Tok::kOpen) return Error(tok, "'{' without a keyword before it");
      Statement s;
      s.key = tok.text;
      s.file = lx_.files[tok.file];
      s.line = tok.line;
      ++pos_;
      while (pos_ < t.size() && t[pos_].kind == Tok::kWord) s.args.push_back(t[pos_++].text);
      if (pos_ < t.size() && t[pos_].kind == Tok::kOpen) {
        const Token& open = t[pos_++];
        s.block = true;
        ECMPLB_ASSIGN_OR_RETURN(s.children, List(&open, depth + 1));
      }
      out.push_back(std::move(s));
    }
  }

 private:
  absl::Status Error(const Token& at, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat(lx_.files[at.file], ":", at.line, ": ", what));
  }

  const Lexer& lx_;
  size_t pos_ = 0;
};

absl::StatusOr<std::vector<Statement>> ParseTokens(const Lexer& lx) {
  TreeParser p(lx);
  return p.List(nullptr, 0);
}

// ---------------------------------------------------------------- translation

// keepalived 2.2's defaults (keepalived.conf(5)).
constexpr double kDefaultDelayLoopS = 60;
constexpr double kDefaultConnectTimeoutS = 5;
constexpr uint32_t kDefaultRetry = 1;

// Check settings inherited from the virtual server and real server levels.
struct CheckDefaults {
  double delay_loop_s = kDefaultDelayLoopS;
  double connect_timeout_s = kDefaultConnectTimeoutS;
  uint32_t retry = kDefaultRetry;
};

// A translated check, compared across a service's real servers.
struct Check {
  std::string type;  // "tcp" | "http" | "https" | "udp" | "dns" | "script"
  uint32_t port = 0;
  std::string path;
  uint32_t status = 200;
  std::string send, expect;           // udp
  std::string query, query_type;      // dns
  std::vector<std::string> command;   // script
  uint64_t interval_ms = 0, timeout_ms = 0;
  uint32_t fall = 0;
  const Statement* at = nullptr;
  bool Same(const Check& o) const {
    return std::tie(type, port, path, status, send, expect, query, query_type, command,
                    interval_ms, timeout_ms, fall) ==
           std::tie(o.type, o.port, o.path, o.status, o.send, o.expect, o.query, o.query_type,
                    o.command, o.interval_ms, o.timeout_ms, o.fall);
  }
};

// keepalived's hex strings (UDP_CHECK payload, require_reply) as bytes; nullopt when not hex.
std::optional<std::string> FromHex(absl::string_view hex) {
  if (hex.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int v = 0;
    for (char c : hex.substr(i, 2)) {
      const int d = absl::ascii_isdigit(static_cast<unsigned char>(c)) ? c - '0'
                    : (c >= 'a' && c <= 'f')                          ? c - 'a' + 10
                    : (c >= 'A' && c <= 'F')                          ? c - 'A' + 10
                                                                      : -1;
      if (d < 0) return std::nullopt;
      v = v * 16 + d;
    }
    out.push_back(static_cast<char>(v));
  }
  return out;
}

struct Backend {
  std::string address;
  uint32_t port;
  uint32_t weight;
  std::optional<Check> check;
  bool had_check = false;  // a check block, translated or not
  const Statement* at;
};

struct Endpoint {
  std::string address;  // canonical
  uint32_t port;
  const Statement* at;
};

class Translator {
 public:
  Translation Run(const std::vector<Statement>& top) {
    for (const Statement& s : top) {
      if (s.key == "virtual_server_group") Group(s);
    }
    for (const Statement& s : top) {
      if (s.key == "virtual_server") {
        VirtualServer(s);
      } else if (s.key == "virtual_server_group") {
        // read above
      } else if (s.key.rfind("vrrp_", 0) == 0) {
        Untranslated(s, absl::StrCat(s.key, " block skipped: VRRP is not needed behind ECMP "
                                            "(every LB host announces the VIPs over OSPF)"));
      } else if (s.key == "global_defs") {
        Untranslated(s, "global_defs skipped: ecmplb's host settings go in the config's "
                        "\"host\" section");
      } else {
        Untranslated(s, absl::StrCat("'", s.key, "' has no ecmplb equivalent"));
      }
    }
    std::stable_sort(out_.notes.begin(), out_.notes.end(), [](const Note& a, const Note& b) {
      return std::tie(a.file, a.line) < std::tie(b.file, b.line);
    });
    return std::move(out_);
  }

 private:
  void Untranslated(const Statement& s, std::string text) {
    out_.notes.push_back({Note::Kind::kUntranslated, s.file, s.line, std::move(text)});
  }
  void Difference(const Statement& s, std::string text) {
    out_.notes.push_back({Note::Kind::kDifference, s.file, s.line, std::move(text)});
  }

  bool Arity(const Statement& s, size_t n) {
    if (s.args.size() == n && !s.block) return true;
    Untranslated(s, absl::StrCat("'", s.key, "' takes ", n, n == 1 ? " value" : " values",
                                 ": ignored"));
    return false;
  }

  std::optional<double> Seconds(const Statement& s) {
    double v;
    if (!Arity(s, 1)) return std::nullopt;
    if (!absl::SimpleAtod(s.args[0], &v) || !(v >= 0) || v > 1e6) {
      Untranslated(s, absl::StrCat("'", s.key, " ", s.args[0], "': not a number of seconds"));
      return std::nullopt;
    }
    return v;
  }

  std::optional<uint32_t> Number(const Statement& s, uint32_t max) {
    uint32_t v;
    if (!Arity(s, 1)) return std::nullopt;
    if (!absl::SimpleAtoi(s.args[0], &v) || v > max) {
      Untranslated(s, absl::StrCat("'", s.key, " ", s.args[0], "': not a number in [0, ", max,
                                   "]"));
      return std::nullopt;
    }
    return v;
  }

  std::optional<uint32_t> Port(const Statement& s, const std::string& text) {
    uint32_t v;
    if (!absl::SimpleAtoi(text, &v) || v == 0 || v > 65535) {
      Untranslated(s, absl::StrCat("'", text, "' is not a port"));
      return std::nullopt;
    }
    return v;
  }

  // Check defaults set at this level (delay_loop, connect_timeout, retry): true if s was one.
  bool Defaults(const Statement& s, CheckDefaults* d) {
    if (s.key == "delay_loop") {
      if (auto v = Seconds(s)) d->delay_loop_s = *v;
    } else if (s.key == "connect_timeout") {
      if (auto v = Seconds(s)) d->connect_timeout_s = *v;
    } else if (s.key == "retry" || s.key == "nb_get_retry") {
      if (auto v = Number(s, 1000)) d->retry = *v;
    } else if (s.key == "delay_before_retry") {
      Difference(s, "delay_before_retry: ecmplb checks again at the check interval, not "
                    "sooner after a failure");
    } else if (s.key == "warmup") {
      Untranslated(s, "warmup: ecmplb's checks start at once, with no random delay");
    } else {
      return false;
    }
    return true;
  }

  static bool IsTimingDefault(const Statement& s) {
    return s.key == "delay_loop" || s.key == "connect_timeout" || s.key == "retry" ||
           s.key == "nb_get_retry";
  }

  // keepalived applies a block's timing defaults wherever they appear in it: read them first.
  void TimingDefaults(const std::vector<Statement>& block, CheckDefaults* d) {
    for (const Statement& s : block) {
      if (IsTimingDefault(s)) Defaults(s, d);
    }
  }

  // virtual_server_group NAME { ADDRESS[-LAST] PORT ... }
  void Group(const Statement& s) {
    if (s.args.size() != 1 || !s.block) {
      Untranslated(s, "virtual_server_group takes a name and a block");
      return;
    }
    if (auto it = group_at_.find(s.args[0]); it != group_at_.end()) {
      Untranslated(s, absl::StrCat("virtual_server_group ", s.args[0], " is defined again (first "
                                   "at ", it->second->file, ":", it->second->line,
                                   "): the first is used"));
      return;
    }
    group_at_[s.args[0]] = &s;
    std::vector<Endpoint>& eps = groups_[s.args[0]];
    for (const Statement& e : s.children) {
      if (e.key == "fwmark") {
        Untranslated(e, "fwmark entries: ecmplb matches VIP, port and protocol, not firewall "
                        "marks");
        continue;
      }
      if (e.args.size() != 1 || e.block) {
        Untranslated(e, "a group entry is 'ADDRESS PORT' or 'FIRST-LAST PORT'");
        continue;
      }
      const auto port = Port(e, e.args[0]);
      if (!port) continue;
      for (std::string& a : ExpandRange(e)) eps.push_back({std::move(a), *port, &e});
    }
  }

  // "10.0.0.1", "10.0.0.1-5" (last byte), "2001:db8::1-a" (last 16 bits, hex).
  std::vector<std::string> ExpandRange(const Statement& e) {
    const std::string& text = e.key;
    const size_t dash = text.rfind('-');
    if (dash == std::string::npos) {
      auto canon = CanonicalAddress(text);
      if (!canon.ok()) {
        Untranslated(e, absl::StrCat("'", text, "' is not an address"));
        return {};
      }
      return {*canon};
    }
    const std::string first = text.substr(0, dash), last = text.substr(dash + 1);
    std::array<uint8_t, 16> b{};
    const bool v6 = first.find(':') != std::string::npos;
    uint32_t end;
    const bool ok = inet_pton(v6 ? AF_INET6 : AF_INET, first.c_str(), b.data()) == 1 &&
                    (v6 ? absl::SimpleHexAtoi(last, &end) : absl::SimpleAtoi(last, &end));
    const uint32_t begin = v6 ? (uint32_t{b[14]} << 8 | b[15]) : b[3];
    if (!ok || end < begin || end > (v6 ? 0xFFFFu : 0xFFu) || end - begin >= 4096) {
      Untranslated(e, absl::StrCat("'", text, "' is not an address range (FIRST-LAST, at most "
                                              "4096 addresses)"));
      return {};
    }
    std::vector<std::string> out;
    for (uint32_t v = begin; v <= end; ++v) {
      if (v6) {
        b[14] = static_cast<uint8_t>(v >> 8);
        b[15] = static_cast<uint8_t>(v);
      } else {
        b[3] = static_cast<uint8_t>(v);
      }
      char buf[INET6_ADDRSTRLEN];
      inet_ntop(v6 ? AF_INET6 : AF_INET, b.data(), buf, sizeof(buf));
      out.emplace_back(buf);
    }
    return out;
  }

  void VirtualServer(const Statement& vs) {
    std::vector<Endpoint> eps;
    if (vs.args.size() == 2 && vs.args[0] == "group") {
      auto it = groups_.find(vs.args[1]);
      if (it == groups_.end()) {
        Untranslated(vs, absl::StrCat("virtual_server group ", vs.args[1],
                                      ": no virtual_server_group of that name: skipped"));
        return;
      }
      eps = it->second;
    } else if (vs.args.size() == 2 && vs.args[0] == "fwmark") {
      Untranslated(vs, "virtual_server fwmark: ecmplb matches VIP, port and protocol, not "
                       "firewall marks: skipped");
      return;
    } else if (vs.args.size() == 2) {
      auto canon = CanonicalAddress(vs.args[0]);
      if (!canon.ok()) {
        Untranslated(vs, absl::StrCat("virtual_server ", vs.args[0], ": not an address: skipped"));
        return;
      }
      const auto port = Port(vs, vs.args[1]);
      if (!port) return;
      eps.push_back({*canon, *port, &vs});
    } else {
      Untranslated(vs, "virtual_server takes 'IP PORT', 'group NAME' or 'fwmark N': skipped");
      return;
    }
    if (!vs.block) {
      Untranslated(vs, "virtual_server without a block: skipped");
      return;
    }

    ordered_json base = ordered_json::object();
    std::string protocol;
    std::string kind;    // lb_kind: DR, TUN or NAT
    std::string tunnel;  // tunnel_type: ipip, gre or gue
    const Statement* tunnel_at = nullptr;
    std::string hash;
    std::optional<Endpoint> sorry;
    CheckDefaults defaults;
    std::vector<Backend> backends;
    const Statement* lb_kind = nullptr;
    // Defaults first: keepalived applies them wherever they appear in the block.
    TimingDefaults(vs.children, &defaults);
    for (const Statement& s : vs.children) {
      if (IsTimingDefault(s)) continue;
      if (Defaults(s, &defaults)) continue;
      if (s.key == "lb_algo" || s.key == "lvs_sched") {
        if (Arity(s, 1)) Algorithm(s, &hash);
      } else if (s.key == "lb_kind" || s.key == "lvs_method") {
        if (!Arity(s, 1)) continue;
        lb_kind = &s;
        kind = absl::AsciiStrToUpper(s.args[0]);
        if (kind == "NAT") {
          Untranslated(s, "lb_kind NAT: ecmplb does not translate addresses (backends answer "
                          "clients directly); imported as dr: the real servers need the VIP on "
                          "lo and a route to the clients");
        } else if (kind != "DR" && kind != "TUN") {
          Untranslated(s, absl::StrCat("lb_kind ", s.args[0], ": unknown (DR, TUN or NAT); "
                                                              "imported as dr"));
        }
      } else if (s.key == "tunnel_type") {
        tunnel_at = &s;
        Tunnel(s, &tunnel);
      } else if (s.key == "persistence_timeout") {
        if (!Arity(s, 1)) continue;
        hash = "source-ip";
        Difference(s, "persistence_timeout -> hash source-ip: all of a client's connections go "
                      "to one backend for as long as the pool is unchanged, with no timeout; "
                      "IPVS's persistence templates expire persistence_timeout s after the "
                      "client's last connection, and when the pool changes Maglev moves about "
                      "1/N of the clients to another backend");
      } else if (s.key == "protocol") {
        if (!Arity(s, 1)) continue;
        const std::string p = absl::AsciiStrToLower(s.args[0]);
        if (p == "tcp" || p == "udp") {
          protocol = p;
        } else {
          Untranslated(s, absl::StrCat("protocol ", s.args[0], ": ecmplb balances TCP and UDP: "
                                                               "virtual server skipped"));
          return;
        }
      } else if (s.key == "sorry_server") {
        if (s.args.size() != 2 || s.block) {
          Untranslated(s, "sorry_server takes IP PORT: ignored");
          continue;
        }
        auto canon = CanonicalAddress(s.args[0]);
        const auto port = Port(s, s.args[1]);
        if (!canon.ok()) {
          Untranslated(s, absl::StrCat("sorry_server ", s.args[0], ": not an address: ignored"));
        } else if (port) {
          sorry = Endpoint{*canon, *port, &s};
        }
      } else if (s.key == "real_server") {
        RealServer(s, defaults, &backends);
      } else if (s.key == "inhibit_on_failure") {
        InhibitNote(s);
      } else {
        Untranslated(s, absl::StrCat("'", s.key, "' has no ecmplb equivalent: ignored"));
      }
    }
    if (lb_kind == nullptr) {
      Untranslated(vs, "no lb_kind: keepalived's default is NAT, which ecmplb does not do; "
                       "imported as dr");
    }
    std::string forward = "dr";
    if (kind == "TUN") {
      forward = tunnel.empty() ? "ipip" : tunnel;
    } else if (tunnel_at != nullptr) {
      Untranslated(*tunnel_at, "tunnel_type without lb_kind TUN: ignored");
    }
    if (protocol.empty()) {
      protocol = "udp";
      Difference(vs, "no protocol: keepalived 2.2 takes UDP, and so does this import");
    }

    // One check per service: the first real server's; other real servers' that differ listed.
    std::optional<Check> check;
    for (const Backend& b : backends) {
      if (b.check) {
        check = b.check;
        break;
      }
    }
    if (check) {
      for (const Backend& b : backends) {
        if (!b.check || !b.check->Same(*check)) {
          Untranslated(*b.at, absl::StrCat("real_server ", b.address, ": its check (",
                                           b.check ? "differs" : "none",
                                           ") is not the one imported: ecmplb checks every "
                                           "backend of a service alike; the check at ",
                                           check->at->file, ":", check->at->line, " is used"));
        }
      }
    } else if (std::any_of(backends.begin(), backends.end(),
                           [](const Backend& b) { return b.had_check; })) {
      Untranslated(vs, "no check could be imported: its backends count as up until you add a "
                       "health_check");
    }

    for (const Endpoint& ep : eps) {
      const auto key = std::make_tuple(ep.address, ep.port, protocol);
      if (auto [it, fresh] = seen_.emplace(key, ep.at); !fresh) {
        Untranslated(*ep.at, absl::StrCat(ep.address, " ", ep.port, "/", protocol,
                                          " is already a service (", it->second->file, ":",
                                          it->second->line, "): skipped"));
        continue;
      }
      ordered_json svc = {{"vip", ep.address}, {"port", ep.port}, {"protocol", protocol},
                          {"forward", forward}};
      if (!hash.empty()) svc["hash"] = hash;
      if (sorry) {
        if (sorry->port != ep.port) {
          Untranslated(*sorry->at, absl::StrCat("sorry_server port ", sorry->port, " is not the "
                                                "service port ", ep.port, " (ecmplb does not "
                                                "translate ports): ignored for ", ep.address));
        } else if (IsIpv6(sorry->address) != IsIpv6(ep.address) && forward == "dr") {
          Untranslated(*sorry->at, absl::StrCat("sorry_server ", sorry->address, " is not in the "
                                                "family of ", ep.address, ": ignored"));
        } else if (std::any_of(backends.begin(), backends.end(),
                               [&](const Backend& b) { return b.address == sorry->address; })) {
          Untranslated(*sorry->at, absl::StrCat("sorry_server ", sorry->address, " is also a "
                                                "real_server: ignored"));
        } else {
          svc["sorry_backend"] = {{"address", sorry->address}};
        }
      }
      if (check) {
        ordered_json hc = {{"type", check->type}};
        const uint32_t port = check->port != 0 ? check->port : ep.port;
        if (port != ep.port) hc["port"] = port;
        if (check->type == "http" || check->type == "https") {
          hc["path"] = check->path;
          hc["expect_status"] = check->status;
        } else if (check->type == "udp") {
          hc["send"] = check->send;
          hc["expect"] = check->expect;
        } else if (check->type == "dns") {
          hc["query"] = check->query;
          hc["query_type"] = check->query_type;
        } else if (check->type == "script") {
          hc["command"] = check->command;
        }
        hc["interval_ms"] = check->interval_ms;
        hc["timeout_ms"] = check->timeout_ms;
        hc["rise"] = 1;
        hc["fall"] = check->fall;
        svc["health_check"] = std::move(hc);
      }
      ordered_json bes = ordered_json::array();
      std::map<std::string, const Statement*> added;
      for (const Backend& b : backends) {
        if (auto it = added.find(b.address); it != added.end()) {
          Untranslated(*b.at, absl::StrCat("real_server ", b.address, " is already a backend of "
                                           "this virtual server (line ", it->second->line,
                                           "): skipped"));
          continue;
        }
        if (b.port != ep.port) {
          Untranslated(*b.at, absl::StrCat("real_server ", b.address, " ", b.port,
                                           ": not the service port ", ep.port,
                                           " (ecmplb does not translate ports): skipped for ",
                                           ep.address));
          continue;
        }
        if (forward == "dr" && IsIpv6(b.address) != IsIpv6(ep.address)) {
          Untranslated(*b.at, absl::StrCat("real_server ", b.address, ": DR needs a backend in "
                                           "the VIP's family: skipped for ", ep.address));
          continue;
        }
        added.emplace(b.address, b.at);
        bes.push_back({{"address", b.address}, {"weight", b.weight}});
      }
      svc["backends"] = std::move(bes);
      out_.services.push_back(std::move(svc));
    }
  }

  void InhibitNote(const Statement& s) {
    Difference(s, "inhibit_on_failure: IPVS sets a failed server's weight to 0 and keeps its "
                  "connections; ecmplb takes a failed backend out of the table and re-picks its "
                  "tracked flows (conntrack_repick), as if it had been removed");
  }

  void Algorithm(const Statement& s, std::string* hash) {
    const std::string a = absl::AsciiStrToLower(s.args[0]);
    if (a == "rr" || a == "wrr") {
      Difference(s, absl::StrCat("lb_algo ", a, " -> Maglev: new flows are spread by weight "
                                                "through a consistent hash, not in turn"));
    } else if (a == "lc" || a == "wlc" || a == "lblc" || a == "lblcr" || a == "sed" ||
               a == "nq" || a == "fo" || a == "ovf" || a == "twos") {
      Difference(s, absl::StrCat("lb_algo ", a, " -> Maglev: ecmplb does not count active "
                                                "connections, so a slow backend keeps its weight's "
                                                "share of new flows"));
    } else if (a == "sh") {
      *hash = "source-ip";
      Difference(s, "lb_algo sh -> Maglev with hash source-ip: a client's connections go to "
                    "one backend, as with IPVS's source hashing, and a pool change moves about "
                    "1/N of the clients (sh moves more)");
    } else if (a == "dh") {
      Difference(s, "lb_algo dh -> Maglev on the 5-tuple: destination hashing has no meaning "
                    "for one VIP");
    } else if (a == "mh") {
      Difference(s, "lb_algo mh -> Maglev: the same algorithm; ecmplb hashes the 5-tuple unless "
                    "persistence_timeout or sh asks for the source address");
    } else {
      Untranslated(s, absl::StrCat("lb_algo ", s.args[0], ": unknown; Maglev is used"));
    }
  }

  void Tunnel(const Statement& s, std::string* forward) {
    if (s.args.empty()) {
      Untranslated(s, "tunnel_type without a type: ignored");
      return;
    }
    const std::string t = absl::AsciiStrToLower(s.args[0]);
    if (t == "ipip") {
      *forward = "ipip";
    } else if (t == "gre") {
      *forward = "gre";
    } else if (t == "gue") {
      *forward = "gue";
      Difference(s, "tunnel_type gue: the UDP port is host.gue_port (6080 unless set), one for "
                    "every GUE service of the host");
    } else {
      Untranslated(s, absl::StrCat("tunnel_type ", s.args[0], ": unknown (ipip, gue or gre)"));
    }
  }

  void RealServer(const Statement& rs, CheckDefaults defaults, std::vector<Backend>* out) {
    if (rs.args.size() != 2) {
      Untranslated(rs, "real_server takes IP PORT: skipped");
      return;
    }
    auto canon = CanonicalAddress(rs.args[0]);
    if (!canon.ok()) {
      Untranslated(rs, absl::StrCat("real_server ", rs.args[0], ": not an address: skipped"));
      return;
    }
    const auto port = Port(rs, rs.args[1]);
    if (!port) return;
    Backend b{*canon, *port, 1, std::nullopt, false, &rs};
    TimingDefaults(rs.children, &defaults);
    for (const Statement& s : rs.children) {
      if (IsTimingDefault(s)) continue;
      if (Defaults(s, &defaults)) continue;
      if (s.key == "weight") {
        if (!Arity(s, 1)) continue;
        uint64_t w;
        if (!absl::SimpleAtoi(s.args[0], &w)) {
          Untranslated(s, absl::StrCat("weight ", s.args[0], ": not a number: 1 kept"));
        } else if (w > kMaxWeight) {
          b.weight = kMaxWeight;
          Untranslated(s, absl::StrCat("weight ", w, " is above ecmplb's ", kMaxWeight, ": ",
                                       kMaxWeight, " imported (scale the pool's weights down "
                                                   "to keep their ratios)"));
        } else {
          b.weight = static_cast<uint32_t>(w);
        }
      } else if (s.key == "inhibit_on_failure") {
        InhibitNote(s);
      } else if (s.key == "TCP_CHECK" || s.key == "HTTP_GET" || s.key == "SSL_GET" ||
                 s.key == "MISC_CHECK" || s.key == "DNS_CHECK" || s.key == "UDP_CHECK") {
        b.had_check = true;
        std::optional<Check> c = TranslateCheck(s, defaults);
        if (b.check && c) {
          Untranslated(s, absl::StrCat(s.key, ": ecmplb runs one check per backend; the one at "
                                              "line ", b.check->at->line, " is used"));
        } else if (c) {
          b.check = c;
        }
      } else if (s.key == "SMTP_CHECK" || s.key == "PING_CHECK" || s.key == "FILE_CHECK" ||
                 s.key == "BFD_CHECK") {
        b.had_check = true;
        Untranslated(s, absl::StrCat(s.key, ": ecmplb has no such check yet (tcp, http, https, "
                                            "udp, dns and script)"));
      } else {
        Untranslated(s, absl::StrCat("'", s.key, "' has no ecmplb equivalent: ignored"));
      }
    }
    out->push_back(std::move(b));
  }

  std::optional<Check> TranslateCheck(const Statement& cs, CheckDefaults d) {
    Check c;
    c.type = cs.key == "TCP_CHECK"    ? "tcp"
             : cs.key == "HTTP_GET"   ? "http"
             : cs.key == "SSL_GET"    ? "https"
             : cs.key == "MISC_CHECK" ? "script"
             : cs.key == "DNS_CHECK"  ? "dns"
                                      : "udp";
    c.at = &cs;
    bool ok = true;
    const Statement* url = nullptr;
    std::optional<double> misc_timeout_s;
    bool reply_required = false;
    if (c.type == "dns") {  // keepalived's defaults
      c.query = ".";
      c.query_type = "SOA";
    }
    for (const Statement& s : cs.children) {
      if (Defaults(s, &d)) continue;
      if (c.type == "script" && s.key == "misc_path") {
        if (!Arity(s, 1)) {
          ok = false;
          continue;
        }
        // Through the shell, as a line of keepalived.conf reads (arguments, quotes).
        c.command = {"/bin/sh", "-c", s.args[0]};
      } else if (c.type == "script" && s.key == "misc_timeout") {
        misc_timeout_s = Seconds(s);
      } else if (c.type == "script" && s.key == "misc_dynamic") {
        Untranslated(s, "misc_dynamic: ecmplb does not set weights from a script's exit status "
                        "(0 is up, anything else down)");
      } else if (c.type == "script" && s.key == "user") {
        Untranslated(s, "user: ecmplb runs scripts as its own user");
      } else if (c.type == "dns" && s.key == "type") {
        if (!Arity(s, 1)) continue;
        const std::string t = absl::AsciiStrToUpper(s.args[0]);
        if (DnsQueryType(t) == 0) {
          Untranslated(s, absl::StrCat("type ", s.args[0], ": ecmplb asks A, AAAA, NS, SOA, MX, "
                                       "TXT, CNAME or PTR"));
          ok = false;
        } else {
          c.query_type = t;
        }
      } else if (c.type == "dns" && s.key == "name") {
        if (!Arity(s, 1)) continue;
        c.query = s.args[0];
      } else if (c.type == "udp" && (s.key == "payload" || s.key == "require_reply")) {
        const bool payload = s.key == "payload";
        if (!payload) reply_required = true;
        if (s.args.empty() && !payload) continue;  // any reply
        if (!Arity(s, 1)) continue;
        std::optional<std::string> bytes = FromHex(s.args[0]);
        if (!bytes || !ValidUtf8(*bytes) || bytes->find('\0') != std::string::npos) {
          Untranslated(s, absl::StrCat(s.key, ": ecmplb's UDP check takes text (no NUL, UTF-8); "
                                       "these bytes are not"));
          ok = false;
        } else if (payload) {
          c.send = *bytes;
        } else {
          c.expect = *bytes;
          Difference(s, "require_reply: keepalived compares the reply's first bytes; ecmplb "
                        "looks for them anywhere in the reply");
        }
      } else if (s.key == "connect_port") {
        if (!Arity(s, 1)) continue;
        if (auto p = Port(s, s.args[0])) c.port = *p;
      } else if (s.key == "url" && (c.type == "http" || c.type == "https")) {
        if (url != nullptr) {
          Untranslated(s, absl::StrCat("url: ecmplb checks one URL; the one at line ", url->line,
                                       " is used"));
          continue;
        }
        url = &s;
      } else if (s.key == "connect_ip" || s.key == "bindto" || s.key == "bind_port" ||
                 s.key == "bind_if" || s.key == "fwmark" || s.key == "source_ip") {
        Untranslated(s, absl::StrCat(s.key, ": ecmplb checks the backend's own address from "
                                            "the host's; ignored"));
      } else {
        Untranslated(s, absl::StrCat("'", s.key, "' in ", cs.key, " has no ecmplb equivalent: "
                                                                  "ignored"));
      }
    }
    if (c.type == "http" || c.type == "https") {
      c.path = "/";
      bool status_set = false;
      if (url == nullptr) {
        Difference(cs, absl::StrCat(cs.key, " without a url: GET / is checked"));
      } else {
        for (const Statement& s : url->children) {
          if (s.key == "path") {
            if (!Arity(s, 1)) continue;
            if (s.args[0].empty() || s.args[0][0] != '/' ||
                s.args[0].find_first_of(" \r\n") != std::string::npos) {
              Untranslated(s, absl::StrCat("path ", s.args[0], ": ecmplb needs a path starting "
                                                               "with '/', without spaces"));
              ok = false;
            } else {
              c.path = s.args[0];
            }
          } else if (s.key == "status_code") {
            uint32_t v;
            if (s.args.size() == 1 && absl::SimpleAtoi(s.args[0], &v) && v >= 100 && v <= 599) {
              c.status = v;
              status_set = true;
            } else {
              Untranslated(s, absl::StrCat("status_code ", absl::StrJoin(s.args, " "),
                                           ": ecmplb compares one status code; 200 is used"));
              status_set = true;
            }
          } else if (s.key == "digest") {
            Untranslated(s, "digest: ecmplb compares the status and can look for a text in the "
                            "body (expect_body), not an MD5 digest of it");
            status_set = true;
          } else {
            Untranslated(s, absl::StrCat("'", s.key, "' in url has no ecmplb equivalent: "
                                                     "ignored"));
          }
        }
      }
      if (!status_set) {
        Difference(url != nullptr ? *url : cs,
                   "no status_code: keepalived accepts any 2xx, ecmplb expects 200");
      }
    }
    if (c.type == "script" && c.command.empty()) {
      Untranslated(cs, "MISC_CHECK without misc_path: skipped");
      ok = false;
    }
    if (c.type == "dns" && !ValidDnsName(c.query)) {
      Untranslated(cs, absl::StrCat("name ", c.query, ": not a DNS name ecmplb can ask for"));
      ok = false;
    }
    if (c.type == "udp" && !reply_required) {
      Untranslated(cs, "UDP_CHECK without require_reply: keepalived counts a datagram that "
                       "draws no ICMP error as up; ecmplb's UDP check needs a reply (add "
                       "require_reply, or check the service another way)");
      ok = false;
    }
    if (!ok) return std::nullopt;
    c.interval_ms = std::clamp<uint64_t>(std::llround(d.delay_loop_s * 1000), 10, 3600000);
    // A script's run time is bounded by misc_timeout (keepalived: delay_loop when unset).
    const double timeout_s = c.type == "script" ? misc_timeout_s.value_or(d.delay_loop_s)
                                                : d.connect_timeout_s;
    c.timeout_ms = std::clamp<uint64_t>(std::llround(timeout_s * 1000), 10, 600000);
    if (c.timeout_ms > c.interval_ms) {
      Difference(cs, absl::StrCat(c.type == "script" ? "misc_timeout " : "connect_timeout ",
                                  timeout_s, " s is longer than "
                                  "delay_loop ", d.delay_loop_s, " s: ecmplb's timeout is at most "
                                  "its interval, ", c.interval_ms, " ms imported"));
      c.timeout_ms = c.interval_ms;
    }
    c.fall = std::min<uint32_t>(d.retry + 1, 100);
    return c;
  }

  Translation out_;
  std::map<std::string, std::vector<Endpoint>> groups_;
  std::map<std::string, const Statement*> group_at_;
  std::map<std::tuple<std::string, uint32_t, std::string>, const Statement*> seen_;
};

}  // namespace

absl::StatusOr<std::vector<Statement>> Parse(const std::string& path,
                                             const ParseOptions& options) {
  Lexer lx(options);
  ECMPLB_RETURN_IF_ERROR(lx.LexFile(path, 0));
  return ParseTokens(lx);
}

absl::StatusOr<std::vector<Statement>> ParseText(absl::string_view text, const std::string& name,
                                                 const ParseOptions& options) {
  Lexer lx(options);
  ECMPLB_RETURN_IF_ERROR(lx.LexText(text, name, 0));
  return ParseTokens(lx);
}

bool Translation::complete() const {
  return std::none_of(notes.begin(), notes.end(),
                      [](const Note& n) { return n.kind == Note::Kind::kUntranslated; });
}

Translation Translate(const std::vector<Statement>& statements) {
  return Translator().Run(statements);
}

std::string FormatNote(const Note& note) {
  return absl::StrCat(note.file, ":", note.line,
                      note.kind == Note::Kind::kUntranslated ? ": not translated: " : ": note: ",
                      note.text);
}

}  // namespace ecmplb::control::keepalived
