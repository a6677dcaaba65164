// health_checker.cc: non-blocking TCP, HTTP, UDP, DNS and script checks (see health_checker.h).
#include "control/health_checker.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string_view>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

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

void CloseFd(int fd, bool socket) {
  if (socket) {
    CloseNoLinger(fd);
  } else {
    ::close(fd);
  }
}

bool IsSocketCheck(const CheckSpec& s) { return s.type != CheckSpec::Type::kScript; }

const char* kRcodes[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"};

// Printable text of up to kMaxScriptOutput bytes, on one line.
std::string OneLine(absl::string_view out) {
  std::string s;
  for (char c : out.substr(0, kMaxScriptOutput)) {
    s.push_back(c == '\n' || c == '\r' || c == '\t' ? ' '
                : (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c);
  }
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

}  // namespace

std::string DnsQuery(uint16_t id, const std::string& name, uint16_t type) {
  std::string q;
  auto u16 = [&q](uint16_t v) {
    q.push_back(static_cast<char>(v >> 8));
    q.push_back(static_cast<char>(v & 0xff));
  };
  u16(id);
  u16(0x0100);  // a standard query, recursion desired
  u16(1);       // one question
  u16(0);
  u16(0);
  u16(0);
  for (absl::string_view label : absl::StrSplit(name, '.', absl::SkipEmpty())) {
    q.push_back(static_cast<char>(label.size()));
    q.append(label.data(), label.size());
  }
  q.push_back(0);  // the root
  u16(type);
  u16(1);  // class IN
  return q;
}

DnsVerdict JudgeDnsReply(std::string_view reply, uint16_t id, std::string* detail) {
  if (reply.size() < 12) return DnsVerdict::kNotOurs;
  auto u16 = [&reply](size_t at) {
    return static_cast<uint16_t>((static_cast<uint8_t>(reply[at]) << 8) |
                                 static_cast<uint8_t>(reply[at + 1]));
  };
  const uint16_t flags = u16(2);
  if (u16(0) != id || (flags & 0x8000) == 0) return DnsVerdict::kNotOurs;
  const unsigned rcode = flags & 0xf;
  const uint16_t answers = u16(6);
  if (rcode != 0) {
    *detail = absl::StrCat("DNS ", rcode < 6 ? kRcodes[rcode] : absl::StrCat("rcode ", rcode));
    return DnsVerdict::kFail;
  }
  if (answers == 0) {
    *detail = "DNS NOERROR without answer records";
    return DnsVerdict::kFail;
  }
  *detail = absl::StrCat("DNS NOERROR, ", answers, answers == 1 ? " answer" : " answers");
  return DnsVerdict::kPass;
}

namespace {

// Ends whatever a target has in flight: its socket or pipe closed, its script killed (the
// pid goes to `killed` to be reaped without blocking).
void Abandon(int* fd, pid_t* pid, bool socket, std::vector<pid_t>* killed) {
  if (*fd >= 0) CloseFd(*fd, socket);
  *fd = -1;
  if (*pid > 0) {
    ::kill(-*pid, SIGKILL);  // its process group: a shell script's children too
    if (::waitpid(*pid, nullptr, WNOHANG) == 0) killed->push_back(*pid);
  }
  *pid = -1;
}

}  // namespace

HealthChecker::~HealthChecker() {
  for (auto& [k, t] : targets_) Release(t);
  for (pid_t pid : killed_) ::waitpid(pid, nullptr, 0);  // SIGKILLed: exits at once
  if (tls_ != nullptr) SSL_CTX_free(tls_);
}

void HealthChecker::Release(Target& t) {
  if (t.ssl != nullptr) {
    SSL_free(t.ssl);  // no close_notify: the socket is reset right after
    t.ssl = nullptr;
  }
  Abandon(&t.fd, &t.pid, IsSocketCheck(t.spec), &killed_);
}

void HealthChecker::SetTargets(const std::map<CheckKey, CheckSpec>& targets, uint64_t now_ms) {
  for (auto it = targets_.begin(); it != targets_.end();) {
    auto want = targets.find(it->first);
    if (want == targets.end() || !(want->second == it->second.spec)) {
      Release(it->second);
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
  Release(it->second);
  targets_.erase(it);
}

size_t HealthChecker::in_flight() const {
  size_t n = 0;
  for (const auto& [k, t] : targets_) n += Busy(t);
  return n;
}

uint64_t HealthChecker::NextDue(uint64_t now_ms) const {
  uint64_t next = UINT64_MAX;
  if (!killed_.empty()) return now_ms;
  for (const auto& [k, t] : targets_) {
    if (Busy(t)) return now_ms;
    next = std::min(next, t.due_ms);
  }
  return next;
}

void HealthChecker::Finish(Target& t, const CheckKey& k, bool ok, std::string detail,
                           uint64_t now_ms, std::vector<std::pair<CheckKey, CheckResult>>* done) {
  Release(t);
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
  t.buf.clear();
  if (t.spec.type == CheckSpec::Type::kScript) {
    StartScript(t, now_ms, done, k);
  } else {
    StartSocket(t, now_ms, done, k);
  }
}

void HealthChecker::StartSocket(Target& t, uint64_t now_ms,
                                std::vector<std::pair<CheckKey, CheckResult>>* done,
                                const CheckKey& k) {
  const bool v6 = t.spec.addr.is_v6();
  const bool stream = t.spec.type == CheckSpec::Type::kTcp ||
                      t.spec.type == CheckSpec::Type::kHttp ||
                      t.spec.type == CheckSpec::Type::kHttps;
  int fd = ::socket(v6 ? AF_INET6 : AF_INET,
                    (stream ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
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
  // A connected datagram socket: the kernel hands ICMP port unreachable to it as
  // ECONNREFUSED, and drops datagrams from anyone but the backend.
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len);
  if (rc != 0 && errno != EINPROGRESS) {
    Finish(t, k, false, std::strerror(errno), now_ms, done);
    return;
  }
  if (stream) {
    t.phase = Phase::kConnecting;
    return;
  }
  std::string msg = t.spec.send;
  if (t.spec.type == CheckSpec::Type::kDns) {
    t.dns_id = next_dns_id_++;
    msg = DnsQuery(t.dns_id, t.spec.query, t.spec.query_type);
  }
  if (::send(fd, msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size())) {
    Finish(t, k, false, absl::StrCat("send: ", std::strerror(errno)), now_ms, done);
    return;
  }
  t.phase = Phase::kReading;
}

void HealthChecker::StartScript(Target& t, uint64_t now_ms,
                                std::vector<std::pair<CheckKey, CheckResult>>* done,
                                const CheckKey& k) {
  int pipefd[2];
  if (::pipe2(pipefd, O_CLOEXEC | O_NONBLOCK) != 0) {
    Finish(t, k, false, absl::StrCat("pipe: ", std::strerror(errno)), now_ms, done);
    return;
  }
  // posix_spawn, never fork: a DPDK process's fork would copy its page tables and hugepage
  // mappings. The child gets /dev/null as stdin, the pipe as stdout and stderr, no other
  // descriptor, default signal handling, its own process group (killed whole on timeout)
  // and a minimal environment.
  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawnattr_init(&attr);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
  posix_spawn_file_actions_adddup2(&fa, pipefd[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETPGROUP);
  std::vector<char*> argv;
  for (const std::string& a : t.spec.command) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::string env_backend = absl::StrCat("ECMPLB_BACKEND=", t.spec.addr.ToString());
  std::string env_port = absl::StrCat("ECMPLB_PORT=", t.spec.port);
  std::string env_path = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
  char* envp[] = {env_backend.data(), env_port.data(), env_path.data(), nullptr};
  pid_t pid = -1;
  const int rc = argv.size() > 1 ? ::posix_spawn(&pid, argv[0], &fa, &attr, argv.data(), envp)
                                 : EINVAL;
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(pipefd[1]);
  if (rc != 0) {
    ::close(pipefd[0]);
    Finish(t, k, false,
           absl::StrCat("cannot run ", t.spec.command.empty() ? "" : t.spec.command[0], ": ",
                        std::strerror(rc)),
           now_ms, done);
    return;
  }
  t.fd = pipefd[0];
  t.pid = pid;
  t.phase = Phase::kRunning;
}

void HealthChecker::ReapScript(Target& t, const CheckKey& k, uint64_t now_ms,
                               std::vector<std::pair<CheckKey, CheckResult>>* done) {
  int status = 0;
  if (::waitpid(t.pid, &status, WNOHANG) != t.pid) return;  // still running
  t.pid = -1;
  if (t.fd >= 0) {  // what it wrote before it exited
    char b[512];
    ssize_t n;
    while ((n = ::read(t.fd, b, sizeof(b))) > 0) {
      if (t.buf.size() < kMaxScriptOutput) t.buf.append(b, static_cast<size_t>(n));
    }
  }
  const std::string out = OneLine(t.buf);
  std::string detail;
  bool ok = false;
  if (WIFEXITED(status)) {
    ok = WEXITSTATUS(status) == 0;
    detail = absl::StrCat("exit ", WEXITSTATUS(status));
  } else if (WIFSIGNALED(status)) {
    detail = absl::StrCat("killed by signal ", WTERMSIG(status));
  } else {
    detail = "ended";
  }
  if (!out.empty()) absl::StrAppend(&detail, ": ", out);
  Finish(t, k, ok, std::move(detail), now_ms, done);
}

void HealthChecker::OnReadable(Target& t, const CheckKey& k, uint64_t now_ms,
                               std::vector<std::pair<CheckKey, CheckResult>>* done) {
  char b[2048];
  switch (t.spec.type) {
    case CheckSpec::Type::kScript: {
      const ssize_t n = ::read(t.fd, b, sizeof(b));
      if (n > 0) {
        if (t.buf.size() < kMaxScriptOutput) t.buf.append(b, static_cast<size_t>(n));
      } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(t.fd);  // it closed its output; it may still run: reaped or killed later
        t.fd = -1;
      }
      return;
    }
    case CheckSpec::Type::kUdp:
    case CheckSpec::Type::kDns: {
      const ssize_t n = ::recv(t.fd, b, sizeof(b), 0);
      if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) return;
        Finish(t, k, false, errno == ECONNREFUSED ? "port unreachable" : std::strerror(errno),
               now_ms, done);
        return;
      }
      const std::string_view reply(b, static_cast<size_t>(n));
      if (t.spec.type == CheckSpec::Type::kDns) {
        std::string detail;
        const DnsVerdict v = JudgeDnsReply(reply, t.dns_id, &detail);
        if (v != DnsVerdict::kNotOurs) Finish(t, k, v == DnsVerdict::kPass, detail, now_ms, done);
        return;
      }
      if (reply.find(t.spec.expect) != std::string_view::npos) {
        Finish(t, k, true, absl::StrCat("reply of ", n, " bytes"), now_ms, done);
      } else {
        Finish(t, k, false, absl::StrCat("reply of ", n, " bytes without the expected text"),
               now_ms, done);
      }
      return;
    }
    case CheckSpec::Type::kTcp:
    case CheckSpec::Type::kHttp:
    case CheckSpec::Type::kHttps:
      break;
  }
  const ssize_t n = ::recv(t.fd, b, sizeof(b), 0);
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
  const size_t limit = t.spec.expect_body.empty() ? 4096 : kMaxBody + 4096;
  if (n > 0 && t.buf.size() < limit) t.buf.append(b, static_cast<size_t>(n));
  OnHttpBytes(t, k, now_ms, n < 0 ? 0 : n, done);
}

void HealthChecker::OnHttpBytes(Target& t, const CheckKey& k, uint64_t now_ms, long n,
                                std::vector<std::pair<CheckKey, CheckResult>>* done) {
  const size_t limit = t.spec.expect_body.empty() ? 4096 : kMaxBody + 4096;
  const bool more = n > 0 && t.buf.size() < limit;  // the peer may send more
  const size_t eol = t.buf.find("\r\n");
  if (eol == std::string::npos && more) return;  // status line not complete yet
  // "HTTP/1.x NNN reason"
  int status = -1;
  if (t.buf.compare(0, 5, "HTTP/") == 0) {
    size_t sp = t.buf.find(' ');
    if (sp != std::string::npos && sp + 4 <= t.buf.size()) {
      status = std::atoi(t.buf.substr(sp + 1, 3).c_str());
    }
  }
  if (status < 0) {
    Finish(t, k, false, n == 0 ? "connection closed before a status line" : "not an HTTP response",
           now_ms, done);
    return;
  }
  if (status != t.spec.expect_status) {
    Finish(t, k, false, absl::StrCat("HTTP ", status, ", expected ", t.spec.expect_status), now_ms,
           done);
    return;
  }
  if (t.spec.expect_body.empty()) {
    Finish(t, k, true, absl::StrCat("HTTP ", status), now_ms, done);
    return;
  }
  const size_t head_end = t.buf.find("\r\n\r\n");
  if (head_end != std::string::npos) {
    const std::string_view body =
        std::string_view(t.buf).substr(head_end + 4, kMaxBody);
    if (body.find(t.spec.expect_body) != std::string_view::npos) {
      Finish(t, k, true, absl::StrCat("HTTP ", status, ", body holds the expected text"), now_ms,
             done);
      return;
    }
  }
  if (more) return;  // the text may come in the rest of the body
  const bool cut = t.buf.size() >= limit ||
                   (head_end != std::string::npos && t.buf.size() - head_end - 4 > kMaxBody);
  Finish(t, k, false,
         absl::StrCat("HTTP ", status, ", body without the expected text",
                      cut ? " in its first 16 KiB" : ""),
         now_ms, done);
}

namespace {

std::string TlsError(const char* what, int ssl_error) {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e != 0) {
    const char* reason = ERR_reason_error_string(e);
    return absl::StrCat("TLS ", what, ": ", reason != nullptr ? reason : "error");
  }
  if (ssl_error == SSL_ERROR_ZERO_RETURN || ssl_error == SSL_ERROR_SYSCALL) {
    return absl::StrCat("TLS ", what, ": connection closed");
  }
  return absl::StrCat("TLS ", what, ": error ", ssl_error);
}

// A BIO over a non-blocking socket that sends with MSG_NOSIGNAL: OpenSSL's own socket BIO
// writes with write(2), and a backend that reset the connection would raise SIGPIPE, which
// kills the daemon unless the whole process ignores it.
int NoSigpipeWrite(BIO* b, const char* data, int len) {
  const int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
  const ssize_t n = ::send(fd, data, static_cast<size_t>(len), MSG_NOSIGNAL);
  BIO_clear_retry_flags(b);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_write(b);
  return static_cast<int>(n);
}

int NoSigpipeRead(BIO* b, char* data, int len) {
  const int fd = static_cast<int>(reinterpret_cast<intptr_t>(BIO_get_data(b)));
  const ssize_t n = ::recv(fd, data, static_cast<size_t>(len), 0);
  BIO_clear_retry_flags(b);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) BIO_set_retry_read(b);
  return static_cast<int>(n);
}

long NoSigpipeCtrl(BIO*, int cmd, long, void*) { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

BIO* NoSigpipeBio(int fd) {
  static BIO_METHOD* method = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "ecmplb socket");
    BIO_meth_set_write(m, NoSigpipeWrite);
    BIO_meth_set_read(m, NoSigpipeRead);
    BIO_meth_set_ctrl(m, NoSigpipeCtrl);
    return m;
  }();
  BIO* b = method != nullptr ? BIO_new(method) : nullptr;
  if (b != nullptr) {
    BIO_set_data(b, reinterpret_cast<void*>(static_cast<intptr_t>(fd)));
    BIO_set_init(b, 1);
  }
  return b;
}

std::string HttpRequest(const CheckSpec& spec) {
  const std::string host = spec.host_header.empty() ? spec.addr.ToString() : spec.host_header;
  return absl::StrCat("GET ", spec.path, " HTTP/1.0\r\nHost: ", host,
                      "\r\nUser-Agent: ecmplb-healthcheck\r\nConnection: close\r\n\r\n");
}

}  // namespace

