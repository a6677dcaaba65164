// fake_store.h: an in-memory etcd for fleet tests. FakeEtcd holds the data (a log of every
// change with etcd's revisions: one counter for the store, create/mod revision per key,
// ranges at a past revision, compaction, leases); each FakeClient is one host's connection
// (a fleet::Store) that can be cut off on its own (`down`), and whose watches can be dropped
// (a gap). Callbacks run from Poll(), as with the real store.
#pragma once

#include <algorithm>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "control/fleet_store.h"

namespace ecmplb::control::fleet::testing {

class FakeEtcd {
 public:
  struct Change {
    int64_t revision = 0;
    std::string key;
    std::optional<std::string> value;  // nullopt: deleted
    int64_t lease = 0;
  };

  int64_t revision() const { return revision_; }
  int64_t compacted() const { return compacted_; }
  const std::vector<Change>& log() const { return log_; }

  // The keys in [key, end) at `rev` (0: now).
  absl::StatusOr<RangeResult> Range(const std::string& key, const std::string& end, int64_t rev) const {
    if (rev > 0 && rev < compacted_) {
      return absl::OutOfRangeError("etcdserver: mvcc: required revision has been compacted");
    }
    if (rev == 0 || rev > revision_) rev = revision_;
    std::map<std::string, KeyValue> state;
    for (const Change& c : log_) {
      if (c.revision > rev) break;
      if (!InRange(c.key, key, end)) continue;
      if (!c.value) {
        state.erase(c.key);
        continue;
      }
      KeyValue& kv = state[c.key];
      if (kv.create_revision == 0) kv.create_revision = c.revision;
      kv.key = c.key;
      kv.value = *c.value;
      kv.mod_revision = c.revision;
      kv.lease = c.lease;
    }
    RangeResult out;
    out.revision = revision_;
    for (auto& [k, kv] : state) out.kvs.push_back(kv);
    return out;
  }

  int64_t ModRevision(const std::string& key) const {
    auto r = Range(key, "", 0);
    return r.ok() && !r->kvs.empty() ? r->kvs.front().mod_revision : 0;
  }

  TxnResult Txn(const std::vector<Compare>& compares, const std::vector<Op>& ops) {
    ++txns_;
    for (const Compare& c : compares) {
      if (ModRevision(c.key) != c.mod_revision) return {false, revision_};
    }
    if (ops.empty()) return {true, revision_};
    ++revision_;
    for (const Op& op : ops) {
      if (op.type == Op::Type::kPut) {
        log_.push_back({revision_, op.key, op.value, op.lease});
      } else if (ModRevision(op.key) != 0) {
        log_.push_back({revision_, op.key, std::nullopt, 0});
      }
    }
    return {true, revision_};
  }
  uint64_t txns() const { return txns_; }

  // Writes one key directly (an operator's etcdctl put).
  int64_t Put(const std::string& key, const std::string& value) {
    return Txn({}, {Op{Op::Type::kPut, key, value, 0}}).revision;
  }
  int64_t Delete(const std::string& key) {
    return Txn({}, {Op{Op::Type::kDelete, key, "", 0}}).revision;
  }

  int64_t GrantLease() {
    const int64_t id = next_lease_++;
    leases_.insert(id);
    return id;
  }
  bool LeaseAlive(int64_t id) const { return leases_.count(id) > 0; }
  // The lease runs out: its keys are deleted (one revision).
  void ExpireLease(int64_t id) {
    leases_.erase(id);
    std::map<std::string, KeyValue> live;
    auto all = Range("", std::string(1, '\0'), 0);
    std::vector<Op> ops;
    for (const KeyValue& kv : all->kvs) {
      if (kv.lease == id) ops.push_back(Op{Op::Type::kDelete, kv.key, "", 0});
    }
    if (!ops.empty()) Txn({}, ops);
  }
  // Forgets history before `rev` (reads and watches from an earlier revision fail).
  void Compact(int64_t rev) { compacted_ = std::max(compacted_, std::min(rev, revision_)); }

  static bool InRange(const std::string& k, const std::string& key, const std::string& end) {
    if (end.empty()) return k == key;
    if (end == std::string(1, '\0')) return k >= key;
    return k >= key && k < end;
  }

 private:
  int64_t revision_ = 1;
  int64_t compacted_ = 0;
  std::vector<Change> log_;
  int64_t next_lease_ = 1000;
  std::set<int64_t> leases_;
  uint64_t txns_ = 0;
};

class FakeClient final : public Store {
 public:
  explicit FakeClient(FakeEtcd* etcd) : etcd_(etcd) {}

  // Cut off from the store: every request fails, every watch ends.
  void SetDown(bool down) {
    down_ = down;
    if (down) DropWatches("connection lost");
  }
  // A stalled watch: its connection neither breaks nor delivers (other requests still work).
  void SetWatchStalled(bool stalled) { stalled_ = stalled; }
  // A watch gap: every watch ends with an error (the connection broke).
  void DropWatches(const std::string& why = "watch stream closed") {
    for (auto& [id, w] : watches_) {
      if (!w.ended) {
        w.ended = true;
        WatchResponse r;
        r.ended = true;
        r.error = why;
        queue_.push_back([fn = w.fn, r] { fn(r); });
      }
    }
  }

