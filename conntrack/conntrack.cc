#include "conntrack/conntrack.h"

#include <sys/mman.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <iterator>
#include <new>
#include <utility>

#if defined(__SSE4_1__)
#include <smmintrin.h>
#endif

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "conntrack/flow_hash_inline.h"

// Hot helpers are forced inline into LookupBulk/Insert (they are members, so
// they are defined here rather than in the header).
#define ECMPLB_CT_INLINE [[gnu::always_inline]] inline

namespace ecmplb::conntrack {

// The entry word layout below relies on little-endian byte order (x86-64,
// arm64 in its usual mode).
static_assert(std::endian::native == std::endian::little,
              "conntrack entry layout assumes a little-endian host");

namespace internal {

// 128 bytes: seq, meta, then 15 words = five 24-byte slots. Slot s is words
// [3s, 3s+3). An entry at slot s with n address words (1 for IPv4, 4 for
// IPv6) stores: w[3s .. 3s+n) addresses (FlowKey::addr bytes), w[3s+n] the
// tail (FlowKey's first 7 header bytes, state in the top byte), w[3s+n+1] the
// value (backend id in the low half, last seen in the high half).
// meta: bits 0-4 entry heads; 5-9 "entry at this head is IPv6 (also uses
// slot+1)"; 10-14 "entry's home is the previous bucket"; 15-19 "entry's home
// is the next bucket"; 20-25 number of entries homed here but stored in the
// next bucket; 26-31 the same for the previous bucket.
struct alignas(64) Bucket {
  std::atomic<uint32_t> seq{0};
  std::atomic<uint32_t> meta{0};
  std::atomic<uint64_t> w[15];
};
static_assert(sizeof(Bucket) == Table::kBucketBytes);
static_assert(offsetof(Bucket, w) == Table::kWordsOffset);
static_assert(std::atomic<uint64_t>::is_always_lock_free);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

}  // namespace internal

namespace {

using internal::Bucket;
constexpr auto kRelaxed = std::memory_order_relaxed;
constexpr size_t kOwnedAlignment = size_t{2} << 20;  // 2 MiB: huge pages

constexpr uint32_t kSlotMask = 0x1f;
constexpr int kV6Shift = 5;
constexpr int kFromPrevShift = 10;
constexpr int kFromNextShift = 15;
constexpr uint32_t kOvfNextOne = 1u << 20;
constexpr uint32_t kOvfPrevOne = 1u << 26;
inline uint32_t Heads(uint32_t m) {
  return m & kSlotMask;
}
inline uint32_t V6s(uint32_t m) {
  return (m >> kV6Shift) & kSlotMask;
}
inline uint32_t FromPrev(uint32_t m) {
  return (m >> kFromPrevShift) & kSlotMask;
}
inline uint32_t FromNext(uint32_t m) {
  return (m >> kFromNextShift) & kSlotMask;
}
inline uint32_t Guests(uint32_t m) {
  return FromPrev(m) | FromNext(m);
}
inline uint32_t OvfNext(uint32_t m) {
  return (m >> 20) & 0x3f;
}
inline uint32_t OvfPrev(uint32_t m) {
  return m >> 26;
}
inline uint32_t UsedSlots(uint32_t m) {
  return Heads(m) | (V6s(m) << 1);
}
inline bool IsV6At(uint32_t m, unsigned s) {
  return (V6s(m) >> s) & 1;
}
// Slots covered by the entry whose head is s.
inline uint32_t SpanOf(uint32_t m, unsigned s) {
  return IsV6At(m, s) ? (3u << s) : (1u << s);
}

constexpr uint64_t kKeyMask = 0x00ff'ffff'ffff'ffffULL;
// The state byte holds a FlowState (values below kFlowStateCount; the mask
// keeps a table lookup in bounds whatever a word holds).
constexpr uint8_t kStateMask = 7;
inline uint8_t StateByte(uint64_t tail) {
  return static_cast<uint8_t>(tail >> 56) & kStateMask;
}
inline FlowState StateOf(uint64_t tail) {
  return static_cast<FlowState>(StateByte(tail));
}
// Bit masks over state values: which states a newcomer may displace.
constexpr uint32_t kWeakNewStates = (1u << static_cast<unsigned>(FlowState::kNew)) |
                                    (1u << static_cast<unsigned>(FlowState::kClosing));
constexpr uint32_t kWeakProbationStates = 1u << static_cast<unsigned>(FlowState::kProbation);
inline uint32_t InStates(uint64_t tail, uint32_t states) {
  return (states >> StateByte(tail)) & 1u;
}
inline uint8_t ProtoByte(uint64_t tail) {
  return static_cast<uint8_t>(tail >> 48);
}
inline uint64_t WithState(uint64_t tail, FlowState s) {
  return (tail & kKeyMask) | (uint64_t{static_cast<uint8_t>(s)} << 56);
}
inline uint32_t BackendOf(uint64_t v) {
  return static_cast<uint32_t>(v);
}
inline uint32_t LastSeenOf(uint64_t v) {
  return static_cast<uint32_t>(v >> 32);
}
inline uint64_t MakeValue(uint32_t backend, uint32_t last_seen) {
  return uint64_t{backend} | (uint64_t{last_seen} << 32);
}
inline unsigned AddrWords(bool v6) {
  return v6 ? 4 : 1;
}
inline unsigned TailIndex(unsigned slot, bool v6) {
  return 3 * slot + AddrWords(v6);
}

// Lowest slot where an entry needing `need` slots fits in `avail`, or -1.
inline int FindRun(uint32_t avail, unsigned need) {
  uint32_t starts = need == 1 ? avail : (avail & (avail >> 1) & 0x0f);
  starts &= kSlotMask;
  return starts ? std::countr_zero(starts) : -1;
}

// Seqlock without standalone fences (GCC's TSan does not model them):
// writer: seq = odd (relaxed), payload stores with release, seq = even
// (release); reader: seq (acquire), payload loads with acquire, seq again.
// A reader whose acquire load sees any store made after the odd seq store
// therefore also sees the odd seq on its second read and retries. On x86
// these are plain moves.
constexpr auto kPublish = std::memory_order_release;
constexpr auto kObserve = std::memory_order_acquire;

// Seqlock writer side (one writer per table).
inline void WriteBegin(Bucket& b) {
  uint32_t s = b.seq.load(kRelaxed);
  b.seq.store(s + 1, kRelaxed);
}
inline void WriteEnd(Bucket& b) {
  uint32_t s = b.seq.load(kRelaxed);
  b.seq.store(s + 1, std::memory_order_release);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

absl::Status ValidateOptions(const Options& o) {
  if (o.capacity == 0 || o.capacity > Table::kMaxCapacity) {
    return absl::InvalidArgumentError(absl::StrCat("conntrack capacity ", o.capacity,
                                                   " must be in [1, ", Table::kMaxCapacity, "]"));
  }
  if (o.hasher == nullptr) {
    return absl::InvalidArgumentError("conntrack hasher must not be null");
  }
  return o.timeouts.Validate();
}

size_t BucketsFor(size_t capacity) {
  size_t n = (capacity + Table::kRatedSlotsPerBucket - 1) / Table::kRatedSlotsPerBucket;
  return std::max<size_t>(n, 3);  // home and two distinct neighbours
}

}  // namespace

const char* InsertResultName(InsertResult r) {
  static constexpr const char* kNames[] = {"inserted", "replaced_stale", "updated",
                                           "full",     "kept_local",     "invalid_key"};
  static_assert(std::size(kNames) == static_cast<size_t>(InsertResult::kInvalidKey) + 1);
  const auto i = static_cast<size_t>(r);
  return i < std::size(kNames) ? kNames[i] : "invalid";
}

// A key in the entry word format.
struct Table::KeyWords {
  explicit KeyWords(const FlowKey& key) {
    std::memcpy(&tail, &key, sizeof(tail));
    tail &= kKeyMask;
    v6 = key.family == kFamilyV6;
    valid = v6 || key.family == kFamilyV4;
    is_tcp = key.proto == inet::ip_proto::kTcp;
    // Constant sizes so the copies are inlined.
    if (v6) {
      std::memcpy(addr, key.addr, 4 * sizeof(uint64_t));
    } else {
      std::memcpy(addr, key.addr, sizeof(uint64_t));
    }
  }
  uint64_t tail = 0;
  uint64_t addr[4] = {};
  bool v6 = false;
  bool valid = false;
  bool is_tcp = false;
};

struct Table::Found {
  size_t bucket = 0;
  int slot = -1;
};

void Table::OwnedMemory::operator()(std::byte* p) const {
  ::operator delete(p, std::align_val_t(kOwnedAlignment));
}

size_t Table::MemoryNeeded(const Options& options) {
  if (!ValidateOptions(options).ok()) return 0;
  return BucketsFor(options.capacity) * kBucketBytes;
}

absl::StatusOr<std::unique_ptr<Table>> Table::Create(const Options& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  const size_t buckets = BucketsFor(options.capacity);
  const size_t bytes = buckets * kBucketBytes;
  const size_t rounded = (bytes + kOwnedAlignment - 1) / kOwnedAlignment * kOwnedAlignment;
  void* p = ::operator new(rounded, std::align_val_t(kOwnedAlignment), std::nothrow);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("conntrack: cannot allocate ", rounded, " bytes"));
  }
  // Best effort: fewer TLB misses on a table of hundreds of MB.
  (void)madvise(p, rounded, MADV_HUGEPAGE);
  std::unique_ptr<std::byte, OwnedMemory> owned(static_cast<std::byte*>(p));
  std::byte* mem = owned.get();
  return std::unique_ptr<Table>(new Table(options, mem, buckets, std::move(owned)));
}