void HealthChecker::StepTls(Target& t, const CheckKey& k, uint64_t now_ms,
                            std::vector<std::pair<CheckKey, CheckResult>>* done) {
  // Each phase runs until OpenSSL wants the socket (t.want) or the check ends.
  if (t.phase == Phase::kHandshake) {
    const int rc = SSL_connect(t.ssl);
    if (rc != 1) {
      const int e = SSL_get_error(t.ssl, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        t.want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return;
      }
      Finish(t, k, false, TlsError("handshake", e), now_ms, done);
      return;
    }
    t.buf = HttpRequest(t.spec);  // to send; the response replaces it
    t.phase = Phase::kWriting;
  }
  if (t.phase == Phase::kWriting) {
    const int rc = SSL_write(t.ssl, t.buf.data(), static_cast<int>(t.buf.size()));
    if (rc <= 0) {
      const int e = SSL_get_error(t.ssl, rc);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        t.want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
        return;
      }
      Finish(t, k, false, TlsError("write", e), now_ms, done);
      return;
    }
    t.buf.clear();
    t.phase = Phase::kReading;
  }
  const size_t limit = t.spec.expect_body.empty() ? 4096 : kMaxBody + 4096;
  char b[2048];
  for (;;) {
    const int rc = SSL_read(t.ssl, b, sizeof(b));
    if (rc > 0) {
      if (t.buf.size() < limit) t.buf.append(b, static_cast<size_t>(rc));
      OnHttpBytes(t, k, now_ms, rc, done);
      if (t.phase != Phase::kReading) return;  // decided
      continue;
    }
    const int e = SSL_get_error(t.ssl, rc);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      t.want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
      return;
    }
    ERR_clear_error();
    OnHttpBytes(t, k, now_ms, 0, done);  // closed (with or without close_notify)
    return;
  }
}

