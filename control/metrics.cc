// metrics.cc: Prometheus text format and the /metrics endpoint (see metrics.h).
#include "control/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "dataplane/counters.h"

namespace ecmplb::control {
namespace {

std::string Escape(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}

// Parse drop reasons (ParseResult values but ok) in the order of their names.
std::vector<size_t> ParseReasonsByName() {
  std::vector<size_t> order;
  for (size_t i = 1; i < kParseResults; ++i) order.push_back(i);
  auto name = [](size_t i) {
    return std::string(dataplane::ParseResultName(static_cast<dataplane::ParseResult>(i)));
  };
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return name(a) < name(b); });
  return order;
}

}  // namespace

std::string RenderPrometheus(const StatsView& stats, const HealthView& health) {
  std::string out;
  auto help = [&](const std::string& name, const std::string& text, const char* type) {
    absl::StrAppend(&out, "# HELP ", name, " ", text, "\n# TYPE ", name, " ", type, "\n");
  };
  // Per-worker counters, one family per named counter.
  for (size_t i = 0; i < dataplane::kNumCounters; ++i) {
    std::string name = absl::StrCat("ecmplb_", std::string(dataplane::kCounterNames[i]), "_total");
    help(name, std::string(dataplane::kCounterHelp[i]), "counter");
    for (const auto& w : stats.workers)
      absl::StrAppend(&out, name, "{worker=\"", w.id, "\"} ", w.counters[i], "\n");
  }
  help("ecmplb_parse_drops_total", "malformed packets dropped, by reason", "counter");
  const std::vector<size_t> reasons = ParseReasonsByName();
  for (const auto& w : stats.workers) {
    for (size_t r : reasons) {
      absl::StrAppend(&out, "ecmplb_parse_drops_total{worker=\"", w.id, "\",reason=\"",
                      Escape(dataplane::ParseResultName(static_cast<dataplane::ParseResult>(r))),
                      "\"} ", w.parse[r], "\n");
    }
  }
  help("ecmplb_conntrack_entries", "flows held in the worker's connection table", "gauge");
  for (const auto& w : stats.workers) {
    if (w.conntrack) {
      absl::StrAppend(&out, "ecmplb_conntrack_entries{worker=\"", w.id, "\"} ",
                      w.conntrack->entries, "\n");
    }
  }
  help("ecmplb_service_packets_total", "packets forwarded for a service", "counter");
  help("ecmplb_service_bytes_total", "bytes forwarded for a service", "counter");
  help("ecmplb_backend_packets_total", "packets forwarded to a backend", "counter");
  help("ecmplb_backend_bytes_total", "bytes forwarded to a backend", "counter");
  for (const auto& s : stats.services) {
    std::string svc = Escape(s.service);
    absl::StrAppend(&out, "ecmplb_service_packets_total{service=\"", svc, "\"} ", s.packets, "\n");
    absl::StrAppend(&out, "ecmplb_service_bytes_total{service=\"", svc, "\"} ", s.bytes, "\n");
    for (const auto& b : s.backends) {
      std::string labels = absl::StrCat("{service=\"", svc, "\",backend=\"", Escape(b.address),
                                        "\",id=\"", b.id, "\"}");
      absl::StrAppend(&out, "ecmplb_backend_packets_total", labels, " ", b.packets, "\n");
      absl::StrAppend(&out, "ecmplb_backend_bytes_total", labels, " ", b.bytes, "\n");
    }
  }
  help("ecmplb_workers_healthy", "1 while every worker makes progress", "gauge");
  absl::StrAppend(&out, "ecmplb_workers_healthy ", health.workers_healthy ? 1 : 0, "\n");
  help("ecmplb_backend_up", "1 while the backend passes its health checks (or has none)", "gauge");
  for (const auto& b : health.backends) {
    absl::StrAppend(&out, "ecmplb_backend_up{service=\"", Escape(b.service), "\",backend=\"",
                    Escape(b.address), "\",id=\"", b.id, "\"} ", b.up ? 1 : 0, "\n");
  }
  help("ecmplb_vip_announced", "1 while the VIP is announced (present on the announce interface)",
       "gauge");
  for (const auto& v : health.vips) {
    absl::StrAppend(&out, "ecmplb_vip_announced{vip=\"", Escape(v.vip), "\"} ", v.announced ? 1 : 0,
                    "\n");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Listen(const std::string& listen) {
  std::string host;
  std::string port_text;
  if (!listen.empty() && listen[0] == '[') {
    size_t close = listen.find("]:");
    if (close == std::string::npos)
      return absl::InvalidArgumentError(
          absl::StrCat("metrics listen address '", listen, "': want [ADDRESS]:PORT"));
    host = listen.substr(1, close - 1);
    port_text = listen.substr(close + 2);
  } else {
    size_t colon = listen.rfind(':');
    if (colon == std::string::npos)
      return absl::InvalidArgumentError(
          absl::StrCat("metrics listen address '", listen, "': want ADDRESS:PORT"));
    host = listen.substr(0, colon);
    port_text = listen.substr(colon + 1);
  }
  char* end = nullptr;
  long port = std::strtol(port_text.c_str(), &end, 10);
  if (end == port_text.c_str() || *end != '\0' || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics listen address '", listen, "': bad port"));
  }
  sockaddr_storage ss{};
  socklen_t len;
  int family;
  if (inet_pton(AF_INET, host.c_str(), &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    family = AF_INET;
    reinterpret_cast<sockaddr_in*>(&ss)->sin_family = AF_INET;
    reinterpret_cast<sockaddr_in*>(&ss)->sin_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, host.c_str(), &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr) ==
             1) {
    family = AF_INET6;
    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_family = AF_INET6;
    reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port = htons(static_cast<uint16_t>(port));
    len = sizeof(sockaddr_in6);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("metrics listen address '", listen, "': bad address"));
  }
  std::unique_ptr<MetricsServer> m(new MetricsServer());
  m->fd_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(m->fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (m->fd_ < 0 || ::bind(m->fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(m->fd_, 16) != 0) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot listen for metrics on ", listen, ": ", std::strerror(errno)));
  }
  ::getsockname(m->fd_, reinterpret_cast<sockaddr*>(&ss), &len);
  m->port_ = ntohs(family == AF_INET ? reinterpret_cast<sockaddr_in*>(&ss)->sin_port
                                     : reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
  return m;
}

MetricsServer::~MetricsServer() {
  for (auto& c : clients_) ::close(c.fd);
  if (fd_ >= 0) ::close(fd_);
}

std::vector<size_t> MetricsServer::Step(uint64_t now_ms) {
  for (int k = 0; k < 16; ++k) {
    int c = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (c < 0) break;
    if (clients_.size() >= 32) {
      ::close(c);
      continue;
    }
    clients_.push_back({c, now_ms, {}});
  }
  std::vector<size_t> ready;
  for (size_t i = 0; i < clients_.size(); ++i) {
    Client& c = clients_[i];
    char buf[1024];
    ssize_t n;
    while ((n = ::recv(c.fd, buf, sizeof(buf), 0)) > 0 && c.req.size() < 8192)
      c.req.append(buf, static_cast<size_t>(n));
    bool closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    if (c.req.find("\r\n\r\n") != std::string::npos || c.req.find("\n\n") != std::string::npos) {
      ready.push_back(i);
    } else if (closed || c.req.size() >= 8192 || now_ms - c.since_ms > 1000) {
      c.done = true;
    }
  }
  if (ready.empty()) Sweep();
  return ready;
}

void MetricsServer::Respond(size_t i, const std::string& body) {
  Client& c = clients_[i];
  std::string resp;
  if (c.req.rfind("GET /metrics", 0) == 0 || c.req.rfind("GET / ", 0) == 0) {
    resp = absl::StrCat(
        "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: ",
        body.size(), "\r\nConnection: close\r\n\r\n", body);
  } else {
    resp =
        "HTTP/1.0 404 Not Found\r\nContent-Length: 24\r\nConnection: close\r\n\r\nonly GET "
        "/metrics here\r\n";
  }
  // Best effort: the response fits the socket buffer of a fresh connection in practice; a
  // client that cannot take it in one go gets a truncated response, never a blocked loop.
  ssize_t n = ::send(c.fd, resp.data(), resp.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  (void)n;
  c.done = true;
}

void MetricsServer::Sweep() {
  for (size_t i = 0; i < clients_.size();) {
    if (clients_[i].done) {
      ::close(clients_[i].fd);
      clients_[i] = clients_.back();
      clients_.pop_back();
    } else {
      ++i;
    }
  }
}

}  // namespace ecmplb::control
