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

using nlohmann::json;

json SampleStats() {
  return json::parse(
      R"({"workers": [{"id": 0, "counters": {"rx_packets": 10, "forward_dr": 7, "drop_parse": 1},
                                      "parse": {"truncated_ip": 1}, "conntrack": {"entries": 5}}],
                         "services": [{"service": "10.1.1.1:80/tcp", "packets": 7, "bytes": 700,
                                       "backends": [{"id": 1, "address": "10.0.0.21", "packets": 7, "bytes": 700}]}]})");
}

json SampleHealth() {
  return json::parse(R"({"workers_healthy": true,
                         "vips": {"10.1.1.1": {"announced": true, "reason": "serving"},
                                  "10.1.1.2": {"announced": false, "reason": "draining"}},
                         "backends": [{"service": "10.1.1.1:80/tcp", "id": 1, "address": "10.0.0.21", "up": true}]})");
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
