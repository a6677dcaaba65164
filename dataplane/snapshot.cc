// snapshot.cc: the snapshot's service index (see snapshot.h).
#include "dataplane/snapshot.h"

namespace ecmplb::dataplane {

ServiceLookup::ServiceLookup(const Services& services, bool count_slots) {
  auto keys = std::make_shared<Keys>();
  keys->position.reserve(services.size());
  for (size_t i = 0; i < services.size(); ++i) {
    keys->position.emplace(services[i]->key, static_cast<uint32_t>(i));
    keys->vips.insert(services[i]->key.vip);
    if (count_slots) Count(*services[i]);
  }
  keys_ = std::move(keys);
  BuildV4(services);
}

void ServiceLookup::Count(const Service& s) {
  service_slots_ = std::max<size_t>(service_slots_, size_t{s.counter_slot} + 1);
  for (const auto& b : s.backends) {
    backend_slots_ = std::max<size_t>(backend_slots_, size_t{b.counter_slot} + 1);
  }
}

void ServiceLookup::BuildV4(const Services& services) {
  const size_t n = 2 * services.size() + 2;  // services plus one entry per VIP
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;  // at most half full: short probes
  v4_.assign(cap, V4Entry{});
  v4_mask_ = cap - 1;
  v4_shift_ = 64 - static_cast<unsigned>(__builtin_ctzll(cap));
  v4_used_ = 0;
  for (const auto& s : services) {
    if (s->key.vip.family != 4) continue;
    const uint32_t vip = s->key.vip.v4_host();
    for (const uint64_t key : {V4Key(vip, s->key.port, s->key.proto), V4Key(vip, 0, 0)}) {
      // The VIP itself (port 0, proto 0) maps to any of its services: IsVip only needs
      // non-null (Update keeps it pointing at a live one).
      V4Entry& e = Entry(key);
      if (e.key == 0) ++v4_used_;
      e = V4Entry{key, s.get()};
    }
  }
}

void ServiceLookup::Update(const Services& services, const std::vector<size_t>& changed) {
  std::shared_ptr<Keys> keys;  // copied on the first new key
  bool rebuild_v4 = false;
  for (const size_t pos : changed) {
    const Service& s = *services[pos];
    Count(s);
    const bool known = keys_->position.contains(s.key);
    if (!known) {
      if (keys == nullptr) keys = std::make_shared<Keys>(*keys_);
      keys->position.emplace(s.key, static_cast<uint32_t>(pos));
      keys->vips.insert(s.key.vip);
    }
    if (s.key.vip.family != 4 || rebuild_v4) continue;
    if (2 * (v4_used_ + 2) > v4_.size()) {  // would be more than half full
      rebuild_v4 = true;
      continue;
    }
    const uint32_t vip = s.key.vip.v4_host();
    V4Entry& e = Entry(V4Key(vip, s.key.port, s.key.proto));
    const Service* old = e.service;
    if (e.key == 0) ++v4_used_;
    e = V4Entry{V4Key(vip, s.key.port, s.key.proto), &s};
    V4Entry& v = Entry(V4Key(vip, 0, 0));
    if (v.key == 0) {
      ++v4_used_;
      v = V4Entry{V4Key(vip, 0, 0), &s};
    } else if (v.service == old) {
      v.service = &s;  // the replaced Service goes away with the old snapshot
    }
  }
  if (keys != nullptr) keys_ = std::move(keys);
  if (rebuild_v4) BuildV4(services);
}

BackendAddrs::BackendAddrs() {
  const auto empty = std::make_shared<const Shard>();
  shards_.fill(empty);
}

void BackendAddrs::Change(const std::vector<IpAddr>& added, const std::vector<IpAddr>& removed) {
  std::array<std::shared_ptr<Shard>, kShards> copies;
  auto copy = [&](const IpAddr& a) -> Shard& {
    const size_t i = ShardOf(a);
    if (copies[i] == nullptr) copies[i] = std::make_shared<Shard>(*shards_[i]);
    return *copies[i];
  };
  for (const IpAddr& a : removed) copy(a).erase(a);
  for (const IpAddr& a : added) copy(a).insert(a);
  for (size_t i = 0; i < kShards; ++i) {
    if (copies[i] != nullptr) shards_[i] = std::move(copies[i]);
  }
}

size_t BackendAddrs::size() const {
  size_t n = 0;
  for (const auto& s : shards_) n += s->size();
  return n;
}

}  // namespace ecmplb::dataplane
