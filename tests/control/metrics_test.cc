// Tests of the Prometheus rendering and the /metrics endpoint on loopback: GET /metrics only;
// a body larger than the socket buffers arrives whole to a slow reader over many polls; idle
// and slow-header connections do not keep a scraper out; a flood of requests costs one render
// per render interval; every Poll's work is bounded (accepts, bytes read, bytes written,
// renders: counted, never timed); refused and dropped clients are counted in the body.
#include "control/metrics.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"

namespace ecmplb::control {
namespace {

using dataplane::Counter;
using dataplane::ParseResult;

StatsView SampleStats() {
  StatsView s;
  StatsView::Worker w;
  w.name = "worker0";
  w.id = 0;
  w.counters[static_cast<size_t>(Counter::rx_packets)] = 10;
  w.counters[static_cast<size_t>(Counter::forward_dr)] = 7;
  w.counters[static_cast<size_t>(Counter::drop_parse)] = 1;
  w.parse[static_cast<size_t>(ParseResult::kTruncatedIp)] = 1;
  w.conntrack = StatsView::Conntrack{};
  w.conntrack->entries = 5;
  s.workers.push_back(w);
  StatsView::Service svc;
  svc.service = "10.1.1.1:80/tcp";
  svc.packets = 7;
  svc.bytes = 700;
  StatsView::Backend b;
  b.id = 1;
  b.address = "10.0.0.21";
  b.packets = 7;
  b.bytes = 700;
  svc.backends.push_back(b);
  s.services.push_back(svc);
  return s;
}

HealthView SampleHealth() {
  HealthView h;
  h.workers_healthy = true;
  h.vips = {{"10.1.1.1", true, "serving"}, {"10.1.1.2", false, "draining"}};
  HealthView::Backend b;
  b.service = "10.1.1.1:80/tcp";
  b.id = 1;
  b.address = "10.0.0.21";
  b.up = true;
  h.backends.push_back(b);
  return h;
}

TEST(MetricsTest, RendersEveryFamily) {
  std::string t = RenderPrometheus(SampleStats(), SampleHealth());
  EXPECT_NE(
      t.find("# TYPE ecmplb_rx_packets_total counter\necmplb_rx_packets_total{worker=\"0\"} 10\n"),
      std::string::npos)
      << t;
  EXPECT_NE(t.find("ecmplb_forward_dr_total{worker=\"0\"} 7\n"), std::string::npos);
  EXPECT_NE(t.find("ecmplb_drop_tx_full_total{worker=\"0\"} 0\n"),
            std::string::npos);  // every counter, even 0
  EXPECT_NE(t.find("ecmplb_parse_drops_total{worker=\"0\",reason=\"truncated_ip\"} 1\n"),
            std::string::npos);
  EXPECT_NE(t.find("ecmplb_conntrack_entries{worker=\"0\"} 5\n"), std::string::npos);
  EXPECT_NE(t.find("ecmplb_backend_packets_total{service=\"10.1.1.1:80/"
                   "tcp\",backend=\"10.0.0.21\",id=\"1\"} 7\n"),
            std::string::npos);
  EXPECT_NE(t.find("ecmplb_workers_healthy 1\n"), std::string::npos);
  EXPECT_NE(t.find("ecmplb_vip_announced{vip=\"10.1.1.2\"} 0\n"), std::string::npos);
  EXPECT_NE(
      t.find("ecmplb_backend_up{service=\"10.1.1.1:80/tcp\",backend=\"10.0.0.21\",id=\"1\"} 1\n"),
      std::string::npos);
}

// Without per-backend series a large host keeps a few series per service: no backend label
// anywhere, the per-service count of backends up instead.
TEST(MetricsTest, PerBackendSeriesAreOptional) {
  const std::string t = RenderPrometheus(SampleStats(), SampleHealth(), false);
  EXPECT_EQ(t.find("backend=\""), std::string::npos) << t;
  EXPECT_EQ(t.find("ecmplb_backend_"), std::string::npos) << t;
  EXPECT_NE(t.find("ecmplb_service_packets_total{service=\"10.1.1.1:80/tcp\"}"),
            std::string::npos);
  EXPECT_NE(t.find("ecmplb_service_backends_up{service=\"10.1.1.1:80/tcp\"} 1\n"),
            std::string::npos)
      << t;
  EXPECT_NE(RenderPrometheus(SampleStats(), SampleHealth(), true)
                .find("ecmplb_service_backends_up{service=\"10.1.1.1:80/tcp\"} 1\n"),
            std::string::npos);
}

// Exact text: parse drop reasons in name order, then conntrack, services, health.
TEST(MetricsTest, RendersExactText) {
  StatsView stats = SampleStats();
  HealthView health = SampleHealth();
  health.backends[0].address = "a\"b\\c\nd";  // label values are escaped
  const std::string t = RenderPrometheus(stats, health);
  const size_t parse = t.find("# HELP ecmplb_parse_drops_total");
  ASSERT_NE(parse, std::string::npos);
  EXPECT_EQ(t.substr(parse), R"(# HELP ecmplb_parse_drops_total malformed packets dropped, by reason
# TYPE ecmplb_parse_drops_total counter
ecmplb_parse_drops_total{worker="0",reason="bad_extension_header"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_ip_checksum"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_ip_header_length"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_ip_total_length"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_ip_version"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_quoted_ip"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_tcp_header_length"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_udp_length"} 0
ecmplb_parse_drops_total{worker="0",reason="incomplete_header_chain"} 0
ecmplb_parse_drops_total{worker="0",reason="not_icmp_error"} 0
ecmplb_parse_drops_total{worker="0",reason="not_ip"} 0
ecmplb_parse_drops_total{worker="0",reason="too_many_extension_headers"} 0
ecmplb_parse_drops_total{worker="0",reason="truncated_ethernet"} 0
ecmplb_parse_drops_total{worker="0",reason="truncated_icmp_quote"} 0
ecmplb_parse_drops_total{worker="0",reason="truncated_ip"} 1
ecmplb_parse_drops_total{worker="0",reason="truncated_l4"} 0
ecmplb_parse_drops_total{worker="0",reason="truncated_vlan"} 0
ecmplb_parse_drops_total{worker="0",reason="unsupported_vlan"} 0
# HELP ecmplb_conntrack_entries flows held in the worker's connection table
# TYPE ecmplb_conntrack_entries gauge
ecmplb_conntrack_entries{worker="0"} 5
# HELP ecmplb_service_packets_total packets forwarded for a service
# TYPE ecmplb_service_packets_total counter
# HELP ecmplb_service_bytes_total bytes forwarded for a service
# TYPE ecmplb_service_bytes_total counter
# HELP ecmplb_backend_packets_total packets forwarded to a backend
# TYPE ecmplb_backend_packets_total counter
# HELP ecmplb_backend_bytes_total bytes forwarded to a backend
# TYPE ecmplb_backend_bytes_total counter
ecmplb_service_packets_total{service="10.1.1.1:80/tcp"} 7
ecmplb_service_bytes_total{service="10.1.1.1:80/tcp"} 700
ecmplb_backend_packets_total{service="10.1.1.1:80/tcp",backend="10.0.0.21",id="1"} 7
ecmplb_backend_bytes_total{service="10.1.1.1:80/tcp",backend="10.0.0.21",id="1"} 700
# HELP ecmplb_workers_healthy 1 while every worker makes progress
# TYPE ecmplb_workers_healthy gauge
ecmplb_workers_healthy 1
# HELP ecmplb_backend_up 1 while the backend passes its health checks (or has none)
# TYPE ecmplb_backend_up gauge
ecmplb_backend_up{service="10.1.1.1:80/tcp",backend="a\"b\\c\nd",id="1"} 1
# HELP ecmplb_service_backends_up backends of the service passing their health checks
# TYPE ecmplb_service_backends_up gauge
ecmplb_service_backends_up{service="10.1.1.1:80/tcp"} 1
# HELP ecmplb_vip_announced 1 while the VIP is announced (present on the announce interface)
# TYPE ecmplb_vip_announced gauge
ecmplb_vip_announced{vip="10.1.1.1"} 1
ecmplb_vip_announced{vip="10.1.1.2"} 0
)");
  // Before it, one family per named counter, each with its help and every worker's value.
  EXPECT_EQ(t.rfind("# HELP ecmplb_rx_packets_total ", 0), 0u) << t.substr(0, 200);
  size_t families = 0;
  for (size_t at = 0; (at = t.find("# TYPE ", at)) < parse; ++at) ++families;
  EXPECT_EQ(families, dataplane::kNumCounters);
}

std::string Get(uint16_t port, const std::string& request, MetricsServer& server) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)), 0);
  ::send(fd, request.data(), request.size(), 0);
  std::string out;
  for (int i = 0; i < 200; ++i) {
    server.Poll(static_cast<uint64_t>(i),
                [] { return RenderPrometheus(SampleStats(), SampleHealth()); });
    char buf[4096];
    ssize_t n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) out.append(buf, static_cast<size_t>(n));
    if (n == 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::close(fd);
  return out;
}

