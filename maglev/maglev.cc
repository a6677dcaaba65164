// Maglev table build; see maglev.h for the algorithm and its guarantees.
#include "maglev/maglev.h"

#include <arpa/inet.h>
// XXH64 inlined: two 19-byte hashes per backend are mostly call overhead.
#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <type_traits>
#include <utility>

#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace ecmplb::maglev {
namespace {

constexpr uint32_t kNone = 0xffffffffu;

constexpr std::array<uint8_t, 16> MappedV4(std::array<uint8_t, 4> a) {
  return {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a[0], a[1], a[2], a[3]};
}

bool IsPrime(uint32_t m) {
  if (m < 2) return false;
  if (m % 2 == 0) return m == 2;
  for (uint32_t d = 3; static_cast<uint64_t>(d) * d <= m; d += 2) {
    if (m % d == 0) return false;
  }
  return true;
}

// x^-1 mod m for prime m and 0 < x < m (extended Euclid; the Bezout
// coefficients stay within (-m, m)).
uint32_t ModInverse(uint32_t x, uint32_t m) {
  uint32_t r0 = m, r1 = x;
  int32_t t0 = 0, t1 = 1;
  while (r1 != 0) {
    const uint32_t q = r0 / r1;
    const uint32_t r2 = r0 - q * r1;
    r0 = r1;
    r1 = r2;
    const int32_t t2 = t0 - static_cast<int32_t>(q) * t1;
    t0 = t1;
    t1 = t2;
  }
  return static_cast<uint32_t>(t0 < 0 ? t0 + static_cast<int32_t>(m) : t0);
}

// BackendId::CanonicalBytes() written in place (Build fills an array of
// them; returning each by value cost a copy that stalled on store
// forwarding).
void WriteCanonical(const BackendId& id, std::array<uint8_t, kCanonicalIdSize>& out) {
  out[0] = id.family();
  std::memcpy(&out[1], id.addr16().data(), 16);
  out[17] = static_cast<uint8_t>(id.port() >> 8);
  out[18] = static_cast<uint8_t>(id.port() & 0xff);
}

absl::StatusOr<uint16_t> ParsePort(std::string_view text, std::string_view whole) {
  uint32_t port = 0;
  bool ok = !text.empty() && text.size() <= 5;
  for (char c : text) {
    if (c < '0' || c > '9') {
      ok = false;
      break;
    }
    port = port * 10 + static_cast<uint32_t>(c - '0');
  }
  if (!ok || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad port in backend address \"%s\"", std::string(whole)));
  }
  return static_cast<uint16_t>(port);
}

// Walking a permutation in "phase" space: slot s is represented by
// ceil(s * 2^64 / m), and a step of `skip` slots by ceil(skip * 2^64 / m).
// Adding phases modulo 2^64 then follows (offset + j * skip) mod m with no
// reduction: the rounding error after j < m steps is below m units, while a
// slot spans 2^64 / m > 2^40 units, so floor(phase * m / 2^64) is exactly
// the slot (and never wraps: the top slot ends 2^64 / m units below 2^64).
class PhaseScale {
 public:
  explicit PhaseScale(uint32_t m)
      : m_(m), q_(~uint64_t{0} / m), r_(0 - q_ * m) {}  // 2^64 = q m + r
  // ceil(s * 2^64 / m) for s < m.
  uint64_t PhaseOf(uint32_t s) const { return s * q_ + (uint64_t{s} * r_ + m_ - 1) / m_; }
  uint32_t SlotOf(uint64_t phase) const { return static_cast<uint32_t>(SlotOf64(phase)); }
  // The same, as a 64-bit register (spares a zero extension per probe).
  uint64_t SlotOf64(uint64_t phase) const {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(phase) * m_) >> 64);
  }

 private:
  uint64_t m_;
  uint64_t q_;
  uint64_t r_;
};

// Walk state of a backend with weight > 0, hot during the fill (24 bytes:
// a thousand backends stay in L1).
struct Walker {
  uint64_t phase;  // next preferred slot, in phase space
  uint64_t step;   // skip, in phase space
  uint32_t index;  // position in the caller's span
};

// The permutation of a backend with weight > 0 (paper's notation), needed
// only for the last turns.
struct Perm {
  uint32_t offset;
  uint32_t skip;
};

