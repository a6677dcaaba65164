// pipeline.cc: the per-burst forwarding decision (see pipeline.h).
#include "dataplane/pipeline.h"

#include <algorithm>
#include <cassert>
#include <cstring>

#include "dataplane/flow_hash.h"
#include "dataplane/packet/encap.h"

namespace ecmplb::dataplane {

// Per frame of the burst that belongs to a service; its key and hash sit at the same index.
struct Pipeline::Pending {
  const Service* svc;
  uint16_t frame;   // index in the burst
  bool icmp_error;  // steered ICMP error: look up, never insert
};

struct Pipeline::Held {
  Frame frame;
  ParsedPacket parsed;
  FragmentKey key;
  uint32_t since;  // now_s when held
};

struct Pipeline::Released {
  Frame frame;
  Verdict verdict;
};

struct Pipeline::Scratch {
  ParsedPacket parsed[kBurstSize];
  uint16_t later[kBurstSize];  // later fragments to a VIP (frame indexes)
  Pending pend[kBurstSize];
  conntrack::FlowKey keys[kBurstSize];
  uint64_t hashes[kBurstSize];
  conntrack::EntryRef refs[kBurstSize];
  int32_t chosen[kBurstSize];
};

Pipeline::Pipeline(conntrack::Table* table, WorkerCounters* counters,
                   const NeighborTable* neighbors, PipelineOptions options)
    : ct_(table),
      counters_(counters),
      neighbors_(neighbors),
      options_(options),
      limiter_(options.exception_budget != nullptr ? options.exception_budget : &own_budget_,
               options.ticks_per_second),
      scratch_(new Scratch()) {
  if (options_.fragment_capacity != 0) {
    fragments_ = std::make_unique<FragmentTable>(options_.fragment_capacity,
                                                 options_.fragment_timeout_s);
    held_.reset(new Held[options_.fragment_hold]);
    released_.reset(new Released[options_.fragment_hold]);
  }
  // The flow hash placing a key in the table doubles as its Maglev hash (and the peer
  // table's, which is looked up with it).
  assert(table->hasher() == &conntrack::FlowHash);
  assert(options.peer_table == nullptr || options.peer_table->hasher() == &conntrack::FlowHash);
  if (options_.sync_rate != 0) {
    sync_interval_ = std::max<uint64_t>(1, options_.ticks_per_second / options_.sync_rate);
    sync_burst_ = sync_interval_ * std::max<uint64_t>(64, options_.sync_rate / 10);
  }
}

void Pipeline::QueueSync(const conntrack::FlowKey& key, uint32_t backend_id,
                         conntrack::FlowState state, SyncReason reason, uint32_t now_s) {
  if (sync_interval_ != 0 && !sync_budget_.Take(now_ticks_, sync_interval_, sync_burst_)) {
    counters_->Add(Counter::sync_rate_limited);
    return;
  }
  if (!options_.sync_out->Push(SyncEvent{key, backend_id, now_s, state, reason, now_ticks_})) {
    counters_->Add(Counter::sync_ring_full);
    return;
  }
  counters_->Add(Counter::sync_queued);
}

namespace {
// Whether a state change is news for the peers: a flow that proved itself here (handshake,
// a probationary flow's proof, a non-TCP flow's second packet), or one they know that is now
// closing. (A synced flow becoming established here is a flow they told us about.)
inline bool SyncWorthy(conntrack::FlowState before, conntrack::FlowState after,
                       SyncReason* reason) {
  using conntrack::FlowState;
  if (after == FlowState::kEstablished &&
      (before == FlowState::kNew || before == FlowState::kProbation)) {
    *reason = SyncReason::kEstablished;
    return true;
  }
  if (after == FlowState::kClosing &&
      (before == FlowState::kEstablished || before == FlowState::kSynced)) {
    *reason = SyncReason::kClosing;
    return true;
  }
  return false;
}
}  // namespace

Pipeline::~Pipeline() = default;

void Pipeline::Process(const Snapshot& snap, std::span<Frame> frames, uint32_t now_s,
                       std::span<Verdict> verdicts) {
  const size_t n = frames.size() < kBurstSize ? frames.size() : kBurstSize;
  ParsedPacket* parsed = scratch_->parsed;
  Pending* pend = scratch_->pend;
  conntrack::FlowKey* keys = scratch_->keys;
  uint64_t* hashes = scratch_->hashes;
  conntrack::EntryRef* refs = scratch_->refs;
  int32_t* chosen = scratch_->chosen;
  uint16_t* later = scratch_->later;
  size_t np = 0, nlater = 0;
  uint64_t exceptions = 0, priority = 0;
  limiter_.Configure(snap.host().exception);
  // Traffic for the kernel: classified, unsolicited traffic to this host dropped, the rest
  // within its class's limit (exception_policy.h); every outcome counted once.
  auto to_kernel = [&](size_t i, ParseResult r, const ParsedPacket& p) {
    const ExceptionClass c =
        ClassifyException(std::span<const uint8_t>(frames[i].data, frames[i].len), r, p, snap);
    if (c == ExceptionClass::kUnsolicited) {
      verdicts[i] = Verdict::kDrop;
      counters_->Add(Counter::drop_unsolicited);
      return;
    }
    if (!limiter_.Allow(c, now_ticks_)) {
      verdicts[i] = Verdict::kDrop;
      counters_->Add(c == ExceptionClass::kOther ? Counter::exception_rate_limited
                                                 : Counter::exception_priority_limited);
      return;
    }
    verdicts[i] = Verdict::kException;
    ++exceptions;
    priority += c != ExceptionClass::kOther;
  };

  for (size_t i = 0; i < n; ++i) __builtin_prefetch(frames[i].data);

  // 1. Parse and classify. A service packet's key is hashed and its connection-table bucket
  // prefetched at once, so the bucket loads while the rest of the burst is parsed.
  // keys[np] and hashes[np] are set; the packet is frames[i].
  auto add_pending = [&](size_t i, const Service* svc, bool icmp_error) {
    // A tunnel writes its headers into the headroom line before the frame, which nothing has
    // loaded yet: start that load now rather than stall on it in Forward.
    if (svc->forward != ForwardMode::kDr && frames[i].headroom >= kMaxTunnelOverhead) {
      __builtin_prefetch(frames[i].data - kMaxTunnelOverhead, 1, 3);
    }
    pend[np] = Pending{svc, static_cast<uint16_t>(i), icmp_error};
    ct_->Prefetch(hashes[np]);
    ++np;
  };
  auto add_pending_key = [&](size_t i, const Service* svc, bool icmp_error,
                             const conntrack::FlowKey& key) {
    keys[np] = key;
    hashes[np] = conntrack::FlowHashInline(key);
    add_pending(i, svc, icmp_error);
  };
  for (size_t i = 0; i < n; ++i) {
    Frame& f = frames[i];
    ParsedPacket& p = parsed[i];
    ParseResult r = Parse(std::span<const uint8_t>(f.data, f.len), &p, options_.ip_checksum);
    if ((r == ParseResult::kOk || r == ParseResult::kNotIp) && !options_.accept_any_mac &&
        (f.data[0] & 1) == 0 &&
        std::memcmp(f.data, snap.host().port_mac.bytes.data(), kEthAddrLen) != 0) {
      verdicts[i] = Verdict::kDrop;
      counters_->Add(Counter::drop_other_mac);
      continue;
    }
    if (r == ParseResult::kNotIp) {
      to_kernel(i, r, p);
      continue;
    }
    if (r != ParseResult::kOk) {
      verdicts[i] = Verdict::kDrop;
      counters_->Add(Counter::drop_parse);
      counters_->parse[static_cast<size_t>(r)].Add(1);
      continue;
    }
    // The common case first: one lookup finds the service of a TCP/UDP packet.
    if ((p.proto == inet::ip_proto::kTcp || p.proto == inet::ip_proto::kUdp) && p.has_l4) {
      if (const Service* svc = snap.Find(p.dst, p.dport, p.proto)) {
        verdicts[i] = Verdict::kDrop;  // until a backend is found
        if (p.family == 4) {
          hashes[np] = SetServiceFlowKeyV4(*svc, p, &keys[np]);
          add_pending(i, svc, false);
        } else {
          add_pending_key(i, svc, false, ServiceFlowKey(*svc, p));
        }
        continue;
      }
    }
    if (!snap.IsVip(p.dst)) {
      // ARP is kNotIp above; here: OSPF, BFD, ICMP and health-check replies to this host.
      to_kernel(i, r, p);
      continue;
    }
    verdicts[i] = Verdict::kDrop;
    // A later fragment of IPv6 names the first header after the fragment header: an extension
    // header when one follows it, not the transport.
    const bool later_v6_ext =
        p.family == 6 && p.later_fragment() &&
        (p.proto == inet::ip_proto::kHopByHop || p.proto == inet::ip_proto::kIpv6Routing ||
         p.proto == inet::ip_proto::kIpv6DestOptions);
    if (p.proto == inet::ip_proto::kTcp || p.proto == inet::ip_proto::kUdp || later_v6_ext) {
      if (p.has_l4) {
        counters_->Add(Counter::drop_vip_no_service);  // a port nobody listens on
      } else if (fragments_ != nullptr) {
        later[nlater++] = static_cast<uint16_t>(i);  // placed after this burst's first fragments
      } else {
        counters_->Add(Counter::drop_fragment);  // no ports to find the service or hash on
      }
      continue;
    }
    if (IsSteerableIcmpError(p)) {
      FlowTuple inner;
      ParseResult ir = ParseIcmpErrorFlow(std::span<const uint8_t>(f.data, f.len), p, &inner);
      const Service* svc =
          ir == ParseResult::kOk ? snap.Find(inner.dst, inner.dport, inner.proto) : nullptr;
      if (svc == nullptr) {
        counters_->Add(Counter::drop_icmp_unmatched);
        continue;
      }
      add_pending_key(i, svc, true, ServiceFlowKey(*svc, inner));
      continue;
    }
    if (p.proto == inet::ip_proto::kIcmp || p.proto == inet::ip_proto::kIcmpv6) {
      // Echo requests to a VIP: the kernel holds the VIP (on lo) and answers them.
      to_kernel(i, r, p);
      continue;
    }
    counters_->Add(Counter::drop_vip_no_service);
  }
  if (exceptions) counters_->Add(Counter::exception, exceptions);
  if (priority) counters_->Add(Counter::exception_priority, priority);
  if (np == 0) {
    if (nlater != 0) PlaceLaterFragments(snap, frames, verdicts, later, nlater, now_s);
    return;
  }

  // 2. Connection table, in bulk, with the hashes computed above.
  ct_->LookupBulk(std::span<const conntrack::FlowKey>(keys, np),
                  std::span<const uint64_t>(hashes, np), now_s,
                  std::span<conntrack::EntryRef>(refs, np));

  // 3. Hits first (refs stay valid until the first Insert), then misses.
  uint64_t hits = 0, repicks = 0, misses = 0, inserts = 0, untracked = 0;
  for (size_t k = 0; k < np; ++k) {
    chosen[k] = -1;
    if (!refs[k].found()) continue;  // LookupBulk prefetched what its insert will read
    const Service& svc = *pend[k].svc;
    int32_t pos = svc.PositionOf(refs[k].backend_id());
    if (pos < 0) {
      // Its backend was removed: pick again and keep tracking the flow.
      if (!svc.table.has_value()) continue;
      pos = static_cast<int32_t>(svc.table->Lookup(MaglevHash(svc, keys[k], hashes[k])));
      ct_->SetBackend(refs[k], svc.backends[static_cast<size_t>(pos)].id);
      ++repicks;
      if (options_.sync_out != nullptr) {
        QueueSync(keys[k], refs[k].backend_id(), refs[k].state(), SyncReason::kRepick, now_s);
      }
    }
    ++hits;
    chosen[k] = pos;
    if (pend[k].icmp_error) continue;
    const conntrack::FlowState before = refs[k].state();
    ct_->Touch(refs[k], parsed[pend[k].frame].tcp_flags, now_s);
    SyncReason why;
    if (options_.sync_out != nullptr && SyncWorthy(before, refs[k].state(), &why)) {
      QueueSync(keys[k], refs[k].backend_id(), refs[k].state(), why, now_s);
    }
  }
  // A miss is absent from the table unless a packet earlier in this burst inserted the same
  // flow: an insert whose hash shares its low byte with no earlier insert skips the table's
  // search for an existing entry (a filter of 256 bits; a false match only costs the search).
  uint64_t inserted[4] = {0, 0, 0, 0};
  uint64_t peer_hits = 0, peer_misses = 0, peer_stale = 0;
  const conntrack::Table* peer = options_.peer_table;
  for (size_t k = 0; k < np; ++k) {
    if (refs[k].found()) continue;
    ++misses;
    const Service& svc = *pend[k].svc;
    const uint8_t tcp_flags = parsed[pend[k].frame].tcp_flags;
    const uint8_t tag = static_cast<uint8_t>(hashes[k]);
    uint64_t& word = inserted[tag >> 6];
    const uint64_t bit = uint64_t{1} << (tag & 63);
    // A flow first seen here mid-stream may be one the router moved from a peer LB host:
    // if a peer synced it, it keeps the peer's backend (a SYN starts a flow: never looked up).
    const bool is_tcp = keys[k].proto == inet::ip_proto::kTcp;
    if (peer != nullptr && !pend[k].icmp_error &&
        !(is_tcp && (tcp_flags & inet::tcp_flag::kSyn) != 0)) {
      if (const auto s = peer->Peek(keys[k], hashes[k])) {
        const int32_t pos = svc.PositionOf(s->backend_id);
        if (pos >= 0 && now_s - s->last_seen <= peer->timeouts().For(is_tcp, s->state)) {
          chosen[k] = pos;
          const conntrack::InsertResult ir = ct_->InsertSynced(keys[k], s->backend_id, now_s);
          word |= bit;
          ++(ir == conntrack::InsertResult::kFull ? untracked : inserts);
          ++peer_hits;
          continue;
        }
        ++peer_stale;
      } else {
        ++peer_misses;
      }
    }
    if (!svc.table.has_value()) continue;
    int32_t pos = static_cast<int32_t>(svc.table->Lookup(MaglevHash(svc, keys[k], hashes[k])));
    chosen[k] = pos;
    if (pend[k].icmp_error) continue;  // an error about a flow we do not know: do not track it
    const uint32_t backend_id = svc.backends[static_cast<size_t>(pos)].id;
    const conntrack::InsertResult ir =
        (word & bit) == 0 ? ct_->InsertAbsent(keys[k], hashes[k], backend_id, tcp_flags, now_s)
                          : ct_->Insert(keys[k], hashes[k], backend_id, tcp_flags, now_s);
    word |= bit;
    ++(ir == conntrack::InsertResult::kFull ? untracked : inserts);
  }
  if (hits) counters_->Add(Counter::conntrack_hit, hits);
  if (repicks) counters_->Add(Counter::conntrack_repick, repicks);
  if (misses) counters_->Add(Counter::conntrack_miss, misses);
  if (inserts) counters_->Add(Counter::conntrack_insert, inserts);
  if (untracked) counters_->Add(Counter::conntrack_untracked, untracked);
  if (peer_hits) counters_->Add(Counter::sync_peer_hit, peer_hits);
  if (peer_misses) counters_->Add(Counter::sync_peer_miss, peer_misses);
  if (peer_stale) counters_->Add(Counter::sync_peer_stale, peer_stale);

  // 4. Forward.
  for (size_t k = 0; k < np; ++k) {
    const size_t i = pend[k].frame;
    if (chosen[k] < 0) {
      counters_->Add(Counter::drop_no_backend);
      continue;
    }
    const Service& svc = *pend[k].svc;
    const BackendEntry& be = svc.backends[static_cast<size_t>(chosen[k])];
    Forward(snap, svc, be, frames[i], parsed[i], hashes[k], verdicts[i]);
    if (verdicts[i] == Verdict::kTx && pend[k].icmp_error)
      counters_->Add(Counter::icmp_error_steered);
    if (parsed[i].is_fragment && fragments_ != nullptr && !pend[k].icmp_error) {
      RecordFirstFragment(snap, parsed[i], be.id, hashes[k], now_s);
    }
  }
  // 5. Later fragments, once this burst's first fragments are recorded.
  if (nlater != 0) PlaceLaterFragments(snap, frames, verdicts, later, nlater, now_s);
}

void Pipeline::RecordFirstFragment(const Snapshot& snap, const ParsedPacket& p,
                                   uint32_t backend_id, uint64_t flow_hash, uint32_t now_s) {
  const FragmentKey key = FragmentKey::Of(p.src, p.dst, p.ip_id, p.proto);
  const FragmentPlacement pl{
      .flow_hash = flow_hash, .backend_id = backend_id, .dport = p.dport, .proto = p.proto};
  if (fragments_->Record(key, pl, now_s)) counters_->Add(Counter::fragment_table_full);
  if (nheld_ == 0) return;
  // The frames that waited for this first fragment go now, in their order of arrival.
  size_t keep = 0;
  for (size_t h = 0; h < nheld_; ++h) {
    Held& held = held_[h];
    if (!(held.key == key)) {
      if (keep != h) held_[keep] = held;
      ++keep;
      continue;
    }
    Released& r = released_[nreleased_++];
    r.frame = held.frame;
    ForwardFragment(snap, pl, r.frame, held.parsed, r.verdict);
    counters_->Add(Counter::fragment_released);
  }
  nheld_ = keep;
}

void Pipeline::PlaceLaterFragments(const Snapshot& snap, std::span<Frame> frames,
                                   std::span<Verdict> verdicts, const uint16_t* later,
                                   size_t nlater, uint32_t now_s) {
  const ParsedPacket* parsed = scratch_->parsed;
  for (size_t k = 0; k < nlater; ++k) {
    const size_t i = later[k];
    const ParsedPacket& p = parsed[i];
    const FragmentKey key = FragmentKey::Of(p.src, p.dst, p.ip_id, p.proto);
    if (const FragmentPlacement* pl = fragments_->Find(key, now_s)) {
      ForwardFragment(snap, *pl, frames[i], p, verdicts[i]);
      continue;
    }
    // Its first fragment has not come (yet): hold it, within the hold's bound.
    if (nheld_ + nreleased_ >= options_.fragment_hold) {
      verdicts[i] = Verdict::kDrop;
      counters_->Add(Counter::fragment_hold_full);
      continue;
    }
    held_[nheld_++] = Held{frames[i], p, key, now_s};
    verdicts[i] = Verdict::kHeld;
    counters_->Add(Counter::fragment_held);
  }
}

void Pipeline::ForwardFragment(const Snapshot& snap, const FragmentPlacement& pl, Frame& f,
                               const ParsedPacket& p, Verdict& v) {
  v = Verdict::kDrop;
  const Service* svc = snap.Find(p.dst, pl.dport, pl.proto);
  if (svc == nullptr) {
    counters_->Add(Counter::drop_fragment);  // its service is gone since the first fragment
    return;
  }
  // The first fragment's backend, or none: another backend would get half a datagram.
  const int32_t pos = svc->PositionOf(pl.backend_id);
  if (pos < 0) {
    counters_->Add(Counter::drop_no_backend);
    return;
  }
  if (Forward(snap, *svc, svc->backends[static_cast<size_t>(pos)], f, p, pl.flow_hash, v)) {
    counters_->Add(Counter::fragment_forwarded);
  }
}

size_t Pipeline::TakeReleased(std::span<Frame> out, std::span<Verdict> verdicts) {
  // Oldest first: the frames leave in the order they were released.
  const size_t n = std::min({out.size(), verdicts.size(), nreleased_});
  for (size_t k = 0; k < n; ++k) {
    out[k] = released_[k].frame;
    verdicts[k] = released_[k].verdict;
  }
  std::copy(released_.get() + n, released_.get() + nreleased_, released_.get());
  nreleased_ -= n;
  return n;
}

void Pipeline::ReleaseHeld() {
  for (size_t h = 0; h < nheld_; ++h) {
    released_[nreleased_++] = Released{held_[h].frame, Verdict::kDrop};
    counters_->Add(Counter::fragment_timeout);
    counters_->Add(Counter::fragment_released);
  }
  nheld_ = 0;
}

[[gnu::always_inline]] inline bool Pipeline::Forward(const Snapshot& snap, const Service& svc,
                                                     const BackendEntry& be, Frame& f,
                                                     const ParsedPacket& p, uint64_t flow_hash,
                                                     Verdict& v) {
  const HostInfo& host = snap.host();
  MacAddr next_hop;
  if (!neighbors_->Get(be.neighbor_slot, next_hop.bytes.data())) {
    neighbors_->RequestResolve(be.neighbor_slot);
    counters_->Add(Counter::drop_neighbor_unresolved);
    v = Verdict::kDrop;
    return false;
  }
  const uint32_t in_len = f.len;
  if (svc.forward == ForwardMode::kDr) {
    RewriteDr(std::span<uint8_t>(f.data, f.len), host.port_mac, next_hop);
    counters_->Add(Counter::forward_dr);
  } else {
    const Tunnel tunnel = svc.forward == ForwardMode::kGre    ? Tunnel::kGre
                          : svc.forward == ForwardMode::kIpip ? Tunnel::kIpip
                                                              : Tunnel::kGue;
    // The outer header is the backend's family (an IPv6 backend: IPv6, 20 bytes more).
    const bool v6_outer = be.addr.is_v6();
    const size_t overhead = TunnelOverhead(tunnel, v6_outer);
    const IpAddr& tunnel_source = v6_outer ? host.tunnel_source6 : host.tunnel_source;
    if (TunnelExceedsMtu(p.ip_total_len, overhead, host.mtu)) {
      if (!p.dont_fragment) {
        counters_->Add(Counter::drop_too_big);
        v = Verdict::kDrop;
        return false;
      }
      std::span<uint8_t> buf(f.data, f.len);
      const uint16_t inner_mtu = TunnelInnerMtu(host.mtu, overhead);
      size_t len = p.family == 4 ? BuildIcmpFragNeeded(buf, buf, p, host.port_mac, inner_mtu)
                                 : BuildIcmpv6PacketTooBig(buf, buf, p, host.port_mac, inner_mtu);
      if (len == 0) {
        counters_->Add(Counter::drop_too_big);
        v = Verdict::kDrop;
        return false;
      }
      f.len = static_cast<uint32_t>(len);
      counters_->Add(Counter::icmp_frag_needed_sent);
      v = Verdict::kTx;
      return false;
    }
    if (f.headroom < overhead) {
      counters_->Add(Counter::drop_no_headroom);
      v = Verdict::kDrop;
      return false;
    }
    std::span<uint8_t> buf(f.data - overhead, p.ip_end() + overhead);
    size_t len = 0;
    Counter forwarded = Counter::forward_gre;
    switch (tunnel) {
      case Tunnel::kGre:
        len = EncapGre(buf, p, host.port_mac, next_hop, tunnel_source, be.addr, flow_hash);
        break;
      case Tunnel::kIpip:
        len = EncapIpip(buf, p, host.port_mac, next_hop, tunnel_source, be.addr, flow_hash);
        forwarded = Counter::forward_ipip;
        break;
      case Tunnel::kGue:
        len = EncapGue(buf, p, host.port_mac, next_hop, tunnel_source, be.addr,
                       GueSourcePort(flow_hash), host.gue_port, flow_hash);
        forwarded = Counter::forward_gue;
        break;
    }
    if (len == 0) {
      counters_->Add(Counter::drop_too_big);
      v = Verdict::kDrop;
      return false;
    }
    f.data -= overhead;
    f.headroom -= static_cast<uint32_t>(overhead);
    f.len = static_cast<uint32_t>(len);
    counters_->Add(forwarded);
  }
  counters_->services[svc.counter_slot].Add(in_len);
  counters_->backends[be.counter_slot].Add(in_len);
  v = Verdict::kTx;
  return true;
}

void Pipeline::Housekeeping(uint32_t now_s) {
  size_t n = ct_->ExpireSome(now_s, options_.expire_budget);
  if (n) counters_->Add(Counter::conntrack_expired, n);
  if (nheld_ == 0) return;
  size_t keep = 0;
  for (size_t h = 0; h < nheld_; ++h) {
    if (now_s - held_[h].since <= options_.fragment_timeout_s) {
      if (keep != h) held_[keep] = held_[h];
      ++keep;
      continue;
    }
    released_[nreleased_++] = Released{held_[h].frame, Verdict::kDrop};
    counters_->Add(Counter::fragment_timeout);
    counters_->Add(Counter::fragment_released);
  }
  nheld_ = keep;
}

}  // namespace ecmplb::dataplane
