// Table: one DPDK worker's connection tracker. It remembers which backend a
// flow (FlowKey: full 5-tuple + service) was given, when it was last seen and
// a small TCP state, so a flow keeps its backend when the backend set changes.
//
// Thread-safety: ONE writer, many readers, no locks.
//   * Writer methods (Lookup, LookupBulk, Touch, SetBackend, Insert,
//     InsertAbsent, InsertSynced, ExpireSome) must only be called by the
//     owning thread (a worker, or the sync thread for a peer table).
//   * Reader methods (Count, Peek, ForEach, Dump, CountByBackend, stats, and
//     the const accessors) may be called from any thread at any time, concurrently
//     with the writer. They never block the writer: every bucket carries a
//     sequence counter (odd while the writer modifies it); a reader copies a
//     bucket with atomic loads and retries if the counter moved, so it only
//     ever sees whole entries (payload words are atomics: release stores,
//     acquire loads, plain moves on x86; no standalone fences, TSan-clean).
//     A change of one word only (a flow's last-seen time, or its backend) is
//     a single atomic store without the counter round: either word is whole.
//   * Fast path (LookupBulk, Touch, SetBackend, Insert, ExpireSome): no
//     allocation, lock, syscall or exception. Time is supplied by the caller.
//
// Time unit: `now` and last-seen times are seconds (uint32) from any monotonic
// origin the caller chooses; ages are computed modulo 2^32. An entry is live
// while now - last_seen <= timeout(state), expired after.
//
// Memory layout: a fixed array of 128-byte buckets (two cache lines), chosen
// at creation; nothing is allocated afterwards. A bucket has a 4-byte sequence
// counter, 4 bytes of metadata and five 24-byte slots. An IPv4 entry fills one
// slot (15 key bytes + state byte + backend id + last seen), an IPv6 entry two
// adjacent slots. A flow lives in its home bucket (hash -> bucket) or, when
// that is full, in the less loaded of its two neighbours; the home bucket
// counts such overflow entries per side, so a lookup reads a neighbour only
// when one holds an entry from this home (a 15-slot window per key).
// The bucket index is the high half of hash * bucket_count (any count works).
// Sizing: bucket_count = max(3, ceil(capacity / 4)): 80% load at capacity, so
// memory / capacity = 32 bytes per flow slot (an IPv6 flow uses two slots:
// 64 bytes). 30M IPv4 flows: 0.96 GB. Because a key may only use its 15-slot
// window, some inserts meet a full window before the table is full (about
// 0.3% of inserts while filling to 75% of capacity, 2% to 100%); they then
// displace a weak entry or return kFull.
//
// Under pressure established flows win. Entries rank (flow_state.h, FlowRank):
// local established > synced > probationary (TCP first seen mid-stream) >
// new/closing (TCP SYN or FIN/RST seen, or a non-TCP flow seen once). A new
// flow takes, in this order, a free slot, an expired entry, a live entry of
// its own weak rank (a SYN: new/closing; an ACK without SYN: probationary),
// then one of the other weak rank; a live synced or established entry is never
// displaced, and the insert returns kFull instead. (Which weak rank goes
// first: the one holding more of the window, so a SYN flood churns its own
// half-open entries, a spoofed-ACK flood its own probationary ones; neither
// can displace a flow that proved itself.)
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <new>
#include <optional>
#include <span>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "conntrack/flow_key.h"
#include "conntrack/flow_state.h"

