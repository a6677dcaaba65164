// Tests of the health state machines and of the checker (TCP, HTTP, HTTPS, UDP, DNS, script)
// against servers on loopback.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <vector>
#include <memory>
#include <sstream>
#include <fstream>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>

#include "control/config.h"
#include "control/health.h"
#include "control/health_checker.h"
#include "control/health_monitor.h"
#include "control/peer_wait.h"

namespace ecmplb::control {
namespace {

TEST(RiseFallTest, FallsAfterFallFailuresAndRisesAfterRiseSuccesses) {
  RiseFall h(/*rise=*/2, /*fall=*/3, /*initially_up=*/true);
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(true));  // a success resets the failure run
  EXPECT_FALSE(h.Record(false));
  EXPECT_FALSE(h.Record(false));
  EXPECT_TRUE(h.up());
  EXPECT_TRUE(h.Record(false));
  EXPECT_FALSE(h.up());
  EXPECT_FALSE(h.Record(true));
  EXPECT_FALSE(h.Record(false));  // resets the success run
  EXPECT_FALSE(h.Record(true));
  EXPECT_TRUE(h.Record(true));
  EXPECT_TRUE(h.up());
}

TEST(RiseFallTest, StartsDownWhenAsked) {
  RiseFall h(1, 1, false);
  EXPECT_FALSE(h.up());
  EXPECT_TRUE(h.Record(true));
  EXPECT_TRUE(h.up());
}

TEST(WorkerWatchdogTest, StallAndRecovery) {
  WorkerWatchdog w(2, 500);
  EXPECT_FALSE(w.Observe({1, 1}, 0));
  EXPECT_FALSE(w.Observe({2, 1}, 400));
  EXPECT_TRUE(w.healthy());
  EXPECT_TRUE(w.Observe({3, 1}, 600));  // worker 1 has not moved for 600 ms
  EXPECT_FALSE(w.healthy());
  EXPECT_TRUE(w.stalled(1));
  EXPECT_FALSE(w.stalled(0));
  EXPECT_FALSE(w.Observe({4, 1}, 700));
  EXPECT_TRUE(w.Observe({5, 2}, 800));  // it moves again
  EXPECT_TRUE(w.healthy());
}

TEST(AnnounceTest, VipAnnouncedWhileOneServiceCanServe) {
  std::vector<ServiceServability> s = {{"10.1.1.1", true, false},
                                       {"10.1.1.1", true, true},
                                       {"10.1.1.2", true, false},
                                       {"10.1.1.3", false, true}};
  auto d = DecideAnnouncements(s, true, false);
  EXPECT_EQ(d["10.1.1.1"], "");
  EXPECT_EQ(d["10.1.1.2"], "no service of this VIP has a healthy backend");
  EXPECT_EQ(d["10.1.1.3"], "administratively down");
  d = DecideAnnouncements(s, false, false);
  EXPECT_EQ(d["10.1.1.1"], "a worker is stalled");
  d = DecideAnnouncements(s, true, true);
  EXPECT_EQ(d["10.1.1.1"], "draining");
}

// A host whose checks all failed (its link was down) and now pass again: a withdrawn VIP waits
// until no backend is still rising, so the router does not send it flows while only part of
// the backends are up; an announced VIP is never withdrawn for a rising backend.
TEST(AnnounceTest, AWithdrawnVipWaitsForRisingBackends) {
  RiseFall r(2, 2, false);
  EXPECT_FALSE(r.rising());
  r.Record(true);
  EXPECT_TRUE(r.rising());
  r.Record(false);
  EXPECT_FALSE(r.rising()) << "a failure resets the rise";
  r.Record(true);
  r.Record(true);
  EXPECT_TRUE(r.up());
  EXPECT_FALSE(r.rising());

  std::vector<ServiceServability> s = {{"10.1.1.1", true, true, true}, {"10.1.1.2", true, true, false}};
  const std::set<std::string> none, both = {"10.1.1.1", "10.1.1.2"};
  auto d = DecideAnnouncements(s, true, false, &none);
  EXPECT_EQ(d["10.1.1.1"], "waiting for backends that are passing their checks (rise)");
  EXPECT_EQ(d["10.1.1.2"], "");
  d = DecideAnnouncements(s, true, false, &both);
  EXPECT_EQ(d["10.1.1.1"], "") << "announced: stays announced";
  d = DecideAnnouncements(s, true, false);
  EXPECT_EQ(d["10.1.1.1"], "") << "without the announced set: the rule is off";
  s[0].has_healthy_backend = false;
  d = DecideAnnouncements(s, true, false, &none);
  EXPECT_EQ(d["10.1.1.1"], "no service of this VIP has a healthy backend");
}

// A loopback TCP server: accepts, optionally answers with `reply`, or never accepts.
class Server {
 public:
  // `hold`: keep accepted connections open until destruction (the peer closes first).
  // `v6`: on [::1] (bound() says whether this host has it).
  explicit Server(std::string reply, bool accept = true, bool hold = false, bool v6 = false)
      : reply_(std::move(reply)) {
    fd_ = ::socket(v6 ? AF_INET6 : AF_INET, SOCK_STREAM, 0);
    if (v6) {
      sockaddr_in6 a{};
      a.sin6_family = AF_INET6;
      a.sin6_addr = in6addr_loopback;
      bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
      socklen_t l = sizeof(a);
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &l);
      port_ = ntohs(a.sin6_port);
    } else {
      sockaddr_in a{};
      a.sin_family = AF_INET;
      a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      bound_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
      socklen_t l = sizeof(a);
      ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &l);
      port_ = ntohs(a.sin_port);
    }
    ::listen(fd_, 16);
    if (accept) {
      thread_ = std::thread([this, hold] {
        timeval tv{0, 100000};
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        while (!stop_) {
          int c = ::accept(fd_, nullptr, nullptr);
          if (c < 0) continue;
          if (hold) {
            held_.push_back(c);
            accepted_.fetch_add(1);
            continue;
          }
          char buf[1024];
          if (!reply_.empty()) {
            ssize_t n = ::recv(c, buf, sizeof(buf), 0);
            (void)n;
            ::send(c, reply_.data(), reply_.size(), MSG_NOSIGNAL);
          }
          ::close(c);
          accepted_.fetch_add(1);
        }
      });
    }
  }
  ~Server() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    for (int c : held_) ::close(c);
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int accepted() const { return accepted_.load(); }
  bool bound() const { return bound_; }

 private:
  bool bound_ = false;
  std::atomic<int> accepted_{0};
  std::vector<int> held_;  // accept thread only, then the destructor
  std::string reply_;
  int fd_;
  uint16_t port_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

