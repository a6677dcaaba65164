// health_checker.h: keepalived-like backend checks (TCP connect; HTTP or HTTPS GET with an
// expected status and body text; a UDP datagram and its reply; a DNS query; an external
// script), run without blocking from the control loop. Sockets are ordinary kernel sockets
// of the namespace ecmplb runs in, so checks leave from the host's own address through the
// exception interface and test the network the traffic uses.
//
// Thread-safety: control thread only. Poll() never blocks (non-blocking sockets, poll(2) with a
// zero timeout).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dataplane/packet/headers.h"

struct ssl_st;
struct ssl_ctx_st;

namespace ecmplb::control {

// What each type does and when it passes: HealthCheckConfig (config.h).
struct CheckSpec {
  enum class Type : uint8_t { kTcp, kHttp, kUdp, kDns, kScript, kHttps };
  Type type = Type::kTcp;
  dataplane::IpAddr addr;
  uint16_t port = 0;
  std::string path = "/";        // HTTP
  std::string host_header;       // HTTP Host: (default: the address)
  uint16_t expect_status = 200;  // HTTP
  std::string expect_body;       // HTTP: a substring of the body's first kMaxBody bytes
  std::string send;              // UDP payload
  std::string expect;            // UDP: a substring of the reply ("": any reply)
  std::string query;             // DNS name
  uint16_t query_type = 1;       // DNS RR type (A)
  std::vector<std::string> command;  // script argv
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
  enum class Phase : uint8_t { kIdle, kConnecting, kHandshake, kWriting, kReading, kRunning };
  struct Target {
    CheckSpec spec;
    Phase phase = Phase::kIdle;
    int fd = -1;     // the socket; a script's output pipe (-1 once it closed)
    pid_t pid = -1;  // a running script
    ssl_st* ssl = nullptr;  // https: the TLS session over fd
    short want = 0;         // https: what OpenSSL waits for (POLLIN / POLLOUT)
    uint64_t due_ms = 0;
    uint64_t started_ms = 0;
    uint16_t dns_id = 0;
    std::string buf;
  };
  bool Busy(const Target& t) const { return t.fd >= 0 || t.pid > 0; }
  void StartSocket(Target& t, uint64_t now_ms, std::vector<std::pair<CheckKey, CheckResult>>* done,
                   const CheckKey& k);
  void StartScript(Target& t, uint64_t now_ms, std::vector<std::pair<CheckKey, CheckResult>>* done,
                   const CheckKey& k);
  // A readable socket or pipe of a check in flight: reads, and finishes the check when the
  // answer decides it.
  void OnReadable(Target& t, const CheckKey& k, uint64_t now_ms,
                  std::vector<std::pair<CheckKey, CheckResult>>* done);
  void ReapScript(Target& t, const CheckKey& k, uint64_t now_ms,
                  std::vector<std::pair<CheckKey, CheckResult>>* done);
  // https: advances the handshake, the request and the response as far as they go now.
  void StepTls(Target& t, const CheckKey& k, uint64_t now_ms,
               std::vector<std::pair<CheckKey, CheckResult>>* done);
  // HTTP(S): `n` bytes were appended to t.buf (0: the peer closed); finishes the check when
  // the response decides it.
  void OnHttpBytes(Target& t, const CheckKey& k, uint64_t now_ms, long n,
                   std::vector<std::pair<CheckKey, CheckResult>>* done);
  void Release(Target& t);  // closes, frees and kills what t has in flight
  ssl_ctx_st* tls_ = nullptr;  // created at the first https check
  // Killed scripts not reaped yet (waitpid WNOHANG on every Poll: never blocks).
  std::vector<pid_t> killed_;
  void Start(Target& t, uint64_t now_ms, std::vector<std::pair<CheckKey, CheckResult>>* done,
             const CheckKey& k);
  void Finish(Target& t, const CheckKey& k, bool ok, std::string detail, uint64_t now_ms,
              std::vector<std::pair<CheckKey, CheckResult>>* done);
  std::map<CheckKey, Target> targets_;
  uint16_t next_dns_id_ = 0x5eb1;
};

// HTTP bodies are read up to this many bytes for expect_body; script output is kept up to
// kMaxScriptOutput bytes (the rest is read and dropped).
inline constexpr size_t kMaxBody = 16384;
inline constexpr size_t kMaxScriptOutput = 200;

// A DNS query message (RFC 1035 4.1: header with RD, one question of class IN); `name` as
// validated by the config ("." is the root). Exposed for tests.
std::string DnsQuery(uint16_t id, const std::string& name, uint16_t type);
// Judges a datagram received for DNS query `id`: kPass on RCODE NOERROR with at least one
// answer record, kFail otherwise (with why in `detail`); kNotOurs for a datagram that is not
// a reply to it (too short, another id, not a response): the check waits on.
enum class DnsVerdict : uint8_t { kPass, kFail, kNotOurs };
DnsVerdict JudgeDnsReply(std::string_view reply, uint16_t id, std::string* detail);

}  // namespace ecmplb::control
