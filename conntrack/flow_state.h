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
  // TCP: an ACK without SYN was seen (also a flow picked up mid-stream, e.g.
  // moved here from a failed LB host). Other protocols: a second packet was
  // seen. Established flows are never displaced by new flows.
  kEstablished = 1,
  // TCP only: FIN or RST seen.
  kClosing = 2,
};

const char* FlowStateName(FlowState s);

// State of a flow created by a packet with these TCP flags (ignored when
// !is_tcp).
inline FlowState InitialState(bool is_tcp, uint8_t tcp_flags);  // defined below

// Transition on a further packet of the flow:
//   TCP: FIN or RST -> closing; SYN without ACK on a closing flow -> new (the
//   client reuses the 5-tuple); ACK without SYN: new -> established, closing
//   stays closing; anything else keeps the state.
//   Other protocols: new -> established; otherwise unchanged.
inline FlowState NextState(FlowState cur, bool is_tcp, uint8_t tcp_flags);  // defined below

inline FlowState InitialState(bool is_tcp, uint8_t tcp_flags) {
  if (!is_tcp) return FlowState::kNew;
  if (tcp_flags & (inet::tcp_flag::kFin | inet::tcp_flag::kRst)) return FlowState::kClosing;
  if (tcp_flags & inet::tcp_flag::kSyn) return FlowState::kNew;
  if (tcp_flags & inet::tcp_flag::kAck) return FlowState::kEstablished;
  return FlowState::kNew;
}

inline FlowState NextState(FlowState cur, bool is_tcp, uint8_t tcp_flags) {
  if (!is_tcp) {
    return cur == FlowState::kNew ? FlowState::kEstablished : cur;
  }
  if (tcp_flags & (inet::tcp_flag::kFin | inet::tcp_flag::kRst)) return FlowState::kClosing;
  if (tcp_flags & inet::tcp_flag::kSyn) {
    if ((tcp_flags & inet::tcp_flag::kAck) == 0 && cur == FlowState::kClosing) {
      return FlowState::kNew;
    }
    return cur;
  }
  if ((tcp_flags & inet::tcp_flag::kAck) && cur == FlowState::kNew) {
    return FlowState::kEstablished;
  }
  return cur;
}

// Idle timeouts in seconds (the tracker's time unit). Defaults follow IPVS:
// TCP established 900 s, SYN 60 s (SYN_RECV), closing 60 s, UDP 300 s.
struct Timeouts {
  uint32_t tcp_syn = 60;
  uint32_t tcp_established = 900;
  uint32_t tcp_closing = 60;
  uint32_t udp = 300;  // every non-TCP flow, whatever its state

  // InvalidArgument if any timeout is 0 or above 2^31 s.
  absl::Status Validate() const;
  uint32_t For(bool is_tcp, FlowState s) const;
};

}  // namespace ecmplb::conntrack