uint64_t NowMs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                   std::chrono::steady_clock::now().time_since_epoch())
                                   .count());
}

// Runs the checker until `key` has a result (bounded to 3 s).
CheckResult RunOne(HealthChecker& hc, const CheckKey& key) {
  uint64_t end = NowMs() + 3000;
  while (NowMs() < end) {
    for (auto& [k, r] : hc.Poll(NowMs())) {
      if (k == key) return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return CheckResult{false, "no result", 0, 0};
}

CheckSpec Spec(CheckSpec::Type type, uint16_t port) {
  CheckSpec s;
  s.type = type;
  s.addr = dataplane::IpAddr::V4(0x7f000001);
  s.port = port;
  s.timeout_ms = 300;
  s.interval_ms = 50;
  return s;
}

TEST(HealthCheckerTest, TcpConnectSucceedsAndRefusalFails) {
  Server up("");
  HealthChecker hc;
  // A port nobody listens on: bind one and close it.
  int tmp = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(tmp, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t l = sizeof(a);
  ::getsockname(tmp, reinterpret_cast<sockaddr*>(&a), &l);
  ::close(tmp);
  hc.SetTargets({{{"s", 1}, Spec(CheckSpec::Type::kTcp, up.port())},
                 {{"s", 2}, Spec(CheckSpec::Type::kTcp, ntohs(a.sin_port))}},
                NowMs());
  CheckResult r1 = RunOne(hc, {"s", 1});
  EXPECT_TRUE(r1.ok) << r1.detail;
  CheckResult r2 = RunOne(hc, {"s", 2});
  EXPECT_FALSE(r2.ok);
  EXPECT_EQ(r2.detail, "Connection refused");
}

TEST(HealthCheckerTest, HttpStatusIsCompared) {
  Server ok("HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok");
  Server err("HTTP/1.1 503 Service Unavailable\r\n\r\n");
  Server junk("SSH-2.0-OpenSSH\r\n");
  HealthChecker hc;
  hc.SetTargets({{{"s", 1}, Spec(CheckSpec::Type::kHttp, ok.port())},
                 {{"s", 2}, Spec(CheckSpec::Type::kHttp, err.port())},
                 {{"s", 3}, Spec(CheckSpec::Type::kHttp, junk.port())}},
                NowMs());
  CheckResult r1 = RunOne(hc, {"s", 1});
  EXPECT_TRUE(r1.ok) << r1.detail;
  EXPECT_EQ(r1.detail, "HTTP 200");
  CheckResult r2 = RunOne(hc, {"s", 2});
  EXPECT_FALSE(r2.ok);
  EXPECT_EQ(r2.detail, "HTTP 503, expected 200");
  CheckResult r3 = RunOne(hc, {"s", 3});
  EXPECT_FALSE(r3.ok);
  EXPECT_EQ(r3.detail, "not an HTTP response");
}

// Backends with IPv6 addresses are checked over IPv6 (TCP connect and HTTP).
TEST(HealthCheckerTest, Ipv6BackendsAreChecked) {
  Server tcp("", true, false, /*v6=*/true);
  Server http("HTTP/1.0 200 OK\r\n\r\n", true, false, /*v6=*/true);
  Server down("HTTP/1.0 500 Oops\r\n\r\n", true, false, /*v6=*/true);
  if (!tcp.bound() || !http.bound() || !down.bound()) GTEST_SKIP() << "no [::1] on this host";
  auto spec6 = [](CheckSpec::Type type, uint16_t port) {
    CheckSpec s = Spec(type, port);
    s.addr = *dataplane::IpAddr::Parse("::1");
    return s;
  };
  HealthChecker hc;
  hc.SetTargets({{{"s", 1}, spec6(CheckSpec::Type::kTcp, tcp.port())},
                 {{"s", 2}, spec6(CheckSpec::Type::kHttp, http.port())},
                 {{"s", 3}, spec6(CheckSpec::Type::kHttp, down.port())}},
                NowMs());
  CheckResult r1 = RunOne(hc, {"s", 1});
  EXPECT_TRUE(r1.ok) << r1.detail;
  CheckResult r2 = RunOne(hc, {"s", 2});
  EXPECT_TRUE(r2.ok) << r2.detail;
  EXPECT_EQ(r2.detail, "HTTP 200");
  CheckResult r3 = RunOne(hc, {"s", 3});
  EXPECT_FALSE(r3.ok);
  EXPECT_EQ(r3.detail, "HTTP 500, expected 200");
  EXPECT_GE(tcp.accepted() + http.accepted(), 2);
}

TEST(HealthCheckerTest, SilentServerTimesOut) {
  Server silent("", /*accept=*/false);  // the kernel completes the handshake; nobody answers
  HealthChecker hc;
  hc.SetTargets({{{"s", 1}, Spec(CheckSpec::Type::kHttp, silent.port())}}, NowMs());
  CheckResult r = RunOne(hc, {"s", 1});
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.detail, "timeout");
  EXPECT_GE(r.latency_ms, 300u);
  EXPECT_EQ(hc.in_flight(), 0u);
}

TEST(HealthCheckerTest, HttpBodyMustHoldTheExpectedText) {
  Server ok("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nstatus: healthy\n");
  Server big("HTTP/1.0 200 OK\r\n\r\n" + std::string(20000, 'x') + "healthy");
  HealthChecker hc;
  CheckSpec holds = Spec(CheckSpec::Type::kHttp, ok.port());
  holds.expect_body = "healthy";
  CheckSpec lacks = holds;
  lacks.expect_body = "ready";
  CheckSpec too_far = holds;
  too_far.port = big.port();
  hc.SetTargets({{{"s", 1}, holds}, {{"s", 2}, lacks}, {{"s", 3}, too_far}}, NowMs());
  CheckResult r1 = RunOne(hc, {"s", 1});
  EXPECT_TRUE(r1.ok) << r1.detail;
  EXPECT_EQ(r1.detail, "HTTP 200, body holds the expected text");
  CheckResult r2 = RunOne(hc, {"s", 2});
  EXPECT_FALSE(r2.ok);
  EXPECT_EQ(r2.detail, "HTTP 200, body without the expected text");
  CheckResult r3 = RunOne(hc, {"s", 3});  // past the first 16 KiB: not looked at
  EXPECT_FALSE(r3.ok);
  EXPECT_EQ(r3.detail, "HTTP 200, body without the expected text in its first 16 KiB");
}

// A socket of `type` bound to 127.0.0.1 on a port the kernel picks (in *port).
int BoundLoopback(int type, uint16_t* port) {
  const int fd = ::socket(AF_INET, type, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  socklen_t l = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &l);
  *port = ntohs(a.sin_port);
  return fd;
}

// A loopback HTTPS server with a fresh self-signed certificate (P-256): accepts, completes
// the TLS handshake, reads the request and answers `reply`, then closes.
class TlsServer {
 public:
  explicit TlsServer(std::string reply) : reply_(std::move(reply)) {
    ::signal(SIGPIPE, SIG_IGN);  // this server's writes to a checker that already reset
    ctx_ = SSL_CTX_new(TLS_server_method());
    EVP_PKEY* key = EVP_EC_gen("P-256");
    X509* cert = X509_new();
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 3600);
    X509_set_pubkey(cert, key);
    X509_NAME* name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                               reinterpret_cast<const unsigned char*>("backend.test"), -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_sign(cert, key, EVP_sha256());
    SSL_CTX_use_certificate(ctx_, cert);
    SSL_CTX_use_PrivateKey(ctx_, key);
    X509_free(cert);
    EVP_PKEY_free(key);
    fd_ = BoundLoopback(SOCK_STREAM, &port_);
    ::listen(fd_, 16);
    thread_ = std::thread([this] {
      timeval tv{0, 100000};
      ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
      while (!stop_) {
        int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        timeval ctv{1, 0};
        ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &ctv, sizeof(ctv));
        SSL* ssl = SSL_new(ctx_);
        SSL_set_fd(ssl, c);
        if (SSL_accept(ssl) == 1) {
          char buf[1024];
          const int n = SSL_read(ssl, buf, sizeof(buf));
          if (n > 0) request_ = std::string(buf, static_cast<size_t>(n));
          SSL_write(ssl, reply_.data(), static_cast<int>(reply_.size()));
          SSL_shutdown(ssl);
          handshakes_.fetch_add(1);
        }
        SSL_free(ssl);
        ::close(c);
      }
    });
  }
  ~TlsServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
    SSL_CTX_free(ctx_);
  }
  uint16_t port() const { return port_; }
  int handshakes() const { return handshakes_.load(); }

 private:
  std::string reply_;
  std::string request_;
  SSL_CTX* ctx_;
  int fd_;
  uint16_t port_;
  std::atomic<int> handshakes_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(HealthCheckerTest, HttpsOverTls) {
  TlsServer ok("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nready");
  TlsServer down("HTTP/1.1 503 Service Unavailable\r\n\r\n");
  Server plain("HTTP/1.0 200 OK\r\n\r\n");  // no TLS on this port
  CheckSpec spec = Spec(CheckSpec::Type::kHttps, ok.port());
  spec.expect_body = "ready";
  spec.host_header = "backend.test";  // also the SNI name
  CheckSpec failing = Spec(CheckSpec::Type::kHttps, down.port());
  CheckSpec not_tls = Spec(CheckSpec::Type::kHttps, plain.port());
  HealthChecker hc;
  hc.SetTargets({{{"s", 1}, spec}, {{"s", 2}, failing}, {{"s", 3}, not_tls}}, NowMs());
  CheckResult r1 = RunOne(hc, {"s", 1});
  EXPECT_TRUE(r1.ok) << r1.detail;
  EXPECT_EQ(r1.detail, "HTTP 200, body holds the expected text");
  CheckResult r2 = RunOne(hc, {"s", 2});
  EXPECT_FALSE(r2.ok);
  EXPECT_EQ(r2.detail, "HTTP 503, expected 200");
  CheckResult r3 = RunOne(hc, {"s", 3});
  EXPECT_FALSE(r3.ok);
  EXPECT_EQ(r3.detail.rfind("TLS handshake: ", 0), 0u) << r3.detail;
  EXPECT_GE(ok.handshakes(), 1);
}

