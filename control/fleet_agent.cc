// fleet_agent.cc: see fleet_agent.h.
#include "control/fleet_agent.h"

#include <chrono>

#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ecmplb::control::fleet {

using nlohmann::json;
using log::Level;

absl::StatusOr<Cache> LoadCache(const std::string& path) {
  auto text = ReadConfigText(path);
  if (!text.ok()) return absl::NotFoundError(text.status().message());
  try {
    const json j = json::parse(*text);
    Cache c;
    c.version = j.at("version").get<int64_t>();
    c.services = j.at("services").dump();
    c.root = j.value("root", std::string());
    c.pointer = j.value("pointer", std::string());
    if (!j.at("services").is_array() || c.version <= 0) throw json::other_error::create(0, "", nullptr);
    return c;
  } catch (const json::exception&) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": not a fleet cache (want {\"version\": N, \"services\": [...]})"));
  }
}

absl::Status SaveCache(const std::string& path, const Cache& cache) {
  std::string text = absl::StrCat(
      "{\"version\":", cache.version, ",\"root\":", json(cache.root).dump(),
      ",\"pointer\":", json(cache.pointer).dump(), ",\"services\":", cache.services, "}\n");
  return WriteConfigText(text, path);
}

FleetAgent::FleetAgent(Store* store, AgentOptions options, ApplyFn apply, LocalFn local,
                       BeaconsFn beacons, log::Sink log)
    : store_(store),
      options_(std::move(options)),
      apply_(std::move(apply)),
      local_(std::move(local)),
      beacons_(std::move(beacons)),
      log_(std::move(log)),
      judge_(options_.grace_ms, options_.min_announcing) {
  if (!options_.unix_ms) {
    options_.unix_ms = [] {
      return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(
                                       std::chrono::system_clock::now().time_since_epoch())
                                       .count());
    };
  }
}

absl::Status FleetAgent::Restore(int64_t version, const std::string& pointer_digest,
                                const std::vector<ServiceConfig>& services) {
  auto root = fps_.Update(services);
  if (!root.ok()) return root.status();
  applied_ = version;
  applied_pointer_ = pointer_digest;
  seen_ = std::max(seen_, version);
  return absl::OkStatus();
}

void FleetAgent::Tick(uint64_t now_ms) {
  now_ms_ = now_ms;
  store_->Poll();
  if (!connected_ && !syncing_ && now_ms >= retry_at_ms_) Resync(now_ms);
  if (connected_) {
    if (lease_ == 0 && !lease_pending_) {
      lease_pending_ = true;
      const uint64_t epoch = epoch_;
      store_->LeaseGrant(options_.lease_ttl_s, [this, epoch](absl::StatusOr<int64_t> id) {
        if (epoch != epoch_) return;  // a later connection has its own
        lease_pending_ = false;
        if (!id.ok()) return Lost(absl::StrCat("lease grant: ", id.status().message()), now_ms_);
        lease_ = *id;
        next_keepalive_ms_ = now_ms_ + static_cast<uint64_t>(options_.lease_ttl_s) * 1000 / 3;
        next_status_ms_ = now_ms_;  // publish under it at once
      });
    }
    if (lease_ != 0 && now_ms >= next_keepalive_ms_ && !lease_pending_) {
      lease_pending_ = true;
      next_keepalive_ms_ = now_ms + static_cast<uint64_t>(options_.lease_ttl_s) * 1000 / 3;
      const uint64_t epoch = epoch_;
      const int64_t lease = lease_;
      store_->LeaseKeepAlive(lease, [this, epoch, lease](absl::StatusOr<int64_t> ttl) {
        if (epoch != epoch_ || lease != lease_) return;
        lease_pending_ = false;
        if (!ttl.ok()) return Lost(absl::StrCat("lease keepalive: ", ttl.status().message()), now_ms_);
        if (*ttl <= 0) {  // expired (e.g. a long stall): a new one, and publish again
          lease_ = 0;
          last_published_.clear();
        }
      });
    }
    Publish(now_ms);
    // The watch covers our own status key: a write it has not shown us within kEchoMs means
    // the watch stalled (a dropped flow, a hung stream) while other requests still work.
    if (echo_revision_ != 0 && now_ms >= echo_deadline_ms_) {
      Lost(absl::StrCat("watch stalled: no event for this host's status write at revision ",
                        echo_revision_, " within ", kEchoMs, " ms"),
           now_ms);
    }
  }
  Judge(now_ms);
}