TEST(MetricsTest, ServesGetMetricsOnly) {
  auto server = MetricsServer::Listen("127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status();
  std::string ok = Get((*server)->port(), "GET /metrics HTTP/1.0\r\n\r\n", **server);
  EXPECT_EQ(ok.rfind("HTTP/1.0 200 OK", 0), 0u) << ok;
  EXPECT_NE(ok.find("ecmplb_workers_healthy 1"), std::string::npos);
  std::string nf = Get((*server)->port(), "GET /secret HTTP/1.0\r\n\r\n", **server);
  EXPECT_EQ(nf.rfind("HTTP/1.0 404", 0), 0u) << nf;
}

// A connected loopback client; `rcvbuf` > 0 shrinks its receive buffer (before connect, so
// the window is small from the start).
int Connect(uint16_t port, int rcvbuf = 0, bool nonblocking = false) {
  int fd = ::socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (rcvbuf > 0) ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  EXPECT_TRUE(rc == 0 || (nonblocking && errno == EINPROGRESS)) << std::strerror(errno);
  return fd;
}

void Send(int fd, const std::string& s) {
  EXPECT_EQ(::send(fd, s.data(), s.size(), MSG_NOSIGNAL), static_cast<ssize_t>(s.size()));
}

// Everything readable now (non-blocking); `closed` set when the peer closed.
std::string Drain(int fd, bool* closed, size_t at_most = SIZE_MAX) {
  std::string out;
  char buf[65536];
  while (out.size() < at_most) {
    ssize_t n = ::recv(fd, buf, std::min(sizeof(buf), at_most - out.size()), MSG_DONTWAIT);
    if (n == 0) *closed = true;
    if (n <= 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

// The body of a complete "200 OK" response with a Content-Length, or "" if incomplete.
std::string BodyOf(const std::string& response) {
  const size_t end = response.find("\r\n\r\n");
  const size_t cl = response.find("Content-Length: ");
  if (end == std::string::npos || cl == std::string::npos) return "";
  const size_t len = std::stoul(response.substr(cl + 16));
  if (response.size() != end + 4 + len) return "";
  return response.substr(end + 4);
}

// Bytes that tell every offset apart (a lost or repeated chunk changes the text).
std::string BigBody(size_t bytes) {
  std::string b;
  b.reserve(bytes + 32);
  for (size_t line = 0; b.size() < bytes; ++line) absl::StrAppend(&b, "ecmplb_line ", line, "\n");
  return b;
}

TEST(MetricsTest, BigBodyArrivesWholeToASlowReader) {
  MetricsServer::Options o;
  o.write_bytes_per_poll = 256 * 1024;
  auto server = MetricsServer::Listen("127.0.0.1:0", o);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string body = BigBody(8 * 1024 * 1024);  // far beyond any socket buffer here
  int renders = 0;
  auto render = [&] {
    ++renders;
    return body;
  };
  int fd = Connect((*server)->port(), /*rcvbuf=*/16384);
  Send(fd, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
  uint64_t now = 1000;
  // Polls until the request is in and the response has started.
  for (int i = 0; i < 200 && (*server)->stats().bytes_written == 0; ++i) {
    (*server)->Poll(now, render);
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GT((*server)->stats().bytes_written, 0u);
  EXPECT_EQ((*server)->stats().responses, 0u);  // not in one send: still owed
  EXPECT_EQ((*server)->clients(), 1u);
  std::string got;
  bool closed = false;
  int polls = 0;
  uint64_t last_written = (*server)->stats().bytes_written;
  while (!closed && polls < 100000) {
    now += 1;  // 1 ms a poll: the reader takes far longer than write_stall_ms would allow
               // only if it stopped reading; it reads a little every poll
    (*server)->Poll(now, render);
    ++polls;
    EXPECT_LE((*server)->stats().bytes_written - last_written, o.write_bytes_per_poll);
    last_written = (*server)->stats().bytes_written;
    got += Drain(fd, &closed, /*at_most=*/32 * 1024);  // a slow reader: 32 KiB per poll
    if (got.empty() && polls % 16 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ::close(fd);
  ASSERT_TRUE(closed) << got.size() << " bytes after " << polls << " polls";
  EXPECT_EQ(got.rfind("HTTP/1.0 200 OK\r\n", 0), 0u);
  const std::string received = BodyOf(got);
  ASSERT_FALSE(received.empty()) << "incomplete: " << got.size() << " bytes";
  EXPECT_EQ(received.substr(0, body.size()), body);  // then the endpoint's own counters
  EXPECT_EQ(received.substr(body.size()).rfind("# HELP ecmplb_metrics_clients_refused_total", 0),
            0u);
  EXPECT_GT(polls, 10);  // it took many polls, within the per-poll write bound
  EXPECT_EQ(renders, 1);
  EXPECT_EQ((*server)->stats().responses, 1u);
  EXPECT_EQ((*server)->clients(), 0u);
}

// 100 idle connections and slow-header clients (a byte now and then, never a complete head)
// fill the endpoint; a scraper connecting after them is still answered: each new connection
// evicts the oldest client still sending its request. Every Poll's work stays bounded.
TEST(MetricsTest, IdleAndSlowClientsDoNotKeepAScraperOut) {
  MetricsServer::Options o;  // the daemon's bounds
  auto server = MetricsServer::Listen("127.0.0.1:0", o);
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->port();
  int renders = 0;
  auto render = [&] {
    ++renders;
    return RenderPrometheus(SampleStats(), SampleHealth());
  };
  uint64_t now = 5000;  // the fake clock moves 1 ms a poll: no timeout helps here
  MetricsServer::Stats last = (*server)->stats();
  auto poll = [&] {
    (*server)->Poll(++now, render);
    const MetricsServer::Stats& s = (*server)->stats();
    EXPECT_LE(s.accepted - last.accepted, o.accepts_per_poll);
    EXPECT_LE(s.bytes_read - last.bytes_read, o.read_bytes_per_poll);
    EXPECT_LE(s.bytes_written - last.bytes_written, o.write_bytes_per_poll);
    EXPECT_LE(s.renders - last.renders, 1u);
    EXPECT_LE((*server)->clients(), o.max_clients + o.accepts_per_poll);  // Sweep ran
    last = s;
  };
  std::vector<int> idle, slow;
  for (int i = 0; i < 100; ++i) idle.push_back(Connect(port, 0, /*nonblocking=*/true));
  for (int i = 0; i < 20; ++i) {
    slow.push_back(Connect(port));
    Send(slow.back(), "GET /metrics HTTP/1.0\r\nX-Slow: ");
  }
  for (int i = 0; i < 3; ++i) poll();
  // The scraper queues behind most of the flood.
  int scraper = Connect(port);
  Send(scraper, "GET /metrics HTTP/1.0\r\n\r\n");
  std::string got;
  bool closed = false;
  for (int i = 0; i < 500 && !closed; ++i) {
    for (int fd : slow) ::send(fd, "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);  // one byte a poll
    poll();
    got += Drain(scraper, &closed);
    if (!closed) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  EXPECT_TRUE(closed);
  EXPECT_EQ(got.rfind("HTTP/1.0 200 OK", 0), 0u) << got.substr(0, 200);
  EXPECT_NE(BodyOf(got).find("ecmplb_workers_healthy 1\n"), std::string::npos);
  EXPECT_EQ(renders, 1);  // only the scraper completed a request
  EXPECT_EQ((*server)->stats().accepted, 121u);
  const uint64_t evicted =
      (*server)->stats().refused[static_cast<size_t>(MetricsServer::Refusal::kEvicted)];
  EXPECT_GE(evicted, 121u - o.max_clients);
  EXPECT_LE((*server)->clients(), o.max_clients);
  for (int fd : idle) ::close(fd);
  for (int fd : slow) ::close(fd);
  ::close(scraper);
}

// Many complete requests at once: one render; within render_interval_ms the body is reused;
// after it, rendered again.
TEST(MetricsTest, RendersAtMostOncePerInterval) {
  auto server = MetricsServer::Listen("127.0.0.1:0");
  ASSERT_TRUE(server.ok()) << server.status();
  int renders = 0;
  auto render = [&] {
    ++renders;
    return absl::StrCat("ecmplb_render ", renders, "\n");
  };
  auto scrape_all = [&](std::vector<int> fds, uint64_t now) {
    for (int fd : fds) Send(fd, "GET /metrics HTTP/1.0\r\n\r\n");
    std::vector<std::string> got(fds.size());
    std::vector<bool> done(fds.size(), false);
    for (int i = 0; i < 500; ++i) {
      (*server)->Poll(now, render);
      size_t finished = 0;
      for (size_t k = 0; k < fds.size(); ++k) {
        bool closed = false;
        got[k] += Drain(fds[k], &closed);
        done[k] = done[k] || closed;
        finished += done[k];
      }
      if (finished == fds.size()) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
    for (int fd : fds) ::close(fd);
    return got;
  };
  std::vector<int> fds;
  for (int i = 0; i < 20; ++i) fds.push_back(Connect((*server)->port()));
  for (const std::string& r : scrape_all(fds, 1000)) {
    EXPECT_EQ(BodyOf(r).rfind("ecmplb_render 1\n", 0), 0u) << r;
  }
  EXPECT_EQ(renders, 1);
  auto again = scrape_all({Connect((*server)->port())}, 1050);  // within 100 ms: cached
  EXPECT_EQ(BodyOf(again[0]).rfind("ecmplb_render 1\n", 0), 0u) << again[0];
  EXPECT_EQ(renders, 1);
  again = scrape_all({Connect((*server)->port())}, 1100);
  EXPECT_EQ(BodyOf(again[0]).rfind("ecmplb_render 2\n", 0), 0u) << again[0];
  EXPECT_EQ(renders, 2);
}

// Reads one whole response from `fd`, polling `server` at `now`.
std::string Scrape(MetricsServer& server, int fd, uint64_t now,
                   const std::function<std::string()>& render) {
  Send(fd, "GET /metrics HTTP/1.0\r\n\r\n");
  std::string got;
  bool closed = false;
  for (int i = 0; i < 100000 && !closed; ++i) {
    server.Poll(now, render);
    got += Drain(fd, &closed);
    if (got.empty() && i % 64 == 63) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return got;
}

// Oversized and late requests, a full endpoint of clients being answered, and readers that
// stop reading: each refused or dropped, and counted in the body.
TEST(MetricsTest, RefusedAndDroppedClientsAreCounted) {
  MetricsServer::Options o;
  o.max_clients = 2;
  o.max_request = 1024;
  o.write_bytes_per_poll = 64 * 1024;
  auto server = MetricsServer::Listen("127.0.0.1:0", o);
  ASSERT_TRUE(server.ok()) << server.status();
  MetricsServer& m = **server;
  const std::string body = BigBody(16 * 1024 * 1024);  // more than the kernel buffers take
  auto render = [&] { return body; };
  using R = MetricsServer::Refusal;
  auto refused = [&](R r) { return m.stats().refused[static_cast<size_t>(r)]; };
  uint64_t now = 1000;
  auto poll_until = [&](auto done) {
    for (int i = 0; i < 2000 && !done(); ++i) {
      m.Poll(now, render);
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  };

  int big = Connect(m.port());
  Send(big, std::string(2000, 'x'));
  poll_until([&] { return refused(R::kRequestTooLarge) == 1; });
  EXPECT_EQ(refused(R::kRequestTooLarge), 1u);
  ::close(big);

  int late = Connect(m.port());
  poll_until([&] { return m.clients() == 1; });
  now += o.request_timeout_ms + 1;
  m.Poll(now, render);
  EXPECT_EQ(refused(R::kRequestTimeout), 1u);
  EXPECT_EQ(m.clients(), 0u);
  ::close(late);

  // Two readers that never read hold both slots with responses in flight: a third
  // connection has no slot to take (neither is still sending its request).
  int a = Connect(m.port(), 4096), b = Connect(m.port(), 4096);
  Send(a, "GET /metrics HTTP/1.0\r\n\r\n");
  Send(b, "GET /metrics HTTP/1.0\r\n\r\n");
  poll_until([&] { return m.stats().renders == 1 && m.clients() == 2; });
  ASSERT_EQ(m.clients(), 2u);
  int c = Connect(m.port());
  poll_until([&] { return refused(R::kTooManyClients) == 1; });
  EXPECT_EQ(refused(R::kTooManyClients), 1u);
  bool closed = false;
  poll_until([&] {
    Drain(c, &closed);
    return closed;
  });
  EXPECT_TRUE(closed);
  ::close(c);
  // Until the kernel's buffers are full, then no progress for write_stall_ms: both dropped.
  uint64_t written = 0;
  for (int same = 0, i = 0; same < 50 && i < 100000; ++i) {
    m.Poll(now, render);
    same = m.stats().bytes_written == written ? same + 1 : 0;
    written = m.stats().bytes_written;
  }
  EXPECT_LT(written, 2 * body.size());
  now += o.write_stall_ms + 1;
  m.Poll(now, render);
  EXPECT_EQ(refused(R::kWriteStalled), 2u);
  EXPECT_EQ(m.clients(), 0u);
  EXPECT_EQ(m.stats().responses, 0u);
  ::close(a);
  ::close(b);

  // The counters are in the next body (rendered anew: the last one is old).
  now += o.render_interval_ms;
  int scraper = Connect(m.port());
  const std::string text = BodyOf(Scrape(m, scraper, now, render));
  ::close(scraper);
  ASSERT_FALSE(text.empty());
  const std::string tail = text.substr(body.size());
  for (const char* line : {R"(ecmplb_metrics_clients_refused_total{reason="too_many_clients"} 1)",
                           R"(ecmplb_metrics_clients_refused_total{reason="evicted"} 0)",
                           R"(ecmplb_metrics_clients_refused_total{reason="request_too_large"} 1)",
                           R"(ecmplb_metrics_clients_refused_total{reason="request_timeout"} 1)",
                           R"(ecmplb_metrics_clients_refused_total{reason="write_stalled"} 2)",
                           R"(ecmplb_metrics_clients_refused_total{reason="busy"} 0)"}) {
    EXPECT_NE(tail.find(absl::StrCat(line, "\n")), std::string::npos) << line << "\n" << tail;
  }
}

// Responses owed beyond max_owed_bytes: the next scraper gets 503 and is counted.
TEST(MetricsTest, OwedBytesBoundAnswers503) {
  MetricsServer::Options o;
  o.write_bytes_per_poll = 4096;
  o.max_owed_bytes = 3 * 1024 * 1024;
  auto server = MetricsServer::Listen("127.0.0.1:0", o);
  ASSERT_TRUE(server.ok()) << server.status();
  MetricsServer& m = **server;
  const std::string body = BigBody(2 * 1024 * 1024);
  auto render = [&] { return body; };
  int a = Connect(m.port(), 4096);
  Send(a, "GET /metrics HTTP/1.0\r\n\r\n");
  for (int i = 0; i < 2000 && m.stats().bytes_written == 0; ++i) {
    m.Poll(1000, render);
    std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  int b = Connect(m.port());
  const std::string got = Scrape(m, b, 1000, render);
  ::close(b);
  EXPECT_EQ(got.rfind("HTTP/1.0 503 Service Unavailable\r\n", 0), 0u) << got.substr(0, 200);
  EXPECT_EQ(m.stats().refused[static_cast<size_t>(MetricsServer::Refusal::kBusy)], 1u);
  EXPECT_EQ(m.clients(), 1u);  // a is still being answered
  ::close(a);
}

TEST(MetricsTest, BadListenAddressIsRefused) {
  EXPECT_EQ(MetricsServer::Listen("localhost").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Listen("1.2.3.4.5:80").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Listen("127.0.0.1:99999").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ecmplb::control
