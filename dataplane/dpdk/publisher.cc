// publisher.cc: QSBR-based snapshot publication (see publisher.h).
#include "dataplane/dpdk/publisher.h"

#include <rte_rcu_qsbr.h>

#include <cstdlib>

#include "absl/strings/str_cat.h"

namespace ecmplb::dataplane {

absl::StatusOr<std::unique_ptr<SnapshotPublisher>> SnapshotPublisher::Create(uint32_t max_workers) {
  std::unique_ptr<SnapshotPublisher> p(new SnapshotPublisher());
  size_t sz = rte_rcu_qsbr_get_memsize(max_workers);
  // Plain heap memory (not EAL memory): the publisher works without rte_eal_init, so the
  // sanitizer builds can test it with threads.
  sz = (sz + RTE_CACHE_LINE_SIZE - 1) / RTE_CACHE_LINE_SIZE * RTE_CACHE_LINE_SIZE;
  p->qsbr_ = static_cast<rte_rcu_qsbr*>(std::aligned_alloc(RTE_CACHE_LINE_SIZE, sz));
  if (p->qsbr_ == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cannot allocate ", sz, " bytes for the RCU state"));
  }
  if (rte_rcu_qsbr_init(p->qsbr_, max_workers) != 0) {
    return absl::InternalError("rte_rcu_qsbr_init failed");
  }
  for (uint32_t i = 0; i < max_workers; ++i) rte_rcu_qsbr_thread_register(p->qsbr_, i);
  return p;
}

SnapshotPublisher::~SnapshotPublisher() {
  retired_.clear();
  owned_.reset();
  std::free(qsbr_);
}

void SnapshotPublisher::Publish(std::unique_ptr<const Snapshot> next) {
  current_.store(next.get(), std::memory_order_release);
  if (owned_ != nullptr) {
    // Readers that loaded the old pointer before the store above report quiescence only
    // after they finished their burst: the token taken now covers them.
    retired_.push_back({std::move(owned_), rte_rcu_qsbr_start(qsbr_)});
  }
  owned_ = std::move(next);
}

size_t SnapshotPublisher::Reclaim() {
  size_t freed = 0;
  while (!retired_.empty() && rte_rcu_qsbr_check(qsbr_, retired_.front().token, false) == 1) {
    retired_.pop_front();
    ++freed;
  }
  return freed;
}

void SnapshotPublisher::Online(uint32_t worker) {
  rte_rcu_qsbr_thread_online(qsbr_, worker);
}
void SnapshotPublisher::Offline(uint32_t worker) {
  rte_rcu_qsbr_thread_offline(qsbr_, worker);
}
void SnapshotPublisher::Quiescent(uint32_t worker) {
  rte_rcu_qsbr_quiescent(qsbr_, worker);
}

}  // namespace ecmplb::dataplane
