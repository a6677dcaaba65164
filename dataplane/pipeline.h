// pipeline.h: the per-burst forwarding decision of one worker, on plain byte buffers.
//
// For each frame of a burst: parse; traffic that is not for a VIP goes to the kernel
// (exception); a packet of a service finds its backend in the worker's connection table or,
// for a new flow, in the service's Maglev table (5-tuple or source-address hash), and is
// rewritten for DR (MACs) or encapsulated in GRE; ICMP errors about a flow follow that flow
// to its backend; a GRE packet that would exceed the MTU with DF set is answered with ICMP
// fragmentation-needed. Every verdict and every drop is counted in WorkerCounters.
//
// The DPDK layer wraps this: it fills Frames from mbufs, calls Process, applies the new
// data offset/length (a tunnel prepends up to 28 bytes into the headroom) and sends or frees.
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
#include "dataplane/neighbor_table.h"
#include "dataplane/packet/parse.h"
#include "dataplane/snapshot.h"
#include "dataplane/sync_ring.h"

namespace ecmplb::dataplane {

inline constexpr size_t kBurstSize = 32;

struct Frame {
  uint8_t* data = nullptr;  // first byte of the Ethernet header
  uint32_t len = 0;         // frame length
  uint32_t headroom = 0;    // writable bytes before `data` (tunnels need 20 to 28)
};

enum class Verdict : uint8_t {
  kTx,         // send on the data port (forwarded, or an ICMP reply built in place)
  kException,  // pass to the kernel through the exception port
  kDrop,       // free (already counted)
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

  // Per-loop housekeeping: bounded expiry of stale connection-table entries.
  void Housekeeping(uint32_t now_s);

 private:
  struct Pending;  // per-frame scratch for the service packets of a burst
  void Forward(const Snapshot& snap, const Service& svc, const BackendEntry& be, Frame& f,
               const ParsedPacket& p, uint64_t flow_hash, Verdict& v);

  conntrack::Table* ct_;
  WorkerCounters* counters_;
  const NeighborTable* neighbors_;
  PipelineOptions options_;
  // Queues a flow for the peers (options_.sync_out is set), within sync_rate.
  void QueueSync(const conntrack::FlowKey& key, uint32_t backend_id, conntrack::FlowState state,
                 SyncReason reason, uint32_t now_s);

  SharedTokenBucket own_budget_;  // when options_.exception_budget is null
  Gcra sync_budget_;
  uint64_t sync_interval_ = 0, sync_burst_ = 0;
  ExceptionLimiter limiter_;
  uint64_t now_ticks_ = 0;
  // Per-burst scratch, kept here so that a burst does not construct (zero) it again.
  struct Scratch;
  std::unique_ptr<Scratch> scratch_;
};

}  // namespace ecmplb::dataplane
