// control_server.cc: non-blocking Unix socket server (see control_server.h).
#include "control/control_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "common/status_macros.h"
#include "control/protocol.h"

namespace ecmplb::control {
namespace {

absl::Status Errno(absl::string_view what, const std::string& path) {
  return absl::UnavailableError(absl::StrCat(what, " ", path, ": ", std::strerror(errno)));
}

// mkdir -p of the socket's folder.
absl::Status MakeParents(const std::string& path) {
  for (size_t pos = path.find('/', 1); pos != std::string::npos; pos = path.find('/', pos + 1)) {
    std::string dir = path.substr(0, pos);
    if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
      return Errno("cannot create folder", dir);
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<ControlServer>> ControlServer::Listen(const std::string& path,
                                                                     Handler handler,
                                                                     Options options) {
  sockaddr_un addr{};
  if (path.empty() || path.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(absl::StrCat("control socket path '", path, "' must be 1..",
                                                   sizeof(addr.sun_path) - 1, " characters"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);
  ECMPLB_RETURN_IF_ERROR(MakeParents(path));

  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!S_ISSOCK(st.st_mode)) {
      return absl::AlreadyExistsError(
          absl::StrCat("control socket path ", path, " exists and is not a socket"));
    }
    int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live =
        probe >= 0 && ::connect(probe, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    if (probe >= 0) ::close(probe);
    if (live) {
      return absl::AlreadyExistsError(
          absl::StrCat("control socket ", path, " is in use: is another ecmplb running?"));
    }
    ::unlink(path.c_str());
  }
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return Errno("cannot create control socket", path);
  mode_t old_mask = ::umask(0177);  // the socket file is created 0600
  int rc = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::umask(old_mask);
  // The group first, then the wider mode: the file is never open to more than the policy says.
  const SocketPermissions perm = SocketPermissionsFor(options.access);
  if (rc == 0 && perm.group && ::chown(path.c_str(), static_cast<uid_t>(-1), *perm.group) != 0) {
    absl::Status s = Errno(absl::StrCat("cannot give group ", *perm.group, " to control socket"),
                           path);
    ::close(fd);
    ::unlink(path.c_str());
    return s;
  }
  if (rc != 0 || ::chmod(path.c_str(), perm.mode) != 0 || ::listen(fd, 16) != 0) {
    absl::Status s = Errno("cannot listen on control socket", path);
    ::close(fd);
    if (rc == 0) ::unlink(path.c_str());
    return s;
  }
  return std::unique_ptr<ControlServer>(new ControlServer(path, fd, std::move(handler), options));
}

ControlServer::~ControlServer() {
  for (auto& c : clients_) ::close(c.fd);
  ::close(listen_fd_);
  ::unlink(path_.c_str());
}

void ControlServer::Accept(uint64_t now_ms) {
  for (int i = 0; i < 16; ++i) {
    int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    absl::StatusOr<PeerCredentials> peer = PeerCredentialsOf(fd);
    absl::Status refused = peer.status();
    if (refused.ok() && clients_.size() >= options_.max_clients) {
      refused = absl::ResourceExhaustedError("too many control connections");
    }
    if (!refused.ok()) {
      std::string reply = EncodeError(refused) + "\n";
      (void)!::send(fd, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      ::close(fd);
      continue;
    }
    Client c;
    c.fd = fd;
    c.level = LevelOf(options_.access, *peer);
    c.peer = std::move(*peer);
    c.accepted_ms = now_ms;
    c.last_progress_ms = now_ms;
    clients_.push_back(std::move(c));
  }
}

bool ControlServer::Read(Client& c, uint64_t now_ms, size_t* handled) {
  char buf[16384];
  // Bounded work per Poll: at most max_request + one buffer of input.
  size_t budget = options_.max_request + sizeof(buf);
  while (budget > 0 && !c.close_after_write) {
    ssize_t n = ::recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0) {  // peer closed: flush what is owed, then drop
      c.close_after_write = true;
      return !c.out.empty();
    }
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.last_progress_ms = now_ms;
    budget -= std::min(budget, static_cast<size_t>(n));
    c.in.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    for (size_t nl; (nl = c.in.find('\n', start)) != std::string::npos; start = nl + 1) {
      if (nl - start + 1 > options_.max_request) break;
      absl::string_view line(c.in.data() + start, nl - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (line.empty()) continue;
      c.out += handler_(c.peer, line);
      c.out += '\n';
      ++*handled;
      if (c.level == AccessLevel::kNone) {  // one reply (the refusal), then disconnect
        c.close_after_write = true;
        start = c.in.size();
        break;
      }
    }
    c.in.erase(0, start);
    size_t line_len = c.in.find('\n');
    if ((line_len == std::string::npos ? c.in.size() : line_len + 1) > options_.max_request) {
      c.out += EncodeError(absl::InvalidArgumentError(absl::StrCat(
          "request larger than ", options_.max_request, " bytes; closing the connection")));
      c.out += '\n';
      c.in.clear();
      c.close_after_write = true;
    }
  }
  return true;
}

bool ControlServer::Write(Client& c, uint64_t now_ms) {
  while (c.out_sent < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_sent, c.out.size() - c.out_sent,
                       MSG_DONTWAIT | MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.out_sent += static_cast<size_t>(n);
    c.last_progress_ms = now_ms;
  }
  c.out.clear();
  c.out_sent = 0;
  return !c.close_after_write;
}

void ControlServer::AppendPollFds(std::vector<pollfd>* fds) const {
  fds->push_back({listen_fd_, POLLIN, 0});
  for (const Client& c : clients_) {
    fds->push_back({c.fd, static_cast<short>(POLLIN | (c.out.empty() ? 0 : POLLOUT)), 0});
  }
}

size_t ControlServer::Poll() {
  std::vector<pollfd> fds;
  fds.reserve(clients_.size() + 1);
  AppendPollFds(&fds);
  if (::poll(fds.data(), fds.size(), 0) < 0) return 0;
  const uint64_t now_ms = MonotonicMs();
  size_t handled = 0;
  std::vector<Client> keep;
  keep.reserve(clients_.size());
  for (size_t i = 0; i < clients_.size(); ++i) {
    Client& c = clients_[i];
    const short ev = fds[i + 1].revents;
    bool ok = true;
    if (ev & (POLLIN | POLLHUP | POLLERR)) ok = Read(c, now_ms, &handled);
    if (ok && !c.out.empty()) ok = Write(c, now_ms);
    if (ok && c.close_after_write && c.out.empty()) ok = false;
    if (ok && now_ms - c.last_progress_ms > options_.idle_timeout_ms) ok = false;
    if (ok && c.level == AccessLevel::kNone &&
        now_ms - c.accepted_ms > options_.unauthorized_timeout_ms) {
      ok = false;
    }
    if (ok) {
      keep.push_back(std::move(c));
    } else {
      ::close(c.fd);
    }
  }
  clients_ = std::move(keep);
  if (fds[0].revents & POLLIN) Accept(now_ms);
  return handled;
}

}  // namespace ecmplb::control
