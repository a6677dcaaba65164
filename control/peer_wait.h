// peer_wait.h: whether a host whose flow-sync peers fell silent may announce a withdrawn VIP.
//
// A host cut off from the LB segment (its link went down) withdraws its VIPs when its health
// checks fail; meanwhile its peers carry the connections, and it hears none of their flows.
// When its link comes back, the router may send it moved flows within a fraction of a second
// (BFD and OSPF come up fast), while the peers' next heartbeat, which triggers the bulk copy
// of their flows (a heal), is up to a second away: flows that arrive before the copy are placed
// by the current Maglev table, and those the table places elsewhere are reset (lab
// sync-churn-return: 3 to 40 of 200 connections). So while a peer that was heard before is
// silent, withdrawn VIPs are held back. The silence may also mean that the peer died: once a
// VIP is ready (health passed) and held, the host waits `wait_ms` (a few heartbeats) for the
// peer to speak, then announces without it, and does not wait for that peer again until it is
// heard again (another peer falling silent is waited for anew). Announced VIPs are never
// withdrawn for it (HealthMonitor::SetHold).
//
// Thread-safety: none (the control thread's).
#pragma once

#include <cstdint>
#include <string>

namespace ecmplb::control {

class SilentPeerWait {
 public:
  explicit SilentPeerWait(uint64_t wait_ms) : wait_ms_(wait_ms) {}

  // One step. `silent`: the peers (bit i: peer i) heard before and silent now; `held`: the
  // last announcement kept a ready VIP back (HealthMonitor::held). Returns the hold reason,
  // or "" for none.
  std::string Step(uint64_t now_ms, uint64_t silent, bool held);

  // Whether the last Step gave up waiting (those peers are presumed dead): for the log.
  bool gave_up() const { return gave_up_; }

 private:
  uint64_t wait_ms_;
  uint64_t ready_since_ms_ = 0;  // since when a ready VIP is held back; 0: none is
  uint64_t given_up_ = 0;        // peers waited for in vain during their current silence
  bool gave_up_ = false;
};

}  // namespace ecmplb::control
