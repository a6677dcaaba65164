// exception_forwarder.h: the kernel-to-wire half of the exception path on a thread of its
// own: what the kernel sends through the exception TAP (OSPF hellos, BFD, ARP, health
// checks, the host's own traffic) is moved to the data port's exception TX queue.
//
// It never waits for the control loop: a config apply, a Maglev rebuild or a slow fsync on
// the control thread cannot delay a BFD packet (BFD's detection time in the lab is 300 ms).
//
// Event-driven when the exception port has RX interrupts (the TAP does: its queue's file
// descriptor is the interrupt): when a poll finds nothing it arms the queues' interrupts,
// polls once more (a packet may have arrived in between) and sleeps in epoll_wait until the
// kernel writes to the TAP or Stop() is called. An idle host costs no wake-ups, so the
// thread never competes with a worker or a co-located traffic generator for a core. Ports
// without RX interrupts (in-process ring ports in tests) fall back to polling with a sleep of
// `idle_sleep_us` between empty polls.
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
  // Times the thread slept waiting for an RX interrupt (0 in polling mode).
  uint64_t interrupt_waits() const { return waits_.load(std::memory_order_relaxed); }
  // True when Start() found RX interrupts on every exception queue.
  bool interrupt_driven() const { return interrupt_driven_.load(std::memory_order_relaxed); }

 private:
  void Run();
  // Sets up epoll over the queues' interrupt descriptors and the stop eventfd; false (and
  // nothing open) if the port has no RX interrupts.
  bool OpenInterrupts();
  void RunInterruptDriven();
  void RunPolling();

  Ports ports_;
  WorkerCounters* counters_;
  uint32_t idle_sleep_us_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> polls_{0};
  std::atomic<uint64_t> waits_{0};
  std::atomic<bool> interrupt_driven_{false};
  int epoll_fd_ = -1;
  int stop_fd_ = -1;  // eventfd written by Stop()
  std::thread thread_;
};

}  // namespace ecmplb::dataplane
