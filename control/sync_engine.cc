// sync_engine.cc: see sync_engine.h.
#include "control/sync_engine.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/inet.h"

namespace ecmplb::control {

namespace cs = conntrack::sync;
using conntrack::FlowKey;
using conntrack::FlowState;
using dataplane::IpAddr;

const char* SyncRejectName(SyncReject r) {
  switch (r) {
#define ECMPLB_CASE(name, help) \
  case SyncReject::name:        \
    return #name;
    ECMPLB_SYNC_REJECTS(ECMPLB_CASE)
#undef ECMPLB_CASE
    case SyncReject::kCount:
      break;
  }
  return "?";
}

const char* SyncRejectHelp(SyncReject r) {
  switch (r) {
#define ECMPLB_CASE(name, help) \
  case SyncReject::name:        \
    return help;
    ECMPLB_SYNC_REJECTS(ECMPLB_CASE)
#undef ECMPLB_CASE
    case SyncReject::kCount:
      break;
  }
  return "?";
}

uint64_t SyncStats::LagPercentileMs(double q) const {
  uint64_t total = 0;
  for (uint64_t n : lag_histogram) total += n;
  if (total == 0) return 0;
  const uint64_t want = static_cast<uint64_t>(q * static_cast<double>(total - 1)) + 1;
  uint64_t seen = 0;
  for (size_t i = 0; i < lag_histogram.size(); ++i) {
    seen += lag_histogram[i];
    if (seen >= want) return i;
  }
  return lag_histogram.size() - 1;
}

namespace {

cs::Addr ToWire(const IpAddr& a) {
  cs::Addr w;
  w.family = a.family;
  w.bytes = a.bytes;
  return w;
}

IpAddr FromWire(const cs::Addr& w) {
  IpAddr a;
  a.family = w.family;
  a.bytes = w.bytes;
  return a;
}

// A connection-table key's client and VIP addresses (IPv4: addr[0..3], addr[4..7]).
void KeyAddrs(const FlowKey& k, cs::Addr* client, cs::Addr* vip) {
  client->family = vip->family = k.family;
  const size_t n = k.is_v6() ? 16 : 4;
  std::memcpy(client->bytes.data(), k.addr, n);
  std::memcpy(vip->bytes.data(), k.addr + n, n);
}

}  // namespace

SyncEngine::SyncEngine(Settings settings, sync::Keyring keys, std::vector<Worker> workers,
                       conntrack::Table* peer_table, Clock clock, SendFn send)
    : settings_(std::move(settings)),
      keys_(std::move(keys)),
      workers_(std::move(workers)),
      peer_(peer_table),
      clock_(std::move(clock)),
      send_(std::move(send)) {
  sender_id_ = settings_.local.is_v4() ? settings_.local.v4_host() : 0;
  windows_.resize(settings_.peers.size());
  bulk_windows_.resize(settings_.peers.size());
  peer_beacons_.resize(settings_.peers.size());
  last_heard_ms_.assign(settings_.peers.size(), 0);
  if (!clock_.now_ms) clock_.now_ms = [] { return uint64_t{0}; };
  refresh_cursor_.assign(workers_.size(), 0);
  events_.resize(1024);
  pending_.reserve(cs::kMaxEntriesPerBody);
}

const dataplane::Service* SyncEngine::ServiceAtSlot(const dataplane::Snapshot& snap,
                                                    uint16_t slot) {
  if (snap.generation() != slots_generation_) {
    slots_.assign(snap.service_slots(), nullptr);
    for (const auto& s : snap.services()) {
      if (s->counter_slot < slots_.size()) slots_[s->counter_slot] = s.get();
    }
    slots_generation_ = snap.generation();
  }
  return slot < slots_.size() ? slots_[slot] : nullptr;
}

bool SyncEngine::ToEntry(const dataplane::Snapshot& snap, const FlowKey& key,
                         uint32_t backend_id, FlowState state, uint32_t age_s, cs::Entry* e) {
  const dataplane::Service* svc = ServiceAtSlot(snap, key.service);
  const int32_t pos = svc == nullptr ? -1 : svc->PositionOf(backend_id);
  if (pos < 0) return false;
  KeyAddrs(key, &e->client, &e->vip);
  e->cport = ntohs(key.sport);
  e->vport = ntohs(key.dport);
  e->proto = key.proto;
  e->backend = ToWire(svc->backends[static_cast<size_t>(pos)].addr);
  e->bport = 0;
  e->state = state == FlowState::kClosing ? FlowState::kClosing : FlowState::kEstablished;
  e->age_s = age_s;
  // The entry's version: how long ago the sender last saw this assignment in use (its last
  // packet on the sender, or for a relayed copy, when the owner last reported it). A bulk
  // copy keeps the most recently confirmed assignment of a flow.
  e->assigned_age_s = age_s;
  return cs::CheckEntry(*e) == cs::BodyError::kOk;
}

void SyncEngine::Add(const dataplane::Snapshot& snap, const FlowKey& key, uint32_t backend_id,
                     FlowState state, uint32_t age_s) {
  cs::Entry e;
  if (!ToEntry(snap, key, backend_id, state, age_s, &e)) {
    ++stats_.unsendable;
    return;
  }
  const size_t size = cs::EncodedSize(e);
  if (pending_bytes_ + size > cs::kMaxBodyBytes - cs::kBodyHeaderBytes ||
      pending_.size() == cs::kMaxEntriesPerBody) {
    Flush();
  }
  pending_.push_back(e);
  pending_bytes_ += size;
}

bool SyncEngine::SealPending(const cs::Header& h) {
  body_.clear();
  const size_t n = cs::EncodeEntries(pending_, cs::kMaxBodyBytes, &body_);
  datagram_.clear();
  return n == pending_.size() && sync::Seal(h, body_, keys_, &datagram_).ok();
}

void SyncEngine::Flush() {
  const uint64_t now_ms = clock_.now_ms();
  const bool heartbeat = pending_.empty() && now_ms >= last_sent_ms_ + kHeartbeatMs;
  if (pending_.empty() && !heartbeat) return;
  cs::Header h;
  h.type = cs::MessageType::kEntries;
  h.sender_id = sender_id_;
  h.epoch = settings_.epoch;
  h.seq = ++seq_;
  if (SealPending(h)) {
    stats_.entries_sent += pending_.size();
    if (heartbeat) ++stats_.heartbeats_sent;
    last_sent_ms_ = now_ms;
    SendToPeers();
  } else {
    ++stats_.send_errors;
  }
  pending_.clear();
  pending_bytes_ = 0;
}

void SyncEngine::SendToPeers() {
  for (const IpAddr& peer : settings_.peers) {
    if (send_(peer, datagram_)) {
      ++stats_.messages_sent;
      stats_.bytes_sent += datagram_.size();
    } else {
      ++stats_.send_errors;
    }
  }
}

void SyncEngine::SendBeacon(uint64_t now_ms) {
  if (!beacon_ || now_ms < last_beacon_ms_ + kHeartbeatMs) return;
  last_beacon_ms_ = now_ms;
  cs::Header h;
  h.type = cs::MessageType::kFleet;
  h.sender_id = sender_id_;
  h.epoch = settings_.epoch;
  h.seq = ++seq_;
  body_.clear();
  cs::EncodeFleetBeacon(*beacon_, &body_);
  datagram_.clear();
  if (!sync::Seal(h, body_, keys_, &datagram_).ok()) {
    ++stats_.send_errors;
    return;
  }
  ++stats_.beacons_sent;
  SendToPeers();
}

std::vector<SyncEngine::PeerBeacon> SyncEngine::FleetBeacons(uint64_t now_ms,
                                                             uint64_t max_age_ms) const {
  std::vector<PeerBeacon> out;
  for (size_t i = 0; i < peer_beacons_.size(); ++i) {
    const auto& b = peer_beacons_[i];
    if (!b || now_ms - b->at_ms > max_age_ms) continue;
    out.push_back({settings_.peers[i], b->beacon, now_ms - b->at_ms});
  }
  return out;
}

void SyncEngine::Tick(const dataplane::Snapshot& snap) {
  const uint32_t now = clock_.now_s();
  const uint64_t ticks = clock_.ticks();
  const uint64_t ticks_per_ms = std::max<uint64_t>(1, clock_.ticks_per_second / 1000);
  uint64_t oldest_ms = 0;
  // 1. What the workers queued.
  for (Worker& w : workers_) {
    if (w.ring == nullptr) continue;
    for (size_t n; (n = w.ring->Pop(events_)) != 0;) {
      stats_.events += n;
      for (size_t i = 0; i < n; ++i) {
        const dataplane::SyncEvent& ev = events_[i];
        const uint64_t wait_ms = ticks > ev.ticks ? (ticks - ev.ticks) / ticks_per_ms : 0;
        oldest_ms = std::max(oldest_ms, wait_ms);
        ++stats_.lag_histogram[std::min<uint64_t>(wait_ms, stats_.lag_histogram.size() - 1)];
        Add(snap, ev.key, ev.backend_id, ev.state, now - ev.time_s);
      }
      if (n < events_.size()) break;
    }
  }
  stats_.lag_ms = oldest_ms;
  stats_.lag_max_ms = std::max(stats_.lag_max_ms, oldest_ms);
  // 2. Refresh: the whole of every table once per refresh_s, a slice per tick; flows active
  // within the period (their peers' copies are older than what this host knows).
  const uint64_t ticks_per_walk = std::max<uint64_t>(1, uint64_t{settings_.refresh_s} * 1000 /
                                                            std::max<uint64_t>(1, settings_.tick_ms));
  const uint64_t phase = refresh_ticks_++ % ticks_per_walk;
  for (size_t wi = 0; wi < workers_.size(); ++wi) {
    const conntrack::Table* t = workers_[wi].table;
    if (t == nullptr) continue;
    // This tick's share: buckets up to (phase + 1) / ticks_per_walk of the table.
    const size_t begin = phase == 0 ? 0 : refresh_cursor_[wi];
    const size_t end = static_cast<size_t>((phase + 1) * t->bucket_count() / ticks_per_walk);
    if (end <= begin) continue;
    refresh_cursor_[wi] = end;
    t->ForEachIn(begin, end - begin, [&](const auto& f) {
      const uint32_t age = now - f.last_seen;
      if ((f.state == FlowState::kEstablished || f.state == FlowState::kClosing) &&
          age < settings_.refresh_s && age <= t->timeouts().For(f.key.proto == inet::ip_proto::kTcp,
                                                                 f.state)) {
        ++stats_.refreshed;
        Add(snap, f.key, f.backend_id, f.state, age);
      }
      return true;
    });
  }
  Flush();
  SendBeacon(clock_.now_ms());
  // 3. The peer table's own expiry: the whole table about every 10 s.
  if (peer_ != nullptr) {
    const size_t budget = std::max<size_t>(
        64, peer_->bucket_count() * std::max<uint64_t>(1, settings_.tick_ms) / 10000);
    peer_->ExpireSome(now, budget);
    stats_.peer_entries = peer_->Count();
  }
}

size_t SyncEngine::PeerIndex(const IpAddr& from) const {
  for (size_t i = 0; i < settings_.peers.size(); ++i) {
    if (settings_.peers[i] == from) return i;
  }
  return settings_.peers.size();
}

void SyncEngine::Heard(size_t peer) {
  const uint64_t now_ms = clock_.now_ms();
  const uint64_t last = last_heard_ms_[peer];
  if (last != 0 && now_ms > last + kPeerSilentMs) {
    ++stats_.peer_heals;
    if (std::find(healed_.begin(), healed_.end(), peer) == healed_.end()) healed_.push_back(peer);
  }
  last_heard_ms_[peer] = std::max<uint64_t>(now_ms, 1);
}

std::vector<size_t> SyncEngine::TakeHealedPeers() { return std::exchange(healed_, {}); }

bool SyncEngine::PeerAlive(size_t peer, uint64_t now_ms) const {
  return peer < last_heard_ms_.size() && last_heard_ms_[peer] != 0 &&
         now_ms <= last_heard_ms_[peer] + kPeerSilentMs;
}

uint64_t SyncEngine::SilentPeers(uint64_t now_ms) const {
  uint64_t out = 0;
  for (size_t i = 0; i < last_heard_ms_.size() && i < 64; ++i) {
    if (last_heard_ms_[i] != 0 && !PeerAlive(i, now_ms)) out |= uint64_t{1} << i;
  }
  return out;
}

namespace {
// The open errors as reject reasons.
SyncReject RejectOf(sync::OpenError e) {
  switch (e) {
    case sync::OpenError::kTruncated:
      return SyncReject::truncated;
    case sync::OpenError::kOversized:
      return SyncReject::oversized;
    case sync::OpenError::kUnknownKey:
      return SyncReject::unknown_key;
    case sync::OpenError::kForged:
      return SyncReject::forged;
    case sync::OpenError::kOk:
    case sync::OpenError::kBadHeader:
      break;
  }
  return SyncReject::bad_header;
}

SyncReject RejectOf(sync::ReplayWindow::Verdict v) {
  switch (v) {
    case sync::ReplayWindow::Verdict::kReplayed:
      return SyncReject::replayed;
    case sync::ReplayWindow::Verdict::kTooOld:
      return SyncReject::too_old;
    case sync::ReplayWindow::Verdict::kOldEpoch:
    case sync::ReplayWindow::Verdict::kAccept:
      break;
  }
  return SyncReject::old_epoch;
}
}  // namespace

void SyncEngine::Receive(const IpAddr& from, std::span<const uint8_t> datagram,
                         const dataplane::Snapshot& snap) {
  ++stats_.messages_received;
  const size_t peer = PeerIndex(from);
  if (peer == settings_.peers.size()) return Reject(SyncReject::not_peer);
  cs::Header h;
  if (const sync::OpenError oe = sync::Open(datagram, keys_, &h, &plain_);
      oe != sync::OpenError::kOk) {
    return Reject(RejectOf(oe));
  }
  if (!from.is_v4() || h.sender_id != from.v4_host()) return Reject(SyncReject::wrong_sender);
  sync::ReplayWindow& window = windows_[peer];
  if (const auto v = window.Check(h.epoch, h.seq); v != sync::ReplayWindow::Verdict::kAccept) {
    return Reject(RejectOf(v));
  }
  if (h.type == cs::MessageType::kFleet) {
    cs::FleetBeacon b;
    if (cs::DecodeFleetBeacon(plain_, &b) != cs::BodyError::kOk) return Reject(SyncReject::malformed);
    window.Accept(h.epoch, h.seq);
    ++stats_.messages_accepted;
    ++stats_.beacons_received;
    Heard(peer);
    peer_beacons_[peer] = HeardBeacon{b, clock_.now_ms()};
    return;
  }
  if (h.type != cs::MessageType::kEntries) return Reject(SyncReject::bad_header);
  received_.clear();
  if (cs::DecodeEntries(plain_, &received_) != cs::BodyError::kOk) {
    return Reject(SyncReject::malformed);
  }
  window.Accept(h.epoch, h.seq);
  ++stats_.messages_accepted;
  Heard(peer);
  for (const cs::Entry& e : received_) ApplyEntry(e, snap, false);
}

void SyncEngine::ApplyEntry(const cs::Entry& e, const dataplane::Snapshot& snap, bool bulk) {
  if (peer_ == nullptr) return;
  const uint32_t now = clock_.now_s();
  const conntrack::Timeouts& to = peer_->timeouts();
  const dataplane::Service* svc = snap.Find(FromWire(e.vip), e.vport, e.proto);
  if (svc == nullptr) return Reject(SyncReject::unknown_service);
  // The backend by identity; only one this host is serving with (a failed backend is not
  // in the snapshot's list: the flow would be re-picked anyway).
  const IpAddr backend = FromWire(e.backend);
  const dataplane::BackendEntry* be = nullptr;
  for (const auto& b : svc->backends) {
    if (b.addr == backend) be = &b;
  }
  if (be == nullptr) return Reject(SyncReject::unknown_backend);
  const bool tcp = e.proto == inet::ip_proto::kTcp;
  const uint32_t live_for = to.For(tcp, FlowState::kSynced);
  // A closing flow lives on only for the closing timeout: date it back so that its synced
  // entry (established timeout) expires then.
  uint32_t age = e.age_s;
  if (e.state == FlowState::kClosing && tcp) {
    const uint32_t closing = to.For(true, FlowState::kClosing);
    if (age > closing) return Reject(SyncReject::expired);
    age += live_for > closing ? live_for - closing : 0;
  }
  if (age > live_for) return Reject(SyncReject::expired);
  FlowKey key;
  const uint16_t sport_be = htons(e.cport), dport_be = htons(e.vport);
  const uint16_t slot = static_cast<uint16_t>(svc->counter_slot);
  if (e.vip.family == 4) {
    uint32_t src, dst;
    std::memcpy(&src, e.client.bytes.data(), 4);
    std::memcpy(&dst, e.vip.bytes.data(), 4);
    key = FlowKey::V4(src, dst, sport_be, dport_be, e.proto, slot);
  } else {
    key = FlowKey::V6(std::span<const uint8_t, 16>(e.client.bytes.data(), 16),
                      std::span<const uint8_t, 16>(e.vip.bytes.data(), 16), sport_be, dport_be,
                      e.proto, slot);
  }
  const auto held = peer_->Peek(key);
  const bool held_live = held && held->state == FlowState::kSynced &&
                         now - held->last_seen <= live_for;
  if (bulk && held_live && held->backend_id != be->id &&
      static_cast<int32_t>(held->last_seen - (now - e.assigned_age_s)) > 0) {
    // Newest wins: a copy this host holds that was confirmed more recently (its last-seen
    // time is later than this entry's) for another backend stays.
    return Reject(SyncReject::superseded);
  }
  if (held_live && held->backend_id == be->id && e.state != FlowState::kClosing &&
      static_cast<int32_t>(held->last_seen - (now - age)) >= 0) {
    // The same assignment, already known as recent or more (a late refresh, datagrams out of
    // order): keep the later last-seen time. (A closing copy shortens the flow's life: it
    // always applies.)
    ++stats_.entries_applied;
    return;
  }
  const conntrack::InsertResult r = peer_->InsertSynced(key, be->id, now, now - age);
  if (r == conntrack::InsertResult::kFull || r == conntrack::InsertResult::kInvalidKey) {
    Reject(SyncReject::table_full);
  } else {
    ++stats_.entries_applied;
  }
}

// ---- Bulk sync ----

namespace {
constexpr unsigned kChunkIndexBits = 24;
uint64_t BulkSeq(uint64_t req_seq, uint32_t index) {
  return (req_seq << kChunkIndexBits) | (index & ((1u << kChunkIndexBits) - 1));
}
}  // namespace

void SyncEngine::MakeBulkRequest(size_t peer, BulkFetch* fetch, std::vector<uint8_t>* out) {
  *fetch = BulkFetch{};
  fetch->peer = peer;
  fetch->epoch = settings_.epoch;
  // Requests share the datagrams' sequence (one counter per epoch), kept below 2^40 so that
  // the answer's seq (request seq << 24 | index) fits.
  fetch->seq = ++seq_;
  cs::Header h;
  h.type = cs::MessageType::kBulkRequest;
  h.sender_id = sender_id_;
  h.epoch = settings_.epoch;
  h.seq = fetch->seq;
  pending_.clear();
  pending_bytes_ = 0;
  out->clear();
  if (SealPending(h)) *out = datagram_;
}

std::optional<SyncReject> SyncEngine::OpenBulkRequest(const IpAddr& from,
                                                      std::span<const uint8_t> msg,
                                                      BulkCursor* cursor) {
  auto refuse = [this](SyncReject r) {
    Reject(r);
    return std::optional<SyncReject>(r);
  };
  const size_t peer = PeerIndex(from);
  if (peer == settings_.peers.size()) return refuse(SyncReject::not_peer);
  cs::Header h;
  if (const sync::OpenError oe = sync::Open(msg, keys_, &h, &plain_); oe != sync::OpenError::kOk) {
    return refuse(RejectOf(oe));
  }
  if (!from.is_v4() || h.sender_id != from.v4_host()) return refuse(SyncReject::wrong_sender);
  if (h.type != cs::MessageType::kBulkRequest || h.seq >= (uint64_t{1} << (64 - kChunkIndexBits))) {
    return refuse(SyncReject::bad_bulk);
  }
  sync::ReplayWindow& window = bulk_windows_[peer];
  if (const auto v = window.Check(h.epoch, h.seq); v != sync::ReplayWindow::Verdict::kAccept) {
    return refuse(RejectOf(v));
  }
  received_.clear();
  if (cs::DecodeEntries(plain_, &received_) != cs::BodyError::kOk || !received_.empty()) {
    return refuse(SyncReject::malformed);
  }
  window.Accept(h.epoch, h.seq);
  *cursor = BulkCursor{};
  cursor->peer = peer;
  cursor->req_epoch = h.epoch;
  cursor->req_seq = h.seq;
  return std::nullopt;
}

bool SyncEngine::NextBulkMessage(BulkCursor* c, const dataplane::Snapshot& snap,
                                 std::vector<uint8_t>* out) {
  if (c->ended) return false;
  const uint32_t now = clock_.now_s();
  pending_.clear();
  pending_bytes_ = 0;
  const size_t sources = workers_.size() + 1;
  // Whole buckets (at most kSlotsPerBucket entries each) while one more surely fits.
  constexpr size_t kSlots = conntrack::Table::kSlotsPerBucket;
  while (c->source < sources && pending_.size() + kSlots <= cs::kMaxEntriesPerBody &&
         pending_bytes_ + kSlots * cs::kEntryBytesV6 <= cs::kMaxBodyBytes - cs::kBodyHeaderBytes) {
    const conntrack::Table* t =
        c->source < workers_.size() ? workers_[c->source].table : static_cast<const conntrack::Table*>(peer_);
    if (t == nullptr || c->bucket >= t->bucket_count()) {
      ++c->source;
      c->bucket = 0;
      continue;
    }
    const bool relayed = c->source == workers_.size();
    c->bucket = t->ForEachIn(c->bucket, 1, [&](const conntrack::FlowSnapshot& f) {
      const uint32_t age = now - f.last_seen;
      const bool tcp = f.key.proto == inet::ip_proto::kTcp;
      const bool wanted = relayed ? f.state == FlowState::kSynced
                                  : (f.state == FlowState::kEstablished ||
                                     f.state == FlowState::kClosing);
      if (!wanted || age > t->timeouts().For(tcp, f.state)) return true;
      cs::Entry e;
      if (ToEntry(snap, f.key, f.backend_id, f.state, age, &e)) {
        pending_bytes_ += cs::EncodedSize(e);
        pending_.push_back(e);
      } else {
        ++stats_.unsendable;
      }
      return true;
    });
    if (c->bucket == 0) {  // that table's end
      ++c->source;
    }
  }
  cs::Header h;
  h.sender_id = sender_id_;
  h.epoch = c->req_epoch;
  h.seq = BulkSeq(c->req_seq, c->chunk);
  if (pending_.empty() && c->source >= sources) {
    h.type = cs::MessageType::kBulkEnd;
    c->ended = true;
    ++stats_.bulk_requests_served;
  } else {
    h.type = cs::MessageType::kBulkChunk;
  }
  ++c->chunk;
  c->entries += pending_.size();
  stats_.bulk_entries_sent += pending_.size();
  const bool ok = SealPending(h);
  pending_.clear();
  pending_bytes_ = 0;
  if (!ok) {
    ++stats_.send_errors;
    c->ended = true;
    return false;
  }
  out->insert(out->end(), datagram_.begin(), datagram_.end());
  return true;
}

BulkStep SyncEngine::ReceiveBulkMessage(BulkFetch* fetch, std::span<const uint8_t> msg,
                                        const dataplane::Snapshot& snap) {
  if (fetch->done) {
    Reject(SyncReject::bad_bulk);
    return BulkStep::kRefused;
  }
  cs::Header h;
  if (const sync::OpenError oe = sync::Open(msg, keys_, &h, &plain_); oe != sync::OpenError::kOk) {
    Reject(RejectOf(oe));
    return BulkStep::kRefused;
  }
  const IpAddr& peer = settings_.peers[fetch->peer];
  if (!peer.is_v4() || h.sender_id != peer.v4_host()) {
    Reject(SyncReject::wrong_sender);
    return BulkStep::kRefused;
  }
  if ((h.type != cs::MessageType::kBulkChunk && h.type != cs::MessageType::kBulkEnd) ||
      h.epoch != fetch->epoch || h.seq != BulkSeq(fetch->seq, fetch->next_chunk)) {
    Reject(SyncReject::bad_bulk);
    return BulkStep::kRefused;
  }
  received_.clear();
  if (cs::DecodeEntries(plain_, &received_) != cs::BodyError::kOk) {
    Reject(SyncReject::malformed);
    return BulkStep::kRefused;
  }
  ++fetch->next_chunk;
  fetch->entries += received_.size();
  stats_.bulk_entries_received += received_.size();
  Heard(fetch->peer);
  for (const cs::Entry& e : received_) ApplyEntry(e, snap, true);
  if (h.type == cs::MessageType::kBulkEnd) {
    fetch->done = true;
    ++stats_.bulk_fetches_done;
    return BulkStep::kDone;
  }
  return BulkStep::kMore;
}

SyncView SyncEngine::View(uint16_t port) const {
  SyncView v;
  for (const IpAddr& p : settings_.peers) v.peers.push_back(p.ToString());
  v.port = port;
  for (unsigned id = 0; id < 256; ++id) {
    if (keys_.Find(static_cast<uint8_t>(id)) != nullptr) v.key_ids.push_back(id);
  }
  if (const sync::Key* k = keys_.send_key()) v.send_key_id = k->id;
  const SyncStats& s = stats_;
  v.events = s.events;
  v.refreshed = s.refreshed;
  v.unsendable = s.unsendable;
  v.entries_sent = s.entries_sent;
  v.messages_sent = s.messages_sent;
  v.bytes_sent = s.bytes_sent;
  v.send_errors = s.send_errors;
  v.messages_received = s.messages_received;
  v.messages_accepted = s.messages_accepted;
  v.entries_applied = s.entries_applied;
  for (size_t i = 0; i < kSyncRejects; ++i) {
    v.rejected.emplace_back(SyncRejectName(static_cast<SyncReject>(i)), s.rejected[i]);
  }
  v.peer_entries = peer_ != nullptr ? peer_->Count() : 0;
  v.peer_capacity = peer_ != nullptr ? peer_->capacity() : 0;
  v.lag_ms = s.lag_ms;
  v.lag_max_ms = s.lag_max_ms;
  v.lag_p50_ms = s.LagPercentileMs(0.5);
  v.lag_p99_ms = s.LagPercentileMs(0.99);
  const uint64_t now_ms = clock_.now_ms();
  for (size_t i = 0; i < settings_.peers.size(); ++i) {
    if (PeerAlive(i, now_ms)) v.peers_alive.push_back(settings_.peers[i].ToString());
  }
  v.heartbeats_sent = s.heartbeats_sent;
  v.peer_heals = s.peer_heals;
  v.bulk_served = s.bulk_requests_served;
  v.bulk_entries_sent = s.bulk_entries_sent;
  v.bulk_fetched = s.bulk_fetches_done;
  v.bulk_entries_received = s.bulk_entries_received;
  return v;
}

// ---- SyncSocket ----

absl::StatusOr<std::unique_ptr<SyncSocket>> SyncSocket::Open(const IpAddr& local, uint16_t port) {
  if (!local.is_v4()) return absl::InvalidArgumentError("sync: host.address must be IPv4");
  const int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return absl::InternalError(absl::StrCat("sync: socket: ", std::strerror(errno)));
  // A deep receive queue: a peer's burst (100k flows/s is ~2,100 datagrams/s) must outlast a
  // long step of the control thread (a large config apply). SO_RCVBUFFORCE (root) goes past
  // net.core.rmem_max; otherwise the kernel clips SO_RCVBUF to it.
  const int rcvbuf = 8 << 20;
  if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0) {
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  }
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  std::memcpy(&a.sin_addr, local.bytes.data(), 4);
  if (bind(fd, reinterpret_cast<const sockaddr*>(&a), sizeof(a)) != 0) {
    const int err = errno;
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("sync: cannot bind UDP ", local.ToString(), ":", port, ": ",
                     std::strerror(err), " (is another ecmplb running, or sync.port in use?)"));
  }
  return std::unique_ptr<SyncSocket>(new SyncSocket(fd, port));
}