// A loopback UDP server answering each datagram with the datagrams answer(datagram) returns.
class UdpServer {
 public:
  using Answer = std::function<std::vector<std::string>(const std::string&)>;
  explicit UdpServer(Answer answer)
      : answer_(std::move(answer)) {
    fd_ = BoundLoopback(SOCK_DGRAM, &port_);
    timeval tv{0, 100000};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    thread_ = std::thread([this] {
      while (!stop_) {
        char buf[2048];
        sockaddr_in from{};
        socklen_t fl = sizeof(from);
        ssize_t n = ::recvfrom(fd_, buf, sizeof(buf), 0, reinterpret_cast<sockaddr*>(&from), &fl);
        if (n < 0) continue;
        received_.fetch_add(1);
        for (const std::string& d : answer_(std::string(buf, static_cast<size_t>(n)))) {
          ::sendto(fd_, d.data(), d.size(), 0, reinterpret_cast<sockaddr*>(&from), fl);
        }
      }
    });
  }
  ~UdpServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  uint16_t port() const { return port_; }
  int received() const { return received_.load(); }

 private:
  Answer answer_;
  int fd_;
  uint16_t port_;
  std::atomic<int> received_{0};
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

TEST(HealthCheckerTest, UdpReplyIsCompared) {
  UdpServer echo([](const std::string& d) {
    return d == "PING" ? std::vector<std::string>{"PONG ok"} : std::vector<std::string>{};
  });
  uint16_t closed_port = 0;  // a port nobody listens on once closed
  ::close(BoundLoopback(SOCK_DGRAM, &closed_port));
  CheckSpec ping = Spec(CheckSpec::Type::kUdp, echo.port());
  ping.send = "PING";
  ping.expect = "ok";
  CheckSpec wrong = ping;
  wrong.expect = "fine";
  CheckSpec silent = ping;
  silent.send = "HELLO";  // the server does not answer it
  CheckSpec refused = ping;
  refused.port = closed_port;
  HealthChecker hc;
  hc.SetTargets({{{"s", 1}, ping}, {{"s", 2}, wrong}, {{"s", 3}, silent}, {{"s", 4}, refused}},
                NowMs());
  CheckResult r1 = RunOne(hc, {"s", 1});
  EXPECT_TRUE(r1.ok) << r1.detail;
  EXPECT_EQ(r1.detail, "reply of 7 bytes");
  CheckResult r2 = RunOne(hc, {"s", 2});
  EXPECT_FALSE(r2.ok);
  EXPECT_EQ(r2.detail, "reply of 7 bytes without the expected text");
  CheckResult r3 = RunOne(hc, {"s", 3});
  EXPECT_FALSE(r3.ok);
  EXPECT_EQ(r3.detail, "timeout");
  CheckResult r4 = RunOne(hc, {"s", 4});
  EXPECT_FALSE(r4.ok);
  EXPECT_EQ(r4.detail, "port unreachable");
}

TEST(HealthCheckerTest, DnsQueryBytes) {
  // RFC 1035 4.1: id, RD, one question; www.example.com AAAA IN.
  const std::string q = DnsQuery(0x1234, "www.example.com", 28);
  const std::string want("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
                         "\x03www\x07" "example\x03" "com\x00\x00\x1c\x00\x01",
                         33);
  EXPECT_EQ(q, want);
  EXPECT_EQ(DnsQuery(1, ".", 6).substr(12), std::string("\x00\x00\x06\x00\x01", 5));  // root SOA
  std::string detail;
  EXPECT_EQ(JudgeDnsReply(std::string("\x12\x34\x81\x80", 4), 0x1234, &detail),
            DnsVerdict::kNotOurs);  // shorter than a header
}

// A DNS reply to `query`: its id and question, QR set, the rcode and `answers` answer records
// (counted only: the checker does not read them).
std::string DnsReply(const std::string& query, unsigned rcode, uint16_t answers) {
  std::string r = query;
  r[2] = static_cast<char>(0x81);
  r[3] = static_cast<char>(0x80 | rcode);
  r[6] = static_cast<char>(answers >> 8);
  r[7] = static_cast<char>(answers & 0xff);
  return r;
}

TEST(HealthCheckerTest, DnsAnswerIsJudged) {
  // Every reply is preceded by a stray one with another id, which the check must ignore.
  auto server = [](unsigned rcode, uint16_t answers) {
    return [rcode, answers](const std::string& q) {
      std::string stray = DnsReply(q, 0, 1);
      stray[0] ^= 0x55;
      return std::vector<std::string>{stray, DnsReply(q, rcode, answers)};
    };
  };
  UdpServer good(server(0, 2)), nx(server(3, 0)), empty(server(0, 0));
  auto spec = [](uint16_t port) {
    CheckSpec s = Spec(CheckSpec::Type::kDns, port);
    s.query = "www.example.com";
    s.query_type = 1;
    return s;
  };
  HealthChecker hc;
  hc.SetTargets({{{"s", 1}, spec(good.port())}, {{"s", 2}, spec(nx.port())},
                 {{"s", 3}, spec(empty.port())}},
                NowMs());
  CheckResult r1 = RunOne(hc, {"s", 1});
  EXPECT_TRUE(r1.ok) << r1.detail;
  EXPECT_EQ(r1.detail, "DNS NOERROR, 2 answers");
  CheckResult r2 = RunOne(hc, {"s", 2});
  EXPECT_FALSE(r2.ok);
  EXPECT_EQ(r2.detail, "DNS NXDOMAIN");
  CheckResult r3 = RunOne(hc, {"s", 3});
  EXPECT_FALSE(r3.ok);
  EXPECT_EQ(r3.detail, "DNS NOERROR without answer records");
}

CheckSpec Script(std::vector<std::string> command, uint32_t timeout_ms = 1000) {
  CheckSpec s = Spec(CheckSpec::Type::kScript, 8080);
  s.command = std::move(command);
  s.timeout_ms = timeout_ms;
  s.interval_ms = 60000;
  return s;
}

bool Alive(pid_t pid) { return ::kill(pid, 0) == 0; }

TEST(HealthCheckerTest, ScriptExitStatusOutputAndTimeout) {
  const std::string dir = ::testing::TempDir();
  const std::string pid_file = dir + "/ecmplb_script_pid";
  const std::string child_file = dir + "/ecmplb_script_child";
  HealthChecker hc;
  hc.SetTargets(
      {{{"s", 1}, Script({"/bin/sh", "-c", "echo \"up: $ECMPLB_BACKEND $ECMPLB_PORT\""})},
       {{"s", 2}, Script({"/bin/sh", "-c", "echo 'no database' >&2; exit 3"})},
       {{"s", 3}, Script({"/bin/sh", "-c", "echo $$ > " + pid_file + "; sleep 5 & echo $! > " +
                                               child_file + "; wait"},
                         300)},
       {{"s", 4}, Script({"/nonexistent/check"})},
       {{"s", 5}, Script({"/bin/sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; exit 1"})}},
      NowMs());
  // Each runs once (interval 60 s): collect every result.
  std::map<uint32_t, CheckResult> r;
  for (uint64_t end = NowMs() + 5000; NowMs() < end && r.size() < 5;) {
    for (auto& [k, result] : hc.Poll(NowMs())) r[k.second] = result;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ASSERT_EQ(r.size(), 5u);
  EXPECT_TRUE(r[1].ok) << r[1].detail;
  EXPECT_EQ(r[1].detail, "exit 0: up: 127.0.0.1 8080");
  EXPECT_FALSE(r[2].ok);
  EXPECT_EQ(r[2].detail, "exit 3: no database");
  EXPECT_FALSE(r[3].ok);
  EXPECT_EQ(r[3].detail, "timeout: killed after 300 ms");
  EXPECT_GE(r[3].latency_ms, 300u);
  EXPECT_FALSE(r[4].ok);
  EXPECT_EQ(r[4].detail, "cannot run /nonexistent/check: No such file or directory");
  EXPECT_FALSE(r[5].ok);
  EXPECT_EQ(r[5].detail, "exit 1: " + std::string(kMaxScriptOutput, 'x'));
  // The timed-out script and the child it started were killed (its process group) and reaped.
  pid_t pid = 0, child = 0;
  std::ifstream(pid_file) >> pid;
  std::ifstream(child_file) >> child;
  ASSERT_GT(pid, 0);
  ASSERT_GT(child, 0);
  for (uint64_t end = NowMs() + 2000; NowMs() < end && (Alive(pid) || Alive(child));) {
    hc.Poll(NowMs());
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_FALSE(Alive(pid));
  EXPECT_FALSE(Alive(child));
  EXPECT_EQ(hc.in_flight(), 0u);
  std::remove(pid_file.c_str());
  std::remove(child_file.c_str());
}

// The monitor without netlink: backends with a check start down, rise, fall when their server
// goes away; the VIP decision follows; a stalled worker withdraws every VIP.
TEST(HealthMonitorTest, ChecksDriveBackendStateAndAnnouncement) {
  auto server = std::make_unique<Server>("HTTP/1.0 200 OK\r\n\r\n");
  uint16_t port = server->port();
  auto cfg = ParseConfig(R"({"host": {"address": "10.0.0.11"}, "services": [
      {"vip": "10.100.0.1", "port": 80, "protocol": "tcp",
       "health_check": {"type": "http", "port": )" +
                         std::to_string(port) + R"(, "interval_ms": 20, "timeout_ms": 10,
                        "rise": 2, "fall": 2},
       "backends": [{"id": 1, "address": "127.0.0.1"}]},
      {"vip": "10.100.0.2", "port": 80, "protocol": "tcp", "backends": [{"id": 1, "address": "10.0.0.5"}]}]})");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  std::vector<std::string> log;
  HealthMonitor m(nullptr, 1, 500, [&](const std::string& s) { log.push_back(s); });
  uint64_t t0 = NowMs();
  m.SetConfig(*cfg, t0);
  const BackendRef checked{"10.100.0.1:80/tcp", 1};
  EXPECT_EQ(m.unhealthy().count(checked), 1u);  // proven before used
  m.Announce(*cfg);
  EXPECT_NE(m.vips().at("10.100.0.1"), "");
  EXPECT_EQ(m.vips().at("10.100.0.2"), "");  // no check: always up
  uint64_t beat = 0;
  auto run_until = [&](auto pred) {
    for (uint64_t end = NowMs() + 3000; NowMs() < end;) {
      m.Tick(NowMs(), {++beat});
      if (pred()) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return false;
  };
  ASSERT_TRUE(run_until([&] { return m.unhealthy().empty(); }));
  m.Announce(*cfg);
  EXPECT_EQ(m.vips().at("10.100.0.1"), "");
  EXPECT_EQ(m.backends().at(checked).last_detail, "HTTP 200");
  server.reset();  // the backend's server stops
  ASSERT_TRUE(run_until([&] { return m.unhealthy().count(checked) == 1; }));
  m.Announce(*cfg);
  EXPECT_EQ(m.vips().at("10.100.0.1"), "no service of this VIP has a healthy backend");
  // A worker that stops progressing withdraws everything.
  uint64_t now = NowMs();
  m.Tick(now, {beat});
  m.Tick(now + 600, {beat});
  EXPECT_FALSE(m.workers_healthy());
  m.Announce(*cfg);
  EXPECT_EQ(m.vips().at("10.100.0.2"), "a worker is stalled");
  // The typed view says the same: worker 0 stalled, both VIPs withdrawn with their reason, the
  // checked backend down with its last result, the unchecked one up.
  const HealthView view = m.View(now + 600);
  EXPECT_FALSE(view.workers_healthy);
  ASSERT_EQ(view.workers.size(), 1u);
  EXPECT_TRUE(view.workers[0].stalled);
  ASSERT_EQ(view.vips.size(), 2u);
  EXPECT_EQ(view.vips[1].vip, "10.100.0.2");
  EXPECT_FALSE(view.vips[1].announced);
  EXPECT_EQ(view.vips[1].reason, "a worker is stalled");
  ASSERT_EQ(view.backends.size(), 2u);
  EXPECT_EQ(view.backends[0].service, "10.100.0.1:80/tcp");
  EXPECT_TRUE(view.backends[0].checked);
  EXPECT_FALSE(view.backends[0].up);
  EXPECT_NE(view.backends[0].last_check, "not checked yet");
  EXPECT_TRUE(view.backends[0].last_check_age_ms.has_value());
  EXPECT_FALSE(view.backends[1].checked);
  EXPECT_TRUE(view.backends[1].up);
  bool logged = false;
  for (const auto& l : log) logged = logged || l.find("is down") != std::string::npos;
  EXPECT_TRUE(logged);
}

// Equal checks of one backend share one probe (a backend behind many services' ports is
// probed once per interval, not once per service), each service records the results with
// its own rise/fall; the probe's sockets close with a reset, leaving no TIME_WAIT behind.
TEST(HealthMonitorTest, EqualChecksShareOneProbe) {
  auto server = std::make_unique<Server>("", true, /*hold=*/true);
  const uint16_t server_port = server->port();
  const std::string port = std::to_string(server_port);
  std::string services;
  for (int i = 0; i < 10; ++i) {
    services += std::string(i ? "," : "") + R"({"vip": "10.100.0.1", "port": )" +
                std::to_string(80 + i) + R"(, "protocol": "tcp",
       "health_check": {"type": "tcp", "port": )" + port +
                R"(, "interval_ms": 50, "timeout_ms": 40, "rise": )" + std::to_string(1 + i % 3) +
                R"(, "fall": 2}, "backends": [{"id": 1, "address": "127.0.0.1"}]})";
  }
  auto cfg = ParseConfig(R"({"host": {"address": "10.0.0.11"}, "services": [)" + services + "]}");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  HealthMonitor m(nullptr, 1, 5000, [](const std::string&) {});
  m.SetConfig(*cfg, NowMs());
  uint64_t beat = 0;
  const uint64_t t0 = NowMs();
  while (NowMs() < t0 + 600) {
    m.Tick(NowMs(), {++beat});
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  // 600 ms at one probe per 50 ms: about 12 connections (10 services would make 120).
  EXPECT_GE(server->accepted(), 5);
  EXPECT_LE(server->accepted(), 20);
  EXPECT_TRUE(m.unhealthy().empty()) << "every service saw the probe's successes";
  for (const auto& [key, b] : m.backends()) EXPECT_TRUE(b.up) << key.first;
  // The server closes its ends only now: a checker socket closed with a FIN would sit in
  // FIN_WAIT2, then TIME_WAIT; closed with a reset, nothing of it is left on this side.
  server.reset();
  std::ifstream tcp("/proc/net/tcp");
  char hex[8];
  std::snprintf(hex, sizeof(hex), ":%04X", server_port);
  int lingering = 0;
  for (std::string line; std::getline(tcp, line);) {
    std::istringstream f(line);
    std::string sl, local, remote, st;
    f >> sl >> local >> remote >> st;
    lingering += remote.size() > 5 && remote.substr(remote.size() - 5) == hex &&
                 (st == "06" || st == "05");  // TIME_WAIT, FIN_WAIT2
  }
  EXPECT_EQ(lingering, 0);
}

// Every check type of the config reaches the checker as configured: a DNS check (its
// query_type named in the config) and a script check (backend and port in its environment)
// bring their backends up; a UDP check whose expected text never comes keeps its down.
TEST(HealthMonitorTest, ConfiguredCheckTypesDriveBackends) {
  UdpServer dns([](const std::string& q) {
    // Answers only an AAAA question (type 28 in the query's last four bytes).
    const bool aaaa = q.size() > 16 && q[q.size() - 3] == 28;
    return aaaa ? std::vector<std::string>{DnsReply(q, 0, 1)} : std::vector<std::string>{};
  });
  UdpServer echo([](const std::string&) { return std::vector<std::string>{"busy"}; });
  auto cfg = ParseConfig(R"({"host": {"address": "10.0.0.11"}, "services": [
      {"vip": "10.100.0.1", "port": 53, "protocol": "udp",
       "health_check": {"type": "dns", "port": )" + std::to_string(dns.port()) + R"(,
                        "query": "example.com", "query_type": "AAAA",
                        "interval_ms": 50, "timeout_ms": 40, "rise": 1, "fall": 1},
       "backends": [{"id": 1, "address": "127.0.0.1"}]},
      {"vip": "10.100.0.2", "port": 25, "protocol": "tcp",
       "health_check": {"type": "script", "command": ["/bin/sh", "-c",
                        "test \"$ECMPLB_BACKEND:$ECMPLB_PORT\" = 127.0.0.1:25"],
                        "interval_ms": 100, "timeout_ms": 90, "rise": 1, "fall": 1},
       "backends": [{"id": 1, "address": "127.0.0.1"}]},
      {"vip": "10.100.0.3", "port": 5000, "protocol": "udp",
       "health_check": {"type": "udp", "port": )" + std::to_string(echo.port()) + R"(,
                        "send": "PING", "expect": "PONG",
                        "interval_ms": 50, "timeout_ms": 40, "rise": 1, "fall": 1},
       "backends": [{"id": 1, "address": "127.0.0.1"}]}]})");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  HealthMonitor m(nullptr, 1, 5000, [](const std::string&) {});
  m.SetConfig(*cfg, NowMs());
  uint64_t beat = 0;
  for (const uint64_t t0 = NowMs(); NowMs() < t0 + 2000 && m.unhealthy().size() != 1;) {
    m.Tick(NowMs(), {++beat});
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  EXPECT_EQ(m.unhealthy(), (std::set<BackendRef>{{"10.100.0.3:5000/udp", 1}}));
  const auto& b = m.backends();
  EXPECT_EQ(b.at({"10.100.0.1:53/udp", 1}).last_detail, "DNS NOERROR, 1 answer");
  EXPECT_EQ(b.at({"10.100.0.2:25/tcp", 1}).last_detail, "exit 0");
  EXPECT_EQ(b.at({"10.100.0.3:5000/udp", 1}).last_detail,
            "reply of 4 bytes without the expected text");
  EXPECT_GT(echo.received(), 0);
}

// After a command, the monitor follows the one service that changed (SetService) and ends
// where following the whole configuration (SetConfig) ends: same backends, states (a backend
// that stays keeps its state), unhealthy set and probes (one still used by another service
// stays; one nobody uses stops).
TEST(HealthMonitorTest, FollowingOneServiceMatchesFollowingTheConfiguration) {
  Server server("", true);
  const std::string check = R"("health_check": {"type": "tcp", "port": )" +
                            std::to_string(server.port()) +
                            R"(, "interval_ms": 50, "timeout_ms": 40, "rise": 1, "fall": 1})";
  auto config = [&](const std::string& services) {
    auto c = ParseConfig(R"({"host": {"address": "10.0.0.11"}, "services": [)" + services + "]}");
    EXPECT_TRUE(c.ok()) << c.status();
    return *c;
  };
  const std::string s0 = R"({"vip": "10.100.0.1", "port": 80, "protocol": "tcp", )" + check +
                         R"(, "backends": [{"id": 1, "address": "127.0.0.1"},
                                          {"id": 2, "address": "127.0.0.2"}]})";
  const std::string s0b = R"({"vip": "10.100.0.1", "port": 80, "protocol": "tcp", )" + check +
                          R"(, "backends": [{"id": 1, "address": "127.0.0.1"},
                                           {"id": 3, "address": "127.0.0.3"}]})";
  const std::string s1 = R"({"vip": "10.100.0.1", "port": 81, "protocol": "tcp", )" + check +
                         R"(, "backends": [{"id": 1, "address": "127.0.0.1"},
                                          {"id": 2, "address": "127.0.0.4"}]})";
  const std::string s2 = R"({"vip": "10.100.0.2", "port": 80, "protocol": "tcp",
                             "backends": [{"id": 1, "address": "10.0.0.50"}]})";
  HealthMonitor whole(nullptr, 1, 5000, [](const std::string&) {});
  HealthMonitor one(nullptr, 1, 5000, [](const std::string&) {});
  Config c = config(s0 + "," + s1);
  whole.SetConfig(c, NowMs());
  one.SetConfig(c, NowMs());
  EXPECT_EQ(one.probes(), 3u);  // 127.0.0.1 (both services), .2, .4
  uint64_t beat = 0;
  for (const uint64_t t0 = NowMs(); NowMs() < t0 + 2000;) {
    whole.Tick(NowMs(), {++beat});
    one.Tick(NowMs(), {beat});
    if (whole.unhealthy().size() == 2 && one.unhealthy().size() == 2) break;  // .2 and .4
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(one.unhealthy().size(), 2u);
  ASSERT_TRUE(one.backends().at({"10.100.0.1:80/tcp", 1}).up);

  auto same = [&](const char* step) {
    ASSERT_EQ(whole.backends().size(), one.backends().size()) << step;
    for (const auto& [key, b] : whole.backends()) {
      auto it = one.backends().find(key);
      ASSERT_NE(it, one.backends().end()) << step << " " << key.first << "/" << key.second;
      EXPECT_EQ(it->second.address, b.address) << step;
      EXPECT_EQ(it->second.up, b.up) << step << " " << key.first << "/" << key.second;
      EXPECT_EQ(it->second.checked, b.checked) << step;
    }
    EXPECT_EQ(whole.unhealthy(), one.unhealthy()) << step;
    EXPECT_EQ(whole.probes(), one.probes()) << step;
  };
  // Service 0: backend 2 leaves, 3 comes (down until checked); backend 1 stays up.
  c = config(s0b + "," + s1);
  whole.SetConfig(c, NowMs());
  one.SetService("10.100.0.1:80/tcp", &c.services[0], NowMs());
  same("backend replaced");
  EXPECT_TRUE(one.backends().at({"10.100.0.1:80/tcp", 1}).up);
  EXPECT_FALSE(one.backends().at({"10.100.0.1:80/tcp", 3}).up);
  EXPECT_EQ(one.probes(), 3u);  // .2's probe stopped, .3's started
  // Service 1 leaves: the probe of 127.0.0.1 stays (service 0 uses it), .4's stops.
  c = config(s0b);
  whole.SetConfig(c, NowMs());
  one.SetService("10.100.0.1:81/tcp", nullptr, NowMs());
  same("service removed");
  EXPECT_EQ(one.probes(), 2u);
  // A service without a check comes: its backend is up, no probe.
  c = config(s0b + "," + s2);
  whole.SetConfig(c, NowMs());
  one.SetService("10.100.0.2:80/tcp", &c.services[1], NowMs());
  same("unchecked service added");
  EXPECT_TRUE(one.backends().at({"10.100.0.2:80/tcp", 1}).up);
  EXPECT_EQ(one.probes(), 2u);
}

