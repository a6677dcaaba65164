// schedule.cc: see schedule.h.
#include "bench/gen/schedule.h"

#include <cmath>

namespace ecmplb::gen {

std::vector<std::vector<uint32_t>> GroupFlowsByQueue(const TrafficModel& m) {
  std::vector<std::vector<uint32_t>> out(m.options().queues);
  for (uint64_t f = 0; f < m.flows(); ++f) out[m.QueueOf(f)].push_back(static_cast<uint32_t>(f));
  return out;
}

QueueSchedule::QueueSchedule(const TrafficModel& m, uint16_t queue,
                             std::vector<uint32_t> established, double new_share)
    : m_(m), queue_(queue), established_(std::move(established)), next_new_(m.flows() - 1) {
  new_share = std::fmin(1.0, std::fmax(0.0, new_share));
  new_step_ = static_cast<uint64_t>(std::llround(new_share * static_cast<double>(kOne)));
  AdvanceNew();
}

void QueueSchedule::AdvanceNew() {
  // Bounded search: a queue no id maps to (tiny id ranges) gets no new flows.
  uint64_t f = next_new_;
  for (int tries = 0; tries < (1 << 20); ++tries) {
    f = f < m_.flows() ? m_.flows() : m_.NextNew(f);
    if (m_.QueueOf(f) == queue_) {
      next_new_ = f;
      return;
    }
  }
  has_new_ = false;
}

}  // namespace ecmplb::gen
