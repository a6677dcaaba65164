// control_server.h: the daemon's control socket (Unix SOCK_STREAM), served without blocking
// from the daemon's control loop.
//
// Who may connect: the socket file is root's, mode 0600, or, with groups in the access policy,
// group-owned 0660 or 0666 (access.h, SocketPermissionsFor). Each connection's peer
// credentials are taken from the kernel when it is accepted (SO_PEERCRED, SO_PEERGROUPS) and
// handed to the handler with every request, which decides per command (Authorize). A peer
// with no right at all (AccessLevel::kNone) gets one reply and is disconnected, and must send
// its request within unauthorized_timeout_ms, so it cannot hold connection slots.
//
// Newline-delimited requests (see protocol.h) are read from every client, handed one at a
// time to the handler, and the replies written back, all with non-blocking I/O: Poll() does
// one poll(2) with zero timeout and then only the reads and writes that cannot block, so a
// slow, silent or dead client never holds up the loop. Bounds: max_clients connections
// (more are closed at once), a request line of at most max_request bytes (a longer one gets
// an error reply and the connection is closed), and a client that makes no progress for
// idle_timeout_ms is dropped.
//
// Thread-safety: one thread (the one calling Poll) owns a ControlServer.
#pragma once

#include <poll.h>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "control/access.h"

namespace ecmplb::control {

class ControlServer {
 public:
  // Answers one request line of `peer` (the reply line, without its newline).
  using Handler =
      std::function<std::string(const PeerCredentials& peer, absl::string_view request)>;
  struct Options {
    size_t max_request = 64 * 1024;  // bytes per request line, newline included
    size_t max_clients = 16;
    uint64_t idle_timeout_ms = 10000;  // no progress for this long: disconnect
    // A peer without any right must send its one request within this time.
    uint64_t unauthorized_timeout_ms = 1000;
    AccessPolicy access;  // the socket file's group and mode; who counts as unauthorized
  };

  // Creates the socket's folder (0755) if missing, replaces a stale socket file (refuses with
  // AlreadyExists if a live server answers there), binds, gives the file the group and mode
  // of SocketPermissionsFor(options.access) (0600 without groups) and listens.
  static absl::StatusOr<std::unique_ptr<ControlServer>> Listen(const std::string& path,
                                                               Handler handler, Options options);
  static absl::StatusOr<std::unique_ptr<ControlServer>> Listen(const std::string& path,
                                                               Handler handler) {
    return Listen(path, std::move(handler), Options());
  }
  ~ControlServer();  // closes every connection and removes the socket file
  ControlServer(const ControlServer&) = delete;
  ControlServer& operator=(const ControlServer&) = delete;

  // Serves whatever is ready; never blocks. Returns the number of requests handled.
  size_t Poll();
  // The descriptors Poll() serves, with the events it waits for (for an event loop's wait;
  // call Poll() when one is ready, and now and then to drop idle clients).
  void AppendPollFds(std::vector<pollfd>* fds) const;

  size_t clients() const { return clients_.size(); }
  const std::string& path() const { return path_; }

 private:
  struct Client {
    int fd = -1;
    PeerCredentials peer;
    AccessLevel level = AccessLevel::kNone;
    uint64_t accepted_ms = 0;
    std::string in;   // bytes received, not yet a whole line
    std::string out;  // reply bytes not yet sent
    size_t out_sent = 0;
    bool close_after_write = false;
    uint64_t last_progress_ms = 0;
  };
  ControlServer(std::string path, int fd, Handler handler, Options options)
      : path_(std::move(path)), listen_fd_(fd), handler_(std::move(handler)), options_(options) {}
  void Accept(uint64_t now_ms);
  // Reads what is available and answers complete lines; false: drop the client.
  bool Read(Client& c, uint64_t now_ms, size_t* handled);
  bool Write(Client& c, uint64_t now_ms);

  std::string path_;
  int listen_fd_;
  Handler handler_;
  Options options_;
  std::vector<Client> clients_;
};

}  // namespace ecmplb::control