// Turn sources: which walker takes each turn, in fill order.
// Equal weights: every round is every backend in sorted order.
class RoundRobinTurns {
 public:
  RoundRobinTurns(Walker* walkers, size_t n) : first_(walkers), end_(walkers + n), next_(walkers) {}
  Walker& Next() {
    Walker& w = *next_;
    if (++next_ == end_) next_ = first_;
    return w;
  }

 private:
  Walker* first_;
  Walker* end_;
  Walker* next_;
};

// Any weights: a precomputed sequence of walker positions.
class ListedTurns {
 public:
  ListedTurns(Walker* walkers, const uint16_t* turns) : walkers_(walkers), next_(turns) {}
  Walker& Next() { return walkers_[*next_++]; }

 private:
  Walker* walkers_;
  const uint16_t* next_;
};

// The first m turns of the weighted schedule (see maglev.h), as positions in
// sorted order of the backends with weight > 0: the k-th turn of a backend
// of weight w is in round ceil(k * max_w / w); within a round, backends go in
// the order of their previous turn, those without one first in sorted order.
// One queue per round, linked through the backends.
std::vector<uint16_t> WeightedTurns(const std::vector<uint64_t>& weights, uint64_t max_w,
                                    uint32_t n_max, uint32_t m) {
  const uint32_t n = static_cast<uint32_t>(weights.size());
  // Every round each max-weight backend takes a turn, so m turns are done
  // after at most ceil(m / n_max) rounds.
  const uint64_t last_round = (uint64_t{m} + n_max - 1) / n_max;
  // k * max_w / w after turn k, as quotient and remainder, advanced by
  // max_w / w without a division (24 bytes: the walk over the queues stays
  // in L1 for a thousand backends).
  struct Credit {
    uint64_t q;
    uint32_t rem;
    uint32_t step_q;
    uint32_t step_r;
    uint32_t weight;
  };
  std::vector<Credit> c(n);
  std::vector<uint32_t> next(n, kNone);  // next backend in the same round
  std::vector<uint32_t> head(last_round + 1, kNone);
  std::vector<uint32_t> tail(last_round + 1, kNone);
  // Advances b past its next turn and queues it in that turn's round.
  auto enqueue_next = [&](uint32_t b) {
    Credit& x = c[b];
    // Branch-free: the carry pattern of mixed weights is unpredictable.
    const uint64_t rem = uint64_t{x.rem} + x.step_r;
    const uint64_t carry = rem >= x.weight ? 1 : 0;
    x.rem = static_cast<uint32_t>(rem - (x.weight & (0 - carry)));
    x.q += x.step_q + carry;
    const uint64_t round = x.q + (x.rem != 0 ? 1 : 0);
    if (round > last_round) return;
    next[b] = kNone;
    if (head[round] == kNone) {
      head[round] = b;
    } else {
      next[tail[round]] = b;
    }
    tail[round] = b;
  };
  for (uint32_t b = 0; b < n; ++b) {
    // Weights fit in 32 bits (Backend::weight), so do their ratios.
    c[b] = {0, 0, static_cast<uint32_t>(max_w / weights[b]),
            static_cast<uint32_t>(max_w % weights[b]), static_cast<uint32_t>(weights[b])};
    enqueue_next(b);
  }
  std::vector<uint16_t> turns(m);
  uint32_t t = 0;
  for (uint64_t r = 1; r <= last_round && t < m; ++r) {
    for (uint32_t b = head[r]; b != kNone && t < m;) {
      const uint32_t next_in_round = next[b];
      turns[t++] = static_cast<uint16_t>(b);
      enqueue_next(b);
      b = next_in_round;
    }
  }
  return turns;
}