absl::StatusOr<std::unique_ptr<Table>> Table::Create(const Options& options,
                                                     std::span<std::byte> mem) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  const size_t buckets = BucketsFor(options.capacity);
  const size_t bytes = buckets * kBucketBytes;
  if (mem.size() < bytes) {
    return absl::InvalidArgumentError(absl::StrCat("conntrack: capacity ", options.capacity,
                                                   " needs ", bytes, " bytes of memory, got ",
                                                   mem.size()));
  }
  if (reinterpret_cast<uintptr_t>(mem.data()) % kMemoryAlignment != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("conntrack: memory must be ", kMemoryAlignment, "-byte aligned"));
  }
  return std::unique_ptr<Table>(new Table(options, mem.data(), buckets, nullptr));
}

Table::Table(const Options& options, std::byte* mem, size_t bucket_count,
             std::unique_ptr<std::byte, OwnedMemory> owned)
    : capacity_(options.capacity),
      bucket_count_(bucket_count),
      timeouts_(options.timeouts),
      hasher_(options.hasher),
      buckets_(reinterpret_cast<internal::Bucket*>(mem)),
      owned_(std::move(owned)) {
  for (size_t i = 0; i < bucket_count_; ++i) {
    new (mem + i * kBucketBytes) internal::Bucket();
  }
  for (int tcp = 0; tcp < 2; ++tcp) {
    for (int s = 0; s <= kStateMask; ++s) {
      // A state value no FlowState names (never written) would get the SYN timeout.
      timeout_by_class_[tcp][s] = timeouts_.For(
          tcp != 0, static_cast<FlowState>(s < kFlowStateCount ? s : 0));
    }
  }
  min_timeout_ = timeout_by_class_[0][0];
  for (const auto& row : timeout_by_class_) {
    for (uint32_t t : row) min_timeout_ = std::min(min_timeout_, t);
  }
}

Table::~Table() = default;  // Buckets are trivially destructible.

