// maglev_report: builds a Maglev table for synthetic backends or for a
// backends file and prints one JSON object with its build time and balance
// (and, with --remove K, how many slots move when K backends go), or with
// --dump the table itself, one backend identity a line, slot by slot.
//
// Backends file: one "address[:port] weight" a line ("10.0.0.1:80 3",
// "[2001:db8::1]:80 1"); '#' starts a comment; blank lines are skipped. A bad
// line is reported as "PATH:LINE: reason" and the tool exits 1.
#include <algorithm>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "maglev/maglev.h"
#include "nlohmann/json.hpp"
#include "tests/support/backends.h"

namespace ecmplb::maglev {
namespace {

int Fail(const std::string& message) {
  std::fprintf(stderr, "maglev_report: %s\n", message.c_str());
  return 1;
}

bool ParseWeight(const std::string& text, uint32_t* out) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *out);
  return ec == std::errc() && ptr == end && !text.empty() && text.front() != '-' &&
         text.front() != '+';
}

// Reads a backends file; on error returns false and sets `error` to
// "PATH:LINE: reason".
bool ReadBackendsFile(const std::string& path, std::vector<Backend>* out, std::string* error) {
  std::ifstream in(path);
  if (!in) {
    *error = path + ": cannot open";
    return false;
  }
  std::string line;
  int lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    const std::string where = path + ":" + std::to_string(lineno) + ": ";
    if (const size_t hash = line.find('#'); hash != std::string::npos) {
      line.resize(hash);
    }
    std::istringstream fields(line);
    std::vector<std::string> tokens;
    for (std::string t; fields >> t;) tokens.push_back(t);
    if (tokens.empty()) continue;
    if (tokens.size() != 2) {
      *error = where + "expected \"address[:port] weight\", got \"" + line + "\"";
      return false;
    }
    absl::StatusOr<BackendId> id = BackendId::Parse(tokens[0]);
    if (!id.ok()) {
      *error = where + std::string(id.status().message());
      return false;
    }
    uint32_t weight = 0;
    if (!ParseWeight(tokens[1], &weight)) {
      *error = where + "bad weight \"" + tokens[1] + "\" (want an integer in [0, 4294967295])";
      return false;
    }
    out->push_back({*id, weight});
  }
  if (in.bad()) {
    *error = path + ": read error";
    return false;
  }
  return true;
}

// Slot counts relative to each usable backend's fair share
// M * weight / sum(weights): {max, min} over backends with weight > 0. For
// equal weights this is max/mean and min/mean of the slot counts.
std::pair<double, double> Balance(const Table& t, const std::vector<Backend>& b) {
  const std::vector<uint32_t> counts = t.SlotCounts();
  double wsum = 0;
  for (const Backend& x : b) wsum += x.weight;
  double max = 0;
  double min = 1e300;
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i].weight == 0) continue;
    const double share = counts[i] / (t.size() * (b[i].weight / wsum));
    max = std::max(max, share);
    min = std::min(min, share);
  }
  return {max, min};
}

int Run(int argc, char** argv) {
  CLI::App app{"Builds a Maglev table and prints build time and balance as JSON"};
  uint32_t n_synthetic = 0;
  std::string file;
  uint32_t table_size = kDefaultTableSize;
  uint32_t remove = 0;
  uint32_t repeat = 5;
  bool dump = false;
  CLI::Option* n_opt = app.add_option(
      "--backends", n_synthetic, "N synthetic backends 10.0.0.1:80, 10.0.0.2:80, ... of weight 1");
  CLI::Option* f_opt = app.add_option("--backends-file", file,
                                      "file of \"address[:port] weight\" lines ('#' comments)");
  n_opt->excludes(f_opt);
  app.add_option("--table-size", table_size, "table size M (a prime)")->capture_default_str();
  app.add_option("--remove", remove,
                 "remove the last K backends (input order) and report the "
                 "fraction of slots that moved");
  app.add_option("--repeat", repeat, "builds timed; build_ms is the median")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_flag("--dump", dump, "print the table (after --remove), one identity a line");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (n_opt->count() == 0 && f_opt->count() == 0) {
    return Fail("give --backends N or --backends-file PATH");
  }

  std::vector<Backend> backends;
  if (f_opt->count() > 0) {
    std::string error;
    if (!ReadBackendsFile(file, &backends, &error)) return Fail(error);
  } else {
    if (n_synthetic > kMaxBackends) {
      return Fail("--backends must be at most " + std::to_string(kMaxBackends));
    }
    backends = test_support::NumberedBackends(n_synthetic);
  }
  if (remove > 0 && remove >= backends.size()) {
    return Fail("--remove K must be less than the backend count " +
                std::to_string(backends.size()));
  }

  std::vector<double> ms;
  absl::StatusOr<Table> table = absl::UnknownError("not built");
  for (uint32_t r = 0; r < repeat; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    table = Table::Build(backends, table_size);
    const auto t1 = std::chrono::steady_clock::now();
    if (!table.ok()) return Fail(std::string(table.status().message()));
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());

  std::vector<Backend> kept(backends.begin(), backends.end() - remove);
  absl::StatusOr<Table> after = absl::UnknownError("not built");
  if (remove > 0) {
    after = Table::Build(kept, table_size);
    if (!after.ok()) {
      return Fail("after --remove: " + std::string(after.status().message()));
    }
  }

  if (dump) {
    const Table& t = remove > 0 ? *after : *table;
    const std::vector<Backend>& b = remove > 0 ? kept : backends;
    std::vector<std::string> names;
    names.reserve(b.size());
    for (const Backend& x : b) names.push_back(x.id.ToString() + "\n");
    std::string out;
    for (uint16_t e : t.entries()) out += names[e];
    std::fwrite(out.data(), 1, out.size(), stdout);
    return 0;
  }

  const auto [max_share, min_share] = Balance(*table, backends);
  uint32_t usable = 0;
  for (const Backend& x : backends) usable += x.weight > 0 ? 1 : 0;
  char fp[32];
  std::snprintf(fp, sizeof(fp), "0x%016llx",
                static_cast<unsigned long long>(*TableFingerprint(*table, backends)));
  nlohmann::ordered_json j;
  j["table_size"] = table->size();
  j["backends"] = backends.size();
  j["usable_backends"] = usable;
  j["build_ms"] = ms[ms.size() / 2];
  j["max_over_mean"] = max_share;
  j["min_over_mean"] = min_share;
  j["fingerprint"] = fp;
  if (remove > 0) {
    // Minimal: the slots the removed backends owned must move.
    const std::vector<uint32_t> counts = table->SlotCounts();
    uint64_t owned = 0;
    for (size_t i = kept.size(); i < backends.size(); ++i) owned += counts[i];
    uint64_t moved = 0;
    const std::span<const uint16_t> e0 = table->entries();
    const std::span<const uint16_t> e1 = after->entries();
    for (size_t s = 0; s < e0.size(); ++s) {
      if (backends[e0[s]].id != kept[e1[s]].id) ++moved;
    }
    j["removed"] = remove;
    j["moved_fraction"] = static_cast<double>(moved) / table->size();
    j["min_moved_fraction"] = static_cast<double>(owned) / table->size();
  }
  std::cout << j.dump() << "\n";
  return 0;
}

}  // namespace
}  // namespace ecmplb::maglev

int main(int argc, char** argv) {
  return ecmplb::maglev::Run(argc, argv);
}
