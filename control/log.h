// log.h: the daemon's log: levels (syslog's), a kind per message (what happened: "backend",
// "announce", "reload", ...) and fields (SERVICE, BACKEND, VIP, REASON), with a rate limit per
// kind so a flapping backend or a stream of refused requests cannot flood the journal.
//
// Components log through a Sink (HealthMonitor, ControlPlane, the daemon); the daemon's Logger
// behind it filters by level (--log-level), limits each kind and hands what passes to a
// Writer: the journal with its fields (sd_journal_send) under systemd, else stdout/stderr as
// "ecmplb: MESSAGE" lines. Tests give a Sink a function of the message text only.
//
// Rate limit: each kind and subject (the message's fields but REASON and STATE: one backend,
// one VIP, one worker; a kind without fields is one subject) has a token bucket of `burst`
// messages refilled at `per_minute`: one flapping backend is limited, a hundred backends
// going down together are each logged. What a bucket refuses is counted, and the next message
// that passes says how many were dropped ("... (12 more like it dropped by the log's rate
// limit)"); Flush() (housekeeping) reports the counts no later message carried, once the
// subject may log again. Errors are limited too (a flood of refused requests is as likely as
// a flood of state changes).
//
// Thread-safety: the control thread only (as every component that logs).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace ecmplb::control::log {

// syslog's priorities (sd-journal's PRIORITY field).
enum class Level : uint8_t { kError = 3, kWarning = 4, kNotice = 5, kInfo = 6, kDebug = 7 };
const char* LevelName(Level l);                            // "error", ...
absl::StatusOr<Level> ParseLevel(std::string_view name);  // --log-level

struct Field {
  std::string name;  // upper case: "SERVICE", "BACKEND", "VIP", "REASON"
  std::string value;
  bool operator==(const Field&) const = default;
};
using Fields = std::vector<Field>;

struct Event {
  Level level = Level::kInfo;
  std::string kind;
  std::string message;
  Fields fields;
};

// Where a component's messages go. Constructible from a function of the whole event, or of
// the message text only (tests); empty: dropped.
class Sink {
 public:
  Sink() = default;
  // From a callable of the event, or of the message text only.
  template <typename F>
    requires std::is_invocable_v<F&, const Event&> || std::is_invocable_v<F&, const std::string&>
  Sink(F fn) {  // NOLINT: implicit, so a lambda is a Sink
    if constexpr (std::is_invocable_v<F&, const Event&>) {
      fn_ = std::function<void(const Event&)>(std::move(fn));
    } else {
      fn_ = [text = std::move(fn)](const Event& e) mutable { text(e.message); };
    }
  }
  void operator()(Level level, std::string kind, std::string message, Fields fields = {}) const {
    if (fn_) fn_(Event{level, std::move(kind), std::move(message), std::move(fields)});
  }
  // An info message of kind "daemon" (start-up and the like).
  void operator()(const std::string& message) const { (*this)(Level::kInfo, "daemon", message); }
  explicit operator bool() const { return static_cast<bool>(fn_); }

 private:
  std::function<void(const Event&)> fn_;
};

class Logger {
 public:
  using Writer = std::function<void(const Event&)>;
  using ClockMs = std::function<uint64_t()>;
  struct Options {
    Level min_level = Level::kInfo;
    uint32_t burst = 10;       // messages of one kind and subject in a row
    uint32_t per_minute = 12;  // then this many a minute
    // Kinds never limited: start-up and what an operator's own command logs.
    std::vector<std::string> unlimited = {"daemon"};
  };
  Logger(Options options, Writer writer, ClockMs clock);

  void Log(const Event& e);
  // Reports every kind's dropped messages that no later message reported yet.
  void Flush();
  Sink sink() {
    return Sink([this](const Event& e) { Log(e); });
  }
  void set_min_level(Level l) { options_.min_level = l; }
  uint64_t dropped_total() const { return dropped_total_; }

 private:
  struct Bucket {
    double tokens = 0;
    uint64_t at_ms = 0;
    uint64_t dropped = 0;
    Level level = Level::kDebug;  // the most severe dropped since the last report
    std::string kind, last;       // of the dropped messages, for Flush's report
    Fields fields;                // their subject (REASON and STATE left out)
  };
  bool Take(Bucket& b, uint64_t now);  // refills by time; false: over the limit
  Options options_;
  Writer writer_;
  ClockMs clock_;
  std::map<std::string, Bucket> buckets_;
  uint64_t dropped_total_ = 0;
};

}  // namespace ecmplb::control::log