void FleetAgent::Lost(const std::string& why, uint64_t now_ms) {
  if (connected_ || why != last_error_) {
    log_(Level::kWarning, "fleet",
         absl::StrCat("fleet: lost the store (", why, "); serving version ", applied_,
                      " until it is back"),
         {{"REASON", why}});
  }
  last_error_ = why;
  connected_ = false;
  syncing_ = false;
  ++epoch_;  // ignore what the old connection still delivers
  if (watch_ != 0) store_->CancelWatch(watch_);
  watch_ = 0;
  lease_ = 0;
  lease_pending_ = false;
  status_pending_ = false;
  fetching_ = false;  // a fetch in flight belongs to the old connection: read again
  next_.reset();
  echo_revision_ = 0;
  last_published_.clear();
  retry_at_ms_ = now_ms + options_.retry_ms;
}

void FleetAgent::Resync(uint64_t now_ms) {
  syncing_ = true;
  ++resyncs_;
  ++epoch_;
  const uint64_t epoch = epoch_;
  (void)now_ms;
  const Layout& L = options_.layout;
  store_->Range(L.ConfigKey(), "", 0, [this, epoch](absl::StatusOr<RangeResult> cfg) {
    if (epoch != epoch_) return;
    if (!cfg.ok()) return Lost(absl::StrCat("read config: ", cfg.status().message()), now_ms_);
    const int64_t rev = cfg->revision;
    const Layout& L = options_.layout;
    store_->Range(L.StatusPrefix(), PrefixEnd(L.StatusPrefix()), rev,
                  [this, epoch, rev, cfg = *cfg](absl::StatusOr<RangeResult> st) {
                    if (epoch != epoch_) return;
                    if (!st.ok()) {
                      return Lost(absl::StrCat("read statuses: ", st.status().message()), now_ms_);
                    }
                    peers_.clear();
                    for (const KeyValue& kv : st->kvs) PeerPut(kv);
                    const Layout& L = options_.layout;
                    watch_ = store_->Watch(L.ConfigKey(), PrefixEnd(L.StatusPrefix()), rev + 1,
                                           [this, epoch](const WatchResponse& w) { OnWatch(w, epoch); });
                    const bool was = connected_;
                    syncing_ = false;
                    connected_ = true;
                    last_error_.clear();
                    next_status_ms_ = now_ms_;
                    if (!was) {
                      log_(Level::kNotice, "fleet",
                           absl::StrCat("fleet: following ", L.root, " from revision ", rev,
                                        " (", peers_.size(), " host statuses)"));
                    }
                    if (cfg.kvs.empty()) {
                      if (applied_ != 0) Refuse(0, "the fleet's config key does not exist");
                    } else {
                      Consider(cfg.kvs.front());
                    }
                  });
  });
}

void FleetAgent::OnWatch(const WatchResponse& w, uint64_t epoch) {
  if (epoch != epoch_) return;
  const Layout& L = options_.layout;
  for (const WatchEvent& e : w.events) {
    if (e.kv.key == L.ConfigKey()) {
      if (e.type == WatchEvent::Type::kPut) {
        Consider(e.kv);
      } else {
        Refuse(e.kv.mod_revision, "the fleet's config key was deleted");
      }
    } else if (absl::StartsWith(e.kv.key, L.StatusPrefix())) {
      if (e.kv.key == L.StatusKey(options_.host) && e.kv.mod_revision >= echo_revision_) {
        echo_revision_ = 0;  // the watch is alive
      }
      if (e.type == WatchEvent::Type::kPut) {
        PeerPut(e.kv);
      } else {
        PeerDelete(e.kv.key);
      }
    }
  }
  if (w.ended) {
    watch_ = 0;
    Lost(w.compact_revision != 0
             ? absl::StrCat("watch: revision compacted (oldest kept ", w.compact_revision, ")")
             : absl::StrCat("watch ended: ", w.error),
         now_ms_);
  }
}

void FleetAgent::Consider(const KeyValue& pointer) {
  seen_ = std::max(seen_, pointer.mod_revision);
  const std::string digest = Sha256Hex(pointer.value);
  if ((pointer.mod_revision == applied_ && digest == applied_pointer_) ||
      (pointer.mod_revision == refused_ && digest == refused_pointer_)) {
    return;
  }
  if (fetching_) {
    if (!next_ || next_->mod_revision < pointer.mod_revision) next_ = pointer;
    return;
  }
  Fetch(pointer);
}