// A hold keeps withdrawn VIPs back and never withdraws an announced one; held() says whether it
// kept a ready VIP back.
TEST(HealthMonitorTest, HoldKeepsWithdrawnVipsBackOnly) {
  auto cfg = ParseConfig(R"({"host": {"address": "10.0.0.11"}, "services": [
      {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "backends": [{"id": 1, "address": "10.0.0.5"}]},
      {"vip": "10.100.0.2", "port": 80, "protocol": "tcp", "admin_up": false,
       "backends": [{"id": 1, "address": "10.0.0.5"}]}]})");
  ASSERT_TRUE(cfg.ok()) << cfg.status();
  HealthMonitor m(nullptr, 1, 500, [](const std::string&) {});
  m.SetConfig(*cfg, NowMs());
  m.SetHold("waiting for the peers");
  m.Announce(*cfg);
  EXPECT_EQ(m.vips().at("10.100.0.1"), "waiting for the peers");
  EXPECT_EQ(m.vips().at("10.100.0.2"), "administratively down");  // its own reason first
  EXPECT_TRUE(m.held());
  m.SetHold("");
  m.Announce(*cfg);
  EXPECT_EQ(m.vips().at("10.100.0.1"), "");
  EXPECT_FALSE(m.held());
  m.SetHold("waiting again");  // announced: stays announced, nothing held
  m.Announce(*cfg);
  EXPECT_EQ(m.vips().at("10.100.0.1"), "");
  EXPECT_FALSE(m.held());
  EXPECT_TRUE(m.View(NowMs()).vips[0].announced);
}

