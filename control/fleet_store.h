// fleet_store.h: what fleet mode needs of a distributed key-value store, as an interface:
// etcd's v3 model (one revision counter for the whole store, mod_revision per key, ranges
// read at a past revision, transactions that compare mod_revisions, watches from a revision,
// leases). EtcdStore (etcd_store.h) talks to a real etcd; tests use a fake (revisions, watch
// gaps, compaction, CAS conflicts, lease expiry on demand).
//
// Every operation is asynchronous: its callback runs later, from Poll() on the owner's
// thread, never from inside the call. A store keeps no state that callers must share.
//
// Thread-safety: one thread owns a Store.
#pragma once

#include <poll.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ecmplb::control::fleet {

struct KeyValue {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

struct RangeResult {
  int64_t revision = 0;  // the store's revision the range was read at
  std::vector<KeyValue> kvs;
};

// Compare one key's mod_revision (0: the key does not exist).
struct Compare {
  std::string key;
  int64_t mod_revision = 0;
};

struct Op {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  std::string key;
  std::string value;
  int64_t lease = 0;  // put: attach to this lease
};

struct TxnResult {
  bool succeeded = false;  // every compare held, the ops ran
  int64_t revision = 0;    // the store's revision after it
};

struct WatchEvent {
  enum class Type { kPut, kDelete };
  Type type = Type::kPut;
  KeyValue kv;
};

// One response of a watch. A watch ends (no more calls) after a response with `ended`: the
// store could not keep it (error), or the start revision was compacted (compact_revision,
// the oldest revision still kept).
struct WatchResponse {
  int64_t revision = 0;
  std::vector<WatchEvent> events;
  bool ended = false;
  int64_t compact_revision = 0;
  std::string error;
};

class Store {
 public:
  virtual ~Store() = default;
  using RangeFn = std::function<void(absl::StatusOr<RangeResult>)>;
  using TxnFn = std::function<void(absl::StatusOr<TxnResult>)>;
  using WatchFn = std::function<void(const WatchResponse&)>;
  using LeaseFn = std::function<void(absl::StatusOr<int64_t>)>;

  // Keys in [key, range_end) (range_end empty: `key` alone) at `revision` (0: the newest).
  // NotFound-free: an absent key is an empty result. OutOfRange: the revision was compacted.
  virtual void Range(std::string key, std::string range_end, int64_t revision, RangeFn done) = 0;
  // If every compare holds, runs `ops` (in order), all or nothing.
  virtual void Txn(std::vector<Compare> compares, std::vector<Op> ops, TxnFn done) = 0;
  // Changes to keys in [key, range_end) from `start_revision` on. Returns a handle.
  virtual uint64_t Watch(std::string key, std::string range_end, int64_t start_revision,
                         WatchFn fn) = 0;
  virtual void CancelWatch(uint64_t handle) = 0;
  // A lease of ttl_s seconds: its id.
  virtual void LeaseGrant(int64_t ttl_s, LeaseFn done) = 0;
  // Renews `lease`: its remaining TTL (0: the lease is gone; grant a new one).
  virtual void LeaseKeepAlive(int64_t lease, LeaseFn done) = 0;

  // Runs completed operations' callbacks. Returns how many ran.
  virtual size_t Poll() = 0;
  // Descriptors to wait on for Poll (none for an in-memory store).
  virtual void Fds(std::vector<pollfd>* out) const { (void)out; }
  // How long the owner may wait before calling Poll again (ms); -1: no limit.
  virtual long TimeoutMs() const { return -1; }
  // Requests not answered yet (watches excluded; callbacks queued for Poll may add to it).
  virtual size_t pending() const = 0;
};

}  // namespace ecmplb::control::fleet