ECMPLB_CT_INLINE uint64_t Table::HashOf(const FlowKey& key) const {
  return hasher_ == &FlowHash ? FlowHashInline(key) : hasher_(key);
}

ECMPLB_CT_INLINE uint32_t Table::TimeoutOf(uint64_t tail) const {
  return timeout_by_class_[ProtoByte(tail) == inet::ip_proto::kTcp][StateByte(tail)];
}

ECMPLB_CT_INLINE bool Table::Expired(uint64_t tail, uint64_t value, uint32_t now) const {
  // Most entries met are younger than every timeout: no lookup of theirs.
  const uint32_t age = now - LastSeenOf(value);
  return age > min_timeout_ && age > TimeoutOf(tail);
}

namespace {

// Slot of the entry among `cand` heads of `b` that holds `k`'s key, or -1.
template <typename K>
inline int MatchIn(const Bucket& b, uint32_t cand, const K& k) {
  const unsigned n = AddrWords(k.v6);
  while (cand != 0) {
    const unsigned s = std::countr_zero(cand);
    cand &= cand - 1;
    const unsigned base = 3 * s;
    if (((b.w[base + n].load(kRelaxed) ^ k.tail) & kKeyMask) != 0) continue;
    bool eq = true;
    for (unsigned i = 0; i < n; ++i) {
      if (b.w[base + i].load(kRelaxed) != k.addr[i]) {
        eq = false;
        break;
      }
    }
    if (eq) return static_cast<int>(s);
  }
  return -1;
}

// IPv4 form of MatchIn without data-dependent branches: compares all five
// slots (a mispredicted branch costs more than the few extra loads, which
// are in the two prefetched lines anyway) and keeps the candidates.
// Slots of `b` whose first two words hold an IPv4 key (address word `addr`,
// tail `tail` with or without its state byte), as a mask; the caller keeps the
// bits of IPv4 entry heads.
inline uint32_t MatchV4Mask(const Bucket& b, uint64_t addr, uint64_t tail) {
  static_assert(kKeyMask == ~uint64_t{0} >> 8);
  static_assert(Table::kSlotsPerBucket == 5);
#if defined(__SSE4_1__)
  // A slot's address and tail words are 16 adjacent bytes: one load, one
  // xor, one test under the key mask (the state byte left out) per slot.
  // Plain vector loads of the atomic words are fine here: only the writer
  // calls this, and nothing else writes the table.
  const char* w = reinterpret_cast<const char*>(&b.w[0]);
  const __m128i key = _mm_set_epi64x(static_cast<int64_t>(tail), static_cast<int64_t>(addr));
  const __m128i mask = _mm_set_epi64x(static_cast<int64_t>(kKeyMask), -1);
  auto at = [&](unsigned s) -> uint32_t {
    const __m128i x =
        _mm_xor_si128(_mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 24 * s)), key);
    return static_cast<uint32_t>(_mm_testz_si128(x, mask)) << s;
  };
#else
  // Written out per slot: GCC does not unroll a loop over atomic loads.
  // The state byte (top of the tail word) is shifted out rather than masked.
  auto at = [&](unsigned s) -> uint32_t {
    const uint64_t a = b.w[3 * s].load(kRelaxed) ^ addr;
    const uint64_t t = (b.w[3 * s + 1].load(kRelaxed) ^ tail) << 8;
    return static_cast<uint32_t>((a | t) == 0) << s;
  };
#endif
  return at(0) | at(1) | at(2) | at(3) | at(4);
}

template <typename K>
inline int MatchV4(const Bucket& b, uint32_t cand, const K& k) {
  const uint32_t hit = MatchV4Mask(b, k.addr[0], k.tail) & cand;
  return hit ? std::countr_zero(hit) : -1;
}

template <typename K>
inline int Match(const Bucket& b, uint32_t cand, const K& k) {
  return k.v6 ? MatchIn(b, cand, k) : MatchV4(b, cand, k);
}

inline uint32_t FamilyHeads(uint32_t m, bool v6) {
  return Heads(m) & (v6 ? V6s(m) : ~V6s(m));
}

}  // namespace

ECMPLB_CT_INLINE Table::Found Table::Find(const KeyWords& k, size_t home) const {
  const Bucket& b = buckets_[home];
  const uint32_t m = b.meta.load(kRelaxed);
  int s = Match(b, FamilyHeads(m, k.v6) & ~Guests(m), k);
  if (s >= 0) return {home, s};
  if (OvfNext(m) != 0) {
    const size_t next = NextBucket(home);
    const Bucket& b1 = buckets_[next];
    const uint32_t m1 = b1.meta.load(kRelaxed);
    s = Match(b1, FamilyHeads(m1, k.v6) & FromPrev(m1), k);
    if (s >= 0) return {next, s};
  }
  if (OvfPrev(m) != 0) {
    const size_t prev = PrevBucket(home);
    const Bucket& b2 = buckets_[prev];
    const uint32_t m2 = b2.meta.load(kRelaxed);
    s = Match(b2, FamilyHeads(m2, k.v6) & FromNext(m2), k);
    if (s >= 0) return {prev, s};
  }
  return {};
}

ECMPLB_CT_INLINE EntryRef Table::MakeRef(size_t b, unsigned slot, bool v6) const {
  const Bucket& bk = buckets_[b];
  const unsigned ti = TailIndex(slot, v6);
  const uint64_t tail = bk.w[ti].load(kRelaxed);
  const uint64_t value = bk.w[ti + 1].load(kRelaxed);
  EntryRef ref;
  ref.bucket_ = const_cast<internal::Bucket*>(&bk);
  ref.backend_ = BackendOf(value);
  ref.last_seen_ = LastSeenOf(value);
  ref.epoch_ = epoch_;
  ref.tail_word_ = static_cast<uint8_t>(ti);
  ref.state_ = StateByte(tail);
  ref.is_tcp_ = ProtoByte(tail) == inet::ip_proto::kTcp;
  return ref;
}

