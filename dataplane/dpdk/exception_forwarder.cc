// exception_forwarder.cc: see exception_forwarder.h.
#include "dataplane/dpdk/exception_forwarder.h"

#include <pthread.h>
#include <rte_ethdev.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "dataplane/dpdk/worker.h"

namespace ecmplb::dataplane {

absl::Status ExceptionForwarder::Start() {
  if (thread_.joinable()) return absl::OkStatus();
  stop_.store(false);
  stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (stop_fd_ < 0) {
    return absl::ResourceExhaustedError("cannot create the exception forwarder's eventfd");
  }
  interrupt_driven_.store(OpenInterrupts());
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& e) {
    close(stop_fd_);
    stop_fd_ = -1;
    if (epoll_fd_ >= 0) close(epoll_fd_);
    epoll_fd_ = -1;
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start the exception forwarder thread: ", e.what()));
  }
  pthread_setname_np(thread_.native_handle(), "ecmplb-except");
  return absl::OkStatus();
}

void ExceptionForwarder::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  const uint64_t one = 1;
  if (write(stop_fd_, &one, sizeof(one)) < 0) {
    // Cannot happen for an eventfd below its maximum; the thread also re-checks stop_ within
    // its bounded wait.
  }
  thread_.join();
  close(stop_fd_);
  stop_fd_ = -1;
}

bool ExceptionForwarder::OpenInterrupts() {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_fd_ < 0) return false;
  bool ok = true;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = UINT32_MAX;
  ok = epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, stop_fd_, &ev) == 0;
  for (uint16_t q = 0; ok && q < ports_.exception_queues; ++q) {
    const int fd = rte_eth_dev_rx_intr_ctl_q_get_fd(ports_.exception_port, q);
    if (fd < 0) {
      ok = false;
      break;
    }
    ev.events = EPOLLIN;
    ev.data.u32 = q;
    ok = epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }
  if (!ok) {
    close(epoll_fd_);
    epoll_fd_ = -1;
  }
  return ok;
}

void ExceptionForwarder::Run() {
  if (epoll_fd_ >= 0) {
    RunInterruptDriven();
    close(epoll_fd_);
    epoll_fd_ = -1;
  } else {
    RunPolling();
  }
}

void ExceptionForwarder::RunPolling() {
  const auto idle = std::chrono::microseconds(idle_sleep_us_);
  while (!stop_.load(std::memory_order_relaxed)) {
    const uint32_t moved = ForwardExceptionBurst(ports_.exception_port, ports_.exception_queues,
                                                 ports_.data_port, ports_.tx_queue, counters_);
    polls_.fetch_add(1, std::memory_order_relaxed);
    if (moved == 0) std::this_thread::sleep_for(idle);
  }
}

void ExceptionForwarder::RunInterruptDriven() {
  epoll_event events[8];
  const auto settle = std::chrono::microseconds(idle_sleep_us_);
  auto poll = [&] {
    polls_.fetch_add(1, std::memory_order_relaxed);
    return ForwardExceptionBurst(ports_.exception_port, ports_.exception_queues, ports_.data_port,
                                 ports_.tx_queue, counters_);
  };
  // Empty polls still allowed after a wake-up. The TAP PMD reads its descriptor only after
  // its SIGIO handler has counted the arrival, which can land a little after epoll reports
  // the descriptor readable: a few short sleeps bridge that gap instead of a busy spin.
  int settle_polls = 0;
  while (!stop_.load(std::memory_order_relaxed)) {
    if (poll() != 0) {
      settle_polls = 0;
      continue;
    }
    if (settle_polls > 0) {
      --settle_polls;
      std::this_thread::sleep_for(settle);
      continue;
    }
    // Idle: arm, look once more (closes the race with a packet that arrived before arming),
    // then sleep until a queue has something or Stop() writes the eventfd. The 1 s bound only
    // guards against a lost wake-up; it is not what makes the loop progress.
    for (uint16_t q = 0; q < ports_.exception_queues; ++q) {
      rte_eth_dev_rx_intr_enable(ports_.exception_port, q);
    }
    if (poll() == 0 && !stop_.load(std::memory_order_relaxed)) {
      waits_.fetch_add(1, std::memory_order_relaxed);
      if (epoll_wait(epoll_fd_, events, 8, 1000) > 0) settle_polls = 50;
    }
    for (uint16_t q = 0; q < ports_.exception_queues; ++q) {
      rte_eth_dev_rx_intr_disable(ports_.exception_port, q);
    }
  }
}

}  // namespace ecmplb::dataplane