// `count` turns of the walk: each turn's backend claims its next preferred
// free slot. With K == 1 a turn probes slot by slot, one branch per probe.
// With K > 1 it probes K slots per step with no branch inside the step (a
// bit per probe, 1 = taken) and branches only on "all K taken": an
// unpredictable exit branch per turn costs more than a few wasted probes
// while the table is not yet full. The first free probe of the step is the
// slot the slot-by-slot walk would find, so the table is the same for every
// K.
template <int K, typename Turns>
__attribute__((noinline)) void WalkTurns(Turns& turns, uint32_t count, const PhaseScale& scale_ref,
                                         uint64_t* bits, uint16_t* entries) {
  // A copy keeps m in a register; through the reference it was reloaded
  // at the start of every turn, on the path to the first probe.
  const PhaseScale scale = scale_ref;
  static_assert(K >= 1 && K <= 16);
  Turns local = turns;  // in registers, not behind the reference
  for (uint32_t t = count; t != 0; --t) {
    Walker& w = local.Next();
    uint64_t phase = w.phase;
    const uint64_t step = w.step;
    // The permutation visits every slot (m prime, 0 < skip < m) and the
    // table is not full, so this finds a free slot.
    if constexpr (K == 1) {
      for (;;) {
        const uint32_t s = scale.SlotOf(phase);
        phase += step;
        if (!((bits[s >> 6] >> (s & 63)) & 1)) break;
      }
      phase -= step;
    } else {
      constexpr uint32_t kAllTaken = (1u << K) - 1;
      uint32_t taken;
      for (;;) {
        taken = 0;
        uint64_t p = phase;
        for (int i = 0; i < K; ++i) {
          const uint64_t s = scale.SlotOf64(p);
          p += step;
          const uint64_t word = bits[s >> 6];
#if defined(__x86_64__)
          // taken = 2 * taken + bit s of word: bt and adc, two instructions
          // where the compiler emits four.
          asm("bt %2, %1\n\tadc %0, %0" : "+r"(taken) : "r"(word), "r"(s) : "cc");
#else
          taken = 2 * taken + static_cast<uint32_t>((word >> (s & 63)) & 1);
#endif
        }
        if (taken != kAllTaken) break;
        phase = p;
      }
      // The step's first probe is bit K - 1: the first free one is the
      // highest clear bit.
      const uint32_t first_free = static_cast<uint32_t>(__builtin_clz(~taken << (32 - K)));
      phase += first_free * step;
    }
    // Recompute the slot (one multiply per turn) instead of letting the
    // compiler carry its bit address through the loop; the empty asm hides
    // that the two are the same value.
    asm("" : "+r"(phase));
    const uint32_t slot = scale.SlotOf(phase);
    bits[slot >> 6] |= uint64_t{1} << (slot & 63);
    w.phase = phase + step;
    entries[slot] = static_cast<uint16_t>(w.index);
  }
  turns = local;
}

// Smallest table that walks in steps of K > 1 probes (see Fill).
constexpr uint32_t kMinStepTableSize = 24576;

