// Tests of the Prometheus rendering and the /metrics endpoint on loopback.
#include "control/metrics.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <thread>

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
ecmplb_parse_drops_total{worker="0",reason="bad_ip_checksum"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_ip_header_length"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_ip_total_length"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_ip_version"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_quoted_ip"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_tcp_header_length"} 0
ecmplb_parse_drops_total{worker="0",reason="bad_udp_length"} 0
ecmplb_parse_drops_total{worker="0",reason="not_icmp_error"} 0
ecmplb_parse_drops_total{worker="0",reason="not_ip"} 0
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

TEST(MetricsTest, BadListenAddressIsRefused) {
  EXPECT_EQ(MetricsServer::Listen("localhost").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Listen("1.2.3.4.5:80").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MetricsServer::Listen("127.0.0.1:99999").status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ecmplb::control
