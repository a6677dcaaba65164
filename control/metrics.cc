// metrics.cc: Prometheus text format and the /metrics endpoint (see metrics.h).
#include "control/metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>

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

std::string RenderPrometheus(const StatsView& stats, const HealthView& health,
                             bool per_backend) {
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
  if (per_backend) {
    help("ecmplb_backend_packets_total", "packets forwarded to a backend", "counter");
    help("ecmplb_backend_bytes_total", "bytes forwarded to a backend", "counter");
  }
  for (const auto& s : stats.services) {
    std::string svc = Escape(s.service);
    absl::StrAppend(&out, "ecmplb_service_packets_total{service=\"", svc, "\"} ", s.packets, "\n");
    absl::StrAppend(&out, "ecmplb_service_bytes_total{service=\"", svc, "\"} ", s.bytes, "\n");
    for (const auto& b : s.backends) {
      if (!per_backend) break;
      std::string labels = absl::StrCat("{service=\"", svc, "\",backend=\"", Escape(b.address),
                                        "\",id=\"", b.id, "\"}");
      absl::StrAppend(&out, "ecmplb_backend_packets_total", labels, " ", b.packets, "\n");
      absl::StrAppend(&out, "ecmplb_backend_bytes_total", labels, " ", b.bytes, "\n");
    }
  }
  if (stats.sync) {
    const SyncView& y = *stats.sync;
    auto counter = [&](const char* name, const char* text, uint64_t v) {
      help(name, text, "counter");
      absl::StrAppend(&out, name, " ", v, "\n");
    };
    counter("ecmplb_sync_entries_sent_total", "flows sent to the peer LB hosts", y.entries_sent);
    counter("ecmplb_sync_messages_sent_total", "sync datagrams sent (per peer)", y.messages_sent);
    counter("ecmplb_sync_bytes_sent_total", "sync bytes sent (per peer)", y.bytes_sent);
    counter("ecmplb_sync_send_errors_total", "sync datagrams not sent", y.send_errors);
    counter("ecmplb_sync_messages_received_total", "sync datagrams received",
            y.messages_received);
    counter("ecmplb_sync_entries_applied_total", "flows from peers written to the peer table",
            y.entries_applied);
    counter("ecmplb_sync_bulk_served_total", "bulk copies of the tables sent to peers whole",
            y.bulk_served);
    counter("ecmplb_sync_bulk_fetched_total", "bulk copies received from peers whole",
            y.bulk_fetched);
    counter("ecmplb_sync_bulk_entries_received_total", "flows in bulk copies received",
            y.bulk_entries_received);
    counter("ecmplb_sync_peer_heals_total", "peers heard again after a silence", y.peer_heals);
    help("ecmplb_sync_peers_alive", "peers heard within the last 3 s", "gauge");
    absl::StrAppend(&out, "ecmplb_sync_peers_alive ", y.peers_alive.size(), "\n");
    help("ecmplb_sync_rejected_total", "sync datagrams or entries refused, by reason", "counter");
    for (const auto& [reason, n] : y.rejected) {
      absl::StrAppend(&out, "ecmplb_sync_rejected_total{reason=\"", Escape(reason), "\"} ", n,
                      "\n");
    }
    help("ecmplb_sync_peer_entries", "flows held in the peer table", "gauge");
    absl::StrAppend(&out, "ecmplb_sync_peer_entries ", y.peer_entries, "\n");
    help("ecmplb_sync_lag_ms", "the oldest queued flow's wait before it was sent (last tick)",
         "gauge");
    absl::StrAppend(&out, "ecmplb_sync_lag_ms ", y.lag_ms, "\n");
  }
  help("ecmplb_workers_healthy", "1 while every worker makes progress", "gauge");
  absl::StrAppend(&out, "ecmplb_workers_healthy ", health.workers_healthy ? 1 : 0, "\n");
  if (per_backend) {
    help("ecmplb_backend_up", "1 while the backend passes its health checks (or has none)",
         "gauge");
    for (const auto& b : health.backends) {
      absl::StrAppend(&out, "ecmplb_backend_up{service=\"", Escape(b.service), "\",backend=\"",
                      Escape(b.address), "\",id=\"", b.id, "\"} ", b.up ? 1 : 0, "\n");
    }
  }
  help("ecmplb_service_backends_up", "backends of the service passing their health checks",
       "gauge");
  {
    std::map<std::string, uint64_t> up;  // health.backends is grouped by service
    for (const auto& b : health.backends) up[b.service] += b.up ? 1 : 0;
    for (const auto& [svc, n] : up) {
      absl::StrAppend(&out, "ecmplb_service_backends_up{service=\"", Escape(svc), "\"} ", n,
                      "\n");
    }
  }
  help("ecmplb_vip_announced", "1 while the VIP is announced (present on the announce interface)",
       "gauge");
  for (const auto& v : health.vips) {
    absl::StrAppend(&out, "ecmplb_vip_announced{vip=\"", Escape(v.vip), "\"} ", v.announced ? 1 : 0,
                    "\n");
  }
  return out;
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Listen(const std::string& listen,
                                                                     Options options) {
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
  std::unique_ptr<MetricsServer> m(new MetricsServer(options));
  m->fd_ = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  ::setsockopt(m->fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  // A backlog deep enough that a burst of connections waits for accept (bounded per poll)
  // instead of being dropped by the kernel and retried by the client a second later.
  if (m->fd_ < 0 || ::bind(m->fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
      ::listen(m->fd_, 128) != 0) {
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

const char* MetricsServer::RefusalName(Refusal r) {
  static constexpr const char* kNames[kRefusals] = {
      "too_many_clients", "evicted", "request_too_large", "request_timeout", "write_stalled",
      "busy"};  // in Refusal's order
  return kNames[static_cast<size_t>(r)];
}

size_t MetricsServer::Poll(uint64_t now_ms, const std::function<std::string()>& render) {
  Accept(now_ms);
  Read(now_ms);
  size_t ready = 0;
  for (const Client& c : clients_) ready += c.state == State::kReady && c.wants_metrics;
  if (ready > 0 && (body_ == nullptr || now_ms - rendered_ms_ >= options_.render_interval_ms)) {
    ++stats_.renders;
    body_ = std::make_shared<const std::string>(render() + SelfMetrics());
    rendered_ms_ = now_ms;
  }
  size_t started = 0;
  for (const Client& c : clients_) started += c.state == State::kReady;
  Respond(now_ms);
  Write(now_ms);
  Sweep();
  if (!clients_.empty()) next_ = (next_ + 1) % clients_.size();
  return started;
}

void MetricsServer::Drop(Client& c, Refusal why) {
  ++stats_.refused[static_cast<size_t>(why)];
  c.state = State::kDone;
}

void MetricsServer::Accept(uint64_t now_ms) {
  for (size_t k = 0; k < options_.accepts_per_poll; ++k) {
    int fd = ::accept4(fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    ++stats_.accepted;
    size_t live = 0;
    Client* oldest_reader = nullptr;
    for (Client& c : clients_) {
      if (c.state == State::kDone) continue;
      ++live;
      if (c.state == State::kReading &&
          (oldest_reader == nullptr || c.accepted_ms < oldest_reader->accepted_ms)) {
        oldest_reader = &c;
      }
    }
    if (live >= options_.max_clients) {
      if (oldest_reader == nullptr) {  // everyone is being answered: no slot to take
        ++stats_.refused[static_cast<size_t>(Refusal::kTooManyClients)];
        ::close(fd);
        continue;
      }
      Drop(*oldest_reader, Refusal::kEvicted);
    }
    Client c;
    c.fd = fd;
    c.accepted_ms = now_ms;
    clients_.push_back(std::move(c));
  }
}

void MetricsServer::Read(uint64_t now_ms) {
  size_t budget = options_.read_bytes_per_poll;
  const size_t n_clients = clients_.size();
  for (size_t k = 0; k < n_clients; ++k) {
    Client& c = clients_[(next_ + k) % n_clients];
    if (c.state == State::kDone || c.state == State::kReady) continue;
    char buf[4096];
    // A client being answered: what it still sends is read and thrown away (within the
    // budget), so that closing its socket never resets the connection under its response.
    while (budget > 0) {
      size_t want = std::min(budget, sizeof(buf));
      if (c.state == State::kReading) want = std::min(want, options_.max_request + 1 - c.req.size());
      ssize_t n = ::recv(c.fd, buf, want, MSG_DONTWAIT);
      if (n == 0) {  // the peer sends no more: fine once its request is in
        if (c.state == State::kReading) c.state = State::kDone;
        break;
      }
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) c.state = State::kDone;
        break;
      }
      budget -= static_cast<size_t>(n);
      stats_.bytes_read += static_cast<uint64_t>(n);
      if (c.state != State::kReading) continue;
      c.req.append(buf, static_cast<size_t>(n));
      if (c.req.find("\r\n\r\n") != std::string::npos || c.req.find("\n\n") != std::string::npos) {
        // Only the request line matters: GET /metrics (or /, or /metrics?query).
        const std::string line = c.req.substr(0, c.req.find_first_of("\r\n"));
        c.wants_metrics = line.rfind("GET /metrics ", 0) == 0 ||
                          line.rfind("GET /metrics?", 0) == 0 || line.rfind("GET / ", 0) == 0;
        c.state = State::kReady;
        c.req.clear();
        c.req.shrink_to_fit();
        break;
      }
      if (c.req.size() > options_.max_request) {
        Drop(c, Refusal::kRequestTooLarge);
        break;
      }
    }
    if (c.state == State::kReading && now_ms - c.accepted_ms > options_.request_timeout_ms) {
      Drop(c, Refusal::kRequestTimeout);
    }
  }
}

void MetricsServer::Respond(uint64_t now_ms) {
  size_t owed = 0;
  for (const Client& c : clients_) {
    if (c.state == State::kWriting) {
      owed += c.head.size() + (c.body ? c.body->size() : 0) - c.sent;
    }
  }
  for (Client& c : clients_) {
    if (c.state != State::kReady) continue;
    c.state = State::kWriting;
    c.progress_ms = now_ms;
    if (!c.wants_metrics) {
      c.head =
          "HTTP/1.0 404 Not Found\r\nContent-Length: 24\r\nConnection: close\r\n\r\nonly GET "
          "/metrics here\r\n";
    } else if (owed + body_->size() > options_.max_owed_bytes) {
      ++stats_.refused[static_cast<size_t>(Refusal::kBusy)];
      c.head =
          "HTTP/1.0 503 Service Unavailable\r\nContent-Length: 29\r\nConnection: close\r\n\r\n"
          "too many responses in flight\n";
    } else {
      c.head = absl::StrCat(
          "HTTP/1.0 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: ",
          body_->size(), "\r\nConnection: close\r\n\r\n");
      c.body = body_;
    }
    owed += c.head.size() + (c.body ? c.body->size() : 0);
  }
}

void MetricsServer::Write(uint64_t now_ms) {
  size_t budget = options_.write_bytes_per_poll;
  const size_t n_clients = clients_.size();
  for (size_t k = 0; k < n_clients && budget > 0; ++k) {
    Client& c = clients_[(next_ + k) % n_clients];
    if (c.state != State::kWriting) continue;
    const size_t body_size = c.body ? c.body->size() : 0;
    const size_t total = c.head.size() + body_size;
    while (c.sent < total && budget > 0) {
      iovec iov[2];
      int n_iov = 0;
      size_t want = budget;
      if (c.sent < c.head.size()) {
        const size_t len = std::min(want, c.head.size() - c.sent);
        iov[n_iov++] = {const_cast<char*>(c.head.data()) + c.sent, len};
        want -= len;
      }
      if (want > 0 && body_size > 0) {
        const size_t off = c.sent > c.head.size() ? c.sent - c.head.size() : 0;
        iov[n_iov++] = {const_cast<char*>(c.body->data()) + off, std::min(want, body_size - off)};
      }
      msghdr msg{};
      msg.msg_iov = iov;
      msg.msg_iovlen = static_cast<size_t>(n_iov);
      ssize_t n = ::sendmsg(c.fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) c.state = State::kDone;
        break;
      }
      c.sent += static_cast<size_t>(n);
      budget -= std::min(budget, static_cast<size_t>(n));
      stats_.bytes_written += static_cast<uint64_t>(n);
      c.progress_ms = now_ms;
    }
    if (c.state == State::kWriting && c.sent == total) {
      ++stats_.responses;
      c.state = State::kDone;  // closed in Sweep; the kernel still delivers what it holds
    }
  }
  for (Client& c : clients_) {
    if (c.state == State::kWriting && now_ms - c.progress_ms > options_.write_stall_ms) {
      Drop(c, Refusal::kWriteStalled);
    }
  }
}

void MetricsServer::Sweep() {
  for (size_t i = 0; i < clients_.size();) {
    if (clients_[i].state == State::kDone) {
      ::close(clients_[i].fd);
      clients_[i] = std::move(clients_.back());
      clients_.pop_back();
    } else {
      ++i;
    }
  }
}

std::string MetricsServer::SelfMetrics() const {
  std::string out =
      "# HELP ecmplb_metrics_clients_refused_total metrics connections refused or dropped "
      "before a complete response, by reason\n"
      "# TYPE ecmplb_metrics_clients_refused_total counter\n";
  for (size_t r = 0; r < kRefusals; ++r) {
    absl::StrAppend(&out, "ecmplb_metrics_clients_refused_total{reason=\"",
                    RefusalName(static_cast<Refusal>(r)), "\"} ", stats_.refused[r], "\n");
  }
  return out;
}

}  // namespace ecmplb::control