// Fills `entries` (m slots) turn by turn: each turn's backend claims its
// next preferred free slot.
template <typename Turns>
void Fill(Turns turns, const Walker* walkers, const Perm* perms, uint32_t m, uint16_t* entries) {
  const PhaseScale scale(m);
  // Taken slots, one bit each: 8 KiB at m = 65537, so walking stays in L1.
  const uint32_t words = (m + 63) / 64;
  std::vector<uint64_t> taken(words, 0);
  uint64_t* const bits = taken.data();
  // Walking a permutation to the next free slot costs m / free probes, so
  // the last few hundred turns would dominate (the walk totals about
  // m * ln(m) probes). Once at most `scan_below` slots are free, a turn
  // instead ranks every free slot in the backend's permutation,
  //   rank(slot) = (slot - offset) * skip^-1 mod m,
  // and takes the lowest: every slot ranked below its current position is
  // taken, so that is exactly the slot the walk would reach. A probe and a
  // rank cost about the same, so the crossover is at sqrt(m) free slots.
  uint32_t scan_below = 1;
  while (static_cast<uint64_t>(scan_below) * scan_below < m) ++scan_below;
  const uint32_t walk_turns = m - scan_below;
  // Turn t claims the t-th slot, so the fill level is t / m. Probes per step
  // by fill level (the expected probes per turn at fill f are about
  // 1 / (1 - f)): each step size pays a few wasted probes to make the "all
  // taken" branch rare (f^K of the steps). Past 87% a turn takes about 8
  // probes or more and a mispredicted exit per turn is cheap next to them,
  // so the walk goes back to one probe at a time.
  uint32_t done = 0;
  // Walks with steps of K probes until `percent` of the slots are taken.
  auto walk_to = [&](auto k, uint32_t percent) {
    uint32_t end = static_cast<uint32_t>(uint64_t{m} * percent / 100);
    if (end > walk_turns) end = walk_turns;
    if (end > done) {
      WalkTurns<decltype(k)::value>(turns, end - done, scale, bits, entries);
      done = end;
    }
  };
  // Measured on the project's VM (AMD EPYC): below about 24k slots the
  // stepped walk loses to the plain one (by up to 40% at 16411 slots, though
  // the expected probe counts are the same at every size); from 24593 slots
  // up it wins, by 20% at 65537.
  if (m >= kMinStepTableSize) {
    walk_to(std::integral_constant<int, 1>(), 10);
    walk_to(std::integral_constant<int, 2>(), 30);
    walk_to(std::integral_constant<int, 3>(), 50);
    walk_to(std::integral_constant<int, 4>(), 65);
    walk_to(std::integral_constant<int, 6>(), 80);
    walk_to(std::integral_constant<int, 8>(), 87);
  }
  walk_to(std::integral_constant<int, 1>(), 100);

  // The free slots, as phases.
  std::vector<uint64_t> free_phases;
  free_phases.reserve(scan_below);
  for (uint32_t i = 0; i < words; ++i) {
    uint64_t x = ~bits[i];
    if (i + 1 == words && m % 64 != 0) x &= (uint64_t{1} << (m % 64)) - 1;
    while (x != 0) {
      free_phases.push_back(scale.PhaseOf(i * 64 + static_cast<uint32_t>(__builtin_ctzll(x))));
      x &= x - 1;
    }
  }
  // Ranks in phase space, without a division: with d = (slot - offset) mod m,
  // phase(slot) - phase(offset) + 1 is phase(d) plus an error in (0, 2)
  // units; times skip^-1 (< m) modulo 2^64 that is phase(rank) plus an error
  // below 2m units, far below the 2^64 / m units between consecutive ranks,
  // so these keys order the free slots exactly as their ranks do.
  for (uint32_t t = scan_below; t != 0; --t) {
    const Walker& w = turns.Next();
    const Perm& p = perms[&w - walkers];
    const uint64_t base = scale.PhaseOf(p.offset) - 1;
    const uint64_t inv_skip = ModInverse(p.skip, m);
    // Keys of different ranks are more than 2^40 - 2^25 units apart, so
    // their low 16 bits can carry the position instead (at most
    // sqrt(kMaxTableSize) = 4096 free slots): one branch-free minimum then
    // gives the position too. Two running minima halve the dependency chain.
    static_assert(kMaxTableSize <= (1u << 24));
    const uint64_t* const fp = free_phases.data();
    const size_t free_count = free_phases.size();
    uint64_t min0 = ~uint64_t{0};
    uint64_t min1 = ~uint64_t{0};
    size_t i = 0;
    for (; i + 2 <= free_count; i += 2) {
      const uint64_t k0 = ((fp[i] - base) * inv_skip & ~uint64_t{0xffff}) | i;
      const uint64_t k1 = ((fp[i + 1] - base) * inv_skip & ~uint64_t{0xffff}) | (i + 1);
      min0 = k0 < min0 ? k0 : min0;
      min1 = k1 < min1 ? k1 : min1;
    }
    if (i < free_count) {
      const uint64_t k0 = ((fp[i] - base) * inv_skip & ~uint64_t{0xffff}) | i;
      min0 = k0 < min0 ? k0 : min0;
    }
    const size_t best = (min0 < min1 ? min0 : min1) & 0xffff;
    const uint32_t slot = scale.SlotOf(free_phases[best]);
    free_phases[best] = free_phases.back();
    free_phases.pop_back();
    entries[slot] = static_cast<uint16_t>(w.index);
  }
}

}  // namespace

BackendId::BackendId() : family_(4), addr_(MappedV4({0, 0, 0, 0})), port_(0) {}

BackendId BackendId::V4(std::array<uint8_t, 4> addr, uint16_t port) {
  BackendId id;
  id.family_ = 4;
  id.addr_ = MappedV4(addr);
  id.port_ = port;
  return id;
}

BackendId BackendId::V4Be(uint32_t addr_be, uint16_t port) {
  std::array<uint8_t, 4> a;
  std::memcpy(a.data(), &addr_be, 4);
  return V4(a, port);
}

BackendId BackendId::V6(const std::array<uint8_t, 16>& addr, uint16_t port) {
  BackendId id;
  id.family_ = 6;
  id.addr_ = addr;
  id.port_ = port;
  return id;
}

