// health_checker.cc: non-blocking TCP/HTTP checks (see health_checker.h).
#include "control/health_checker.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ecmplb::control {
namespace {

// Closes a check's socket with a reset (SO_LINGER 0): no FIN handshake, and no TIME_WAIT
// entry per check on this host (thousands of backends checked every second would otherwise
// hold tens of thousands of them and run the ephemeral ports out).
void CloseNoLinger(int fd) {
  const linger l{1, 0};
  (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd);
}

}  // namespace

HealthChecker::~HealthChecker() {
  for (auto& [k, t] : targets_) {
    if (t.fd >= 0) CloseNoLinger(t.fd);
  }
}

void HealthChecker::SetTargets(const std::map<CheckKey, CheckSpec>& targets, uint64_t now_ms) {
  for (auto it = targets_.begin(); it != targets_.end();) {
    auto want = targets.find(it->first);
    if (want == targets.end() || !(want->second == it->second.spec)) {
      if (it->second.fd >= 0) CloseNoLinger(it->second.fd);
      it = targets_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& [k, spec] : targets) {
    if (targets_.count(k)) continue;
    Target t;
    t.spec = spec;
    t.due_ms = now_ms;  // check new targets right away
    targets_.emplace(k, std::move(t));
  }
}

void HealthChecker::AddTarget(const CheckKey& key, const CheckSpec& spec, uint64_t now_ms) {
  auto it = targets_.find(key);
  if (it != targets_.end()) {
    if (it->second.spec == spec) return;
    RemoveTarget(key);
  }
  Target t;
  t.spec = spec;
  t.due_ms = now_ms;
  targets_.emplace(key, std::move(t));
}

void HealthChecker::RemoveTarget(const CheckKey& key) {
  auto it = targets_.find(key);
  if (it == targets_.end()) return;
  if (it->second.fd >= 0) CloseNoLinger(it->second.fd);
  targets_.erase(it);
}

size_t HealthChecker::in_flight() const {
  size_t n = 0;
  for (const auto& [k, t] : targets_) n += t.fd >= 0;
  return n;
}

uint64_t HealthChecker::NextDue(uint64_t now_ms) const {
  uint64_t next = UINT64_MAX;
  for (const auto& [k, t] : targets_) {
    if (t.fd >= 0) return now_ms;
    next = std::min(next, t.due_ms);
  }
  return next;
}

void HealthChecker::Finish(Target& t, const CheckKey& k, bool ok, std::string detail,
                           uint64_t now_ms, std::vector<std::pair<CheckKey, CheckResult>>* done) {
  if (t.fd >= 0) CloseNoLinger(t.fd);
  t.fd = -1;
  t.phase = Phase::kIdle;
  t.buf.clear();
  CheckResult r;
  r.ok = ok;
  r.detail = std::move(detail);
  r.at_ms = now_ms;
  r.latency_ms = static_cast<uint32_t>(now_ms - t.started_ms);
  done->push_back({k, std::move(r)});
  t.due_ms = t.started_ms + t.spec.interval_ms;
  if (t.due_ms <= now_ms) t.due_ms = now_ms + 1;
}

void HealthChecker::Start(Target& t, uint64_t now_ms,
                          std::vector<std::pair<CheckKey, CheckResult>>* done, const CheckKey& k) {
  t.started_ms = now_ms;
  const bool v6 = t.spec.addr.is_v6();
  int fd = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    Finish(t, k, false, absl::StrCat("socket: ", std::strerror(errno)), now_ms, done);
    return;
  }
  t.fd = fd;
  sockaddr_storage ss{};
  socklen_t len;
  if (v6) {
    auto* a = reinterpret_cast<sockaddr_in6*>(&ss);
    a->sin6_family = AF_INET6;
    a->sin6_port = htons(t.spec.port);
    std::memcpy(&a->sin6_addr, t.spec.addr.bytes.data(), 16);
    len = sizeof(*a);
  } else {
    auto* a = reinterpret_cast<sockaddr_in*>(&ss);
    a->sin_family = AF_INET;
    a->sin_port = htons(t.spec.port);
    std::memcpy(&a->sin_addr, t.spec.addr.bytes.data(), 4);
    len = sizeof(*a);
  }
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  if (rc != 0 && errno != EINPROGRESS) {
    Finish(t, k, false, std::strerror(errno), now_ms, done);
    return;
  }
  t.phase = Phase::kConnecting;
}

