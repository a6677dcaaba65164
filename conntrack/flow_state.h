// FlowState: the small per-flow state the tracker keeps (new, established,
// closing), its transitions as seen from the client->server direction only
// (direct server return: the load balancer never sees the server's packets),
// and the per-state idle timeouts. Pure functions and value types: safe from
// any thread.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "common/inet.h"

namespace ecmplb::conntrack {

enum class FlowState : uint8_t {
  // TCP: SYN seen, handshake not yet confirmed. Other protocols: one packet
  // seen so far.
  kNew = 0,
  // TCP: the handshake's ACK was seen after the SYN, or a probationary flow
  // proved itself. Other protocols: a second packet was seen. Established
  // flows are never displaced by new flows.
  kEstablished = 1,
  // TCP only: FIN or RST seen.
  kClosing = 2,
  // TCP only: first seen mid-stream (an ACK without SYN): a flow the router
  // moved here from another LB host, or a forgery. It is forwarded like any
  // tracked flow, but it is weak and shorter-lived (Timeouts::tcp_probation,
  // counted from its first packet: further packets do not refresh it) until
  // it proves itself with a packet at least kProbationProofSeconds after its
  // first one; it then becomes established. A spoofed-ACK flood (one packet
  // per forged 5-tuple) so never leaves entries that nothing can displace.
  kProbation = 3,
  // Learned from a peer LB host by flow sync (Table::InsertSynced, called by
  // the table's one writer: the planned design keeps such entries in a peer
  // table of their own, written by the sync thread and read with Peek by
  // workers when a non-SYN packet misses their table), not seen here yet. Its first local packet makes it established (or closing).
  // Never displaced by new flows; timeout as established (TCP) or udp.
  kSynced = 4,
};
inline constexpr uint8_t kFlowStateCount = 5;

// A probationary flow becomes established on a packet seen this many tracker
// seconds (or more) after its first: with whole-second clocks, two packets at
// least 1 s apart (at most 2 s for a flow that keeps sending).
inline constexpr uint32_t kProbationProofSeconds = 2;

// Protection against displacement, strongest last: local established >
// synced > probationary > new/closing. A new entry may displace only entries
// of rank kNew or kProbation: expired entries first, then those of the weak
// rank that holds more of its window (a tie: its own rank), then the other
// weak rank; so a flood of one kind -- SYNs, or forged ACKs -- consumes its
// own entries before anyone else's.
enum class FlowRank : uint8_t { kNew = 0, kProbation = 1, kSynced = 2, kEstablished = 3 };
inline constexpr FlowRank RankOf(FlowState s) {
  switch (s) {
    case FlowState::kNew:
    case FlowState::kClosing:
      return FlowRank::kNew;
    case FlowState::kProbation:
      return FlowRank::kProbation;
    case FlowState::kSynced:
      return FlowRank::kSynced;
    case FlowState::kEstablished:
      return FlowRank::kEstablished;
  }
  return FlowRank::kEstablished;  // unknown values are never displaced
}

const char* FlowStateName(FlowState s);

// State of a flow created by a packet with these TCP flags (ignored when
// !is_tcp).
inline FlowState InitialState(bool is_tcp, uint8_t tcp_flags);  // defined below

// Transition on a further packet of the flow, seen `age` seconds after the
// entry's last-seen time (for a probationary flow: after its first packet):
//   TCP: FIN or RST -> closing; SYN without ACK on a closing, probationary or
//   synced flow -> new (the client reuses the 5-tuple); any other packet of a
//   synced flow -> established (its first local packet); ACK without SYN:
//   new -> established; probationary -> established once age >=
//   kProbationProofSeconds, else probationary; closing stays closing; anything
//   else keeps the state.
//   Other protocols: new or synced -> established; otherwise unchanged.
inline FlowState NextState(FlowState cur, bool is_tcp, uint8_t tcp_flags,
                           uint32_t age);  // defined below

inline FlowState InitialState(bool is_tcp, uint8_t tcp_flags) {
  if (!is_tcp) return FlowState::kNew;
  if (tcp_flags & (inet::tcp_flag::kFin | inet::tcp_flag::kRst)) return FlowState::kClosing;
  if (tcp_flags & inet::tcp_flag::kSyn) return FlowState::kNew;
  if (tcp_flags & inet::tcp_flag::kAck) return FlowState::kProbation;
  return FlowState::kNew;
}

inline FlowState NextState(FlowState cur, bool is_tcp, uint8_t tcp_flags, uint32_t age) {
  if (!is_tcp) {
    return (cur == FlowState::kNew || cur == FlowState::kSynced) ? FlowState::kEstablished : cur;
  }
  if (tcp_flags & (inet::tcp_flag::kFin | inet::tcp_flag::kRst)) return FlowState::kClosing;
  if (tcp_flags & inet::tcp_flag::kSyn) {
    if ((tcp_flags & inet::tcp_flag::kAck) == 0 &&
        (cur == FlowState::kClosing || cur == FlowState::kProbation ||
         cur == FlowState::kSynced)) {
      return FlowState::kNew;
    }
    return cur == FlowState::kSynced ? FlowState::kEstablished : cur;
  }
  switch (cur) {
    case FlowState::kNew:
      return (tcp_flags & inet::tcp_flag::kAck) ? FlowState::kEstablished : cur;
    case FlowState::kProbation:
      return age >= kProbationProofSeconds ? FlowState::kEstablished : cur;
    case FlowState::kSynced:
      return FlowState::kEstablished;
    default:
      return cur;
  }
}

// Idle timeouts in seconds (the tracker's time unit). Defaults follow IPVS:
// TCP established 900 s, SYN 60 s (SYN_RECV), closing 60 s, UDP 300 s.
// Probation (ours): 60 s from the first packet (as SYN_RECV), so a flow moved
// here that pauses for up to a minute still proves itself with its next packet.
struct Timeouts {
  uint32_t tcp_syn = 60;
  uint32_t tcp_established = 900;  // also synced TCP flows
  uint32_t tcp_closing = 60;
  uint32_t tcp_probation = 60;
  uint32_t udp = 300;  // every non-TCP flow, whatever its state

  // InvalidArgument if any timeout is 0 or above 2^31 s, or tcp_probation is
  // below kProbationProofSeconds + 1 (a probationary flow could never prove
  // itself).
  absl::Status Validate() const;
  uint32_t For(bool is_tcp, FlowState s) const;
};

}  // namespace ecmplb::conntrack