ECMPLB_CT_INLINE EntryRef Table::FindLive(const FlowKey& key, size_t home, uint32_t now) {
  if (key.family == kFamilyV4) return FindLiveV4(key, home, now);
  const KeyWords k(key);
  if (!k.valid) return {};
  const Found f = Find(k, home);
  if (f.slot < 0) return {};
  const Bucket& b = buckets_[f.bucket];
  const unsigned ti = TailIndex(f.slot, k.v6);
  if (Expired(b.w[ti].load(kRelaxed), b.w[ti + 1].load(kRelaxed), now)) {
    Remove(f.bucket, f.slot);
    expirations_.Add();
    return {};
  }
  return MakeRef(f.bucket, f.slot, k.v6);
}

// The IPv4 entry whose head is `slot` of bucket `bi`, found for a key of
// protocol `proto`: *out refers to it while it is live; an expired one is
// reclaimed and *out is a miss.
ECMPLB_CT_INLINE void Table::SettleV4(size_t bi, unsigned slot, uint8_t proto, uint32_t now,
                                      EntryRef* out) {
  const Bucket& b = buckets_[bi];
  const uint64_t t = b.w[3 * slot + 1].load(kRelaxed);
  const uint64_t v = b.w[3 * slot + 2].load(kRelaxed);
  if (Expired(t, v, now)) {
    Remove(bi, slot);
    expirations_.Add();
    *out = EntryRef();
    return;
  }
  out->bucket_ = const_cast<internal::Bucket*>(&b);
  out->backend_ = BackendOf(v);
  out->last_seen_ = LastSeenOf(v);
  out->epoch_ = epoch_;
  out->tail_word_ = static_cast<uint8_t>(3 * slot + 1);
  out->state_ = StateByte(t);
  out->is_tcp_ = proto == inet::ip_proto::kTcp;
}

// The home-bucket part of FindLiveV4. True when that settles the lookup:
// *out is then the live entry or a miss (the key is in the home bucket, or
// no entry of this home overflowed into a neighbour); false when the
// neighbours must be searched too (*out untouched).
ECMPLB_CT_INLINE bool Table::FindHomeV4(const FlowKey& key, size_t home, uint32_t now,
                                        EntryRef* out) {
  uint64_t tail, addr;
  std::memcpy(&tail, &key, sizeof(tail));
  std::memcpy(&addr, key.addr, sizeof(addr));
  const Bucket& b = buckets_[home];
  const uint32_t m = b.meta.load(kRelaxed);
  // Guests (entries homed next door) need not be masked out: a key has one
  // home, so an entry of this key is never a guest here.
  const uint32_t hit = MatchV4Mask(b, addr, tail) & FamilyHeads(m, false);
  if (hit == 0) {
    if (OvfNext(m) != 0 || OvfPrev(m) != 0) return false;
    *out = EntryRef();
    return true;
  }
  SettleV4(home, static_cast<unsigned>(std::countr_zero(hit)), key.proto, now, out);
  return true;
}

// FindLive for an IPv4 key, the per-packet case, without the family-generic
// bookkeeping: same result.
ECMPLB_CT_INLINE EntryRef Table::FindLiveV4(const FlowKey& key, size_t home, uint32_t now) {
  EntryRef ref;
  if (FindHomeV4(key, home, now, &ref)) return ref;
  // Not in the home bucket, and some of its entries overflowed.
  uint64_t tail, addr;
  std::memcpy(&tail, &key, sizeof(tail));
  std::memcpy(&addr, key.addr, sizeof(addr));
  const uint32_t m = buckets_[home].meta.load(kRelaxed);
  size_t bi = home;
  uint32_t hit = 0;
  if (OvfNext(m) != 0) {
    bi = NextBucket(home);
    const Bucket& b = buckets_[bi];
    const uint32_t m1 = b.meta.load(kRelaxed);
    hit = MatchV4Mask(b, addr, tail) & FamilyHeads(m1, false) & FromPrev(m1);
  }
  if (hit == 0 && OvfPrev(m) != 0) {
    bi = PrevBucket(home);
    const Bucket& b = buckets_[bi];
    const uint32_t m2 = b.meta.load(kRelaxed);
    hit = MatchV4Mask(b, addr, tail) & FamilyHeads(m2, false) & FromNext(m2);
  }
  if (hit == 0) return {};
  SettleV4(bi, static_cast<unsigned>(std::countr_zero(hit)), key.proto, now, &ref);
  return ref;
}

EntryRef Table::Lookup(const FlowKey& key, uint32_t now) {
  return FindLive(key, BucketOf(key), now);
}

void Table::LookupBulk(std::span<const FlowKey> keys, uint32_t now, std::span<EntryRef> out) {
  const size_t n = std::min(keys.size(), out.size());
  size_t home[kMaxBurst];
  for (size_t off = 0; off < n; off += kMaxBurst) {
    const size_t m = std::min(kMaxBurst, n - off);
    // Hash and prefetch every home bucket of the chunk first.
    for (size_t i = 0; i < m; ++i) {
      home[i] = BucketOf(keys[off + i]);
      const char* p = reinterpret_cast<const char*>(&buckets_[home[i]]);
      __builtin_prefetch(p, 0, 3);
      __builtin_prefetch(p + 64, 0, 3);
    }
    LookupHomes(&keys[off], home, m, now, &out[off]);
  }
}

void Table::LookupBulk(std::span<const FlowKey> keys, std::span<const uint64_t> hashes,
                       uint32_t now, std::span<EntryRef> out) {
  const size_t n = std::min({keys.size(), hashes.size(), out.size()});
  size_t home[kMaxBurst];
  for (size_t off = 0; off < n; off += kMaxBurst) {
    const size_t m = std::min(kMaxBurst, n - off);
    // The caller has the hashes early and prefetches (Prefetch) as it gets them.
    for (size_t i = 0; i < m; ++i) home[i] = HomeOf(hashes[off + i]);
    LookupHomes(&keys[off], home, m, now, &out[off]);
  }
}