SyncSocket::~SyncSocket() {
  if (fd_ >= 0) close(fd_);
}

bool SyncSocket::Send(const IpAddr& peer, std::span<const uint8_t> datagram) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port_);
  std::memcpy(&a.sin_addr, peer.bytes.data(), 4);
  return sendto(fd_, datagram.data(), datagram.size(), MSG_DONTWAIT,
                reinterpret_cast<const sockaddr*>(&a), sizeof(a)) ==
         static_cast<ssize_t>(datagram.size());
}

size_t SyncSocket::ReceiveAll(
    size_t max, const std::function<void(const IpAddr&, std::span<const uint8_t>)>& fn) {
  // One byte more than a sealed message may have: a longer datagram is seen as oversized.
  uint8_t buf[cs::kMaxDatagram + 1];
  size_t n = 0;
  for (; n < max; ++n) {
    sockaddr_in from{};
    socklen_t len = sizeof(from);
    const ssize_t got = recvfrom(fd_, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC,
                                 reinterpret_cast<sockaddr*>(&from), &len);
    if (got < 0) break;
    const IpAddr src = IpAddr::V4FromBytes(reinterpret_cast<const uint8_t*>(&from.sin_addr));
    fn(src, std::span<const uint8_t>(buf, std::min<size_t>(static_cast<size_t>(got), sizeof(buf))));
  }
  return n;
}

}  // namespace ecmplb::control
