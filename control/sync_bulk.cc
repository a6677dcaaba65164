// sync_bulk.cc: see sync_bulk.h.
#include "control/sync_bulk.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ecmplb::control {

namespace cs = conntrack::sync;
using dataplane::IpAddr;

namespace {

sockaddr_in SockAddr(const IpAddr& a, uint16_t port) {
  sockaddr_in s{};
  s.sin_family = AF_INET;
  s.sin_port = htons(port);
  std::memcpy(&s.sin_addr, a.bytes.data(), 4);
  return s;
}

// Answer messages written per Poll and session: ~64 KiB, then the loop moves on.
constexpr size_t kMessagesPerPoll = 48;
constexpr size_t kReadChunk = 16384;

}  // namespace

// ---- FramedStream ----

FramedStream::~FramedStream() {
  if (fd_ >= 0) close(fd_);
}

void FramedStream::Queue(std::span<const uint8_t> msg) {
  if (out_pos_ == out_.size()) {
    out_.clear();
    out_pos_ = 0;
  }
  out_.push_back(static_cast<uint8_t>(msg.size() >> 8));
  out_.push_back(static_cast<uint8_t>(msg.size()));
  out_.insert(out_.end(), msg.begin(), msg.end());
}

bool FramedStream::Flush() {
  while (out_pos_ < out_.size()) {
    const ssize_t n = send(fd_, out_.data() + out_pos_, out_.size() - out_pos_,
                           MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    out_pos_ += static_cast<size_t>(n);
  }
  return true;
}

bool FramedStream::Fill() {
  if (in_pos_ > 0 && in_pos_ == in_.size()) {
    in_.clear();
    in_pos_ = 0;
  } else if (in_pos_ > kReadChunk) {
    in_.erase(in_.begin(), in_.begin() + static_cast<ptrdiff_t>(in_pos_));
    in_pos_ = 0;
  }
  for (int i = 0; i < 8; ++i) {
    const size_t old = in_.size();
    in_.resize(old + kReadChunk);
    const ssize_t n = recv(fd_, in_.data() + old, kReadChunk, MSG_DONTWAIT);
    if (n <= 0) {
      in_.resize(old);
      if (n == 0) {
        eof_ = true;
        return false;
      }
      return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    }
    in_.resize(old + static_cast<size_t>(n));
    if (static_cast<size_t>(n) < kReadChunk) break;
  }
  return true;
}

std::span<const uint8_t> FramedStream::Next() {
  const size_t have = in_.size() - in_pos_;
  if (bad_ || have < 2) return {};
  const size_t len = size_t{in_[in_pos_]} << 8 | in_[in_pos_ + 1];
  if (len > cs::kMaxDatagram) {
    bad_ = true;
    return {};
  }
  if (have < 2 + len) return {};
  std::span<const uint8_t> msg(in_.data() + in_pos_ + 2, len);
  in_pos_ += 2 + len;
  return msg;
}

// ---- BulkServer ----

absl::StatusOr<std::unique_ptr<BulkServer>> BulkServer::Listen(const IpAddr& local,
                                                               uint16_t port, SyncEngine* engine) {
  if (!local.is_v4()) return absl::InvalidArgumentError("sync: host.address must be IPv4");
  const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("sync: socket: ", std::strerror(errno)));
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  const sockaddr_in a = SockAddr(local, port);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0 || listen(fd, 16) != 0) {
    const int err = errno;
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("sync: cannot listen on TCP ", local.ToString(), ":", port, ": ",
                     std::strerror(err), " (is another ecmplb running, or sync.port in use?)"));
  }
  return std::unique_ptr<BulkServer>(new BulkServer(fd, engine));
}

BulkServer::~BulkServer() {
  sessions_.clear();
  if (fd_ >= 0) close(fd_);
}