ECMPLB_CT_INLINE void Table::LookupHomes(const FlowKey* keys, const size_t* home, size_t m,
                                         uint32_t now, EntryRef* out) {
  // First the home buckets (prefetched by the caller): most keys are found
  // there, or are certain misses because no entry of that home overflowed.
  // Only the rest need a neighbour bucket: prefetch those neighbours now and
  // search them in a second pass, so their misses overlap. A key that misses
  // while its home bucket is full will be inserted next door, and Insert reads
  // both neighbours: their loads start now too, long before the insert.
  static_assert(kMaxBurst <= 32);
  uint32_t rest = 0;
  for (size_t i = 0; i < m; ++i) {
    const bool settled = keys[i].family == kFamilyV4 && FindHomeV4(keys[i], home[i], now, &out[i]);
    if (settled && out[i].found()) continue;
    const uint32_t meta = buckets_[home[i]].meta.load(kRelaxed);
    const bool full = UsedSlots(meta) == kSlotMask;
    if (!settled) rest |= 1u << i;
    if (full || (!settled && OvfNext(meta) != 0)) {
      const char* p = reinterpret_cast<const char*>(&buckets_[NextBucket(home[i])]);
      __builtin_prefetch(p, 0, 3);
      __builtin_prefetch(p + 64, 0, 3);
    }
    if (full || (!settled && OvfPrev(meta) != 0)) {
      const char* p = reinterpret_cast<const char*>(&buckets_[PrevBucket(home[i])]);
      __builtin_prefetch(p, 0, 3);
      __builtin_prefetch(p + 64, 0, 3);
    }
  }
  for (; rest != 0; rest &= rest - 1) {
    const size_t i = static_cast<size_t>(std::countr_zero(rest));
    out[i] = FindLive(keys[i], home[i], now);
  }
}

void Table::Store(EntryRef& ref, FlowState next, uint32_t now) {
  const FlowState cur = ref.state();
  Bucket& b = *ref.bucket_;
  const unsigned ti = ref.tail_word_;
  WriteBegin(b);
  if (next != cur) {
    b.w[ti].store(WithState(b.w[ti].load(kRelaxed), next), kPublish);
  }
  b.w[ti + 1].store(MakeValue(ref.backend_, now), kPublish);
  WriteEnd(b);
  ref.state_ = static_cast<uint8_t>(next);
  ref.last_seen_ = now;
}

bool Table::SetBackend(EntryRef& ref, uint32_t backend_id) {
  if (ref.bucket_ == nullptr || ref.epoch_ != epoch_) return false;
  Bucket& b = *ref.bucket_;
  // One word: no seqlock round needed (see Touch).
  b.w[ref.tail_word_ + 1u].store(MakeValue(backend_id, ref.last_seen_), kPublish);
  ref.backend_ = backend_id;
  return true;
}

void Table::SetCount(size_t n) {
  count_.store(n, kRelaxed);
}

void Table::Remove(size_t b, unsigned slot) {
  Bucket& bk = buckets_[b];
  uint32_t m = bk.meta.load(kRelaxed);
  const uint32_t bit = 1u << slot;
  const bool from_prev = (FromPrev(m) & bit) != 0;
  const bool from_next = (FromNext(m) & bit) != 0;
  m &= ~(bit | (bit << kV6Shift) | (bit << kFromPrevShift) | (bit << kFromNextShift));
  WriteBegin(bk);
  bk.meta.store(m, kPublish);
  WriteEnd(bk);
  if (from_prev || from_next) {
    Bucket& home = buckets_[from_prev ? PrevBucket(b) : NextBucket(b)];
    WriteBegin(home);
    home.meta.store(home.meta.load(kRelaxed) - (from_prev ? kOvfNextOne : kOvfPrevOne), kPublish);
    WriteEnd(home);
  }
  --live_;
  SetCount(live_);
}

void Table::Place(size_t b, unsigned slot, const KeyWords& k, Where where, uint64_t tail,
                  uint64_t value) {
  Bucket& bk = buckets_[b];
  const unsigned n = AddrWords(k.v6);
  const unsigned base = 3 * slot;
  const uint32_t bit = 1u << slot;
  uint32_t m = bk.meta.load(kRelaxed) | bit;
  if (k.v6) m |= bit << kV6Shift;
  if (where == Where::kNext) m |= bit << kFromPrevShift;
  if (where == Where::kPrev) m |= bit << kFromNextShift;
  WriteBegin(bk);
  for (unsigned i = 0; i < n; ++i) bk.w[base + i].store(k.addr[i], kPublish);
  bk.w[base + n].store(tail, kPublish);
  bk.w[base + n + 1].store(value, kPublish);
  bk.meta.store(m, kPublish);
  WriteEnd(bk);
  if (where != Where::kHome) {
    const bool in_next = where == Where::kNext;
    Bucket& home = buckets_[in_next ? PrevBucket(b) : NextBucket(b)];
    WriteBegin(home);
    home.meta.store(home.meta.load(kRelaxed) + (in_next ? kOvfNextOne : kOvfPrevOne), kPublish);
    WriteEnd(home);
  }
  ++live_;
  SetCount(live_);
}

InsertResult Table::Insert(const FlowKey& key, uint32_t backend_id, uint8_t tcp_flags,
                           uint32_t now) {
  return Insert(key, hasher_(key), backend_id, tcp_flags, now);
}

InsertResult Table::InsertAbsent(const FlowKey& key, uint64_t hash, uint32_t backend_id,
                                 uint8_t tcp_flags, uint32_t now) {
  const KeyWords k(key);
  if (!k.valid) return InsertResult::kInvalidKey;
  return Add(k, HomeOf(hash), InitialState(k.is_tcp, tcp_flags), backend_id, now, now);
}

