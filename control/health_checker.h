// health_checker.h: keepalived-like backend checks (TCP connect, or HTTP GET with an expected
// status), run without blocking from the control loop. Sockets are ordinary kernel sockets
// of the namespace ecmplb runs in, so checks leave from the host's own address through the
// exception interface and test the network the traffic uses.
//
// Thread-safety: control thread only. Poll() never blocks (non-blocking sockets, poll(2) with a
// zero timeout).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "dataplane/packet/headers.h"

namespace ecmplb::control {

struct CheckSpec {
  enum class Type : uint8_t { kTcp, kHttp };
  Type type = Type::kTcp;
  dataplane::IpAddr addr;
  uint16_t port = 0;
  std::string path = "/";        // HTTP
  std::string host_header;       // HTTP Host: (default: the address)
  uint16_t expect_status = 200;  // HTTP
  uint32_t interval_ms = 1000;
  uint32_t timeout_ms = 500;
  bool operator==(const CheckSpec&) const = default;
};

struct CheckResult {
  bool ok = false;
  std::string detail;  // "connected", "HTTP 200", "timeout", "connection refused", ...
  uint64_t at_ms = 0;
  uint32_t latency_ms = 0;
};

using CheckKey = std::pair<std::string, uint32_t>;  // (service name, backend id)

class HealthChecker {
 public:
  HealthChecker() = default;
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  // Replaces the target set; targets whose spec did not change keep their schedule.
  void SetTargets(const std::map<CheckKey, CheckSpec>& targets, uint64_t now_ms);
  // One target: added (checked right away) unless present with the same spec; removed.
  void AddTarget(const CheckKey& key, const CheckSpec& spec, uint64_t now_ms);
  void RemoveTarget(const CheckKey& key);
  // Starts due checks, advances running ones; returns the checks that finished.
  std::vector<std::pair<CheckKey, CheckResult>> Poll(uint64_t now_ms);
  size_t in_flight() const;
  size_t size() const { return targets_.size(); }
  // When Poll() has work next: `now_ms` while a check is in flight (its socket is polled),
  // else the earliest due time of a check; UINT64_MAX without targets.
  uint64_t NextDue(uint64_t now_ms) const;

 private:
  enum class Phase : uint8_t { kIdle, kConnecting, kReading };
  struct Target {
    CheckSpec spec;
    Phase phase = Phase::kIdle;
    int fd = -1;
    uint64_t due_ms = 0;
    uint64_t started_ms = 0;
    std::string buf;
  };
  void Start(Target& t, uint64_t now_ms, std::vector<std::pair<CheckKey, CheckResult>>* done,
             const CheckKey& k);
  void Finish(Target& t, const CheckKey& k, bool ok, std::string detail, uint64_t now_ms,
              std::vector<std::pair<CheckKey, CheckResult>>* done);
  std::map<CheckKey, Target> targets_;
};

}  // namespace ecmplb::control
