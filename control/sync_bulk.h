// sync_bulk.h: bulk flow sync over TCP (issue 15). A host that starts, or hears a peer again
// after a silence (its link came back, a partition healed), asks that peer for a copy of its
// tables; the peer answers on the same connection. The messages are SyncEngine's sealed
// messages (control/sync_engine.h: request, chunks, end marker, each bound to the request),
// framed on the stream by a 2-byte big-endian length.
//
// BulkServer listens at (host address, sync port), TCP beside the UDP socket, accepts only
// configured peers, reads one request per connection and writes the answer as the socket
// drains (a few dozen messages per Poll: the table walk is paced by the peer's reading, never
// one long pause of the control thread), then closes. BulkFetcher connects to peers from the
// host address, sends the request, applies what comes back and reports when every peer is
// done, failed (refused, reset, bad message) or the deadline passed.
//
// Both are non-blocking, driven by the daemon's event loop (AppendPollFds + Poll).
//
// Thread-safety: the control thread only (the engine's owner).
#pragma once

#include <poll.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/sync_engine.h"
#include "dataplane/snapshot.h"

namespace ecmplb::control {

// A non-blocking TCP stream of length-framed messages (both ends use it).
class FramedStream {
 public:
  explicit FramedStream(int fd) : fd_(fd) {}
  ~FramedStream();
  FramedStream(const FramedStream&) = delete;
  FramedStream& operator=(const FramedStream&) = delete;
  int fd() const { return fd_; }
  // Queues one message (framed) for writing.
  void Queue(std::span<const uint8_t> msg);
  size_t queued() const { return out_.size() - out_pos_; }
  // Writes what the socket takes; false on a socket error.
  bool Flush();
  // Reads what is there; false on a socket error, or end of stream (eof() then true).
  bool Fill();
  bool eof() const { return eof_; }
  // The next whole message if one arrived (valid until the next call), else empty. A frame
  // longer than conntrack::sync::kMaxDatagram sets bad() and returns empty.
  std::span<const uint8_t> Next();
  bool bad() const { return bad_; }

 private:
  int fd_;
  std::vector<uint8_t> out_;
  size_t out_pos_ = 0;
  std::vector<uint8_t> in_;
  size_t in_pos_ = 0;
  bool eof_ = false;
  bool bad_ = false;
};

struct BulkServerStats {
  uint64_t accepted = 0;  // connections from peers
  uint64_t refused = 0;   // connections from other addresses, or beyond the session limit
  uint64_t served = 0;    // answers written whole
  uint64_t failed = 0;    // sessions closed early (bad request, socket error, timeout)
};

class BulkServer {
 public:
  static constexpr size_t kMaxSessions = 16;
  static constexpr uint64_t kRequestTimeoutMs = 5000;  // to send the request
  static constexpr uint64_t kIdleTimeoutMs = 30000;    // the peer stopped reading

  static absl::StatusOr<std::unique_ptr<BulkServer>> Listen(const dataplane::IpAddr& local,
                                                            uint16_t port, SyncEngine* engine);
  ~BulkServer();
  void AppendPollFds(std::vector<pollfd>* fds) const;
  void Poll(const dataplane::Snapshot& snap, uint64_t now_ms);
  const BulkServerStats& stats() const { return stats_; }
  size_t sessions() const { return sessions_.size(); }

 private:
  struct Session {
    std::unique_ptr<FramedStream> stream;
    dataplane::IpAddr peer;
    bool answering = false;
    BulkCursor cursor;
    uint64_t last_progress_ms = 0;
  };
  BulkServer(int fd, SyncEngine* engine) : fd_(fd), engine_(engine) {}
  // false: the session is over (done or failed).
  bool Step(Session& s, const dataplane::Snapshot& snap, uint64_t now_ms);

  int fd_;
  SyncEngine* engine_;
  std::vector<Session> sessions_;
  std::vector<uint8_t> msg_;
  BulkServerStats stats_;
};

class BulkFetcher {
 public:
  // Starts a fetch from each peer of `peers` (indexes in the engine's peers), from `local`.
  BulkFetcher(const dataplane::IpAddr& local, uint16_t port, std::vector<size_t> peers,
              SyncEngine* engine, uint64_t deadline_ms);
  ~BulkFetcher();
  void AppendPollFds(std::vector<pollfd>* fds) const;
  void Poll(const dataplane::Snapshot& snap, uint64_t now_ms);
  bool done() const;
  // One line: "2 of 2 peers answered, 1234 flows" / "... 10.0.0.3 refused (...)".
  std::string Summary() const;
  uint64_t entries() const;
  size_t answered() const;

 private:
  struct Fetch {
    size_t peer = 0;
    std::string name;
    std::unique_ptr<FramedStream> stream;
    bool connected = false;
    BulkFetch state;
    std::string failure;  // empty while running or after the end marker
    bool over = false;
  };
  void Fail(Fetch& f, std::string why);

  uint16_t port_;
  SyncEngine* engine_;
  uint64_t deadline_ms_;
  std::vector<Fetch> fetches_;
  std::vector<uint8_t> msg_;
};

}  // namespace ecmplb::control