InsertResult Table::Insert(const FlowKey& key, uint64_t hash, uint32_t backend_id,
                           uint8_t tcp_flags, uint32_t now) {
  const KeyWords k(key);
  if (!k.valid) return InsertResult::kInvalidKey;
  const size_t home = HomeOf(hash);
  const FlowState initial = InitialState(k.is_tcp, tcp_flags);

  // Already tracked (live or expired): update in place.
  if (const Found f = Find(k, home); f.slot >= 0) {
    Bucket& b = buckets_[f.bucket];
    const unsigned ti = TailIndex(f.slot, k.v6);
    const uint64_t tail = b.w[ti].load(kRelaxed);
    const uint64_t value = b.w[ti + 1].load(kRelaxed);
    const bool expired = Expired(tail, value, now);
    const FlowState cur = StateOf(tail);
    const FlowState next =
        expired ? initial : NextState(cur, k.is_tcp, tcp_flags, now - LastSeenOf(value));
    // A probationary flow's time counts from its first packet until it proves itself.
    const bool keep_time = !expired && cur == FlowState::kProbation && next == cur;
    return Rewrite(b, ti, WithState(tail, next),
                   MakeValue(backend_id, keep_time ? LastSeenOf(value) : now), expired);
  }

  return Add(k, home, initial, backend_id, now, now);
}

InsertResult Table::Rewrite(internal::Bucket& b, unsigned ti, uint64_t tail, uint64_t value,
                            bool expired) {
  WriteBegin(b);
  b.w[ti].store(tail, kPublish);
  b.w[ti + 1].store(value, kPublish);
  WriteEnd(b);
  ++epoch_;
  if (expired) {
    expirations_.Add();
    inserts_.Add();
    return InsertResult::kReplacedStale;
  }
  updates_.Add();
  return InsertResult::kUpdated;
}

InsertResult Table::InsertSynced(const FlowKey& key, uint32_t backend_id, uint32_t now,
                                 uint32_t last_seen) {
  const KeyWords k(key);
  if (!k.valid) return InsertResult::kInvalidKey;
  const size_t home = HomeOf(hasher_(key));
  if (const Found f = Find(k, home); f.slot >= 0) {
    Bucket& b = buckets_[f.bucket];
    const unsigned ti = TailIndex(f.slot, k.v6);
    const uint64_t tail = b.w[ti].load(kRelaxed);
    const bool expired = Expired(tail, b.w[ti + 1].load(kRelaxed), now);
    const FlowState cur = StateOf(tail);
    if (!expired && RankOf(cur) != FlowRank::kProbation && cur != FlowState::kSynced) {
      return InsertResult::kKeptLocal;
    }
    return Rewrite(b, ti, WithState(tail, FlowState::kSynced), MakeValue(backend_id, last_seen),
                   expired);
  }
  return Add(k, home, FlowState::kSynced, backend_id, now, last_seen);
}

