// clock.h: the control side's monotonic clock (CLOCK_MONOTONIC through std::steady_clock),
// in the units its timers use. Not for the fast path (workers use the TSC).
//
// Thread-safety: stateless.
#pragma once

#include <chrono>
#include <cstdint>

namespace ecmplb {

inline uint64_t MonotonicMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

inline uint64_t MonotonicUs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::microseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

inline uint64_t MonotonicSeconds() {
  return MonotonicMs() / 1000;
}

}  // namespace ecmplb
