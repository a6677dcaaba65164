// log.cc: levels, per-kind rate limit (see log.h).
#include "control/log.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace ecmplb::control::log {

const char* LevelName(Level l) {
  switch (l) {
    case Level::kError:
      return "error";
    case Level::kWarning:
      return "warning";
    case Level::kNotice:
      return "notice";
    case Level::kInfo:
      return "info";
    case Level::kDebug:
      return "debug";
  }
  return "info";
}

absl::StatusOr<Level> ParseLevel(std::string_view name) {
  for (Level l : {Level::kError, Level::kWarning, Level::kNotice, Level::kInfo, Level::kDebug}) {
    if (name == LevelName(l)) return l;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown log level '", std::string(name), "' (error, warning, notice, info or debug)"));
}

Logger::Logger(Options options, Writer writer, ClockMs clock)
    : options_(options), writer_(std::move(writer)), clock_(std::move(clock)) {}

bool Logger::Take(Bucket& b, uint64_t now) {
  b.tokens = std::min<double>(
      options_.burst, b.tokens + static_cast<double>(now - b.at_ms) * options_.per_minute / 60000.0);
  b.at_ms = now;
  if (b.tokens < 1) return false;
  b.tokens -= 1;
  return true;
}

void Logger::Log(const Event& e) {
  if (static_cast<uint8_t>(e.level) > static_cast<uint8_t>(options_.min_level)) return;
  const uint64_t now = clock_();
  auto [it, fresh] = buckets_.try_emplace(e.kind);
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = options_.burst;
    b.at_ms = now;
  }
  if (!Take(b, now)) {
    ++b.dropped;
    ++dropped_total_;
    b.level = std::min(b.level, e.level);  // the most severe dropped
    return;
  }
  if (b.dropped == 0) {
    writer_(e);
    return;
  }
  Event with = e;
  absl::StrAppend(&with.message, " (", b.dropped, " more '", e.kind,
                  "' messages dropped by the log's rate limit)");
  b.dropped = 0;
  b.level = Level::kDebug;
  writer_(with);
}

void Logger::Flush() {
  const uint64_t now = clock_();
  for (auto& [kind, b] : buckets_) {
    // Reported once the kind may log again: the report is one of its messages.
    if (b.dropped == 0 || !Take(b, now)) continue;
    writer_(Event{b.level, kind,
                  absl::StrCat(b.dropped, " '", kind, "' messages dropped by the log's rate limit"),
                  {}});
    b.dropped = 0;
    b.level = Level::kDebug;
  }
}

}  // namespace ecmplb::control::log