ECMPLB_CT_INLINE InsertResult Table::Add(const KeyWords& k, size_t home, FlowState initial,
                                         uint32_t backend_id, uint32_t now, uint32_t last_seen) {
  const unsigned need = k.v6 ? 2 : 1;
  const uint64_t tail = WithState(k.tail, initial);
  const uint64_t value = MakeValue(backend_id, last_seen);
  // The home bucket first (without touching the neighbours: the common case
  // below the rated load), then the less loaded neighbour, then the other.
  {
    const uint32_t m = buckets_[home].meta.load(kRelaxed);
    const int pos = FindRun(~UsedSlots(m) & kSlotMask, need);
    if (pos >= 0) {
      Place(home, pos, k, Where::kHome, tail, value);
      inserts_.Add();
      return InsertResult::kInserted;
    }
  }
  size_t cand[3] = {home, NextBucket(home), PrevBucket(home)};
  Where where[3] = {Where::kHome, Where::kNext, Where::kPrev};
  uint32_t meta[3];
  for (int i = 0; i < 3; ++i) meta[i] = buckets_[cand[i]].meta.load(kRelaxed);
  if (std::popcount(UsedSlots(meta[2])) < std::popcount(UsedSlots(meta[1]))) {
    std::swap(cand[1], cand[2]);
    std::swap(where[1], where[2]);
    std::swap(meta[1], meta[2]);
  }

  // Level 0: a free run in a neighbour (the home bucket has none).
  for (int i = 1; i < 3; ++i) {
    const int pos = FindRun(~UsedSlots(meta[i]) & kSlotMask, need);
    if (pos >= 0) {
      Place(cand[i], pos, k, where[i], tail, value);
      inserts_.Add();
      return InsertResult::kInserted;
    }
  }

  // Levels 1 to 3: also expired entries; then also live entries of the weak
  // rank (flow_state.h: FlowRank; new/closing, or probationary) that holds
  // more of the window's slots (a tie: the newcomer's own rank); then also
  // those of the other weak rank. So a flood, whatever its kind, displaces
  // its own entries first: a SYN arriving during a forged-ACK flood takes a
  // forged probationary entry rather than another client's half-open one.
  // Synced and established entries are never displaced. Classify the slots of
  // the three buckets once. A bucket whose entries are all younger than the
  // shortest timeout (a busy table) has none expired: its weak entries are
  // only classified if level 2 is reached.
  uint32_t free_mask[3], expired_mask[3], new_mask[3], prob_mask[3];
  bool weak_pending[3] = {false, false, false};
  auto in_states_v4 = [&](const Bucket& b, uint32_t states) {
    auto at = [&](unsigned s) -> uint32_t {
      return InStates(b.w[3 * s + 1].load(kRelaxed), states) << s;
    };
    static_assert(kSlotsPerBucket == 5);
    return at(0) | at(1) | at(2) | at(3) | at(4);
  };
  for (int i = 0; i < 3; ++i) {
    const Bucket& b = buckets_[cand[i]];
    const uint32_t m = meta[i];
    free_mask[i] = ~UsedSlots(m) & kSlotMask;
    expired_mask[i] = 0;
    new_mask[i] = 0;
    prob_mask[i] = 0;
    if (V6s(m) == 0) {
      // IPv4 entries only (the usual bucket): every head spans one slot, so
      // all five slots are classified without branches and masked to heads.
      // Written out per slot (GCC does not unroll loops over atomic loads).
      auto age = [&](unsigned s) { return now - LastSeenOf(b.w[3 * s + 2].load(kRelaxed)); };
      static_assert(kSlotsPerBucket == 5);
      const uint32_t oldest = std::max({age(0), age(1), age(2), age(3), age(4)});
      if (oldest <= min_timeout_) {
        weak_pending[i] = true;
        continue;
      }
      uint32_t expired = 0, nw = 0, pr = 0;
      auto classify = [&](unsigned s) {
        const uint64_t t = b.w[3 * s + 1].load(kRelaxed);
        const uint64_t v = b.w[3 * s + 2].load(kRelaxed);
        const uint32_t live = Expired(t, v, now) ? 0u : 1u;
        expired |= (live ^ 1u) << s;
        nw |= (InStates(t, kWeakNewStates) & live) << s;
        pr |= (InStates(t, kWeakProbationStates) & live) << s;
      };
      classify(0);
      classify(1);
      classify(2);
      classify(3);
      classify(4);
      expired_mask[i] = expired & Heads(m);
      new_mask[i] = nw & Heads(m);
      prob_mask[i] = pr & Heads(m);
      continue;
    }
    for (uint32_t h = Heads(m); h != 0; h &= h - 1) {
      const unsigned s = std::countr_zero(h);
      const unsigned ti = TailIndex(s, IsV6At(m, s));
      const uint64_t t = b.w[ti].load(kRelaxed);
      if (Expired(t, b.w[ti + 1].load(kRelaxed), now)) {
        expired_mask[i] |= SpanOf(m, s);
      } else if (InStates(t, kWeakNewStates)) {
        new_mask[i] |= SpanOf(m, s);
      } else if (InStates(t, kWeakProbationStates)) {
        prob_mask[i] |= SpanOf(m, s);
      }
    }
  }
  const uint32_t* first_mask = new_mask;  // level 2's weak rank
  for (int level = 1; level <= 3; ++level) {
    if (level == 2) {
      int new_slots = 0, prob_slots = 0;
      for (int i = 0; i < 3; ++i) {
        if (weak_pending[i]) {
          new_mask[i] = in_states_v4(buckets_[cand[i]], kWeakNewStates) & Heads(meta[i]);
          prob_mask[i] = in_states_v4(buckets_[cand[i]], kWeakProbationStates) & Heads(meta[i]);
        }
        new_slots += std::popcount(new_mask[i]);
        prob_slots += std::popcount(prob_mask[i]);
      }
      if (prob_slots > new_slots ||
          (prob_slots == new_slots && RankOf(initial) == FlowRank::kProbation)) {
        first_mask = prob_mask;
      }
    }
    if (level >= 2 && need == 1) {
      // An IPv4 newcomer displaces the least recently seen candidate of the three buckets
      // (ties: home first), so an entry just made -- a real client's SYN during a SYN
      // flood -- is the last of its window to go. (Level 1 left no free or expired slot.)
      int best_i = -1;
      unsigned best_s = 0;
      uint32_t best_age = 0;
      for (int i = 0; i < 3; ++i) {
        const uint32_t m = buckets_[cand[i]].meta.load(kRelaxed);
        const uint32_t pick = level == 2 ? first_mask[i] : (new_mask[i] | prob_mask[i]);
        for (uint32_t h = pick & Heads(m); h != 0; h &= h - 1) {
          const unsigned s = std::countr_zero(h);
          const unsigned vi = TailIndex(s, IsV6At(m, s)) + 1;
          const uint32_t age = now - LastSeenOf(buckets_[cand[i]].w[vi].load(kRelaxed));
          if (best_i < 0 || age > best_age) {
            best_i = i;
            best_s = s;
            best_age = age;
          }
        }
      }
      if (best_i < 0) continue;
      evictions_.Add();
      Remove(cand[best_i], best_s);
      Place(cand[best_i], best_s, k, where[best_i], tail, value);
      ++epoch_;
      inserts_.Add();
      return InsertResult::kReplacedStale;
    }
    for (int i = 0; i < 3; ++i) {
      uint32_t avail = free_mask[i] | expired_mask[i];
      if (level == 2) avail |= first_mask[i];
      if (level == 3) avail |= new_mask[i] | prob_mask[i];
      const int pos = FindRun(avail, need);
      if (pos < 0) continue;
      const uint32_t run = (need == 2 ? 3u : 1u) << pos;
      const uint32_t m = buckets_[cand[i]].meta.load(kRelaxed);
      for (uint32_t h = Heads(m); h != 0; h &= h - 1) {
        const unsigned s = std::countr_zero(h);
        if ((SpanOf(m, s) & run) == 0) continue;
        if (expired_mask[i] & (1u << s)) {
          expirations_.Add();
        } else {
          evictions_.Add();
        }
        Remove(cand[i], s);
      }
      Place(cand[i], pos, k, where[i], tail, value);
      ++epoch_;
      inserts_.Add();
      return InsertResult::kReplacedStale;
    }
  }
  full_.Add();
  return InsertResult::kFull;
}

