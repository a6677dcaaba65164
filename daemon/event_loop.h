// event_loop.h: the control thread's wait: one poll(2) over every file descriptor the
// daemon's control side serves (the control socket and its clients today; sync sockets,
// fleet watches and neighbour events as they come), bounded by the next timer deadline, and
// signals turned into events through a self-pipe (so SIGTERM wakes the loop at once).
//
// Sources are asked for their descriptors before every wait, so sources whose descriptors
// come and go (connected clients) need no registration calls.
//
// Thread-safety: one thread owns an EventLoop. The signal handler only writes to the pipe.
#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <vector>

#include "absl/status/status.h"

namespace ecmplb::daemon {

class EventLoop {
 public:
  EventLoop() = default;
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;
  ~EventLoop();  // gives the caught signals their default action back

  // `fds` appends the descriptors (and events) to wait for; `ready` runs after a wait in
  // which one of them was ready.
  using FdsFn = std::function<void(std::vector<pollfd>*)>;
  void Watch(FdsFn fds, std::function<void()> ready);

  // Catches `signals` (sigaction, SA_RESTART) and calls `on_signal(sig)` from Wait(), on this
  // thread, once per delivery. At most one EventLoop per process may catch signals.
  absl::Status CatchSignals(std::initializer_list<int> signals, std::function<void(int)> on_signal);

  // Waits at most `timeout_ms` (0: just look) for a watched descriptor or a signal, then runs
  // the handlers of what was ready. Returns the number of handlers run.
  size_t Wait(uint64_t timeout_ms);

 private:
  struct Source {
    FdsFn fds;
    std::function<void()> ready;
  };
  std::vector<Source> sources_;
  std::vector<pollfd> pfds_;
  std::vector<size_t> owner_;  // pfds_[i] belongs to sources_[owner_[i]]
  std::vector<int> signals_;
  std::function<void(int)> on_signal_;
  int pipe_[2] = {-1, -1};
};

}  // namespace ecmplb::daemon
