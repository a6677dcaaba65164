// publisher.h: publishes immutable Snapshots to the workers and reclaims old ones with QSBR.
//
// The control thread calls Publish(); workers call Current() once per burst and Quiescent()
// after each burst (and before an idle sleep). An old snapshot is destroyed by Reclaim() on
// the control thread once rte_rcu_qsbr_check() says every online worker has passed a
// quiescent state since it was replaced. Publish never waits for workers, so a stalled
// worker cannot block the control thread; it only delays reclamation.
//
// Thread-safety: Publish/Reclaim/Pending from one control thread; Current/Online/Offline/
// Quiescent from workers, each with its own worker id (< max_workers).
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>

#include "absl/status/statusor.h"
#include "dataplane/snapshot.h"

struct rte_rcu_qsbr;

namespace ecmplb::dataplane {

class SnapshotPublisher {
 public:
  static absl::StatusOr<std::unique_ptr<SnapshotPublisher>> Create(uint32_t max_workers);
  ~SnapshotPublisher();
  SnapshotPublisher(const SnapshotPublisher&) = delete;
  SnapshotPublisher& operator=(const SnapshotPublisher&) = delete;

  // Control thread.
  void Publish(std::unique_ptr<const Snapshot> next);
  size_t Reclaim();  // frees what no worker can still see; returns how many
  size_t Pending() const { return retired_.size(); }
  const Snapshot* Latest() const { return current_.load(std::memory_order_relaxed); }

  // Workers.
  const Snapshot* Current() const { return current_.load(std::memory_order_acquire); }
  void Online(uint32_t worker);
  void Offline(uint32_t worker);
  void Quiescent(uint32_t worker);

 private:
  SnapshotPublisher() = default;
  struct Retired {
    std::unique_ptr<const Snapshot> snapshot;
    uint64_t token;
  };
  rte_rcu_qsbr* qsbr_ = nullptr;
  std::atomic<const Snapshot*> current_{nullptr};
  std::unique_ptr<const Snapshot> owned_;  // the snapshot `current_` points to
  std::deque<Retired> retired_;
};

}  // namespace ecmplb::dataplane
