// pipeline.h: the per-burst forwarding decision of one worker, on plain byte buffers.
//
// For each frame of a burst: parse; traffic that is not for a VIP goes to the kernel
// (exception); a packet of a service finds its backend in the worker's connection table or,
// for a new flow, in the service's Maglev table (5-tuple or source-address hash), and is
// rewritten for DR (MACs) or encapsulated in GRE; ICMP errors about a flow follow that flow
// to its backend; a GRE packet that would exceed the MTU with DF set is answered with ICMP
// fragmentation-needed. A datagram's later fragments (no ports) follow its first fragment to
// the same backend through the worker's fragment table; one that arrives before its first
// fragment is held (Verdict::kHeld) until that comes or the fragment timeout passes, and then
// handed back through TakeReleased. Every verdict and every drop is counted in WorkerCounters.
//
// The DPDK layer wraps this: it fills Frames from mbufs, calls Process, applies the new
// data offset/length (a tunnel prepends up to 48 bytes into the headroom) and sends or frees;
// a held frame stays the pipeline's until TakeReleased returns it (with its cookie).
//
// Thread-safety: one Pipeline per worker, used only by that worker. The Snapshot and
// NeighborTable are shared read-only (see their headers).
// Fast path: no allocation, lock, syscall, exception or log line.
#pragma once

#include <cstdint>
#include <memory>
#include <span>

#include "conntrack/conntrack.h"
#include "dataplane/counters.h"
#include "dataplane/exception_policy.h"
#include "dataplane/fragment_table.h"
#include "dataplane/neighbor_table.h"
#include "dataplane/packet/parse.h"
#include "dataplane/snapshot.h"
#include "dataplane/sync_ring.h"

namespace ecmplb::dataplane {

inline constexpr size_t kBurstSize = 32;

struct Frame {
  uint8_t* data = nullptr;  // first byte of the Ethernet header
  uint32_t len = 0;         // frame length
  uint32_t headroom = 0;    // writable bytes before `data` (tunnels need 20 to 48)
  void* cookie = nullptr;   // the caller's (its mbuf): carried with a held frame
};

enum class Verdict : uint8_t {
  kTx,         // send on the data port (forwarded, or an ICMP reply built in place)
  kException,  // pass to the kernel through the exception port
  kDrop,       // free (already counted)
  kHeld,       // the pipeline keeps it (a later fragment waiting for its first one): leave it
               // alone; TakeReleased hands it back
};

struct PipelineOptions {
  IpChecksumMode ip_checksum = IpChecksumMode::kVerify;
  uint32_t expire_budget = 64;  // connection-table buckets examined per Housekeeping call
  // A NIC drops unicast frames for other MACs; a vdev on a kernel interface (af_packet) does
  // not. false: such frames are dropped (drop_other_mac); true for a promiscuous port.
  bool accept_any_mac = false;
  // The host-wide budget of "other" exception packets, shared by every worker's pipeline;
  // nullptr: this pipeline's own. Its clock is SetTicks()'s, in ticks_per_second.
  SharedTokenBucket* exception_budget = nullptr;
  uint64_t ticks_per_second = 1'000'000'000;
  // Flow sync (control/sync_engine.h). sync_out: this worker's queue to the sync engine;
  // flows that reach established, start closing or get another backend are pushed there,
  // at most sync_rate per second (0: no limit), the excess counted. peer_table: flows learned
  // from the peer LB hosts (written by the sync engine), looked up when a packet that is not
  // a SYN misses this worker's table. Either may be null (that half of sync is off).
  SyncRing* sync_out = nullptr;
  uint32_t sync_rate = 0;
  const conntrack::Table* peer_table = nullptr;
  // IP fragments (fragment_table.h): the datagrams whose first fragment's placement the worker
  // remembers, the later fragments it holds while their first one has not come, and how long
  // either is kept. fragment_capacity 0: no tracking, later fragments dropped (drop_fragment).
  uint32_t fragment_capacity = 1024;
  uint32_t fragment_hold = 64;
  uint32_t fragment_timeout_s = 2;
};

class Pipeline {
 public:
  Pipeline(conntrack::Table* table, WorkerCounters* counters, const NeighborTable* neighbors,
           PipelineOptions options = {});
  ~Pipeline();

