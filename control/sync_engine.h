// sync_engine.h: flow-state sync between LB hosts, the control side.
//
// Sending: every Tick drains the workers' sync rings (dataplane/sync_ring.h: flows that became
// established, started closing or were re-picked), walks a slice of every worker's connection
// table for flows active within refresh_s (peers never see a synced flow's packets: without a
// refresh they would expire it while it lives), turns host-local indexes into identities (the
// service's VIP, port and protocol; the backend's address), packs them into messages
// (conntrack/sync_message.h), seals each one (control/sync_wire.h: XChaCha20-Poly1305, key id,
// sender id, epoch and sequence number) and hands it to the transport for every peer.
//
// Receiving: Receive() takes one datagram and its source address. It is refused and counted
// (by reason) unless it comes from a configured peer, opens under a loaded key, names that
// peer as its sender, passes the peer's replay window and decodes whole. Each entry is then
// applied to the peer table (written by this engine only; workers read it when a non-SYN
// packet misses their own table) if its service and backend exist here, as a synced entry
// whose last-seen time is the entry's age ago; a closing flow is kept no longer than the
// closing timeout. What was received is never sent on (no re-broadcast).
//
// Ages, not times, cross hosts (each host's clock is its own TSC); identities, not indexes.
//
// Thread-safety: one thread (the daemon's control thread) owns an engine and calls Tick and
// Receive; stats() is read on that thread too. The workers' rings and tables are read with
// their lock-free reader APIs; the peer table is written only here.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "conntrack/conntrack.h"
#include "conntrack/sync_message.h"
#include "control/sync_wire.h"
#include "control/views.h"
#include "dataplane/packet/headers.h"
#include "dataplane/snapshot.h"
#include "dataplane/sync_ring.h"

namespace ecmplb::control {

// Why a received datagram or entry was not applied.
#define ECMPLB_SYNC_REJECTS(X)                                                              \
  X(not_peer, "datagrams from an address that is not a configured peer")                    \
  X(truncated, "datagrams shorter than a sealed message")                                   \
  X(oversized, "datagrams longer than a sealed message may be")                             \
  X(bad_header, "datagrams with a bad magic, version, type or flags")                       \
  X(unknown_key, "datagrams sealed with a key id this host does not have")                  \
  X(forged, "datagrams whose authentication tag does not verify")                           \
  X(wrong_sender, "authentic datagrams whose sender id is not their source address")        \
  X(replayed, "datagrams already received (replay window)")                                 \
  X(too_old, "datagrams older than the replay window")                                      \
  X(old_epoch, "datagrams from an earlier start of their sender")                           \
  X(malformed, "authentic datagrams whose entries do not decode")                           \
  X(unknown_service, "entries of a service this host does not have")                        \
  X(unknown_backend, "entries naming a backend this host does not have (or not serving)")   \
  X(expired, "entries older than their idle timeout")                                       \
  X(table_full, "entries the peer table had no room for")                                   \
  X(superseded, "bulk entries older than what this host already had for the flow")          \
  X(bad_bulk, "bulk requests or answers out of order, unbound or unexpected")

enum class SyncReject : uint8_t {
#define ECMPLB_ENUM(name, help) name,
  ECMPLB_SYNC_REJECTS(ECMPLB_ENUM)
#undef ECMPLB_ENUM
      kCount
};
inline constexpr size_t kSyncRejects = static_cast<size_t>(SyncReject::kCount);
const char* SyncRejectName(SyncReject r);
const char* SyncRejectHelp(SyncReject r);

struct SyncStats {
  uint64_t events = 0;           // drained from the workers' rings
  uint64_t refreshed = 0;        // entries sent again by the refresh walk
  uint64_t unsendable = 0;       // events whose service or backend left before they were sent
  uint64_t entries_sent = 0;     // entries in sent messages (once per message, not per peer)
  uint64_t messages_sent = 0;    // datagrams handed to the transport (per peer)
  uint64_t bytes_sent = 0;       // their bytes
  uint64_t send_errors = 0;      // datagrams the transport refused
  uint64_t messages_received = 0;  // datagrams given to Receive
  uint64_t messages_accepted = 0;  // of those: authentic, fresh and decoded
  uint64_t entries_applied = 0;    // entries written to the peer table
  std::array<uint64_t, kSyncRejects> rejected{};
  uint64_t lag_ms = 0;           // the oldest event's wait (queued -> sent) at the last Tick
  uint64_t lag_max_ms = 0;       // the longest wait so far
  // Wait of every drained event, queued -> sent, in ms buckets (the last: >= 999 ms).
  std::array<uint64_t, 1000> lag_histogram{};
  uint64_t LagPercentileMs(double q) const;
  uint64_t peer_entries = 0;     // entries in the peer table (at the last Tick)
  uint64_t heartbeats_sent = 0;  // empty messages sent to peers that heard nothing else for 1 s
  uint64_t bulk_requests_served = 0;  // bulk answers completed (end marker produced)
  uint64_t bulk_entries_sent = 0;     // entries in them
  uint64_t bulk_fetches_done = 0;     // bulk answers received whole
  uint64_t bulk_entries_received = 0; // entries in them (applied or rejected)
  uint64_t peer_heals = 0;            // peers heard again after kPeerSilentMs of silence
  uint64_t beacons_sent = 0;          // fleet beacons (kFleet messages), once per message
  uint64_t beacons_received = 0;      // authentic fleet beacons from peers
};

// A peer is "silent" after this long without an authentic datagram (everyone sends at least
// a heartbeat every kHeartbeatMs); hearing it again is a heal: the host asks it for a bulk copy.
inline constexpr uint64_t kHeartbeatMs = 1000;
inline constexpr uint64_t kPeerSilentMs = 3000;

// One bulk answer being produced (the serving side): bound to the request it answers.
struct BulkCursor {
  size_t peer = 0;            // index in Settings::peers
  uint64_t req_epoch = 0;     // the request's epoch and seq: every answer message carries
  uint64_t req_seq = 0;       // them, so an answer cannot be replayed into another fetch
  uint32_t chunk = 0;         // messages produced so far
  size_t source = 0;          // 0..workers-1: their tables; workers: the peer table
  size_t bucket = 0;          // next bucket of that source
  bool ended = false;         // the end marker was produced
  uint64_t entries = 0;
};

// One bulk fetch (the asking side).
struct BulkFetch {
  size_t peer = 0;
  uint64_t epoch = 0, seq = 0;  // the request's
  uint32_t next_chunk = 0;      // the answer message expected next
  uint64_t entries = 0;
  bool done = false;
};
enum class BulkStep : uint8_t { kMore, kDone, kRefused };

class SyncEngine {
 public:
  struct Settings {
    dataplane::IpAddr local;                // this host's address (sender id, from address)
    std::vector<dataplane::IpAddr> peers;   // IPv4
    uint32_t refresh_s = 60;
    uint64_t tick_ms = 10;                  // how often Tick is called (refresh pacing)
    uint64_t epoch = 0;                     // this start's epoch (increasing across starts)
  };
  struct Worker {
    dataplane::SyncRing* ring = nullptr;
    const conntrack::Table* table = nullptr;  // refresh walk; nullptr: none
  };
  struct Clock {
    std::function<uint32_t()> now_s;       // the workers' connection-table clock (seconds)
    std::function<uint64_t()> ticks;       // the workers' SyncEvent::ticks clock
    uint64_t ticks_per_second = 1'000'000'000;
    std::function<uint64_t()> now_ms;      // monotonic ms (heartbeats, peer silence)
  };
  // Sends one datagram to `peer`; false if it was not sent (counted).
  using SendFn = std::function<bool(const dataplane::IpAddr& peer, std::span<const uint8_t>)>;