void FleetAgent::Fetch(const KeyValue& kv) {
  fetch_pointer_ = Sha256Hex(kv.value);
  auto pointer = ParsePointer(kv.value);
  if (!pointer.ok()) return Refuse(kv.mod_revision, std::string(pointer.status().message()));
  fetching_ = true;
  auto texts = std::make_shared<std::map<std::string, std::string>>();
  const int64_t version = kv.mod_revision;
  if (pointer->blobs.empty()) return FetchDone(version, *pointer, texts);
  auto left = std::make_shared<size_t>(pointer->blobs.size());
  auto failed = std::make_shared<bool>(false);
  auto shared = std::make_shared<const Pointer>(std::move(*pointer));  // one copy for every blob
  for (const BlobRef& ref : shared->blobs) {
    FetchBlob(version, shared, ref.digest, version, texts, left, failed);
  }
}

void FleetAgent::FetchBlob(int64_t version, std::shared_ptr<const Pointer> pointer,
                           const std::string& digest,
                           int64_t at, std::shared_ptr<std::map<std::string, std::string>> texts,
                           std::shared_ptr<size_t> left, std::shared_ptr<bool> failed) {
  const uint64_t epoch = epoch_;
  // At the pointer's revision: a later writer may have deleted the blob since. If that
  // revision was compacted, at the head (content-addressed: if it is there, it is the same).
  store_->Range(options_.layout.BlobKey(digest), "", at,
                [this, epoch, version, pointer, digest, at, texts, left,
                 failed](absl::StatusOr<RangeResult> r) {
                  if (*failed || epoch != epoch_) return;  // lost meanwhile: read again
                  if (!r.ok() && r.status().code() == absl::StatusCode::kOutOfRange && at != 0) {
                    return FetchBlob(version, pointer, digest, 0, texts, left, failed);
                  }
                  if (!r.ok()) {
                    *failed = true;
                    return Lost(absl::StrCat("read blob: ", r.status().message()), now_ms_);
                  }
                  if (!r->kvs.empty()) (*texts)[digest] = r->kvs.front().value;
                  if (--*left == 0) FetchDone(version, *pointer, texts);
                });
}

void FleetAgent::FetchDone(int64_t version, const Pointer& pointer,
                           std::shared_ptr<std::map<std::string, std::string>> texts) {
  fetching_ = false;
  auto services = JoinBlobs(pointer, *texts);
  if (!services.ok()) {
    Refuse(version, std::string(services.status().message()));
  } else if (auto applied = apply_(*services, version); !applied.ok()) {
    Refuse(version, std::string(applied.status().message()));
  } else {
    // The tables were built by the apply: the same builds cannot fail here.
    auto root = fps_.Update(*applied);
    if (!root.ok()) {
      log_(Level::kError, "fleet", absl::StrCat("fleet: fingerprint: ", root.status().message()));
    }
    const int64_t from = applied_;
    applied_ = version;
    applied_pointer_ = fetch_pointer_;
    ++applies_;
    log_(Level::kNotice, "fleet",
         absl::StrCat("fleet: applied version ", version, " (from ", from, "): ", applied->size(),
                      " services, fingerprint ", FingerprintHex(fps_.root()),
                      pointer.writer.empty() ? "" : absl::StrCat(", written by ", pointer.writer)),
         {{"STATE", "applied"}});
    if (!options_.cache_file.empty()) {
      if (absl::Status st = SaveCache(options_.cache_file,
                                      {version, *services, options_.layout.root, applied_pointer_});
          !st.ok()) {
        log_(Level::kError, "fleet",
             absl::StrCat("fleet: cannot write the cache ", options_.cache_file, ": ", st.message()));
      }
    }
    next_status_ms_ = now_ms_;
  }
  if (next_) {
    KeyValue kv = *next_;
    next_.reset();
    Consider(kv);
  }
}

void FleetAgent::Refuse(int64_t version, const std::string& why) {
  if (version == refused_ && why == refused_reason_) return;  // said already
  refused_ = version;
  refused_pointer_ = fetch_pointer_;
  refused_reason_ = why;
  ++refusals_;
  log_(Level::kError, "fleet",
       absl::StrCat("fleet: refused version ", version, ": ", why, "; keeping version ", applied_),
       {{"REASON", why}, {"STATE", "refused"}});
  next_status_ms_ = now_ms_;
}

void FleetAgent::PeerPut(const KeyValue& kv) {
  const std::string host = kv.key.substr(options_.layout.StatusPrefix().size());
  if (host == options_.host) return;  // our own (an echo, or a previous life's)
  auto st = ParseHostStatus(kv.value);
  if (!st.ok()) {
    peers_.erase(host);
    return;
  }
  st->host = host;
  peers_[host] = std::move(*st);
  peer_seen_ms_[host] = now_ms_;
}

