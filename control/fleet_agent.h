// fleet_agent.h: one LB host's side of fleet mode, over a fleet::Store (etcd, or a fake in
// tests), driven by Tick() from the daemon's control loop (never blocking: every store
// operation is asynchronous).
//
//   follow    read the config pointer and every host's status at one revision, then watch
//             both from the next revision; a pointer that changed is fetched (its blobs at
//             the pointer's own revision), validated and applied whole through `apply` (the
//             daemon: WithServices + ControlPlane::ApplyConfig, exactly a local change's
//             path), or refused whole, logged, and the last good state kept. A deleted
//             pointer is refused too (an accident must not empty the fleet). A watch that
//             ends (error, compaction, a stalled connection noticed by a failing request)
//             starts a fresh read at the store's head after retry_ms: gaps are never
//             patched from events, the state is read again.
//   publish   this host's HostStatus under ROOT status/HOST every status_period_ms (and at
//             once when it changed), attached to a lease kept alive at a third of its TTL.
//   judge     the lag rule (fleet::LagJudge) over the peers' statuses while the store is
//             reachable; while it is not, over what the peers say through flow sync's
//             authenticated channel (`beacons`: their applied version, root and whether they
//             serve), so that a host cut off from etcd while the others change the
//             configuration withdraws after the grace period, and a store down for every
//             host withdraws nobody (they all report the same version).
//   cache     every applied revision is written to cache_file (atomically) so that a host
//             restarted during an etcd outage serves its last good state (Restore).
//
// Thread-safety: one thread (the daemon's control loop) owns a FleetAgent and its Store.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "control/fleet.h"
#include "control/fleet_store.h"
#include "control/log.h"
#include "control/views.h"

namespace ecmplb::control::fleet {

struct AgentOptions {
  Layout layout;
  std::string host;                // this host's status key
  uint64_t grace_ms = 5000;
  uint32_t min_announcing = 1;
  int64_t lease_ttl_s = 10;
  uint64_t status_period_ms = 1000;
  uint64_t retry_ms = 1000;        // after a failed read or a lost watch
  std::string cache_file;          // "" = no cache
  std::function<uint64_t()> unix_ms;  // wall clock for the status (default: system clock)
};

// The cache file: the applied version and its services (a JSON array), with the fleet's root
// and the pointer's digest, so that a rebuilt etcd or another cluster whose pointer happens to
// have the same revision is never taken for it.
struct Cache {
  int64_t version = 0;
  std::string services;  // JSON array
  std::string root;      // Layout::root it came from
  std::string pointer;   // Sha256Hex of the pointer's value
};
absl::StatusOr<Cache> LoadCache(const std::string& path);  // NotFound: no cache
absl::Status SaveCache(const std::string& path, const Cache& cache);

class FleetAgent {
 public:
  // Validates and applies a revision's services (a JSON array); returns the services as
  // applied (for the fingerprints), or why the revision is refused.
  using ApplyFn = std::function<absl::StatusOr<std::vector<ServiceConfig>>(
      const std::string& services_json, int64_t version)>;
  // Fills this host's local fields: announced, serving, down, sync.
  using LocalFn = std::function<void(HostStatus*)>;
  // The peers heard through flow sync: host = their address, applied_version, root, serving.
  using BeaconsFn = std::function<std::vector<HostStatus>()>;

  FleetAgent(Store* store, AgentOptions options, ApplyFn apply, LocalFn local, BeaconsFn beacons,
             log::Sink log);

  // The state a restarted host serves before it hears the store: the cached revision (its
  // version and pointer digest).
  absl::Status Restore(int64_t version, const std::string& pointer_digest,
                       const std::vector<ServiceConfig>& services);

  // Polls the store and runs what is due. Call often (every control-loop step).
  void Tick(uint64_t now_ms);

  // The lag rule's reason to withdraw every VIP ("" = announce as health decides).
  const std::string& withdraw() const { return withdraw_; }
  int64_t applied_version() const { return applied_; }
  const Fingerprints& fingerprints() const { return fps_; }
  FleetView View() const;
  // This host's status as last published (or as it would be).
  HostStatus SelfStatus(uint64_t now_ms) const;

 private:
  void Resync(uint64_t now_ms);
  void Lost(const std::string& why, uint64_t now_ms);
  void OnWatch(const WatchResponse& w, uint64_t epoch);
  void Consider(const KeyValue& pointer);
  void Fetch(const KeyValue& pointer);
  void FetchBlob(int64_t version, std::shared_ptr<const Pointer> pointer, const std::string& digest,
                 int64_t at,
                 std::shared_ptr<std::map<std::string, std::string>> texts,
                 std::shared_ptr<size_t> left, std::shared_ptr<bool> failed);
  void FetchDone(int64_t version, const Pointer& pointer,
                 std::shared_ptr<std::map<std::string, std::string>> texts);
  void Refuse(int64_t version, const std::string& why);
  void PeerPut(const KeyValue& kv);
  void PeerDelete(const std::string& key);
  void Publish(uint64_t now_ms);
  void Judge(uint64_t now_ms);

  Store* store_;
  AgentOptions options_;
  ApplyFn apply_;
  LocalFn local_;
  BeaconsFn beacons_;
  log::Sink log_;
  LagJudge judge_;
  Fingerprints fps_;

  // Connection: `epoch_` grows at every resync, so callbacks of an older one are ignored.
  uint64_t epoch_ = 0;
  bool connected_ = false;
  bool syncing_ = false;
  uint64_t retry_at_ms_ = 0;
  uint64_t watch_ = 0;
  std::string last_error_;
  uint64_t now_ms_ = 0;

  // Configuration.
  int64_t applied_ = 0;
  std::string applied_pointer_;  // Sha256Hex of the applied pointer's value
  std::string refused_pointer_;
  std::string fetch_pointer_;    // of the pointer being fetched
  int64_t seen_ = 0;
  int64_t refused_ = 0;
  std::string refused_reason_;
  bool fetching_ = false;
  std::optional<KeyValue> next_;  // a newer pointer that arrived during a fetch

  // Peers (etcd statuses, by host), and when each was last written (this host's clock).
  std::map<std::string, HostStatus> peers_;
  std::map<std::string, uint64_t> peer_seen_ms_;
  bool disagree_ = false;

  // Status and lease.
  int64_t lease_ = 0;
  bool lease_pending_ = false;
  uint64_t next_status_ms_ = 0;
  uint64_t next_keepalive_ms_ = 0;
  bool status_pending_ = false;
  std::string last_published_;
  // The watch's liveness: the revision of our last status write, until the watch shows it.
  static constexpr uint64_t kEchoMs = 5000;
  int64_t echo_revision_ = 0;
  uint64_t echo_deadline_ms_ = 0;

  std::string withdraw_;
  std::string kept_;
  int64_t newest_peer_ = 0;
  size_t peer_count_ = 0;
  uint64_t applies_ = 0, refusals_ = 0, resyncs_ = 0, status_writes_ = 0;
};

}  // namespace ecmplb::control::fleet
