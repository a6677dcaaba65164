// keepalived.h: reads a keepalived.conf (LVS virtual servers, `include`d files too) and
// translates it into ecmplb services, for `ecmplbctl import-keepalived`.
//
// Two stages: Parse() turns keepalived's block syntax into a tree of statements, each with
// its file and line; Translate() maps the tree onto the config file's "services" array and
// lists, with file and line, every setting it could not carry over (kUntranslated) and every
// one whose meaning changes on the way (kDifference). It never drops a setting silently:
// each statement is either translated, listed, or part of a block listed as a whole
// (global_defs, vrrp_instance, ...).
//
// What maps to what (README, "Migrating from keepalived"): virtual_server IP PORT and
// virtual_server group NAME (IPv4 ranges expanded) -> one service per address and port;
// lb_kind DR -> dr, TUN -> ipip (LVS-TUN's IPIP encapsulation); lb_algo -> Maglev always;
// persistence_timeout -> hash source-ip; real_server -> backend with its weight (0 drains);
// sorry_server -> sorry_backend; TCP_CHECK -> tcp, HTTP_GET -> http (status compared);
// delay_loop -> interval_ms, connect_timeout -> timeout_ms, retry / nb_get_retry -> fall
// (retry + 1), rise 1.
//
// Thread-safety: pure functions of their input (Parse reads files).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace ecmplb::control::keepalived {

// One statement: `key args...` and, for a block, the statements between its braces.
struct Statement {
  std::string key;
  std::vector<std::string> args;
  std::vector<Statement> children;
  bool block = false;
  std::string file;
  int line = 0;
};

// Reads a file's text; replaceable in tests. Returns NotFound for a missing file.
using FileReader = std::function<absl::StatusOr<std::string>(const std::string& path)>;
// Expands an include pattern (glob(3) by default) into file paths, sorted.
using Globber = std::function<std::vector<std::string>(const std::string& pattern)>;

struct ParseOptions {
  FileReader read;  // default: the file system
  Globber glob;     // default: glob(3)
  int max_include_depth = 8;
};

// Parses `path` and the files it includes (`include PATTERN`, relative to the including
// file's folder; a pattern that matches nothing is an error, as in keepalived). Comments
// start with '#' or '!'; "double-quoted strings" are one word; braces may touch words.
// Errors (unreadable file, unbalanced braces, include loop) name the file and line.
absl::StatusOr<std::vector<Statement>> Parse(const std::string& path,
                                             const ParseOptions& options = {});
// The same on text already read (named `name` in messages; includes relative to `dir`).
absl::StatusOr<std::vector<Statement>> ParseText(absl::string_view text, const std::string& name,
                                                 const ParseOptions& options = {});

struct Note {
  enum class Kind { kUntranslated, kDifference };
  Kind kind;
  std::string file;
  int line = 0;
  std::string text;
};

struct Translation {
  nlohmann::ordered_json services = nlohmann::ordered_json::array();  // config "services"
  std::vector<Note> notes;                             // in file order
  bool complete() const;  // no kUntranslated note
};

Translation Translate(const std::vector<Statement>& statements);

// "FILE:LINE: not translated: TEXT" / "FILE:LINE: note: TEXT".
std::string FormatNote(const Note& note);

}  // namespace ecmplb::control::keepalived
