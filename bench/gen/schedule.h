// schedule.h: which flow each transmitted packet belongs to, per TX queue.
//
// Every established flow is assigned once, at start, to the queue that carries it
// (TrafficModel::QueueOf: flow id % queues, or the balancer's Toeplitz hash with --steer
// softrss); a queue then cycles through its flows in id order, and the sequence number of an
// established flow's packet is the number of completed cycles (so no per-flow state is kept).
// A share of the packets (--new-share, exact over time: a fixed-point accumulator) are new
// flows instead: the queue's next unused id past the established range that QueueOf maps to
// it; their sequence number is the queue's packet counter.
//
// Thread-safety: a QueueSchedule belongs to one TX thread. Fast path: Next() does no
// allocation; a new flow under softrss steering costs one Toeplitz hash per queue.
#pragma once

#include <cstdint>
#include <vector>

#include "bench/gen/traffic_model.h"

namespace ecmplb::gen {

// Established flow ids per queue (index = queue).
std::vector<std::vector<uint32_t>> GroupFlowsByQueue(const TrafficModel& m);

class QueueSchedule {
 public:
  QueueSchedule(const TrafficModel& m, uint16_t queue, std::vector<uint32_t> established,
                double new_share);

  // The next packet's flow and sequence number; false if this queue has nothing to send
  // (no established flow on it and no new flows wanted, or no new id maps to it).
  bool Next(uint64_t* flow, uint32_t* seq) {
    new_acc_ += new_step_;
    const bool want_new = new_acc_ >= kOne || established_.empty();
    if (want_new && new_step_ != 0 && has_new_) {
      if (new_acc_ >= kOne) new_acc_ -= kOne;
      *flow = next_new_;
      *seq = packets_++;
      ++new_flows_;
      AdvanceNew();
      return true;
    }
    if (established_.empty()) return false;
    *flow = established_[cursor_];
    *seq = pass_;
    ++packets_;
    if (++cursor_ == established_.size()) {
      cursor_ = 0;
      ++pass_;
    }
    return true;
  }

  uint64_t new_flows() const { return new_flows_; }
  size_t established() const { return established_.size(); }

 private:
  static constexpr uint64_t kOne = uint64_t{1} << 32;
  void AdvanceNew();

  const TrafficModel& m_;
  uint16_t queue_;
  std::vector<uint32_t> established_;
  size_t cursor_ = 0;
  uint32_t pass_ = 0;
  uint32_t packets_ = 0;
  uint64_t new_step_;  // new_share in 1/2^32 units
  uint64_t new_acc_ = 0;
  uint64_t next_new_;
  bool has_new_ = true;
  uint64_t new_flows_ = 0;
};

}  // namespace ecmplb::gen