std::vector<std::pair<CheckKey, CheckResult>> HealthChecker::Poll(uint64_t now_ms) {
  std::vector<std::pair<CheckKey, CheckResult>> done;
  std::erase_if(killed_, [](pid_t pid) { return ::waitpid(pid, nullptr, WNOHANG) != 0; });
  for (auto& [k, t] : targets_) {
    if (t.phase == Phase::kIdle && now_ms >= t.due_ms) Start(t, now_ms, &done, k);
  }
  std::vector<pollfd> pfds;
  std::vector<std::pair<const CheckKey*, Target*>> owners;
  for (auto& [k, t] : targets_) {
    if (t.fd < 0) continue;
    const short events = t.phase == Phase::kConnecting ? POLLOUT
                         : t.ssl != nullptr             ? t.want
                                                        : POLLIN;
    pfds.push_back({t.fd, events, 0});
    owners.push_back({&k, &t});
  }
  if (!pfds.empty()) ::poll(pfds.data(), pfds.size(), 0);
  for (size_t i = 0; i < pfds.size(); ++i) {
    const CheckKey& k = *owners[i].first;
    Target& t = *owners[i].second;
    if (t.fd != pfds[i].fd) continue;  // finished meanwhile
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
      if (t.spec.type == CheckSpec::Type::kHttps) {
        if (tls_ == nullptr) {
          tls_ = SSL_CTX_new(TLS_client_method());
          if (tls_ != nullptr) {
            SSL_CTX_set_min_proto_version(tls_, TLS1_2_VERSION);
            SSL_CTX_set_verify(tls_, SSL_VERIFY_NONE, nullptr);
          }
        }
        t.ssl = tls_ != nullptr ? SSL_new(tls_) : nullptr;
        BIO* bio = t.ssl != nullptr ? NoSigpipeBio(t.fd) : nullptr;
        if (bio == nullptr) {
          Finish(t, k, false, TlsError("setup", 0), now_ms, &done);
          continue;
        }
        SSL_set_bio(t.ssl, bio, bio);  // the session owns it
        if (!t.spec.host_header.empty()) {
          SSL_set_tlsext_host_name(t.ssl, t.spec.host_header.c_str());  // SNI
        }
        t.phase = Phase::kHandshake;
        StepTls(t, k, now_ms, &done);
        continue;
      }
      const std::string req = HttpRequest(t.spec);
      ssize_t n = ::send(t.fd, req.data(), req.size(), MSG_NOSIGNAL);
      if (n != static_cast<ssize_t>(req.size())) {
        Finish(t, k, false, "could not send the HTTP request", now_ms, &done);
        continue;
      }
      t.phase = Phase::kReading;
      continue;
    }
    if (t.ssl != nullptr) {
      if (pfds[i].revents != 0) StepTls(t, k, now_ms, &done);
      continue;
    }
    if ((t.phase == Phase::kReading || t.phase == Phase::kRunning) &&
        (pfds[i].revents & (POLLIN | POLLERR | POLLHUP))) {
      OnReadable(t, k, now_ms, &done);
    }
  }
  for (auto& [k, t] : targets_) {
    if (t.phase == Phase::kRunning && t.pid > 0) ReapScript(t, k, now_ms, &done);
    if (Busy(t) && now_ms - t.started_ms >= t.spec.timeout_ms) {
      Finish(t, k, false,
             t.spec.type == CheckSpec::Type::kScript
                 ? absl::StrCat("timeout: killed after ", t.spec.timeout_ms, " ms")
                 : "timeout",
             now_ms, &done);
    }
  }
  return done;
}

}  // namespace ecmplb::control