namespace ecmplb::conntrack {

// Flow hash used to place keys. Production uses FlowHash; tests inject
// degenerate hashers to force collisions.
using Hasher = uint64_t (*)(const FlowKey&) noexcept;

struct Options {
  // Flow slots (an IPv4 flow takes one, an IPv6 flow two). At most
  // Table::kMaxCapacity.
  size_t capacity = 0;
  Timeouts timeouts;
  Hasher hasher = &FlowHash;
};

enum class InsertResult : uint8_t {
  kInserted,       // took a free slot
  kReplacedStale,  // displaced an expired or weak (new, closing, probationary) entry (or
                   // revived an expired entry of the same key)
  kUpdated,        // the key was already tracked and live: backend and state
                   // updated in place
  kFull,           // not tracked: the caller forwards it untracked
  kKeptLocal,      // InsertSynced only: a live local entry (established or
                   // closing) outranks the synced one; nothing changed
  kInvalidKey,     // key.family is neither kFamilyV4 nor kFamilyV6; nothing
                   // changed
};
const char* InsertResultName(InsertResult r);

namespace internal {
struct Bucket;
}  // namespace internal

// Result of a lookup: a handle on the flow's entry, or a miss. Valid until the
// next Lookup/LookupBulk/Insert/ExpireSome call on the table; Touch and
// SetBackend refuse (return false) a ref invalidated by an Insert that
// displaced or updated an entry or by ExpireSome. So, per burst: LookupBulk,
// then Touch/SetBackend the hits, then Insert the misses.
class EntryRef {
 public:
  EntryRef() = default;
  bool found() const { return bucket_ != nullptr; }
  explicit operator bool() const { return found(); }
  // Only meaningful when found().
  uint32_t backend_id() const { return backend_; }
  FlowState state() const { return static_cast<FlowState>(state_); }
  uint32_t last_seen() const { return last_seen_; }

 private:
  friend class Table;
  internal::Bucket* bucket_ = nullptr;
  uint32_t backend_ = 0;
  uint32_t last_seen_ = 0;
  uint32_t epoch_ = 0;
  uint8_t tail_word_ = 0;  // index of the entry's tail word in the bucket (value: + 1)
  uint8_t state_ = 0;
  uint8_t is_tcp_ = 0;
};

// A consistent copy of one entry, for readers.
struct FlowSnapshot {
  FlowKey key;
  uint32_t backend_id = 0;
  uint32_t last_seen = 0;
  FlowState state = FlowState::kNew;

  friend bool operator==(const FlowSnapshot&, const FlowSnapshot&) = default;
};

// Writer-owned counters (monotonic), readable from any thread.
struct Stats {
  uint64_t inserts = 0;      // new entries (kInserted + kReplacedStale)
  uint64_t updates = 0;      // kUpdated
  uint64_t evictions = 0;    // live weak entries (new, closing, probationary) displaced
  uint64_t expirations = 0;  // expired entries reclaimed (lookup, insert,
                             // ExpireSome)
  uint64_t full = 0;         // kFull: flows left untracked
};

class Table {
 public:
  static constexpr size_t kMaxBurst = 32;  // LookupBulk works in chunks of it
  static constexpr size_t kBucketBytes = 128;
  static constexpr size_t kSlotsPerBucket = 5;
  static constexpr size_t kRatedSlotsPerBucket = 4;  // sizing: 80% load
  static constexpr size_t kMemoryAlignment = 64;
  // A bucket is a 4-byte sequence counter, 4 bytes of metadata, then 64-bit words
  // (conntrack.cc checks this offset); an entry's value word holds its backend id (low
  // half) and last-seen second (high half).
  static constexpr size_t kWordsOffset = 8;
  static constexpr size_t kMaxCapacity = size_t{1} << 36;

  // Bytes Create(options, mem) needs (0 if the options are invalid).
  static size_t MemoryNeeded(const Options& options);
  // Table owning its memory (2 MiB aligned, transparent huge pages advised).
  static absl::StatusOr<std::unique_ptr<Table>> Create(const Options& options);
  // Table in caller's memory (e.g. DPDK hugepages): at least MemoryNeeded()
  // bytes, kMemoryAlignment-aligned, which must outlive the table.
  static absl::StatusOr<std::unique_ptr<Table>> Create(const Options& options,
                                                       std::span<std::byte> mem);

  ~Table();
  Table(const Table&) = delete;
  Table& operator=(const Table&) = delete;

  // ---- Writer (owning worker only) ----