// Withdrawn VIPs wait while a peer is silent; once a VIP is ready and held, at most wait_ms
// (counted while it stays held); then not again for that peer until it speaks.
TEST(SilentPeerWaitTest, HoldsWhileSilentBoundedOnceReady) {
  constexpr uint64_t kA = 1, kB = 2;  // peers 0 and 1
  SilentPeerWait w(3000);
  EXPECT_EQ(w.Step(0, 0, false), "");
  // Silent, no VIP ready yet (the link is down, health failing): holds, no deadline running.
  EXPECT_NE(w.Step(1000, kA, false), "");
  EXPECT_NE(w.Step(60000, kA, false), "");
  // A VIP is ready and held at 60,000: the wait runs until 63,000.
  EXPECT_NE(w.Step(60000, kA, true), "");
  EXPECT_NE(w.Step(62999, kA, true), "");
  EXPECT_FALSE(w.gave_up());
  EXPECT_EQ(w.Step(63000, kA, true), "");
  EXPECT_TRUE(w.gave_up());
  EXPECT_EQ(w.Step(70000, kA, true), "");  // gave up on A for this silence
  EXPECT_FALSE(w.gave_up());
  // B falls silent too (A still dead): waited for anew.
  EXPECT_NE(w.Step(71000, kA | kB, false), "");
  EXPECT_NE(w.Step(72000, kA | kB, true), "");
  EXPECT_EQ(w.Step(75000, kA | kB, true), "");
  // Both speak (heal): no hold; a later silence of A waits again from scratch.
  EXPECT_EQ(w.Step(80000, 0, false), "");
  EXPECT_NE(w.Step(90000, kA, true), "");
  EXPECT_NE(w.Step(92000, kA, true), "");
  EXPECT_EQ(w.Step(93000, kA, true), "");
}

// The wait counts only while a VIP is held ready: health falling again restarts it.
TEST(SilentPeerWaitTest, TheWaitRestartsWhenNothingIsHeld) {
  SilentPeerWait w(3000);
  EXPECT_NE(w.Step(0, 1, true), "");
  EXPECT_NE(w.Step(2000, 1, false), "");  // nothing ready any more
  EXPECT_NE(w.Step(4000, 1, true), "");   // ready again: 3 s from here
  EXPECT_NE(w.Step(6500, 1, true), "");
  EXPECT_EQ(w.Step(7000, 1, true), "");
}

// The peer speaks before the wait is over: the hold ends at once (the heal fetch takes over).
TEST(SilentPeerWaitTest, PeerHeardEndsTheWait) {
  SilentPeerWait w(3000);
  EXPECT_NE(w.Step(100, 1, true), "");
  EXPECT_EQ(w.Step(900, 0, true), "");
  EXPECT_FALSE(w.gave_up());
  EXPECT_NE(w.Step(5000, 1, true), "");  // a new silence holds again
}

}  // namespace
}  // namespace ecmplb::control
