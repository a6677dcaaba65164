// Maglev table build; see maglev.h for the algorithm and its guarantees.
#include "maglev/maglev.h"

#include <arpa/inet.h>
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <utility>

#include "absl/strings/str_format.h"

namespace ecmplb::maglev {
namespace {

constexpr uint16_t kEmpty = 0xffff;
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

// x^-1 mod m for prime m and 0 < x < m (extended Euclid).
uint32_t ModInverse(uint32_t x, uint32_t m) {
  int64_t r0 = m, r1 = x, t0 = 0, t1 = 1;
  while (r1 != 0) {
    const int64_t q = r0 / r1;
    const int64_t r2 = r0 - q * r1;
    r0 = r1;
    r1 = r2;
    const int64_t t2 = t0 - q * t1;
    t0 = t1;
    t1 = t2;
  }
  return static_cast<uint32_t>(t0 < 0 ? t0 + m : t0);
}

// a mod m for a < 2^48 and m < 2^24 without a division (Barrett, with
// mu = floor(2^64 / m)).
inline uint64_t Reduce(uint64_t a, uint64_t m, uint64_t mu) {
  const uint64_t q =
      static_cast<uint64_t>((static_cast<unsigned __int128>(a) * mu) >> 64);
  uint64_t r = a - q * m;
  return r >= m ? r - m : r;
}

absl::StatusOr<uint16_t> ParsePort(std::string_view text,
                                   std::string_view whole) {
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
    return absl::InvalidArgumentError(absl::StrFormat(
        "bad port in backend address \"%s\"", std::string(whole)));
  }
  return static_cast<uint16_t>(port);
}

// Per-backend fill state. The k-th turn of a backend of weight w happens in
// round ceil(k * max_w / w); q/rem hold floor/remainder of k * max_w / w,
// advanced by adding max_w / w without a division per turn.
struct FillState {
  uint32_t pos;    // next preferred slot
  uint32_t skip;
  uint32_t offset;
  uint32_t inv_skip;  // skip^-1 mod m, 0 until needed
  uint32_t index;  // position in the caller's span
  uint32_t next;   // next backend in the same round's list
  uint64_t q;
  uint64_t rem;
  uint64_t step_q;
  uint64_t step_r;
  uint64_t weight;