  // Finds a live entry for `key` (a key with an invalid family is a miss).
  // An expired entry found on the way is
  // reclaimed (counted in expirations) and reported as a miss.
  EntryRef Lookup(const FlowKey& key, uint32_t now);
  // Bulk form: hashes the whole burst and prefetches every key's bucket
  // before comparing. Handles min(keys.size(), out.size()) keys.
  void LookupBulk(std::span<const FlowKey> keys, uint32_t now, std::span<EntryRef> out);
  // Pre-hashed forms, for a caller that computes a flow's hash once per packet
  // (and may reuse it, e.g. as its Maglev hash): hashes[i] / `hash` must be
  // Hash(key). Prefetch starts loading a hash's home bucket, so a caller that
  // knows its keys early overlaps the miss with its own work; the pre-hashed
  // LookupBulk does not prefetch the home buckets again: call Prefetch first.
  uint64_t Hash(const FlowKey& key) const { return hasher_(key); }
  void Prefetch(uint64_t hash) const {
    const char* p = reinterpret_cast<const char*>(buckets_) + HomeOf(hash) * kBucketBytes;
    __builtin_prefetch(p, 0, 3);
    __builtin_prefetch(p + 64, 0, 3);
  }
  // An Insert may read both neighbours of the home bucket (when the home is
  // full): a caller about to insert a burst of new flows prefetches them.
  // (LookupBulk already does so for the keys it misses in a full home.)
  void PrefetchNeighbours(uint64_t hash) const {
    const size_t home = HomeOf(hash);
    const char* base = reinterpret_cast<const char*>(buckets_);
    const char* next = base + NextBucket(home) * kBucketBytes;
    const char* prev = base + PrevBucket(home) * kBucketBytes;
    __builtin_prefetch(next, 0, 3);
    __builtin_prefetch(next + 64, 0, 3);
    __builtin_prefetch(prev, 0, 3);
    __builtin_prefetch(prev + 64, 0, 3);
  }
  void LookupBulk(std::span<const FlowKey> keys, std::span<const uint64_t> hashes, uint32_t now,
                  std::span<EntryRef> out);
  InsertResult Insert(const FlowKey& key, uint64_t hash, uint32_t backend_id, uint8_t tcp_flags,
                      uint32_t now);
  // Insert for a key the caller knows is not in the table: it missed in a
  // LookupBulk (which reclaims the expired entries it meets) and nothing
  // inserted since has the same hash. Skips Insert's search for an existing
  // entry, with the same result otherwise. (A key that is present would be
  // tracked twice, and the later entry never found.)
  InsertResult InsertAbsent(const FlowKey& key, uint64_t hash, uint32_t backend_id,
                            uint8_t tcp_flags, uint32_t now);
  // Records a further packet of a hit flow: state transition (NextState) and
  // last-seen time (not for a probationary flow that stays one: its time
  // counts from its first packet). False (and nothing changed) if `ref` is a
  // miss or was invalidated.
  // Inline: most packets of a flow change neither its state nor the second.
  bool Touch(EntryRef& ref, uint8_t tcp_flags, uint32_t now) {
    if (ref.bucket_ == nullptr || ref.epoch_ != epoch_) return false;
    const FlowState cur = ref.state();
    const FlowState next = NextState(cur, ref.is_tcp_ != 0, tcp_flags, now - ref.last_seen_);
    if (next != cur) {
      Store(ref, next, now);
    } else if (now != ref.last_seen_ && cur != FlowState::kProbation) {
      // (A probationary flow's time counts from its first packet until it proves itself.)
      // Only the value word changes: one atomic store, no seqlock round (a reader sees the
      // old word or the new one, each with the entry's unchanged key and state).
      ValueWord(ref).store(uint64_t{ref.backend_} | uint64_t{now} << 32, std::memory_order_release);
      ref.last_seen_ = now;
    }
    return true;
  }
  // Re-points a hit flow to another backend in place (used when the caller's
  // validity check says the old backend was removed; drained backends keep
  // their flows). False if `ref` is a miss or was invalidated.
  bool SetBackend(EntryRef& ref, uint32_t backend_id);
  // Tracks a new flow whose first packet carries `tcp_flags` (ignored unless
  // key.proto is TCP); initial state is InitialState().
  InsertResult Insert(const FlowKey& key, uint32_t backend_id, uint8_t tcp_flags, uint32_t now);
  // Flow sync: tracks `key` as learned from a peer LB host (state kSynced,
  // never displaced by new flows; its first local packet makes it
  // established). A live local entry that saw a SYN, an ACK after it, or a
  // FIN/RST (new, established, closing) is kept (kKeptLocal: a SYN here is
  // newer than the peer's copy); a probationary or synced one takes the
  // peer's backend (the peer saw the flow begin) and becomes synced
  // (kUpdated). Otherwise as Insert: kInserted, kReplacedStale (an expired
  // entry of the key, or a displaced weak one), kFull, kInvalidKey.
  // The entry's last-seen time is `last_seen` (a peer's copy of age a: now - a;
  // at most `now`); the entries it meets are judged live or expired at `now`.
  // (Judged at a past time, every entry seen since would look expired.)
  InsertResult InsertSynced(const FlowKey& key, uint32_t backend_id, uint32_t now,
                            uint32_t last_seen);
  InsertResult InsertSynced(const FlowKey& key, uint32_t backend_id, uint32_t now) {
    return InsertSynced(key, backend_id, now, now);
  }
  // Visits up to `budget` buckets (5 slots each) from a cursor that wraps
  // around the table and reclaims expired entries. Returns entries reclaimed.
  size_t ExpireSome(uint32_t now, size_t budget);

