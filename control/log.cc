// log.cc: levels, per-kind rate limit (see log.h).
#include "control/log.h"

#include <algorithm>
#include <iterator>

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
  if (std::find(options_.unlimited.begin(), options_.unlimited.end(), e.kind) !=
      options_.unlimited.end()) {
    writer_(e);
    return;
  }
  const uint64_t now = clock_();
  // One budget per kind and subject: a flapping backend is limited, while a hundred backends
  // that go down together are each logged.
  std::string key = e.kind;
  for (const Field& f : e.fields) {
    if (f.name != "REASON" && f.name != "STATE") absl::StrAppend(&key, "\x1f", f.value);
  }
  auto [it, fresh] = buckets_.try_emplace(std::move(key));
  Bucket& b = it->second;
  if (fresh) {
    b.tokens = options_.burst;
    b.at_ms = now;
  }
  if (!Take(b, now)) {
    ++b.dropped;
    ++dropped_total_;
    b.level = std::min(b.level, e.level);  // the most severe dropped
    b.kind = e.kind;
    b.last = absl::StrCat("'", e.kind, "'");
    b.fields = e.fields;
    for (auto f = b.fields.begin(); f != b.fields.end();) {
      f = f->name == "REASON" || f->name == "STATE" ? b.fields.erase(f) : std::next(f);
    }
    return;
  }
  if (b.dropped == 0) {
    writer_(e);
    return;
  }
  Event with = e;
  absl::StrAppend(&with.message, " (", b.dropped, " more like it dropped by the log's rate limit)");
  b.dropped = 0;
  b.level = Level::kDebug;
  writer_(with);
}

void Logger::Flush() {
  const uint64_t now = clock_();
  for (auto it = buckets_.begin(); it != buckets_.end();) {
    Bucket& b = it->second;
    // Reported once the subject may log again: the report is one of its messages.
    if (b.dropped > 0 && Take(b, now)) {
      writer_(Event{b.level, b.kind,
                    absl::StrCat(b.dropped, " more ", b.last, " messages dropped by the log's "
                                 "rate limit"),
                    b.fields});
      b.dropped = 0;
      b.level = Level::kDebug;
    }
    // A full bucket with nothing to report is forgotten (subjects come and go).
    const bool idle = b.dropped == 0 && now - b.at_ms >= 60000u * options_.burst /
                                                          std::max(options_.per_minute, 1u);
    it = idle ? buckets_.erase(it) : std::next(it);
  }
}

}  // namespace ecmplb::control::log