  // Advances to the next turn; returns its round.
  uint64_t NextRound() {
    q += step_q;
    rem += step_r;
    if (rem >= weight) {
      rem -= weight;
      ++q;
    }
    return q + (rem != 0 ? 1 : 0);
  }
};

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
    return absl::InvalidArgumentError(absl::StrFormat(
        "bad backend address \"%s\" (want 10.0.0.1[:port] or "
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
    if (colon != std::string_view::npos &&
        text.find(':', colon + 1) == std::string_view::npos) {
      host = text.substr(0, colon);
      port_text = text.substr(colon + 1);
      have_port = true;
    }
  }
  uint16_t port = 0;
  if (have_port) {
    absl::StatusOr<uint16_t> p = ParsePort(port_text, text);
    if (!p.ok()) return p.status();
    port = *p;
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
  b[0] = family_;
  std::memcpy(&b[1], addr_.data(), 16);
  b[17] = static_cast<uint8_t>(port_ >> 8);
  b[18] = static_cast<uint8_t>(port_ & 0xff);
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
    return absl::InvalidArgumentError(absl::StrFormat(
        "maglev table size %u is not a prime in [%u, %u] (e.g. 65537, "
        "655373)",
        m, kMinTableSize, kMaxTableSize));
  }
  return absl::OkStatus();
}

absl::StatusOr<Table> Table::Build(std::span<const Backend> backends,
                                   uint32_t table_size) {
  const uint32_t m = table_size;
  if (absl::Status s = ValidateTableSize(m); !s.ok()) return s;
  if (backends.size() > kMaxBackends) {
    return absl::ResourceExhaustedError(
        absl::StrFormat("%u backends exceed the maximum of %u",
                        backends.size(), kMaxBackends));
  }
  const uint32_t n = static_cast<uint32_t>(backends.size());
  if (n >= m) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "%u backends need a maglev table larger than %u slots", n, m));
  }

  // Sorted order of the input: the fill never depends on caller order.
  std::vector<uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::sort(order.begin(), order.end(), [&backends](uint32_t a, uint32_t b) {
    return backends[a].id < backends[b].id;
  });
  uint64_t max_w = 0;
  uint32_t n_max = 0;
  for (uint32_t i = 0; i < n; ++i) {
    if (i > 0 && backends[order[i]].id == backends[order[i - 1]].id) {
      return absl::InvalidArgumentError(
          absl::StrFormat("duplicate backend %s",
                          backends[order[i]].id.ToString()));
    }
    const uint64_t w = backends[order[i]].weight;
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

  // Every round each max-weight backend claims a slot, so the table is full
  // after at most ceil(m / n_max) rounds; later turns are never needed.
  const uint64_t last_round = (m + n_max - 1) / n_max;
  std::vector<uint32_t> head(last_round + 1, kNone);
  std::vector<uint32_t> tail(last_round + 1, kNone);
  std::vector<FillState> st;
  st.reserve(n);
  auto enqueue = [&](uint32_t b, uint64_t round) {
    if (round > last_round) return;
    st[b].next = kNone;
    if (head[round] == kNone) {
      head[round] = b;
    } else {
      st[tail[round]].next = b;
    }
    tail[round] = b;
  };
  for (uint32_t i = 0; i < n; ++i) {
    const Backend& be = backends[order[i]];
    if (be.weight == 0) continue;
    const std::array<uint8_t, kCanonicalIdSize> bytes = be.id.CanonicalBytes();
    FillState s;
    s.offset = static_cast<uint32_t>(XXH64(bytes.data(), bytes.size(),
                                           kOffsetSeed) % m);
    s.pos = s.offset;
    s.inv_skip = 0;
    s.skip = static_cast<uint32_t>(
        XXH64(bytes.data(), bytes.size(), kSkipSeed) % (m - 1) + 1);
    s.index = order[i];
    s.next = kNone;
    s.q = 0;
    s.rem = 0;
    s.weight = be.weight;
    s.step_q = max_w / be.weight;
    s.step_r = max_w % be.weight;
    st.push_back(s);
    const uint32_t b = static_cast<uint32_t>(st.size() - 1);
    enqueue(b, st[b].NextRound());
  }

  std::vector<uint16_t> entries(m, kEmpty);
  // Taken slots, one bit each: 8 KiB at m = 65537, so walking stays in L1.
  std::vector<uint64_t> taken((m + 63) / 64, 0);
  uint64_t* const bits = taken.data();
  // Walking a permutation to the next free slot costs m / free probes, so
  // the last few hundred turns would dominate (the walk totals about
  // m * ln(m) probes). Once at most sqrt(m) slots are free, a turn instead
  // ranks every free slot in the backend's permutation,
  //   rank(slot) = (slot - offset) * skip^-1 mod m,
  // and takes the lowest: every slot ranked below its current position is
  // taken, so that is exactly the slot the walk would reach.
  uint32_t scan_below = 1;
  while (static_cast<uint64_t>(scan_below) * scan_below < m) ++scan_below;
  const uint64_t mu = ~uint64_t{0} / m;
  std::vector<uint32_t> free_slots;
  bool scanning = false;
  uint32_t filled = 0;
  for (uint64_t r = 1; r <= last_round && filled < m; ++r) {
    uint32_t b = head[r];
    while (b != kNone && filled < m) {
      FillState& s = st[b];
      const uint32_t next_in_round = s.next;
      uint32_t slot;
      if (!scanning && m - filled > scan_below) {
        // The permutation visits every slot (m prime, 0 < skip < m) and the
        // table is not full, so this finds a free slot.
        do {
          slot = s.pos;
          s.pos += s.skip;
          if (s.pos >= m) s.pos -= m;
        } while ((bits[slot >> 6] >> (slot & 63)) & 1);
        bits[slot >> 6] |= uint64_t{1} << (slot & 63);
      } else {
        if (!scanning) {
          scanning = true;
          free_slots.reserve(m - filled);
          for (uint32_t x = 0; x < m; ++x) {
            if (!((bits[x >> 6] >> (x & 63)) & 1)) free_slots.push_back(x);
          }
        }
        if (s.inv_skip == 0) s.inv_skip = ModInverse(s.skip, m);
        uint64_t best_rank = ~uint64_t{0};
        size_t best = 0;
        for (size_t i = 0; i < free_slots.size(); ++i) {
          const uint32_t x = free_slots[i];
          const uint64_t d = x >= s.offset ? x - s.offset : x + m - s.offset;
          const uint64_t rank = Reduce(d * s.inv_skip, m, mu);
          if (rank < best_rank) {
            best_rank = rank;
            best = i;
          }
        }
        slot = free_slots[best];
        free_slots[best] = free_slots.back();
        free_slots.pop_back();
        s.pos = slot + s.skip >= m ? slot + s.skip - m : slot + s.skip;
      }
      entries[slot] = static_cast<uint16_t>(s.index);
      ++filled;
      enqueue(b, s.NextRound());
      b = next_in_round;
    }
  }
  return Table(m, n, std::move(entries));
}

std::vector<uint32_t> Table::SlotCounts() const {
  std::vector<uint32_t> counts(num_backends_, 0);
  for (uint16_t e : entries_) ++counts[e];
  return counts;
}

absl::StatusOr<uint64_t> TableFingerprint(const Table& table,
                                          std::span<const Backend> backends) {
  if (backends.size() != table.num_backends()) {
    return absl::InvalidArgumentError(absl::StrFormat(
        "fingerprint needs the %u backends the table was built from, got %u",
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
