// exception_forwarder.cc: see exception_forwarder.h.
#include "dataplane/dpdk/exception_forwarder.h"

#include <pthread.h>

#include <chrono>
#include <system_error>

#include "absl/strings/str_cat.h"
#include "dataplane/dpdk/worker.h"

namespace ecmplb::dataplane {

absl::Status ExceptionForwarder::Start() {
  if (thread_.joinable()) return absl::OkStatus();
  stop_.store(false);
  try {
    thread_ = std::thread([this] { Run(); });
  } catch (const std::system_error& e) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot start the exception forwarder thread: ", e.what()));
  }
  pthread_setname_np(thread_.native_handle(), "ecmplb-except");
  return absl::OkStatus();
}

void ExceptionForwarder::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true);
  thread_.join();
}

void ExceptionForwarder::Run() {
  const auto idle = std::chrono::microseconds(idle_sleep_us_);
  while (!stop_.load(std::memory_order_relaxed)) {
    const uint32_t moved = ForwardExceptionBurst(ports_.exception_port, ports_.exception_queues,
                                                 ports_.data_port, ports_.tx_queue, counters_);
    polls_.fetch_add(1, std::memory_order_relaxed);
    if (moved == 0) std::this_thread::sleep_for(idle);
  }
}

}  // namespace ecmplb::dataplane