void FleetAgent::PeerDelete(const std::string& key) {
  peers_.erase(key.substr(options_.layout.StatusPrefix().size()));
  peer_seen_ms_.erase(key.substr(options_.layout.StatusPrefix().size()));
}

HostStatus FleetAgent::SelfStatus(uint64_t now_ms) const {
  (void)now_ms;
  HostStatus s;
  s.host = options_.host;
  s.applied_version = applied_;
  s.root = FingerprintHex(fps_.root());
  if (disagree_) {
    for (const auto& [name, fp] : fps_.services()) s.service_fps[name] = FingerprintHex(fp);
  }
  s.refused_version = refused_;
  s.refused_reason = refused_reason_;
  s.withdrawn = withdraw_;
  s.kept = kept_;
  if (local_) local_(&s);
  return s;
}

void FleetAgent::Publish(uint64_t now_ms) {
  if (lease_ == 0 || status_pending_) return;
  HostStatus s = SelfStatus(now_ms);
  const std::string body = SerializeHostStatus(s);  // without the time: compare content
  if (body == last_published_ && now_ms < next_status_ms_) return;
  s.updated_unix_ms = options_.unix_ms();
  status_pending_ = true;
  next_status_ms_ = now_ms + options_.status_period_ms;
  const uint64_t epoch = epoch_;
  store_->Txn({}, {Op{Op::Type::kPut, options_.layout.StatusKey(options_.host),
                      SerializeHostStatus(s), lease_}},
              [this, epoch, body](absl::StatusOr<TxnResult> r) {
                if (epoch != epoch_) return;
                status_pending_ = false;
                if (!r.ok()) return Lost(absl::StrCat("write status: ", r.status().message()), now_ms_);
                last_published_ = body;
                ++status_writes_;
                if (echo_revision_ == 0 && r->revision > 0) {
                  echo_revision_ = r->revision;
                  echo_deadline_ms_ = now_ms_ + kEchoMs;
                }
              });
}

void FleetAgent::Judge(uint64_t now_ms) {
  std::vector<HostStatus> peers;
  if (connected_) {
    for (const auto& [host, st] : peers_) {
      peers.push_back(st);
      // Every host rewrites its status each status period: one unheard of for three is
      // dead or cut off, and does not count as announcing (its key lives on until its lease
      // runs out).
      auto seen = peer_seen_ms_.find(host);
      if (seen == peer_seen_ms_.end() || now_ms - seen->second > 3 * options_.status_period_ms) {
        peers.back().serving = false;
      }
    }
  } else if (beacons_) {
    peers = beacons_();
  }
  HostStatus self = SelfStatus(now_ms);
  self.withdrawn.clear();
  const LagJudge::Verdict v = judge_.Judge(self, peers, now_ms);
  newest_peer_ = 0;
  for (const HostStatus& p : peers) newest_peer_ = std::max(newest_peer_, p.applied_version);
  peer_count_ = peers.size();
  if (v.disagree != disagree_) {
    disagree_ = v.disagree;
    next_status_ms_ = now_ms;  // publish the per-service fingerprints (or drop them)
  }
  if (v.withdraw != withdraw_) {
    if (!v.withdraw.empty() && withdraw_.empty()) {
      log_(Level::kWarning, "fleet", absl::StrCat("fleet: withdrawing every VIP: ", v.withdraw),
           {{"REASON", v.withdraw}, {"STATE", "withdrawn"}});
    } else if (v.withdraw.empty()) {
      log_(Level::kNotice, "fleet",
           absl::StrCat("fleet: caught up (version ", applied_, "); VIPs may be announced"),
           {{"STATE", "caught-up"}});
    }
    withdraw_ = v.withdraw;
    next_status_ms_ = now_ms;
  }
  if (v.kept != kept_) {
    if (!v.kept.empty()) log_(Level::kWarning, "fleet", absl::StrCat("fleet: ", v.kept));
    kept_ = v.kept;
  }
}

FleetView FleetAgent::View() const {
  FleetView v;
  v.cluster = options_.layout.root;
  v.host = options_.host;
  v.connected = connected_;
  v.last_error = last_error_;
  v.applied_version = applied_;
  v.root = FingerprintHex(fps_.root());
  v.seen_version = seen_;
  v.refused_version = refused_;
  v.refused_reason = refused_reason_;
  v.withdraw = withdraw_;
  v.kept = kept_;
  v.peers = peer_count_;
  v.newest_peer_version = newest_peer_;
  v.applies = applies_;
  v.refusals = refusals_;
  v.resyncs = resyncs_;
  v.status_writes = status_writes_;
  return v;
}

}  // namespace ecmplb::control::fleet
