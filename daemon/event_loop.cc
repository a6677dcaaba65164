// event_loop.cc: see event_loop.h.
#include "daemon/event_loop.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "absl/strings/str_cat.h"

namespace ecmplb::daemon {
namespace {

int g_signal_pipe = -1;  // write end, for the handler

void OnSignal(int sig) {
  const int saved = errno;
  const unsigned char b = static_cast<unsigned char>(sig);
  if (g_signal_pipe >= 0) (void)!::write(g_signal_pipe, &b, 1);
  errno = saved;
}

}  // namespace

EventLoop::~EventLoop() {
  if (pipe_[1] >= 0) {
    struct sigaction sa;
    std::memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (int s : signals_) ::sigaction(s, &sa, nullptr);
    g_signal_pipe = -1;
    ::close(pipe_[0]);
    ::close(pipe_[1]);
  }
}

void EventLoop::Watch(FdsFn fds, std::function<void()> ready) {
  sources_.push_back(Source{std::move(fds), std::move(ready)});
}

absl::Status EventLoop::CatchSignals(std::initializer_list<int> signals,
                                     std::function<void(int)> on_signal) {
  if (g_signal_pipe >= 0 || pipe_[0] >= 0) {
    return absl::FailedPreconditionError("signals are already caught by an event loop");
  }
  if (::pipe2(pipe_, O_NONBLOCK | O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe2: ", std::strerror(errno)));
  }
  g_signal_pipe = pipe_[1];
  on_signal_ = std::move(on_signal);
  struct sigaction sa;
  std::memset(&sa, 0, sizeof(sa));
  sa.sa_handler = OnSignal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  for (int s : signals) {
    if (::sigaction(s, &sa, nullptr) != 0) {
      return absl::InternalError(absl::StrCat("sigaction(", s, "): ", std::strerror(errno)));
    }
    signals_.push_back(s);
  }
  return absl::OkStatus();
}

size_t EventLoop::Wait(uint64_t timeout_ms) {
  pfds_.clear();
  owner_.clear();
  if (pipe_[0] >= 0) {
    pfds_.push_back(pollfd{pipe_[0], POLLIN, 0});
    owner_.push_back(SIZE_MAX);
  }
  for (size_t i = 0; i < sources_.size(); ++i) {
    const size_t before = pfds_.size();
    sources_[i].fds(&pfds_);
    owner_.resize(pfds_.size(), i);
    for (size_t j = before; j < pfds_.size(); ++j) pfds_[j].revents = 0;
  }
  const int timeout = timeout_ms > 60000 ? 60000 : static_cast<int>(timeout_ms);
  const int n = ::poll(pfds_.data(), pfds_.size(), timeout);
  if (n <= 0) return 0;  // timeout, or EINTR (a signal's byte is read on the next wait)
  size_t ran = 0;
  std::vector<bool> due(sources_.size(), false);
  for (size_t j = 0; j < pfds_.size(); ++j) {
    if (pfds_[j].revents == 0) continue;
    if (owner_[j] == SIZE_MAX) {
      unsigned char sigs[64];
      ssize_t got;
      while ((got = ::read(pipe_[0], sigs, sizeof(sigs))) > 0) {
        for (ssize_t k = 0; k < got; ++k) {
          if (on_signal_) on_signal_(sigs[k]);
          ++ran;
        }
      }
    } else {
      due[owner_[j]] = true;
    }
  }
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (due[i]) {
      sources_[i].ready();
      ++ran;
    }
  }
  return ran;
}

}  // namespace ecmplb::daemon