  SyncEngine(Settings settings, sync::Keyring keys, std::vector<Worker> workers,
             conntrack::Table* peer_table, Clock clock, SendFn send);

  // Drains the rings, walks the next refresh slice, expires peer-table entries, sends.
  // `snap` is the latest published snapshot (identities of services and backends).
  void Tick(const dataplane::Snapshot& snap);
  // One received datagram from `from`.
  void Receive(const dataplane::IpAddr& from, std::span<const uint8_t> datagram,
               const dataplane::Snapshot& snap);

  // ---- Bulk sync (a host that starts, returns or heals asks its peers for their tables) ----
  // Messages are the sealed datagrams of sync_wire.h, carried on TCP (control/sync_bulk.h
  // frames them). The request names its sender; every answer message carries the request's
  // epoch in its epoch and (request seq << 24 | message index) in its seq, so it is bound to
  // that request and in order.

  // A sealed request to peer `peer` (index in Settings::peers); *fetch is reset for it.
  void MakeBulkRequest(size_t peer, BulkFetch* fetch, std::vector<uint8_t>* out);
  // Checks a request received on a connection from `from`; on success sets *cursor (its peer
  // and binding) and returns nullopt, else the reason (counted).
  std::optional<SyncReject> OpenBulkRequest(const dataplane::IpAddr& from,
                                            std::span<const uint8_t> msg, BulkCursor* cursor);
  // Appends the answer's next sealed message to *out: a chunk of the local tables' established
  // and closing flows and of the peer table, or, once they are all sent, the end marker.
  // Returns false (appending nothing) once the end marker was produced.
  bool NextBulkMessage(BulkCursor* cursor, const dataplane::Snapshot& snap,
                       std::vector<uint8_t>* out);
  // One answer message for `fetch`: kMore, kDone (end marker; counted) or kRefused (counted;
  // the fetch is over).
  BulkStep ReceiveBulkMessage(BulkFetch* fetch, std::span<const uint8_t> msg,
                              const dataplane::Snapshot& snap);
  // Peers heard again after kPeerSilentMs of silence since the last call (indexes): the
  // daemon asks them for a bulk copy. Each heal is reported once.
  std::vector<size_t> TakeHealedPeers();
  // Whether each peer was heard within kPeerSilentMs (at `now_ms`).
  bool PeerAlive(size_t peer, uint64_t now_ms) const;
  // The peers (bit i: peer i) that were heard before and are silent now (at `now_ms`).
  uint64_t SilentPeers(uint64_t now_ms) const;