  // Decides the fate of up to kBurstSize frames; may rewrite them in place and move
  // frames[i].data back into the headroom (tunnels). `now_s` is the worker's clock in seconds.
  void Process(const Snapshot& snap, std::span<Frame> frames, uint32_t now_s,
               std::span<Verdict> verdicts);

  // The fine clock of the exception path's rate limits (ticks of
  // PipelineOptions::ticks_per_second, e.g. the TSC); the worker sets it once per burst.
  void SetTicks(uint64_t now_ticks) { now_ticks_ = now_ticks; }

  // Per-loop housekeeping: bounded expiry of stale connection-table entries; held fragments
  // past the fragment timeout are released as dropped (fragment_timeout).
  void Housekeeping(uint32_t now_s);

  // Held frames (Verdict::kHeld) whose fate is now decided, forwarded (kTx, rewritten as any
  // forwarded frame) or dropped (kDrop, counted): moves up to out.size() of them to `out` and
  // `verdicts` and returns how many. The caller sends or frees them as it does its own burst's,
  // finding its buffer by Frame::cookie. Call after Process and Housekeeping.
  size_t TakeReleased(std::span<Frame> out, std::span<Verdict> verdicts);
  // Gives up every held frame (released as kDrop, counted fragment_timeout): before the worker
  // stops, so that TakeReleased returns them all.
  void ReleaseHeld();
  size_t held() const { return nheld_; }
  size_t released() const { return nreleased_; }

 private:
  struct Pending;  // per-frame scratch for the service packets of a burst
  struct Held;     // a later fragment waiting for its first one
  struct Released;
  // True when the frame leaves for the backend (not an ICMP error built in its place, not a
  // drop).
  bool Forward(const Snapshot& snap, const Service& svc, const BackendEntry& be, Frame& f,
               const ParsedPacket& p, uint64_t flow_hash, Verdict& v);

  conntrack::Table* ct_;
  WorkerCounters* counters_;
  const NeighborTable* neighbors_;
  PipelineOptions options_;
  // Fragments: a first fragment's placement recorded (and the frames waiting for it released);
  // later fragments placed by the table or held.
  void RecordFirstFragment(const Snapshot& snap, const ParsedPacket& p, uint32_t backend_id,
                           uint64_t flow_hash, uint32_t now_s);
  void PlaceLaterFragments(const Snapshot& snap, std::span<Frame> frames,
                           std::span<Verdict> verdicts, const uint16_t* later, size_t nlater,
                           uint32_t now_s);
  void ForwardFragment(const Snapshot& snap, const FragmentPlacement& pl, Frame& f,
                       const ParsedPacket& p, Verdict& v);
  // Queues a flow for the peers (options_.sync_out is set), within sync_rate.
  void QueueSync(const conntrack::FlowKey& key, uint32_t backend_id, conntrack::FlowState state,
                 SyncReason reason, uint32_t now_s);

  SharedTokenBucket own_budget_;  // when options_.exception_budget is null
  Gcra sync_budget_;
  uint64_t sync_interval_ = 0, sync_burst_ = 0;
  ExceptionLimiter limiter_;
  uint64_t now_ticks_ = 0;
  std::unique_ptr<FragmentTable> fragments_;  // null: fragment tracking off
  std::unique_ptr<Held[]> held_;
  size_t nheld_ = 0;
  std::unique_ptr<Released[]> released_;
  size_t nreleased_ = 0;
  // Per-burst scratch, kept here so that a burst does not construct (zero) it again.
  struct Scratch;
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace ecmplb::dataplane