void BulkServer::AppendPollFds(std::vector<pollfd>* fds) const {
  fds->push_back(pollfd{fd_, POLLIN, 0});
  for (const Session& s : sessions_) {
    const short ev = static_cast<short>(POLLIN | (s.answering ? POLLOUT : 0));
    fds->push_back(pollfd{s.stream->fd(), ev, 0});
  }
}

void BulkServer::Poll(const dataplane::Snapshot& snap, uint64_t now_ms) {
  for (;;) {
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    const int fd = accept4(fd_, reinterpret_cast<sockaddr*>(&from), &len,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    const IpAddr peer = IpAddr::V4FromBytes(reinterpret_cast<const uint8_t*>(&from.sin_addr));
    bool known = false;
    for (const IpAddr& p : engine_->settings().peers) known |= p == peer;
    if (!known || sessions_.size() >= kMaxSessions) {
      ++stats_.refused;
      close(fd);
      continue;
    }
    ++stats_.accepted;
    Session s;
    s.stream = std::make_unique<FramedStream>(fd);
    s.peer = peer;
    s.last_progress_ms = now_ms;
    sessions_.push_back(std::move(s));
  }
  for (size_t i = 0; i < sessions_.size();) {
    if (Step(sessions_[i], snap, now_ms)) {
      ++i;
    } else {
      sessions_.erase(sessions_.begin() + static_cast<ptrdiff_t>(i));
    }
  }
}

bool BulkServer::Step(Session& s, const dataplane::Snapshot& snap, uint64_t now_ms) {
  FramedStream& st = *s.stream;
  if (!s.answering) {
    if (!st.Fill() && !st.eof()) {
      ++stats_.failed;
      return false;
    }
    const std::span<const uint8_t> req = st.Next();
    if (req.empty()) {
      if (st.bad() || st.eof() || now_ms > s.last_progress_ms + kRequestTimeoutMs) {
        ++stats_.failed;
        return false;
      }
      return true;
    }
    if (engine_->OpenBulkRequest(s.peer, req, &s.cursor).has_value()) {
      ++stats_.failed;
      return false;
    }
    s.answering = true;
  }
  // Produce while little is queued, then write what the socket takes.
  for (size_t n = 0; n < kMessagesPerPoll && st.queued() < 32768; ++n) {
    msg_.clear();
    if (!engine_->NextBulkMessage(&s.cursor, snap, &msg_)) break;
    st.Queue(msg_);
  }
  const size_t before = st.queued();
  if (!st.Flush()) {
    ++stats_.failed;
    return false;
  }
  if (st.queued() < before) s.last_progress_ms = now_ms;
  if (s.cursor.ended && st.queued() == 0) {
    ++stats_.served;
    shutdown(st.fd(), SHUT_WR);
    return false;  // closed once written (the kernel delivers what was sent)
  }
  if (now_ms > s.last_progress_ms + kIdleTimeoutMs) {
    ++stats_.failed;
    return false;
  }
  return true;
}

// ---- BulkFetcher ----

BulkFetcher::BulkFetcher(const IpAddr& local, uint16_t port, std::vector<size_t> peers,
                         SyncEngine* engine, uint64_t deadline_ms)
    : port_(port), engine_(engine), deadline_ms_(deadline_ms) {
  for (size_t p : peers) {
    Fetch f;
    f.peer = p;
    f.name = engine_->settings().peers[p].ToString();
    const int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      f.over = true;
      f.failure = absl::StrCat("socket: ", std::strerror(errno));
      fetches_.push_back(std::move(f));
      continue;
    }
    f.stream = std::make_unique<FramedStream>(fd);
    // From the host's address, so that the peer (and its workers' exception policy) knows us.
    const sockaddr_in src = SockAddr(local, 0);
    const sockaddr_in dst = SockAddr(engine_->settings().peers[p], port_);
    if (bind(fd, reinterpret_cast<const sockaddr*>(&src), sizeof(src)) != 0 ||
        (connect(fd, reinterpret_cast<const sockaddr*>(&dst), sizeof(dst)) != 0 &&
         errno != EINPROGRESS)) {
      f.over = true;
      f.failure = std::strerror(errno);
      f.stream.reset();
    }
    fetches_.push_back(std::move(f));
  }
}

