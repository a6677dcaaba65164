// exception_forwarder.h: the kernel-to-wire half of the exception path on a thread of its
// own: what the kernel sends through the exception TAP (OSPF hellos, BFD, ARP, health
// checks, the host's own traffic) is moved to the data port's exception TX queue.
//
// It never waits for the control loop: a config apply, a Maglev rebuild or a slow fsync on
// the control thread cannot delay a BFD packet (BFD's detection time in the lab is 300 ms).
// When idle it sleeps `idle_sleep_us` between polls (the thread shares the main lcore's
// core with the control loop, never a worker's).
//
// Thread-safety: Start/Stop from one (the control) thread; `counters` are written by the
// forwarder thread only and may be read from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#include "absl/status/status.h"
#include "dataplane/counters.h"

namespace ecmplb::dataplane {

class ExceptionForwarder {
 public:
  struct Ports {
    uint16_t exception_port = 0;    // the TAP
    uint16_t exception_queues = 1;  // its RX queues, all polled
    uint16_t data_port = 0;
    uint16_t tx_queue = 0;  // the data port's TX queue reserved for the kernel's traffic
  };
  ExceptionForwarder(Ports ports, WorkerCounters* counters, uint32_t idle_sleep_us)
      : ports_(ports), counters_(counters), idle_sleep_us_(idle_sleep_us) {}
  ~ExceptionForwarder() { Stop(); }
  ExceptionForwarder(const ExceptionForwarder&) = delete;
  ExceptionForwarder& operator=(const ExceptionForwarder&) = delete;

  absl::Status Start();
  void Stop();  // idempotent; joins the thread
  bool running() const { return thread_.joinable(); }
  // Loop iterations so far (progress, for tests and the watchdog's view).
  uint64_t polls() const { return polls_.load(std::memory_order_relaxed); }

 private:
  void Run();

  Ports ports_;
  WorkerCounters* counters_;
  uint32_t idle_sleep_us_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> polls_{0};
  std::thread thread_;
};

}  // namespace ecmplb::dataplane