std::vector<std::pair<CheckKey, CheckResult>> HealthChecker::Poll(uint64_t now_ms) {
  std::vector<std::pair<CheckKey, CheckResult>> done;
  for (auto& [k, t] : targets_) {
    if (t.phase == Phase::kIdle && now_ms >= t.due_ms) Start(t, now_ms, &done, k);
  }
  std::vector<pollfd> pfds;
  std::vector<std::pair<const CheckKey*, Target*>> owners;
  for (auto& [k, t] : targets_) {
    if (t.fd < 0) continue;
    pfds.push_back({t.fd, static_cast<short>(t.phase == Phase::kConnecting ? POLLOUT : POLLIN), 0});
    owners.push_back({&k, &t});
  }
  if (!pfds.empty()) ::poll(pfds.data(), pfds.size(), 0);
  for (size_t i = 0; i < pfds.size(); ++i) {
    const CheckKey& k = *owners[i].first;
    Target& t = *owners[i].second;
    if (t.phase == Phase::kConnecting && (pfds[i].revents & (POLLOUT | POLLERR | POLLHUP))) {
      int err = 0;
      socklen_t el = sizeof(err);
      ::getsockopt(t.fd, SOL_SOCKET, SO_ERROR, &err, &el);
      if (err != 0) {
        Finish(t, k, false, std::strerror(err), now_ms, &done);
        continue;
      }
      if (t.spec.type == CheckSpec::Type::kTcp) {
        Finish(t, k, true, "connected", now_ms, &done);
        continue;
      }
      std::string host = t.spec.host_header.empty() ? t.spec.addr.ToString() : t.spec.host_header;
      std::string req =
          absl::StrCat("GET ", t.spec.path, " HTTP/1.0\r\nHost: ", host,
                       "\r\nUser-Agent: ecmplb-healthcheck\r\nConnection: close\r\n\r\n");
      ssize_t n = ::send(t.fd, req.data(), req.size(), MSG_NOSIGNAL);
      if (n != static_cast<ssize_t>(req.size())) {
        Finish(t, k, false, "could not send the HTTP request", now_ms, &done);
        continue;
      }
      t.phase = Phase::kReading;
      continue;
    }
    if (t.phase == Phase::kReading && (pfds[i].revents & (POLLIN | POLLERR | POLLHUP))) {
      char b[512];
      ssize_t n = ::recv(t.fd, b, sizeof(b), 0);
      if (n > 0 && t.buf.size() < 4096) t.buf.append(b, static_cast<size_t>(n));
      size_t eol = t.buf.find("\r\n");
      if (eol == std::string::npos && n > 0 && t.buf.size() < 4096)
        continue;  // status line not complete yet
      // "HTTP/1.x NNN reason"
      int status = -1;
      if (t.buf.compare(0, 5, "HTTP/") == 0) {
        size_t sp = t.buf.find(' ');
        if (sp != std::string::npos && sp + 4 <= t.buf.size()) {
          status = std::atoi(t.buf.substr(sp + 1, 3).c_str());
        }
      }
      if (status < 0) {
        Finish(t, k, false,
               n == 0 ? "connection closed before a status line" : "not an HTTP response", now_ms,
               &done);
      } else if (status == t.spec.expect_status) {
        Finish(t, k, true, absl::StrCat("HTTP ", status), now_ms, &done);
      } else {
        Finish(t, k, false, absl::StrCat("HTTP ", status, ", expected ", t.spec.expect_status),
               now_ms, &done);
      }
      continue;
    }
  }
  for (auto& [k, t] : targets_) {
    if (t.fd >= 0 && now_ms - t.started_ms >= t.spec.timeout_ms) {
      Finish(t, k, false, "timeout", now_ms, &done);
    }
  }
  return done;
}

}  // namespace ecmplb::control