BulkFetcher::~BulkFetcher() = default;

void BulkFetcher::AppendPollFds(std::vector<pollfd>* fds) const {
  for (const Fetch& f : fetches_) {
    if (f.over || f.stream == nullptr) continue;
    const short ev = static_cast<short>(f.connected ? POLLIN | (f.stream->queued() ? POLLOUT : 0)
                                                    : POLLOUT);
    fds->push_back(pollfd{f.stream->fd(), ev, 0});
  }
}

void BulkFetcher::Fail(Fetch& f, std::string why) {
  f.over = true;
  f.failure = std::move(why);
  f.stream.reset();
}

void BulkFetcher::Poll(const dataplane::Snapshot& snap, uint64_t now_ms) {
  for (Fetch& f : fetches_) {
    if (f.over) continue;
    if (now_ms >= deadline_ms_) {
      Fail(f, f.connected ? "no end of answer before the deadline" : "no connection before the deadline");
      continue;
    }
    FramedStream& st = *f.stream;
    if (!f.connected) {
      int err = 0;
      socklen_t len = sizeof(err);
      if (getsockopt(st.fd(), SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
      if (err == EINPROGRESS || err == EALREADY) continue;
      if (err != 0) {
        Fail(f, std::strerror(err));
        continue;
      }
      // Connected? (getpeername fails while the handshake is in flight.)
      sockaddr_in peer{};
      socklen_t plen = sizeof(peer);
      if (getpeername(st.fd(), reinterpret_cast<sockaddr*>(&peer), &plen) != 0) continue;
      f.connected = true;
      engine_->MakeBulkRequest(f.peer, &f.state, &msg_);
      if (msg_.empty()) {
        Fail(f, "cannot seal the request");
        continue;
      }
      st.Queue(msg_);
    }
    if (!st.Flush()) {
      Fail(f, absl::StrCat("send: ", std::strerror(errno)));
      continue;
    }
    const bool ok = st.Fill();
    for (std::span<const uint8_t> m; !f.over && !(m = st.Next()).empty();) {
      switch (engine_->ReceiveBulkMessage(&f.state, m, snap)) {
        case BulkStep::kMore:
          break;
        case BulkStep::kDone:
          f.over = true;
          f.stream.reset();
          break;
        case BulkStep::kRefused:
          Fail(f, "a message of its answer was refused (see sync.rejected)");
          break;
      }
    }
    if (f.over) continue;
    if (st.bad()) {
      Fail(f, "an oversized frame");
    } else if (!ok) {
      Fail(f, st.eof() ? "closed before the end of its answer"
                       : absl::StrCat("receive: ", std::strerror(errno)));
    }
  }
}

bool BulkFetcher::done() const {
  return std::all_of(fetches_.begin(), fetches_.end(), [](const Fetch& f) { return f.over; });
}

uint64_t BulkFetcher::entries() const {
  uint64_t n = 0;
  for (const Fetch& f : fetches_) n += f.state.entries;
  return n;
}

size_t BulkFetcher::answered() const {
  return static_cast<size_t>(std::count_if(fetches_.begin(), fetches_.end(), [](const Fetch& f) {
    return f.over && f.failure.empty();
  }));
}

std::string BulkFetcher::Summary() const {
  std::vector<std::string> failed;
  for (const Fetch& f : fetches_) {
    if (!f.failure.empty()) failed.push_back(absl::StrCat(f.name, ": ", f.failure));
  }
  std::string s = absl::StrCat(answered(), " of ", fetches_.size(), " peers answered, ", entries(),
                               " flows");
  if (!failed.empty()) absl::StrAppend(&s, "; ", absl::StrJoin(failed, "; "));
  return s;
}

}  // namespace ecmplb::control
