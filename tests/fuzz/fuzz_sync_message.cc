// fuzz_sync_message: libFuzzer target for what flow sync receives from its peers
// (conntrack/sync_message.h, control/sync_wire.h, control/sync_engine.h).
//
// Input: arbitrary bytes, used three ways.
//   1. As a clear message, header + body: when DecodeHeader accepts the first 28 bytes, they
//      encode again to the same bytes, and the rest goes through the body checks below.
//   2. As a datagram and as bulk messages from the configured peer, unsealed: SyncEngine's
//      Receive (and once from an address that is not a peer), OpenBulkRequest, and
//      ReceiveBulkMessage for a fetch from MakeBulkRequest. Random bytes almost never pass the
//      tag, so this mostly reaches the size, header, key and tag checks.
//   3. As a plaintext body (its first kMaxBodyBytes), sealed with the peer's key (the fuzzer
//      knows it): as an entries datagram with the peer's next seq (then the same datagram
//      again: a replay), as the first chunk of the answer to a bulk request (then an empty
//      end marker), and as a bulk request (when accepted, the whole answer is produced and
//      every message of it opens and decodes). This reaches the decoder and the apply path
//      behind the authentication.
// Body checks: DecodeEntries is all or nothing (a sentinel entry already in the output stays,
// nothing is added on error); every decoded entry passes CheckEntry; the entries' sizes add up
// to the body; EncodeEntries gives back the same bytes (bodies up to kMaxBodyBytes; a longer
// one, which no sealed message can carry, encodes to its leading entries that fit) and, one
// byte short, the same body without its last entry.
// Engine checks, per call (stats deltas): a datagram given to Receive is counted once, and is
// either accepted or refused for exactly one reason; an accepted one's entries are each
// applied or refused for exactly one reason; a refused bulk call counts exactly one reason
// and applies nothing; a sealed body is accepted exactly when it decodes (else "malformed"),
// and its second delivery is "replayed"; when all of a message's entries were applied, the
// peer table holds each flow (the last entry of a flow wins) as a synced entry of that
// backend; the peer table never holds more entries than its slots; a bulk answer ends.
//
// One engine per process, built once (static), with a fake clock that advances one second
// per input and a Tick every 32 inputs (peer-table expiry, heartbeats): the peer table and the
// replay windows carry over from input to input, so a crash may need the inputs before it.
// The peer table is small (capacity 64: 16 buckets, 80 slots) so that it fills up.
#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "conntrack/conntrack.h"
#include "conntrack/sync_message.h"
#include "control/config.h"
#include "control/snapshot_builder.h"
#include "control/sync_engine.h"
#include "control/sync_wire.h"

namespace {

using namespace ecmplb;
namespace cs = conntrack::sync;
using control::SyncEngine;
using control::SyncReject;
using dataplane::IpAddr;

constexpr char kConfig[] = R"({
  "host": {"address": "10.0.0.11", "prefix_length": 24, "gateway": "10.0.0.1"},
  "conntrack": {"capacity": 1024},
  "services": [
    {"vip": "10.100.0.1", "port": 80, "protocol": "tcp", "forward": "dr", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "10.0.0.22"},
                  {"id": 3, "address": "10.0.0.23", "weight": 0}]},
    {"vip": "10.100.0.1", "port": 53, "protocol": "udp", "forward": "gre", "table_size": 251,
     "backends": [{"id": 1, "address": "10.0.0.21"}, {"id": 2, "address": "192.168.7.22"}]},
    {"vip": "2001:db8::1", "port": 443, "protocol": "tcp", "forward": "dr", "table_size": 251,
     "backends": [{"id": 1, "address": "2001:db8::21"}, {"id": 2, "address": "2001:db8::22"}]}
  ]})";

// Both hosts load the same keys (tests/control/sync_engine_test.cc's): the send key is 1.
constexpr char kKeys[] =
    "1 000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n"
    "2 202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f\n";

const IpAddr kLocal = IpAddr::V4(0x0a00000b);     // 10.0.0.11: this host
const IpAddr kPeer = IpAddr::V4(0x0a00000c);      // 10.0.0.12: its one peer
const IpAddr kStranger = IpAddr::V4(0x0a000063);  // 10.0.0.99: not a peer
constexpr uint64_t kEpoch = 100;                  // this host's
constexpr uint64_t kPeerEpoch = 200;              // the peer's
constexpr size_t kPeerCapacity = 64;
constexpr unsigned kChunkIndexBits = 24;  // sync_engine.cc: answer seq = req seq << 24 | index