  // ---- Readers (any thread) ----

  // Entries held (live or expired but not yet reclaimed).
  size_t Count() const;
  // A consistent copy of `key`'s entry if the table holds one (live, or expired but not yet
  // reclaimed: judge by last_seen and timeouts()), read in its home bucket and, where entries
  // of that home overflowed, its neighbours: at most three bucket reads, no walk. An entry
  // present for the whole call is found; one inserted or removed meanwhile may or may not be.
  // nullopt for a key with an invalid family.
  std::optional<FlowSnapshot> Peek(const FlowKey& key) const;
  // The same with the key's hash computed by the caller (must be Hash(key)).
  std::optional<FlowSnapshot> Peek(const FlowKey& key, uint64_t hash) const;
  // Calls fn on a consistent copy of each entry, bucket by bucket; stops when
  // fn returns false. An entry present for the whole walk is seen exactly
  // once; entries inserted or removed meanwhile may or may not be seen.
  void ForEach(absl::FunctionRef<bool(const FlowSnapshot&)> fn) const;
  // ForEach over buckets [first_bucket, first_bucket + max_buckets) only (clipped to the
  // table), for a walk spread over time (flow sync's refresh). Returns the bucket to start
  // the next call from: 0 when the walk reached the table's end (or fn returned false).
  size_t ForEachIn(size_t first_bucket, size_t max_buckets,
                   absl::FunctionRef<bool(const FlowSnapshot&)> fn) const;
  // Up to `limit` entries (control path: allocates).
  std::vector<FlowSnapshot> Dump(size_t limit) const;
  // Adds to counts[id] the number of entries of each backend id <
  // counts.size(); returns the number of entries whose id is out of range.
  size_t CountByBackend(std::span<uint64_t> counts) const;
  Stats stats() const;

  size_t capacity() const { return capacity_; }
  size_t bucket_count() const { return bucket_count_; }
  size_t memory_bytes() const { return bucket_count_ * kBucketBytes; }
  const Timeouts& timeouts() const { return timeouts_; }
  Hasher hasher() const { return hasher_; }