absl::StatusOr<BackendId> BackendId::Parse(std::string_view text) {
  auto bad = [&text]() {
    return absl::InvalidArgumentError(
        absl::StrFormat("bad backend address \"%s\" (want 10.0.0.1[:port] or "
                        "[2001:db8::1][:port])",
                        std::string(text)));
  };
  std::string_view host = text;
  std::string_view port_text;
  bool have_port = false;
  bool bracketed = false;
  if (!text.empty() && text.front() == '[') {
    const size_t close = text.find(']');
    if (close == std::string_view::npos) return bad();
    host = text.substr(1, close - 1);
    bracketed = true;
    std::string_view rest = text.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return bad();
      port_text = rest.substr(1);
      have_port = true;
    }
  } else {
    const size_t colon = text.find(':');
    // More than one colon and no brackets: a bare IPv6 address.
    if (colon != std::string_view::npos && text.find(':', colon + 1) == std::string_view::npos) {
      host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
      have_port = true;
    }
  }
  uint16_t port = 0;
  if (have_port) {
    ECMPLB_ASSIGN_OR_RETURN(port, ParsePort(port_text, text));
  }
  if (host.empty() || host.size() >= INET6_ADDRSTRLEN) return bad();
  char buf[INET6_ADDRSTRLEN];
  std::memcpy(buf, host.data(), host.size());
  buf[host.size()] = '\0';
  if (!bracketed) {
    std::array<uint8_t, 4> v4;
    if (inet_pton(AF_INET, buf, v4.data()) == 1) return V4(v4, port);
  }
  std::array<uint8_t, 16> v6;
  if (inet_pton(AF_INET6, buf, v6.data()) == 1) return V6(v6, port);
  return bad();
}

std::array<uint8_t, kCanonicalIdSize> BackendId::CanonicalBytes() const {
  std::array<uint8_t, kCanonicalIdSize> b;
  WriteCanonical(*this, b);
  return b;
}

std::string BackendId::ToString() const {
  char buf[INET6_ADDRSTRLEN];
  if (is_v4()) {
    const std::array<uint8_t, 4> a = v4();
    inet_ntop(AF_INET, a.data(), buf, sizeof(buf));
    return absl::StrFormat("%s:%u", buf, port_);
  }
  inet_ntop(AF_INET6, addr_.data(), buf, sizeof(buf));
  return absl::StrFormat("[%s]:%u", buf, port_);
}

absl::Status Table::ValidateTableSize(uint32_t m) {
  if (m < kMinTableSize || m > kMaxTableSize || !IsPrime(m)) {
    return absl::InvalidArgumentError(
        absl::StrFormat("maglev table size %u is not a prime in [%u, %u] (e.g. 65537, "
                        "655373)",
                        m, kMinTableSize, kMaxTableSize));
  }
  return absl::OkStatus();
}

uint32_t Table::SizeFor(uint32_t expected_backends) {
  uint64_t m = std::max<uint64_t>(kMinTableSize, uint64_t{expected_backends} * 100);
  if (m >= kMaxTableSize) m = kMaxTableSize - 1;
  while (m < kMaxTableSize && !IsPrime(static_cast<uint32_t>(m))) ++m;
  if (m >= kMaxTableSize) {  // no prime in [m, kMaxTableSize): the largest below
    m = kMaxTableSize - 1;
    while (!IsPrime(static_cast<uint32_t>(m))) --m;
  }
  return static_cast<uint32_t>(m);
}