  void Range(std::string key, std::string range_end, int64_t revision, RangeFn done) override {
    ++requests_;
    absl::StatusOr<RangeResult> r = down_ ? absl::UnavailableError("fake etcd: down")
                                          : etcd_->Range(key, range_end, revision);
    queue_.push_back([done, r] { done(r); });
  }
  void Txn(std::vector<Compare> compares, std::vector<Op> ops, TxnFn done) override {
    ++requests_;
    absl::StatusOr<TxnResult> r = absl::UnavailableError("fake etcd: down");
    if (!down_) {
      for (const Op& op : ops) {
        if (op.lease != 0 && !etcd_->LeaseAlive(op.lease)) {
          r = absl::FailedPreconditionError("etcdserver: requested lease not found");
          queue_.push_back([done, r] { done(r); });
          return;
        }
      }
      r = etcd_->Txn(compares, ops);
    }
    queue_.push_back([done, r] { done(r); });
  }
  uint64_t Watch(std::string key, std::string range_end, int64_t start_revision,
                 WatchFn fn) override {
    const uint64_t id = next_watch_++;
    W& w = watches_[id];
    w.key = key;
    w.end = range_end;
    w.next = start_revision > 0 ? start_revision : etcd_->revision() + 1;
    w.fn = std::move(fn);
    if (down_) {
      w.ended = true;
      WatchResponse r;
      r.ended = true;
      r.error = "fake etcd: down";
      queue_.push_back([f = w.fn, r] { f(r); });
    }
    return id;
  }
  void CancelWatch(uint64_t handle) override { watches_.erase(handle); }
  void LeaseGrant(int64_t, LeaseFn done) override {
    absl::StatusOr<int64_t> r = down_ ? absl::StatusOr<int64_t>(absl::UnavailableError("down"))
                                      : absl::StatusOr<int64_t>(etcd_->GrantLease());
    queue_.push_back([done, r] { done(r); });
  }
  void LeaseKeepAlive(int64_t lease, LeaseFn done) override {
    absl::StatusOr<int64_t> r = down_ ? absl::StatusOr<int64_t>(absl::UnavailableError("down"))
                                      : absl::StatusOr<int64_t>(etcd_->LeaseAlive(lease) ? 10 : 0);
    queue_.push_back([done, r] { done(r); });
  }

  size_t Poll() override {
    size_t n = 0;
    // Watches: one response per revision, from each watch's next revision.
    for (auto& [id, w] : watches_) {
      if (w.ended || down_ || stalled_) continue;
      if (w.next > 0 && w.next < etcd_->compacted()) {
        w.ended = true;
        WatchResponse r;
        r.ended = true;
        r.compact_revision = etcd_->compacted();
        r.error = "compacted";
        queue_.push_back([fn = w.fn, r] { fn(r); });
        continue;
      }
      std::map<int64_t, WatchResponse> by_rev;
      for (const FakeEtcd::Change& c : etcd_->log()) {
        if (c.revision < w.next || !FakeEtcd::InRange(c.key, w.key, w.end)) continue;
        WatchResponse& r = by_rev[c.revision];
        r.revision = c.revision;
        WatchEvent e;
        e.type = c.value ? WatchEvent::Type::kPut : WatchEvent::Type::kDelete;
        e.kv.key = c.key;
        e.kv.value = c.value.value_or("");
        e.kv.mod_revision = c.revision;
        e.kv.lease = c.lease;
        r.events.push_back(std::move(e));
      }
      for (auto& entry : by_rev) queue_.push_back([fn = w.fn, r = entry.second] { fn(r); });
      w.next = etcd_->revision() + 1;
    }
    while (!queue_.empty()) {
      auto fn = std::move(queue_.front());
      queue_.pop_front();
      fn();
      ++n;
    }
    return n;
  }
  size_t pending() const override { return queue_.size(); }
  uint64_t requests() const { return requests_; }

 private:
  struct W {
    std::string key, end;
    int64_t next = 0;
    WatchFn fn;
    bool ended = false;
  };
  FakeEtcd* etcd_;
  bool down_ = false;
  bool stalled_ = false;
  std::deque<std::function<void()>> queue_;
  std::map<uint64_t, W> watches_;
  uint64_t next_watch_ = 1;
  uint64_t requests_ = 0;
};

// Drives a FakeClient for FleetClient (ecmplbctl's blocking use).
inline bool RunFake(FakeClient* c, const std::function<bool()>& done, long) {
  for (int i = 0; i < 1000 && !done(); ++i) c->Poll();
  return done();
}

}  // namespace ecmplb::control::fleet::testing