  // ---- Fleet mode: what each host applied, heard even while etcd is not (fleet_agent.h) ----
  // This host's beacon, sent to every peer once per kHeartbeatMs from Tick while set.
  void SetFleetBeacon(std::optional<conntrack::sync::FleetBeacon> beacon) { beacon_ = beacon; }
  struct PeerBeacon {
    dataplane::IpAddr peer;
    conntrack::sync::FleetBeacon beacon;
    uint64_t age_ms = 0;
  };
  // The peers' beacons heard within max_age_ms of now_ms.
  std::vector<PeerBeacon> FleetBeacons(uint64_t now_ms, uint64_t max_age_ms) const;

  const SyncStats& stats() const { return stats_; }
  // `ecmplbctl stats`' "sync" (port: the configured UDP port).
  SyncView View(uint16_t port) const;
  const Settings& settings() const { return settings_; }
  const conntrack::Table& peer_table() const { return *peer_; }

 private:
  // Adds one local flow to the message being built (sent when full).
  void Add(const dataplane::Snapshot& snap, const conntrack::FlowKey& key, uint32_t backend_id,
           conntrack::FlowState state, uint32_t age_s);
  void Flush();
  void SendBeacon(uint64_t now_ms);
  void SendToPeers();  // datagram_ to every peer (counted)
  // Encodes pending_ (may be empty) as one message of type `t` and seals it into datagram_.
  bool SealPending(const conntrack::sync::Header& h);
  // Applies one received entry to the peer table; `bulk`: only if newer than what it holds.
  void ApplyEntry(const conntrack::sync::Entry& e, const dataplane::Snapshot& snap, bool bulk);
  // Converts a table entry into a wire entry (false: unsendable).
  bool ToEntry(const dataplane::Snapshot& snap, const conntrack::FlowKey& key,
               uint32_t backend_id, conntrack::FlowState state, uint32_t age_s,
               conntrack::sync::Entry* e);
  size_t PeerIndex(const dataplane::IpAddr& from) const;
  void Heard(size_t peer);
  void Reject(SyncReject r, uint64_t n = 1) { stats_.rejected[static_cast<size_t>(r)] += n; }
  const dataplane::Service* ServiceAtSlot(const dataplane::Snapshot& snap, uint16_t slot);

  Settings settings_;
  sync::Keyring keys_;
  std::vector<Worker> workers_;
  conntrack::Table* peer_;
  Clock clock_;
  SendFn send_;
  uint32_t sender_id_ = 0;
  uint64_t seq_ = 0;
  std::vector<sync::ReplayWindow> windows_;  // per peer
  std::vector<sync::ReplayWindow> bulk_windows_;  // per peer: its bulk requests
  std::vector<uint64_t> last_heard_ms_;  // per peer: last authentic datagram (0: never)
  std::vector<size_t> healed_;
  uint64_t last_sent_ms_ = 0;
  std::vector<conntrack::sync::Entry> pending_;
  size_t pending_bytes_ = 0;
  std::vector<size_t> refresh_cursor_;  // per worker: the next bucket of the walk
  uint64_t refresh_ticks_ = 0;
  std::vector<dataplane::SyncEvent> events_;
  // Slot -> service of the snapshot generation `slots_generation_`.
  std::vector<const dataplane::Service*> slots_;
  uint64_t slots_generation_ = ~uint64_t{0};
  std::vector<uint8_t> body_, datagram_, plain_;
  std::vector<conntrack::sync::Entry> received_;
  SyncStats stats_;
  std::optional<conntrack::sync::FleetBeacon> beacon_;
  uint64_t last_beacon_ms_ = 0;
  struct HeardBeacon {
    conntrack::sync::FleetBeacon beacon;
    uint64_t at_ms = 0;
  };
  std::vector<std::optional<HeardBeacon>> peer_beacons_;  // per peer
};

// The transport: a UDP socket bound to (local, port), non-blocking, on which the kernel
// routes through the exception interface.
class SyncSocket {
 public:
  static absl::StatusOr<std::unique_ptr<SyncSocket>> Open(const dataplane::IpAddr& local,
                                                          uint16_t port);
  ~SyncSocket();
  int fd() const { return fd_; }
  bool Send(const dataplane::IpAddr& peer, std::span<const uint8_t> datagram);
  // Reads up to `max` waiting datagrams, calling fn(from, bytes) for each; returns how many.
  size_t ReceiveAll(size_t max,
                    const std::function<void(const dataplane::IpAddr&, std::span<const uint8_t>)>& fn);

 private:
  SyncSocket(int fd, uint16_t port) : fd_(fd), port_(port) {}
  int fd_;
  uint16_t port_;
};

}  // namespace ecmplb::control