 private:
  struct KeyWords;
  struct Found;
  struct Counter {
    std::atomic<uint64_t> v{0};
    void Add(uint64_t n = 1) {
      v.store(v.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    uint64_t Get() const { return v.load(std::memory_order_relaxed); }
  };
  struct OwnedMemory {
    void operator()(std::byte* p) const;
  };

  Table(const Options& options, std::byte* mem, size_t bucket_count,
        std::unique_ptr<std::byte, OwnedMemory> owned);

  // The table's hasher; FlowHash (the default) is inlined.
  uint64_t HashOf(const FlowKey& key) const;
  size_t BucketOf(const FlowKey& key) const { return HomeOf(HashOf(key)); }
  // The bucket index is the high half of hash * bucket_count.
  size_t HomeOf(uint64_t hash) const {
    return static_cast<size_t>((static_cast<unsigned __int128>(hash) * bucket_count_) >> 64);
  }
  // LookupBulk of at most kMaxBurst keys whose home buckets are known.
  void LookupHomes(const FlowKey* keys, const size_t* home, size_t n, uint32_t now, EntryRef* out);
  // Insert's part after the search for an existing entry: places a new one.
  // The new entry is last seen at `last_seen`; the entries it meets are judged at `now`.
  InsertResult Add(const KeyWords& k, size_t home, FlowState initial, uint32_t backend_id,
                   uint32_t now, uint32_t last_seen);
  // An existing entry's words rewritten (Insert or InsertSynced of a tracked key): counted
  // as an update, or as a reclaimed expiry plus an insert when it had expired.
  InsertResult Rewrite(internal::Bucket& b, unsigned tail_index, uint64_t tail_word,
                       uint64_t value_word, bool expired);
  // Touch's write: new state and last-seen time of a valid ref.
  void Store(EntryRef& ref, FlowState next, uint32_t now);
  static std::atomic<uint64_t>& ValueWord(const EntryRef& ref) {
    char* w = reinterpret_cast<char*>(ref.bucket_) + kWordsOffset;
    return *std::launder(reinterpret_cast<std::atomic<uint64_t>*>(
        w + sizeof(uint64_t) * (size_t{ref.tail_word_} + 1)));
  }
  size_t NextBucket(size_t b) const { return b + 1 == bucket_count_ ? 0 : b + 1; }
  size_t PrevBucket(size_t b) const { return b == 0 ? bucket_count_ - 1 : b - 1; }
  uint32_t TimeoutOf(uint64_t tail_word) const;
  bool Expired(uint64_t tail_word, uint64_t value_word, uint32_t now) const;
  Found Find(const KeyWords& k, size_t home) const;
  EntryRef FindLive(const FlowKey& key, size_t home, uint32_t now);
  EntryRef FindLiveV4(const FlowKey& key, size_t home, uint32_t now);
  bool FindHomeV4(const FlowKey& key, size_t home, uint32_t now, EntryRef* out);
  void SettleV4(size_t bi, unsigned slot, uint8_t proto, uint32_t now, EntryRef* out);
  void Remove(size_t b, unsigned slot);
  // Where an entry sits relative to its home bucket.
  enum class Where : uint8_t { kHome, kNext, kPrev };
  void Place(size_t b, unsigned slot, const KeyWords& k, Where where, uint64_t tail_word,
             uint64_t value_word);
  EntryRef MakeRef(size_t b, unsigned slot, bool v6) const;
  void SetCount(size_t n);
  static void ReadBucket(const internal::Bucket& b, uint32_t* meta, uint64_t* words);

  const size_t capacity_;
  const size_t bucket_count_;
  const Timeouts timeouts_;
  const Hasher hasher_;
  uint32_t timeout_by_class_[2][8];  // [is_tcp][state byte]
  uint32_t min_timeout_ = 0;         // the smallest of them: younger entries are live
  internal::Bucket* const buckets_;
  std::unique_ptr<std::byte, OwnedMemory> owned_;

  // Writer-only state.
  size_t live_ = 0;
  size_t cursor_ = 0;
  uint32_t epoch_ = 0;

  // Published for readers.
  std::atomic<uint64_t> count_{0};
  Counter inserts_, updates_, evictions_, expirations_, full_;
};

}  // namespace ecmplb::conntrack
