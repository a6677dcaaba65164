// flood.h: ecmplb-gen's flood mode (--flood-share, --flood, --flood-net): junk frames aimed at
// the balancer host's own address and at non-VIP destinations, sent in the same run as (and
// interleaved with) the test traffic, so a benchmark measures VIP forwarding under a flood.
//
// Kinds (all IPv4; sources from the flood net, 203.0.113.0/24 by default, never a test flow's):
//   host-tcp   TCP SYNs to host.address, pseudo-random source and destination ports
//   host-udp   UDP to host.address, pseudo-random ports
//   icmp-echo  ICMP echo requests to host.address and to every IPv4 VIP, in turn
//   nonvip     TCP SYNs and UDP (alternating) to addresses of the host's subnet that are not the
//              host, a VIP, a backend or another next hop (host.address + 100..200)
//   garbage    the balancer's destination MAC, EtherType IPv4, then random bytes (malformed on
//              purpose), except bytes 12..15 after the EtherType (an IPv4 header's source
//              address) which hold a flood-net address, so a garbage frame that comes back is
//              recognised as flood too
// Every frame is --size bytes (the test frames' rule: --size - 4 for the FCS, at least 60); the
// IP packet fills it exactly; all checksums are correct (but garbage's).
//
// How: FloodSet prebuilds a ring of templates at start (the kinds in turn, kFloodTemplates of
// them rounded to a multiple of the number of kinds), each with the one's-complement sums of
// its constant parts. A flood frame is a copy of the next template with the per-packet fields
// patched in (IPv4 id, source address; TCP/UDP ports, TCP sequence number; ICMP sequence
// number) from a fixed pseudo-random sequence, and its checksums finished from those sums.
// FloodSchedule decides, per TX queue, which packets are flood frames (exact share over time,
// the fixed-point accumulator --new-share uses).
//
// The receive side: Checker (checker.h) counts every IPv4 frame whose source or destination
// address is in the flood net as `other` (CheckerOptions::flood_net): the balancer host's RSTs
// and ICMP replies, flood frames a loopback peer returns.
//
// Thread-safety: FloodSet is immutable after Create() and shared; a FloodSchedule belongs to
// one TX thread. Fast path: Build() does no allocation (one copy, a few stores, two folds).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "bench/gen/traffic_model.h"
#include "control/config.h"

namespace ecmplb::gen {

enum class FloodKind : uint8_t { kHostTcp, kHostUdp, kIcmpEcho, kNonVip, kGarbage };
inline constexpr size_t kFloodKinds = 5;
inline constexpr size_t kFloodTemplates = 256;
inline constexpr const char* kDefaultFloodNet = "203.0.113.0/24";  // RFC 5737 TEST-NET-3

// "host-tcp", "host-udp", "icmp-echo", "nonvip", "garbage".
const char* FloodKindName(FloodKind k);
// --flood values: each a kind name, a comma list of them, or "all"; duplicates dropped, order
// kept. Empty: all kinds.
absl::StatusOr<std::vector<FloodKind>> ParseFloodKinds(const std::vector<std::string>& values);

struct FloodOptions {
  double share = 0;              // 0..1 of the frames sent
  std::vector<FloodKind> kinds;  // empty: all, in turn
  ClientNet net;                 // source addresses (IPv4); family 0: kDefaultFloodNet
};

// Packets and bytes (without FCS) sent per kind.
struct FloodCounts {
  std::array<uint64_t, kFloodKinds> packets{};
  std::array<uint64_t, kFloodKinds> bytes{};

  void Add(FloodKind k, uint64_t len) {
    ++packets[static_cast<size_t>(k)];
    bytes[static_cast<size_t>(k)] += len;
  }
  uint64_t total_packets() const;
  uint64_t total_bytes() const;
  void Merge(const FloodCounts& o);
};

// One prebuilt flood frame.
struct FloodTemplate {
  FloodKind kind = FloodKind::kGarbage;
  uint8_t proto = 0;    // IP protocol (TCP, UDP, ICMP); 0 for garbage
  uint16_t len = 0;     // frame length, FCS excluded
  uint16_t l3 = 0;      // offset of the IPv4 header
  uint32_t dst = 0;     // destination address, host order (garbage: 0)
  uint64_t ip_sum = 0;  // IPv4 header without id, source and checksum (not folded)
  uint64_t l4_sum = 0;  // TCP/UDP: pseudo-header without the source + segment without the
                        // per-packet fields and checksum; ICMP: message without sequence and
                        // checksum
  size_t offset = 0;    // of its bytes in the set's storage
};

class FloodSet {
 public:
  // Validates the options against the model (the flood net must be IPv4 and hold no test
  // client address, host address, tunnel source, gateway, VIP or next hop) and builds the
  // templates.
  // `config` is the one `m` was created from (its host's subnet and gateway).
  static absl::StatusOr<std::unique_ptr<const FloodSet>> Create(const control::Config& config,
                                                                const TrafficModel& m,
                                                                FloodOptions options);

  const FloodOptions& options() const { return opt_; }
  size_t size() const { return templates_.size(); }
  const FloodTemplate& at(size_t i) const { return templates_[i]; }
  const uint8_t* bytes(size_t i) const { return storage_.data() + templates_[i].offset; }
  // Destinations of the nonvip kind.
  const std::vector<uint32_t>& nonvip_addrs() const { return nonvip_; }

  // Writes flood frame `k` of stream `stream` (a TX queue) from template `slot` at `out` (room
  // for at(slot).len bytes) and returns its length. The per-packet fields are a pure function
  // of (stream, k).
  size_t Build(size_t slot, uint32_t stream, uint64_t k, uint8_t* out) const;

 private:
  FloodSet() = default;

  FloodOptions opt_;
  std::vector<FloodTemplate> templates_;
  std::vector<uint8_t> storage_;
  std::vector<uint32_t> nonvip_;
  uint32_t src_base_ = 0;   // host-order network address of the flood net
  uint32_t src_addrs_ = 1;  // usable source addresses (base + 1 ...)
};

// Which of a TX queue's packets are flood frames, and which template each one uses.
class FloodSchedule {
 public:
  // set may be null (no flood: Due() is always false).
  FloodSchedule(const FloodSet* set, uint32_t stream);

  // Whether the next packet is a flood frame (consumes one packet of the share).
  bool Due() {
    acc_ += step_;
    if (acc_ < kOne) return false;
    acc_ -= kOne;
    return true;
  }
  // Builds the next flood frame at `out`; returns its length and kind.
  size_t Build(uint8_t* out, FloodKind* kind) {
    const size_t slot = slot_;
    if (++slot_ == set_->size()) slot_ = 0;
    *kind = set_->at(slot).kind;
    return set_->Build(slot, stream_, k_++, out);
  }
  uint64_t built() const { return k_; }

 private:
  static constexpr uint64_t kOne = uint64_t{1} << 32;

  const FloodSet* set_;
  uint32_t stream_;
  uint64_t step_ = 0;  // share in 1/2^32 units
  uint64_t acc_ = 0;
  size_t slot_ = 0;
  uint64_t k_ = 0;
};

}  // namespace ecmplb::gen