[[noreturn]] void Fail(const char* what) {
  std::fprintf(stderr, "fuzz_sync_message: invariant violated: %s\n", what);
  std::abort();
}

// Datagram-level refusals (Receive counts exactly one of these, or accepts) and entry-level
// ones (each entry of an accepted message is applied or counts exactly one of these).
constexpr SyncReject kMessageRejects[] = {
    SyncReject::not_peer,     SyncReject::truncated,   SyncReject::oversized,
    SyncReject::bad_header,   SyncReject::unknown_key, SyncReject::forged,
    SyncReject::wrong_sender, SyncReject::replayed,    SyncReject::too_old,
    SyncReject::old_epoch,    SyncReject::malformed};
constexpr SyncReject kEntryRejects[] = {SyncReject::unknown_service, SyncReject::unknown_backend,
                                        SyncReject::expired, SyncReject::table_full,
                                        SyncReject::superseded};

struct Counts {
  uint64_t received = 0, accepted = 0, applied = 0, bulk_received = 0, bulk_done = 0;
  std::array<uint64_t, control::kSyncRejects> rejected{};
  uint64_t Rejected(SyncReject r) const { return rejected[static_cast<size_t>(r)]; }
};

Counts CountsOf(const SyncEngine& e) {
  const control::SyncStats& s = e.stats();
  return {s.messages_received,     s.messages_accepted, s.entries_applied,
          s.bulk_entries_received, s.bulk_fetches_done, s.rejected};
}

uint64_t Delta(const Counts& a, const Counts& b, std::span<const SyncReject> which) {
  uint64_t n = 0;
  for (SyncReject r : which) n += b.Rejected(r) - a.Rejected(r);
  return n;
}
uint64_t AllRejects(const Counts& a, const Counts& b) {
  uint64_t n = 0;
  for (size_t i = 0; i < control::kSyncRejects; ++i) n += b.rejected[i] - a.rejected[i];
  return n;
}

struct Fixed {
  std::unique_ptr<const dataplane::Snapshot> snap;
  std::unique_ptr<conntrack::Table> peer_table;
  std::unique_ptr<SyncEngine> engine;
  control::sync::Keyring peer_keys;  // what the peer seals with
  uint32_t now_s = 1000;
  uint64_t now_ms = 1'000'000;
  uint64_t peer_seq = 0;  // the peer's sequence in kPeerEpoch (datagrams and bulk requests)
  uint64_t inputs = 0;
  size_t max_count = 0;  // most entries the peer table held (reported at exit)
};