absl::StatusOr<Table> Table::Build(std::span<const Backend> backends, uint32_t table_size) {
  const uint32_t m = table_size;
  if (absl::Status s = ValidateTableSize(m); !s.ok()) return s;
  if (backends.size() > kMaxBackends) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%u backends exceed the maximum of %u", backends.size(), kMaxBackends));
  }
  const uint32_t n = static_cast<uint32_t>(backends.size());
  if (n >= m) {
    return absl::InvalidArgumentError(
        absl::StrFormat("%u backends need a maglev table larger than %u slots", n, m));
  }

  // Sorted order of the input: the fill never depends on caller order. The
  // canonical bytes as three big-endian integers compare like the bytes.
  struct SortKey {
    uint64_t hi;   // bytes 0..7
    uint64_t mid;  // bytes 8..15
    uint32_t lo;   // bytes 16..18
    uint32_t index;
  };
  // The keys come from the identity's fields, not from `canonical`: loading
  // words that span the byte stores just made would stall on store
  // forwarding. The bytes are hashed later, once those stores are done.
  std::vector<SortKey> keys(n);
  std::vector<std::array<uint8_t, kCanonicalIdSize>> canonical(n);
  for (uint32_t i = 0; i < n; ++i) {
    const BackendId& id = backends[i].id;
    WriteCanonical(id, canonical[i]);
    const std::array<uint8_t, 16>& a = id.addr16();
    uint64_t hi = id.family();
    uint64_t mid = 0;
    for (int k = 0; k < 7; ++k) hi = hi << 8 | a[k];
    for (int k = 7; k < 15; ++k) mid = mid << 8 | a[k];
    keys[i] = {hi, mid, uint32_t{a[15]} << 16 | id.port(), i};
  }
  std::sort(keys.begin(), keys.end(), [](const SortKey& x, const SortKey& y) {
    if (x.hi != y.hi) return x.hi < y.hi;
    if (x.mid != y.mid) return x.mid < y.mid;
    return x.lo < y.lo;
  });
  uint64_t max_w = 0;
  uint32_t n_max = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (i > 0 && keys[i].hi == keys[i - 1].hi && keys[i].mid == keys[i - 1].mid &&
        keys[i].lo == keys[i - 1].lo) {
      return absl::InvalidArgumentError(
          absl::StrFormat("duplicate backend %s", backends[keys[i].index].id.ToString()));
    }
    const uint64_t w = backends[keys[i].index].weight;
    if (w > max_w) {
      max_w = w;
      n_max = 0;
    }
    if (w == max_w && w > 0) ++n_max;
  }
  if (max_w == 0) {
    return absl::FailedPreconditionError(
        n == 0 ? "maglev table needs at least one backend"
               : "maglev table needs a backend with weight > 0 (all are 0)");
  }

  std::vector<Walker> walkers;
  std::vector<Perm> perms;
  std::vector<uint64_t> weights;
  walkers.reserve(n);
  perms.reserve(n);
  weights.reserve(n);
  bool equal_weights = true;
  const PhaseScale scale(m);
  for (uint32_t i = 0; i < n; ++i) {
    const Backend& be = backends[keys[i].index];
    if (be.weight == 0) continue;
    if (be.weight != max_w) equal_weights = false;
    const std::array<uint8_t, kCanonicalIdSize>& bytes = canonical[keys[i].index];
    const uint32_t offset =
        static_cast<uint32_t>(XXH64(bytes.data(), bytes.size(), kOffsetSeed) % m);
    const uint32_t skip =
        static_cast<uint32_t>(XXH64(bytes.data(), bytes.size(), kSkipSeed) % (m - 1) + 1);
    walkers.push_back({scale.PhaseOf(offset), scale.PhaseOf(skip), keys[i].index});
    perms.push_back({offset, skip});
    weights.push_back(be.weight);
  }

  // Every slot is written by the fill, so no initial value.
  std::unique_ptr<uint16_t[]> entries(new uint16_t[m]);
  if (equal_weights) {
    Fill(RoundRobinTurns(walkers.data(), walkers.size()), walkers.data(), perms.data(), m,
         entries.get());
  } else {
    const std::vector<uint16_t> turns = WeightedTurns(weights, max_w, n_max, m);
    Fill(ListedTurns(walkers.data(), turns.data()), walkers.data(), perms.data(), m, entries.get());
  }
  return Table(m, n, std::move(entries));
}

std::vector<uint32_t> Table::SlotCounts() const {
  std::vector<uint32_t> counts(num_backends_, 0);
  for (uint16_t e : entries()) ++counts[e];
  return counts;
}

absl::StatusOr<uint64_t> TableFingerprint(const Table& table, std::span<const Backend> backends) {
  if (backends.size() != table.num_backends()) {
    return absl::InvalidArgumentError(
        absl::StrFormat("fingerprint needs the %u backends the table was built from, got %u",
                        table.num_backends(), backends.size()));
  }
  std::vector<std::array<uint8_t, kCanonicalIdSize>> bytes;
  bytes.reserve(backends.size());
  for (const Backend& b : backends) bytes.push_back(b.id.CanonicalBytes());
  XXH64_state_t* state = XXH64_createState();
  if (state == nullptr) return absl::ResourceExhaustedError("XXH64 state");
  XXH64_reset(state, 0);
  for (uint16_t e : table.entries()) {
    XXH64_update(state, bytes[e].data(), kCanonicalIdSize);
  }
  const uint64_t h = XXH64_digest(state);
  XXH64_freeState(state);
  return h;
}

}  // namespace ecmplb::maglev