size_t Table::ExpireSome(uint32_t now, size_t budget) {
  budget = std::min(budget, bucket_count_);
  size_t removed = 0;
  for (size_t i = 0; i < budget; ++i) {
    const size_t b = cursor_;
    cursor_ = NextBucket(cursor_);
    const Bucket& bk = buckets_[b];
    const uint32_t m = bk.meta.load(kRelaxed);
    for (uint32_t h = Heads(m); h != 0; h &= h - 1) {
      const unsigned s = std::countr_zero(h);
      const unsigned ti = TailIndex(s, IsV6At(m, s));
      if (Expired(bk.w[ti].load(kRelaxed), bk.w[ti + 1].load(kRelaxed), now)) {
        Remove(b, s);
        ++removed;
      }
    }
  }
  if (removed != 0) {
    ++epoch_;
    expirations_.Add(removed);
  }
  return removed;
}

// ---- Readers ----

void Table::ReadBucket(const internal::Bucket& b, uint32_t* meta, uint64_t* words) {
  for (;;) {
    const uint32_t s1 = b.seq.load(std::memory_order_acquire);
    if (s1 & 1) {
      CpuRelax();
      continue;
    }
    *meta = b.meta.load(kObserve);
    for (int i = 0; i < 15; ++i) words[i] = b.w[i].load(kObserve);
    if (b.seq.load(kRelaxed) == s1) return;
  }
}

namespace {

// The entry whose head is slot `s` of a bucket copy (meta `m`, words `w`, see ReadBucket).
FlowSnapshot SnapshotAt(uint32_t m, const uint64_t* w, unsigned s) {
  const bool v6 = IsV6At(m, s);
  const unsigned n = AddrWords(v6);
  const uint64_t tail = w[3 * s + n];
  const uint64_t value = w[3 * s + n + 1];
  FlowSnapshot snap;
  snap.key.sport = static_cast<uint16_t>(tail);
  snap.key.dport = static_cast<uint16_t>(tail >> 16);
  snap.key.service = static_cast<uint16_t>(tail >> 32);
  snap.key.proto = ProtoByte(tail);
  snap.key.family = v6 ? kFamilyV6 : kFamilyV4;
  std::memcpy(snap.key.addr, &w[3 * s], n * sizeof(uint64_t));
  snap.backend_id = BackendOf(value);
  snap.last_seen = LastSeenOf(value);
  snap.state = static_cast<FlowState>(StateByte(tail));
  return snap;
}

}  // namespace

size_t Table::Count() const {
  return count_.load(kRelaxed);
}

std::optional<FlowSnapshot> Table::Peek(const FlowKey& key) const {
  return Peek(key, hasher_(key));
}

std::optional<FlowSnapshot> Table::Peek(const FlowKey& key, uint64_t hash) const {
  const KeyWords k(key);
  if (!k.valid) return std::nullopt;
  const size_t home = HomeOf(hash);
  const unsigned n = AddrWords(k.v6);
  uint64_t w[15];
  uint32_t m;
  // The entry among the candidate heads of the bucket copy in w/m, or -1.
  auto match = [&](uint32_t cand) {
    for (; cand != 0; cand &= cand - 1) {
      const unsigned s = std::countr_zero(cand);
      if ((w[3 * s + n] & kKeyMask) == k.tail &&
          std::memcmp(&w[3 * s], k.addr, n * sizeof(uint64_t)) == 0) {
        return static_cast<int>(s);
      }
    }
    return -1;
  };
  // Home: the entries homed here (not the neighbours' guests).
  ReadBucket(buckets_[home], &m, w);
  int s = match(FamilyHeads(m, k.v6) & ~Guests(m));
  if (s >= 0) return SnapshotAt(m, w, static_cast<unsigned>(s));
  const bool in_next = OvfNext(m) != 0, in_prev = OvfPrev(m) != 0;
  if (in_next) {
    ReadBucket(buckets_[NextBucket(home)], &m, w);
    s = match(FamilyHeads(m, k.v6) & FromPrev(m));
    if (s >= 0) return SnapshotAt(m, w, static_cast<unsigned>(s));
  }
  if (in_prev) {
    ReadBucket(buckets_[PrevBucket(home)], &m, w);
    s = match(FamilyHeads(m, k.v6) & FromNext(m));
    if (s >= 0) return SnapshotAt(m, w, static_cast<unsigned>(s));
  }
  return std::nullopt;
}

void Table::ForEach(absl::FunctionRef<bool(const FlowSnapshot&)> fn) const {
  ForEachIn(0, bucket_count_, fn);
}

size_t Table::ForEachIn(size_t first_bucket, size_t max_buckets,
                        absl::FunctionRef<bool(const FlowSnapshot&)> fn) const {
  uint64_t w[15];
  uint32_t m;
  if (first_bucket >= bucket_count_) return 0;
  const size_t end = first_bucket + std::min(max_buckets, bucket_count_ - first_bucket);
  for (size_t b = first_bucket; b < end; ++b) {
    ReadBucket(buckets_[b], &m, w);
    for (uint32_t h = Heads(m); h != 0; h &= h - 1) {
      if (!fn(SnapshotAt(m, w, std::countr_zero(h)))) return 0;
    }
  }
  return end == bucket_count_ ? 0 : end;
}

std::vector<FlowSnapshot> Table::Dump(size_t limit) const {
  std::vector<FlowSnapshot> out;
  if (limit == 0) return out;
  out.reserve(std::min(limit, Count()));
  ForEach([&](const FlowSnapshot& s) {
    out.push_back(s);
    return out.size() < limit;
  });
  return out;
}

size_t Table::CountByBackend(std::span<uint64_t> counts) const {
  size_t out_of_range = 0;
  ForEach([&](const FlowSnapshot& s) {
    if (s.backend_id < counts.size()) {
      ++counts[s.backend_id];
    } else {
      ++out_of_range;
    }
    return true;
  });
  return out_of_range;
}

Stats Table::stats() const {
  Stats s;
  s.inserts = inserts_.Get();
  s.updates = updates_.Get();
  s.evictions = evictions_.Get();
  s.expirations = expirations_.Get();
  s.full = full_.Get();
  return s;
}

}  // namespace ecmplb::conntrack