Fixed& Get() {
  static Fixed* fixed = [] {
    auto* f = new Fixed;
    auto config = control::ParseConfig(kConfig);
    if (!config.ok()) {
      std::fprintf(stderr, "%s\n", config.status().ToString().c_str());
      Fail("fixed config does not parse");
    }
    control::SnapshotBuilder builder(dataplane::MacAddr{{0x02, 0, 0, 0, 0, 0x01}});
    auto snap = builder.Build(*config);
    if (!snap.ok()) {
      std::fprintf(stderr, "%s\n", snap.status().ToString().c_str());
      Fail("fixed snapshot does not build");
    }
    f->snap = std::move(*snap);
    conntrack::Options o;
    o.capacity = kPeerCapacity;
    auto table = conntrack::Table::Create(o);
    if (!table.ok()) Fail("peer table");
    f->peer_table = std::move(*table);
    auto keys = control::sync::ParseKeyText(kKeys);
    auto peer_keys = control::sync::ParseKeyText(kKeys);
    if (!keys.ok() || !peer_keys.ok()) Fail("fixed keys do not parse");
    f->peer_keys = std::move(*peer_keys);
    SyncEngine::Settings s;
    s.local = kLocal;
    s.peers = {kPeer};
    s.refresh_s = 30;
    s.epoch = kEpoch;
    SyncEngine::Clock clock{[f] { return f->now_s; },
                            [f] { return uint64_t{f->now_s} * 1'000'000'000; }, 1'000'000'000,
                            [f] { return f->now_ms; }};
    f->engine = std::make_unique<SyncEngine>(
        s, std::move(*keys), std::vector<SyncEngine::Worker>{}, f->peer_table.get(), clock,
        [](const IpAddr&, std::span<const uint8_t>) { return true; });
    std::atexit([] {
      const Fixed& g = Get();
      std::fprintf(stderr,
                   "fuzz_sync_message: %lu inputs, %lu entries applied, %lu refused for want of "
                   "room; the peer table held at most %zu entries (capacity %zu, %zu slots)\n",
                   static_cast<unsigned long>(g.inputs),
                   static_cast<unsigned long>(g.engine->stats().entries_applied),
                   static_cast<unsigned long>(
                       g.engine->stats().rejected[static_cast<size_t>(SyncReject::table_full)]),
                   g.max_count, g.peer_table->capacity(),
                   g.peer_table->bucket_count() * conntrack::Table::kSlotsPerBucket);
    });
    return f;
  }();
  return *fixed;
}

// ---- 1. The codec on its own ----

// Decodes `body` (into *entries, cleared) and checks the codec's promises; returns the result.
cs::BodyError CheckBody(std::span<const uint8_t> body, std::vector<cs::Entry>* entries) {
  static const cs::Entry kSentinel = [] {
    cs::Entry e;
    e.vip.family = e.client.family = e.backend.family = 4;
    e.vip.bytes[0] = e.client.bytes[0] = e.backend.bytes[0] = 1;
    e.vport = e.cport = 1;
    e.proto = 6;
    return e;
  }();
  entries->assign(1, kSentinel);
  const cs::BodyError err = cs::DecodeEntries(body, entries);
  if (entries->empty() || !((*entries)[0] == kSentinel)) Fail("DecodeEntries lost what out held");
  if (err != cs::BodyError::kOk) {
    if (entries->size() != 1) Fail("DecodeEntries refused a body but added entries");
    entries->clear();
    return err;
  }
  entries->erase(entries->begin());
  if (entries->size() > cs::kMaxEntriesPerBody) Fail("more entries than a body may count");
  size_t bytes = cs::kBodyHeaderBytes;
  for (const cs::Entry& e : *entries) {
    if (cs::CheckEntry(e) != cs::BodyError::kOk) Fail("a decoded entry fails CheckEntry");
    bytes += cs::EncodedSize(e);
  }
  if (bytes != body.size()) Fail("decoded entries' sizes do not add up to the body");
  std::vector<uint8_t> again;
  const size_t n = cs::EncodeEntries(*entries, cs::kMaxBodyBytes, &again);
  if (body.size() <= cs::kMaxBodyBytes) {
    if (n != entries->size()) Fail("EncodeEntries did not take every decoded entry");
    if (again.size() != body.size() || !std::equal(again.begin(), again.end(), body.begin())) {
      Fail("decode then encode changed the body");
    }
  } else {
    // Longer than a sealed message can carry: the leading entries that fit.
    if (n >= entries->size() || again.size() > cs::kMaxBodyBytes) {
      Fail("EncodeEntries went past kMaxBodyBytes");
    }
    std::vector<cs::Entry> prefix;
    if (cs::DecodeEntries(again, &prefix) != cs::BodyError::kOk || prefix.size() != n ||
        !std::equal(prefix.begin(), prefix.end(), entries->begin())) {
      Fail("EncodeEntries' prefix does not decode to the leading entries");
    }
    return err;
  }
  if (!entries->empty()) {
    // One byte short: the same body without its last entry.
    std::vector<uint8_t> shorter;
    const size_t m = cs::EncodeEntries(*entries, body.size() - 1, &shorter);
    const size_t want = body.size() - cs::EncodedSize(entries->back());
    if (m != entries->size() - 1 || shorter.size() != want ||
        ((shorter[0] << 8) | shorter[1]) != static_cast<int>(m) ||
        !std::equal(shorter.begin() + cs::kBodyHeaderBytes, shorter.end(),
                    body.begin() + cs::kBodyHeaderBytes)) {
      Fail("EncodeEntries one byte short is not the body without its last entry");
    }
  }
  return err;
}

void CheckClearMessage(std::span<const uint8_t> in, std::vector<cs::Entry>* entries) {
  cs::Header h;
  if (cs::DecodeHeader(in, &h) != cs::HeaderError::kOk) return;
  std::array<uint8_t, cs::kHeaderBytes> again;
  cs::EncodeHeader(h, again);
  if (!std::equal(again.begin(), again.end(), in.begin()))
    Fail("header changed across decode/encode");
  CheckBody(in.subspan(cs::kHeaderBytes), entries);
}

// ---- 2. and 3. The engine ----

// After Receive: counted once; accepted or refused for one reason; an accepted message's
// `n` entries (n < 0: unknown) each applied or refused once, nothing applied otherwise.
// Returns whether it was accepted.
bool CheckReceived(const Counts& a, const Counts& b, long n) {
  if (b.received != a.received + 1) Fail("Receive did not count the datagram once");
  const uint64_t accepted = b.accepted - a.accepted;
  if (accepted + Delta(a, b, kMessageRejects) != 1) {
    Fail("a datagram is not accepted or refused for exactly one reason");
  }
  if (b.Rejected(SyncReject::bad_bulk) != a.Rejected(SyncReject::bad_bulk) ||
      b.Rejected(SyncReject::superseded) != a.Rejected(SyncReject::superseded)) {
    Fail("Receive counted a bulk refusal");
  }
  const uint64_t entries = (b.applied - a.applied) + Delta(a, b, kEntryRejects);
  if (accepted == 0 && entries != 0) Fail("a refused datagram applied or refused entries");
  if (accepted == 1 && n >= 0 && entries != static_cast<uint64_t>(n)) {
    Fail("an accepted datagram's entries are not each applied or refused once");
  }
  if (b.bulk_received != a.bulk_received || b.bulk_done != a.bulk_done)
    Fail("Receive counted bulk");
  return accepted == 1;
}

// A refused bulk call: exactly one refusal, nothing applied.
void CheckRefused(const Counts& a, const Counts& b) {
  if (AllRejects(a, b) != 1) Fail("a refused bulk message is not refused for exactly one reason");
  if (b.applied != a.applied || b.received != a.received || b.accepted != a.accepted ||
      b.bulk_received != a.bulk_received || b.bulk_done != a.bulk_done) {
    Fail("a refused bulk message changed more than one refusal counter");
  }
}

void CheckPeerTable(Fixed& f) {
  const size_t count = f.peer_table->Count();
  if (count > f.peer_table->bucket_count() * conntrack::Table::kSlotsPerBucket) {
    Fail("the peer table holds more entries than it has slots");
  }
  f.max_count = std::max(f.max_count, count);
}

// All of `entries` were applied: each flow (its last entry) is in the peer table, synced, on
// the entry's backend.
void CheckApplied(const Fixed& f, std::span<const cs::Entry> entries) {
  auto flow_of = [&](const cs::Entry& e,
                     uint32_t* backend_id) -> std::optional<conntrack::FlowKey> {
    IpAddr vip, backend;
    vip.family = e.vip.family;
    vip.bytes = e.vip.bytes;
    backend.family = e.backend.family;
    backend.bytes = e.backend.bytes;
    const dataplane::Service* svc = f.snap->Find(vip, e.vport, e.proto);
    if (svc == nullptr) return std::nullopt;
    *backend_id = 0;
    for (const auto& b : svc->backends) {
      if (b.addr == backend) *backend_id = b.id;
    }
    const uint16_t slot = static_cast<uint16_t>(svc->counter_slot);
    if (e.vip.family == 4) {
      uint32_t src, dst;
      std::memcpy(&src, e.client.bytes.data(), 4);
      std::memcpy(&dst, e.vip.bytes.data(), 4);
      return conntrack::FlowKey::V4(src, dst, htons(e.cport), htons(e.vport), e.proto, slot);
    }
    return conntrack::FlowKey::V6(std::span<const uint8_t, 16>(e.client.bytes.data(), 16),
                                  std::span<const uint8_t, 16>(e.vip.bytes.data(), 16),
                                  htons(e.cport), htons(e.vport), e.proto, slot);
  };
  std::vector<conntrack::FlowKey> keys;
  std::vector<uint32_t> backends;
  for (const cs::Entry& e : entries) {
    uint32_t id = 0;
    const auto key = flow_of(e, &id);
    if (!key) Fail("an applied entry names no service");
    keys.push_back(*key);
    backends.push_back(id);
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (std::find(keys.begin() + static_cast<long>(i) + 1, keys.end(), keys[i]) != keys.end()) {
      continue;  // a later entry of the same flow wins
    }
    const auto held = f.peer_table->Peek(keys[i]);
    if (!held) Fail("an applied entry is not in the peer table");
    if (held->state != conntrack::FlowState::kSynced) Fail("an applied entry is not synced");
    if (held->backend_id != backends[i]) Fail("an applied entry holds another backend");
  }
}

std::vector<uint8_t> SealAsPeer(Fixed& f, cs::MessageType type, uint64_t epoch, uint64_t seq,
                                std::span<const uint8_t> body) {
  cs::Header h;
  h.type = type;
  h.sender_id = kPeer.v4_host();
  h.epoch = epoch;
  h.seq = seq;
  std::vector<uint8_t> out;
  if (!control::sync::Seal(h, body, f.peer_keys, &out).ok()) Fail("Seal refused a valid body");
  return out;
}

void RawInput(Fixed& f, std::span<const uint8_t> in) {
  SyncEngine& e = *f.engine;
  const dataplane::Snapshot& snap = *f.snap;
  Counts a = CountsOf(e);
  e.Receive(kStranger, in, snap);
  Counts b = CountsOf(e);
  CheckReceived(a, b, -1);
  if (b.Rejected(SyncReject::not_peer) != a.Rejected(SyncReject::not_peer) + 1) {
    Fail("a datagram from a stranger is not refused as not_peer");
  }
  a = b;
  e.Receive(kPeer, in, snap);
  b = CountsOf(e);
  CheckReceived(a, b, -1);
  CheckPeerTable(f);

  a = b;
  control::BulkCursor cursor;
  if (const auto r = e.OpenBulkRequest(kPeer, in, &cursor)) {
    b = CountsOf(e);
    CheckRefused(a, b);
    if (b.Rejected(*r) != a.Rejected(*r) + 1) Fail("OpenBulkRequest counted another reason");
  } else if (AllRejects(a, CountsOf(e)) != 0) {
    Fail("an accepted bulk request counted a refusal");
  }

  control::BulkFetch fetch;
  std::vector<uint8_t> request;
  e.MakeBulkRequest(0, &fetch, &request);
  if (request.empty()) Fail("MakeBulkRequest sealed nothing");
  a = CountsOf(e);
  if (e.ReceiveBulkMessage(&fetch, in, snap) == control::BulkStep::kRefused) {
    CheckRefused(a, CountsOf(e));
  }
  CheckPeerTable(f);
}

void SealedBody(Fixed& f, std::span<const uint8_t> plain) {
  SyncEngine& e = *f.engine;
  const dataplane::Snapshot& snap = *f.snap;
  std::vector<cs::Entry> entries;
  const bool decodes = CheckBody(plain, &entries) == cs::BodyError::kOk;
  const long n = static_cast<long>(entries.size());

  // An entries datagram, then the same again.
  const std::vector<uint8_t> dgram =
      SealAsPeer(f, cs::MessageType::kEntries, kPeerEpoch, ++f.peer_seq, plain);
  Counts a = CountsOf(e);
  e.Receive(kPeer, dgram, snap);
  Counts b = CountsOf(e);
  const bool accepted = CheckReceived(a, b, n);
  if (accepted != decodes) Fail("a sealed body was accepted iff it does not decode");
  if (!accepted && b.Rejected(SyncReject::malformed) != a.Rejected(SyncReject::malformed) + 1) {
    Fail("a sealed body that does not decode is not refused as malformed");
  }
  if (accepted && b.applied - a.applied == static_cast<uint64_t>(n)) CheckApplied(f, entries);
  CheckPeerTable(f);
  a = b;
  e.Receive(kPeer, dgram, snap);
  b = CountsOf(e);
  CheckReceived(a, b, n);
  const SyncReject again = accepted ? SyncReject::replayed : SyncReject::malformed;
  if (b.Rejected(again) != a.Rejected(again) + 1) Fail("a sealed datagram delivered twice");

  // The first chunk of a bulk answer, then an empty end marker.
  control::BulkFetch fetch;
  std::vector<uint8_t> request;
  e.MakeBulkRequest(0, &fetch, &request);
  const uint64_t chunk0 = fetch.seq << kChunkIndexBits;
  a = CountsOf(e);
  const control::BulkStep step = e.ReceiveBulkMessage(
      &fetch, SealAsPeer(f, cs::MessageType::kBulkChunk, fetch.epoch, chunk0, plain), snap);
  b = CountsOf(e);
  if ((step == control::BulkStep::kMore) != decodes) {
    Fail("a sealed bulk chunk was taken iff it does not decode");
  }
  if (step == control::BulkStep::kDone) Fail("a chunk ended the fetch");
  if (step == control::BulkStep::kRefused) {
    CheckRefused(a, b);
    if (b.Rejected(SyncReject::malformed) != a.Rejected(SyncReject::malformed) + 1) {
      Fail("a sealed bulk chunk that does not decode is not refused as malformed");
    }
  } else {
    if (b.bulk_received - a.bulk_received != static_cast<uint64_t>(n) ||
        (b.applied - a.applied) + Delta(a, b, kEntryRejects) != static_cast<uint64_t>(n) ||
        AllRejects(a, b) != Delta(a, b, kEntryRejects)) {
      Fail("a bulk chunk's entries are not each applied or refused once");
    }
    const uint8_t empty[2] = {0, 0};
    a = b;
    if (e.ReceiveBulkMessage(
            &fetch, SealAsPeer(f, cs::MessageType::kBulkEnd, fetch.epoch, chunk0 | 1, empty),
            snap) != control::BulkStep::kDone ||
        CountsOf(e).bulk_done != a.bulk_done + 1 || !fetch.done) {
      Fail("an empty end marker after a chunk did not end the fetch");
    }
  }
  CheckPeerTable(f);

  // A bulk request: accepted only with an empty body; then the whole answer.
  a = CountsOf(e);
  control::BulkCursor cursor;
  const auto r = e.OpenBulkRequest(
      kPeer, SealAsPeer(f, cs::MessageType::kBulkRequest, kPeerEpoch, ++f.peer_seq, plain),
      &cursor);
  b = CountsOf(e);
  if (r.has_value() != !(decodes && n == 0)) Fail("a sealed bulk request: accepted iff not empty");
  if (r) {
    CheckRefused(a, b);
    if (*r != SyncReject::malformed) Fail("a sealed bulk request refused for another reason");
    return;
  }
  const uint64_t req_seq = f.peer_seq;
  std::vector<uint8_t> msg, body;
  std::vector<cs::Entry> sent;
  uint64_t total = 0;
  for (uint32_t i = 0;; ++i) {
    if (i > 1000) Fail("a bulk answer does not end");
    msg.clear();
    if (!e.NextBulkMessage(&cursor, snap, &msg)) Fail("NextBulkMessage stopped before its end");
    cs::Header h;
    if (control::sync::Open(msg, f.peer_keys, &h, &body) != control::sync::OpenError::kOk ||
        h.sender_id != kLocal.v4_host() || h.epoch != kPeerEpoch ||
        h.seq != ((req_seq << kChunkIndexBits) | i)) {
      Fail("a bulk answer message does not open, or is not bound to its request");
    }
    sent.clear();
    if (CheckBody(body, &sent) != cs::BodyError::kOk) Fail("a bulk answer message does not decode");
    total += sent.size();
    if (h.type == cs::MessageType::kBulkEnd) {
      if (!sent.empty() || !cursor.ended) Fail("a bulk end marker with entries");
      break;
    }
    if (h.type != cs::MessageType::kBulkChunk) Fail("a bulk answer message of another type");
  }
  msg.clear();
  if (e.NextBulkMessage(&cursor, snap, &msg) || !msg.empty())
    Fail("a bulk answer went on after its end");
  if (total != cursor.entries) Fail("a bulk answer's entries do not add up");
  // Everything in the answer came from the peer table (no workers here).
  if (total > f.peer_table->Count()) Fail("a bulk answer has more entries than the tables");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixed& f = Get();
  ++f.inputs;
  ++f.now_s;
  f.now_ms += 250;
  const std::span<const uint8_t> in(data, size);
  std::vector<cs::Entry> entries;
  CheckClearMessage(in, &entries);
  RawInput(f, in);
  SealedBody(f, in.first(std::min(size, cs::kMaxBodyBytes)));
  if (f.inputs % 32 == 0) {
    f.engine->Tick(*f.snap);
    if (f.engine->stats().peer_entries != f.peer_table->Count()) Fail("peer_entries");
    CheckPeerTable(f);
  }
  return 0;
}
