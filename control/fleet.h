// fleet.h: fleet mode's data model, pure (no I/O): where the shared configuration lives in
// etcd, how it is cut into pieces that stay inside etcd's limits, what each host publishes
// about itself, the tables' fingerprints, and the lag rule that withdraws a host that may be
// serving a stale or different table.
//
// Key layout, under ROOT = fleet.prefix + "/" + fleet.cluster + "/":
//   ROOT config          the pointer: which blobs make up the services (their SHA-256
//                        digests, in order), each service's highest backend id ever given
//                        (so a writer never reuses a removed backend's id), who wrote it.
//                        Its mod_revision is the configuration's version.
//   ROOT blobs/DIGEST    a JSON array of services (the config file's service objects), at
//                        most kBlobBytes; immutable (content-addressed).
//   ROOT status/HOST     one host's status (HostStatus), under a lease: it disappears when
//                        the host has been gone lease_ttl_s.
// Why this layout: etcd 3.4 refuses a request over 1.5 MiB and a transaction over 128
// operations. One document would cap a fleet's configuration at 1.5 MiB (about 1,500
// services with 10 backends), and one key per service would make a change of more than 127
// services non-atomic. Here a writer first stores the blobs it needs that are not there
// (content-addressed, so nobody reads them yet; batches of at most kTxnOps operations and
// kTxnBytes bytes), then swaps the pointer in one small transaction that compares the
// pointer's mod_revision with the one it read (compare-and-swap: two operators cannot
// overwrite each other). Services are spread over blobs by a hash of their name, so an edit
// of one service rewrites one blob. Readers fetch the blobs at the pointer's revision, so a
// blob deleted by a later writer is still readable (until etcd compacts that revision).
//
// Thread-safety: plain values and pure functions; a LagJudge belongs to one thread.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "control/config.h"

namespace ecmplb::control::fleet {

inline constexpr size_t kBlobBytes = 512 * 1024;   // one blob's JSON, at most
inline constexpr size_t kTxnOps = 100;             // operations per transaction (etcd: 128)
inline constexpr size_t kTxnBytes = 1024 * 1024;   // values per transaction (etcd: 1.5 MiB)
inline constexpr size_t kMaxBlobs = 4096;

struct Layout {
  std::string root;  // "/ecmplb/CLUSTER/"
  static Layout For(const FleetConfig& fleet) { return {fleet.prefix + "/" + fleet.cluster + "/"}; }
  std::string ConfigKey() const { return root + "config"; }
  std::string BlobPrefix() const { return root + "blobs/"; }
  std::string BlobKey(absl::string_view digest) const { return BlobPrefix() + std::string(digest); }
  std::string StatusPrefix() const { return root + "status/"; }
  std::string StatusKey(absl::string_view host) const { return StatusPrefix() + std::string(host); }
};

// The prefix's end for a range request: the smallest key greater than every key starting
// with `prefix` (etcd's range_end).
std::string PrefixEnd(absl::string_view prefix);

struct BlobRef {
  std::string digest;  // hex SHA-256 of the blob's text
  uint32_t services = 0;
  uint64_t bytes = 0;
  bool operator==(const BlobRef&) const = default;
};

struct Pointer {
  std::vector<BlobRef> blobs;
  std::map<std::string, uint32_t> id_high;  // service -> highest backend id ever given
  std::string writer;                       // "ecmplbctl@HOST"
  int64_t written_unix_ms = 0;
  bool operator==(const Pointer&) const = default;
};
absl::StatusOr<Pointer> ParsePointer(absl::string_view text);
std::string SerializePointer(const Pointer& p);

struct Blob {
  std::string digest;
  std::string text;  // a JSON array of services
  uint32_t services = 0;
};
std::string Sha256Hex(absl::string_view text);

// Cuts `services` into blobs: the smallest power-of-two number of hash buckets (by service
// name) in which every bucket's JSON fits kBlobBytes; services keep their order inside a
// bucket. ResourceExhausted when one service alone is larger than a blob.
absl::StatusOr<std::vector<Blob>> SplitServices(const std::vector<ServiceConfig>& services);
// The services array (JSON text) of a pointer whose blobs' texts are in `texts` (digest ->
// text); every digest is checked.
absl::StatusOr<std::string> JoinBlobs(const Pointer& pointer,
                                      const std::map<std::string, std::string>& texts);

// Fingerprints of the tables as they would be with every backend healthy: per service, the
// Maglev table's fingerprint (maglev::TableFingerprint) combined with the service's
// configuration; the root combines every service's in name order. Equal roots: the same
// tables, whatever the hosts' health views. Cached by the service's configuration, so a
// change rebuilds only the tables of changed services.
class Fingerprints {
 public:
  // Recomputes for `services`; returns the root.
  absl::StatusOr<uint64_t> Update(const std::vector<ServiceConfig>& services);
  uint64_t root() const { return root_; }
  const std::map<std::string, uint64_t>& services() const { return current_; }

 private:
  std::map<uint64_t, uint64_t> cache_;  // hash of a service's JSON -> its fingerprint
  std::map<std::string, uint64_t> current_;
  uint64_t root_ = 0;
};
std::string FingerprintHex(uint64_t fp);

// What a host publishes under ROOT status/HOST.
struct HostStatus {
  std::string host;
  int64_t applied_version = 0;   // the pointer's mod_revision it applied (0: none)
  std::string root;              // FingerprintHex of the applied tables
  std::map<std::string, std::string> service_fps;  // only while it disagrees with a peer
  int64_t refused_version = 0;   // the newest revision it refused, and why
  std::string refused_reason;
  std::vector<std::string> announced;  // VIPs announced now
  bool serving = false;                // announces at least one VIP
  std::string withdrawn;               // the fleet's reason to withdraw its VIPs, "" if none
  std::string kept;                    // a reason it would withdraw but min_announcing keeps it
  std::vector<std::string> down;       // backends its health checks see down ("SVC#ID ADDR")
  std::string sync;                    // flow sync's state, one line
  uint64_t updated_unix_ms = 0;
  bool operator==(const HostStatus&) const = default;
};
absl::StatusOr<HostStatus> ParseHostStatus(absl::string_view text);
std::string SerializeHostStatus(const HostStatus& s);

// The lag rule. A host may be wrong, and withdraws, when
//   - its applied version is older than the newest version a peer reports applied, for
//     longer than grace_ms (never the store's head: a revision nobody could apply must not
//     make every host "lag"), or
//   - at its version, a strict majority of the hosts at that version (itself included)
//     agree on a root fingerprint that is not its own;
// but never while fewer than min_announcing other hosts announce (the fleet is never
// withdrawn whole). Peers are what the status prefix holds (dead hosts' keys expire).
class LagJudge {
 public:
  LagJudge(uint64_t grace_ms, uint32_t min_announcing)
      : grace_ms_(grace_ms), min_announcing_(min_announcing) {}
  struct Verdict {
    std::string withdraw;  // the reason to withdraw now ("" = serve)
    std::string kept;      // a reason that min_announcing overrides
    bool disagree = false; // some peer at this host's version has another root
  };
  Verdict Judge(const HostStatus& self, const std::vector<HostStatus>& peers, uint64_t now_ms);

 private:
  uint64_t grace_ms_;
  uint32_t min_announcing_;
  std::optional<uint64_t> behind_since_;
};

}  // namespace ecmplb::control::fleet
