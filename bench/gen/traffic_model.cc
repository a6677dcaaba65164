// traffic_model.cc: see traffic_model.h.
#include "bench/gen/traffic_model.h"

#include <algorithm>
#include <charconv>
#include <cstring>
#include <map>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "control/snapshot_builder.h"
#include "dataplane/flow_hash.h"
#include "bench/gen/frame_builder.h"
#include "dataplane/rss.h"

namespace ecmplb::gen {
namespace {

using dataplane::ServiceKey;

// Largest number of flow ids one family's client net may carry (keeps f * 1 safe in 64 bits).
constexpr uint64_t kMaxCapacity = uint64_t{1} << 48;

size_t MinFrameLen(uint8_t family, uint8_t proto, bool vlan) {
  size_t n = dataplane::kEthHeaderLen + (vlan ? dataplane::kVlanTagLen : 0);
  n += family == 4 ? dataplane::kIpv4MinHeaderLen : dataplane::kIpv6HeaderLen;
  n += proto == inet::ip_proto::kTcp ? dataplane::kTcpMinHeaderLen
                                     : dataplane::kUdpHeaderLen + kUdpStampLen;
  return std::max<size_t>(n, 60);  // Ethernet minimum without FCS
}

bool ProtoSelected(ProtoFilter f, uint8_t proto) {
  if (f == ProtoFilter::kMix) return true;
  return (f == ProtoFilter::kTcp) == (proto == inet::ip_proto::kTcp);
}

}  // namespace

absl::StatusOr<ClientNet> ParseClientNet(absl::string_view cidr) {
  const size_t slash = cidr.find('/');
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--client-net ", cidr, ": ", why,
        " (e.g. 198.18.0.0/15 with a prefix of 8..30, or 2001:db8:c::/64 with 64..126)"));
  };
  if (slash == absl::string_view::npos) return bad("needs ADDRESS/PREFIX");
  const absl::string_view a = cidr.substr(0, slash);
  auto addr = IpAddr::Parse(std::string_view(a.data(), a.size()));
  if (!addr.ok()) return bad("not an address");
  unsigned prefix = 0;
  absl::string_view p = cidr.substr(slash + 1);
  auto [ptr, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (ec != std::errc() || ptr != p.data() + p.size()) return bad("bad prefix length");
  ClientNet net;
  net.base = *addr;
  net.prefix = static_cast<uint8_t>(prefix);
  if (addr->is_v4()) {
    if (prefix < 8 || prefix > 30) return bad("prefix length out of range");
    const uint32_t mask = ~uint32_t{0} << (32 - prefix);
    net.base = IpAddr::V4(addr->v4_host() & mask);
    net.addrs = (uint64_t{1} << (32 - prefix)) - 2;  // no network, no broadcast address
  } else {
    if (prefix < 64 || prefix > 126) return bad("prefix length out of range");
    const unsigned host_bits = 128 - prefix;
    uint64_t lo;
    std::memcpy(&lo, net.base.bytes.data() + 8, 8);
    lo = __builtin_bswap64(lo);
    lo &= host_bits == 64 ? 0 : ~uint64_t{0} << host_bits;
    lo = __builtin_bswap64(lo);
    std::memcpy(net.base.bytes.data() + 8, &lo, 8);
    net.addrs = host_bits >= 48 ? kMaxCapacity : (uint64_t{1} << host_bits) - 1;
  }
  return net;
}

MacAddr NeighborMac(const IpAddr& addr) {
  MacAddr m;
  m.bytes[0] = 0x02;
  if (addr.is_v4()) {
    m.bytes[1] = 0x00;
    std::memcpy(m.bytes.data() + 2, addr.bytes.data(), 4);
  } else {
    std::memcpy(m.bytes.data() + 1, addr.bytes.data() + 11, 5);
  }
  return m;
}

absl::StatusOr<ServiceKey> ParseServiceText(absl::string_view text) {
  auto bad = [&]() {
    return absl::InvalidArgumentError(
        absl::StrCat("--service ", text,
                     ": expected VIP:PORT/PROTO, e.g. 10.0.0.1:80/tcp or [2001:db8::1]:443/udp"));
  };
  const size_t slash = text.rfind('/');
  if (slash == absl::string_view::npos) return bad();
  auto proto = control::ParseProtocol(text.substr(slash + 1));
  if (!proto.ok()) return bad();
  absl::string_view hp = text.substr(0, slash);
  const size_t colon = hp.rfind(':');
  if (colon == absl::string_view::npos) return bad();
  absl::string_view host = hp.substr(0, colon), port_text = hp.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  unsigned port = 0;
  auto [ptr, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (ec != std::errc() || ptr != port_text.data() + port_text.size() || port == 0 ||
      port > 65535) {
    return bad();
  }
  auto vip = IpAddr::Parse(std::string_view(host.data(), host.size()));
  if (!vip.ok()) return bad();
  return ServiceKey{*vip, static_cast<uint16_t>(port), static_cast<uint8_t>(*proto)};
}

uint32_t TrafficModel::host_v4() const {
  const IpAddr& a = snap_->host().address;
  return a.is_v4() ? a.v4_host() : 0;
}

absl::StatusOr<std::unique_ptr<const TrafficModel>> TrafficModel::Create(
    const control::Config& config, ModelOptions options) {
  std::unique_ptr<TrafficModel> m(new TrafficModel());
  if (options.client_v4.base.family == 0) {
    ECMPLB_ASSIGN_OR_RETURN(options.client_v4, ParseClientNet("198.18.0.0/15"));
  }
  if (options.client_v6.base.family == 0) {
    ECMPLB_ASSIGN_OR_RETURN(options.client_v6, ParseClientNet("2001:db8:c::/64"));
  }
  if (!options.client_v4.base.is_v4() || !options.client_v6.base.is_v6()) {
    return absl::InvalidArgumentError("--client-net: give at most one IPv4 and one IPv6 range");
  }
  if (options.flows < 1 || options.flows > 10'000'000) {
    return absl::InvalidArgumentError("--flows must be in 1..10000000");
  }
  if (options.frame_size < 64 || options.frame_size > 1518) {
    return absl::InvalidArgumentError(
        "--size must be in 64..1518 (bytes on the wire, FCS included)");
  }
  if (options.queues < 1) return absl::InvalidArgumentError("--queues must be >= 1");
  m->opt_ = options;

  // The workers' snapshot, as ecmplb builds it (all backends healthy).
  control::SnapshotBuilder builder(options.dst_mac);
  auto snap = builder.Build(config);
  if (!snap.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--config: ecmplb would refuse it: ", snap.status().message()));
  }
  m->snap_ = std::move(*snap);
  const auto& slots = builder.neighbor_slots();
  for (const auto& [slot, addr] : slots) m->all_next_hops_.push_back(addr);

  std::vector<ServiceKey> wanted = options.services;
  for (const ServiceKey& k : wanted) {
    if (m->snap_->Find(k.vip, k.port, k.proto) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--service ", k.vip.ToString(), ":", k.port, "/",
          k.proto == inet::ip_proto::kTcp ? "tcp" : "udp", ": not a service of the config"));
    }
  }
  bool any_v4 = false, any_v6 = false;
  for (const control::ServiceConfig& sc : config.services) {
    const ServiceKey key = control::ToServiceKey(sc);
    if (!wanted.empty() && std::find(wanted.begin(), wanted.end(), key) == wanted.end()) continue;
    if (!ProtoSelected(options.proto, key.proto)) continue;
    GenService g;
    g.key = key;
    g.name = sc.Name();
    g.dp = m->snap_->Find(key.vip, key.port, key.proto);
    if (g.dp == nullptr || !g.dp->table.has_value()) {
      if (!wanted.empty()) {
        return absl::InvalidArgumentError(
            absl::StrCat("--service ", g.name, ": has no usable backend (all weights 0?)"));
      }
      continue;  // nothing to expect: leave it out
    }
    g.forward = g.dp->forward;
    const bool v4 = key.vip.is_v4();
    any_v4 = any_v4 || v4;
    any_v6 = any_v6 || !v4;
    const size_t l2 =
        dataplane::kEthHeaderLen + (options.vlan.has_value() ? dataplane::kVlanTagLen : 0);
    const size_t frame =
        std::max<size_t>(options.frame_size - kFcsLen,
                         MinFrameLen(key.vip.family, key.proto, options.vlan.has_value()));
    g.frame_len = static_cast<uint16_t>(frame);
    g.ip_len = static_cast<uint16_t>(frame - l2);
    g.l4_len = static_cast<uint16_t>(
        g.ip_len - (v4 ? dataplane::kIpv4MinHeaderLen : dataplane::kIpv6HeaderLen));
    for (const auto& be : g.dp->backends) {
      auto it = slots.find(be.neighbor_slot);
      const IpAddr hop = it == slots.end() ? be.addr : it->second;
      g.next_hop.push_back(hop);
      g.next_hop_mac.push_back(NeighborMac(hop));
    }
    m->services_.push_back(std::move(g));
  }
  if (m->services_.empty()) {
    return absl::InvalidArgumentError(
        "no service to target: check --service / --proto against the config's services");
  }
  const uint64_t cap_v4 = std::min(kMaxCapacity, options.client_v4.addrs * kPortsPerAddr);
  const uint64_t cap_v6 = std::min(kMaxCapacity, options.client_v6.addrs * kPortsPerAddr);
  m->capacity_ = std::min(any_v4 ? cap_v4 : kMaxCapacity, any_v6 ? cap_v6 : kMaxCapacity);
  if (m->capacity_ <= options.flows) {
    return absl::InvalidArgumentError(
        absl::StrCat("--flows ", options.flows, " needs a larger --client-net (it holds ",
                     m->capacity_, " flow ids, and new flows need ids past the established ones)"));
  }
  m->service_mod_ = ~uint64_t{0} / m->services_.size() + 1;
  m->v4_base_ = options.client_v4.base.v4_host();
  uint64_t lo;
  std::memcpy(&lo, options.client_v6.base.bytes.data() + 8, 8);
  m->v6_base_lo_ = __builtin_bswap64(lo);
  for (GenService& g : m->services_) BuildTemplate(*m, &g);
  m->toeplitz_ = std::make_unique<ToeplitzHasher>(
      std::span<const uint8_t>(dataplane::kRssKey, dataplane::kRssKeyLength), 36);
  return std::unique_ptr<const TrafficModel>(std::move(m));
}

void TrafficModel::SourceAddress(uint64_t flow, uint8_t* out) const {
  const GenService& s = services_[ServiceOf(flow)];
  const uint64_t offset = 1 + flow / kPortsPerAddr;
  if (s.key.vip.is_v4()) {
    dataplane::StoreBe32(out, static_cast<uint32_t>(v4_base_ + offset));
  } else {
    std::memcpy(out, opt_.client_v6.base.bytes.data(), 8);
    const uint64_t lo = __builtin_bswap64(v6_base_lo_ + offset);
    std::memcpy(out + 8, &lo, 8);
  }
}

dataplane::FlowTuple TrafficModel::Tuple(uint64_t flow) const {
  const GenService& s = services_[ServiceOf(flow)];
  dataplane::FlowTuple t;
  t.family = s.key.vip.family;
  t.proto = s.key.proto;
  t.sport = SourcePort(flow);
  t.dport = s.key.port;
  t.src.family = t.family;
  SourceAddress(flow, t.src.bytes.data());
  t.dst = s.key.vip;
  return t;
}

bool TrafficModel::FlowOf(uint8_t family, const uint8_t* src, uint16_t sport, uint64_t* flow,
                          size_t* service) const {
  if (sport < kFirstPort) return false;
  uint64_t offset;
  if (family == 4) {
    const uint32_t a = dataplane::LoadBe32(src);
    if (a <= v4_base_ || a - v4_base_ > opt_.client_v4.addrs) return false;
    offset = a - v4_base_;
  } else if (family == 6) {
    if (std::memcmp(src, opt_.client_v6.base.bytes.data(), 8) != 0) return false;
    uint64_t lo;
    std::memcpy(&lo, src + 8, 8);
    lo = __builtin_bswap64(lo);
    if (lo <= v6_base_lo_ || lo - v6_base_lo_ > opt_.client_v6.addrs) return false;
    offset = lo - v6_base_lo_;
  } else {
    return false;
  }
  const uint64_t f = (offset - 1) * kPortsPerAddr + (sport - kFirstPort);
  if (f >= capacity_) return false;
  const size_t si = ServiceOf(f);
  if (services_[si].key.vip.family != family) return false;
  *flow = f;
  *service = si;
  return true;
}

uint16_t TrafficModel::QueueOf(uint64_t flow) const {
  if (opt_.queues <= 1) return 0;
  if (opt_.steering == Steering::kFlowId) return static_cast<uint16_t>(flow % opt_.queues);
  // rte_ipv4_tuple / rte_ipv6_tuple order: source, destination, source port, destination port.
  const GenService& s = services_[ServiceOf(flow)];
  uint8_t in[36];
  const size_t alen = s.key.vip.size();
  SourceAddress(flow, in);
  std::memcpy(in + alen, s.key.vip.bytes.data(), alen);
  dataplane::StoreBe16(in + 2 * alen, SourcePort(flow));
  dataplane::StoreBe16(in + 2 * alen + 2, s.key.port);
  const uint32_t h = toeplitz_->Hash(std::span<const uint8_t>(in, 2 * alen + 4));
  return dataplane::PeerSteeredQueue(h, opt_.queues);
}

int32_t TrafficModel::ExpectedBackend(uint64_t flow) const {
  const GenService& s = services_[ServiceOf(flow)];
  const dataplane::FlowPlacement p = dataplane::PlaceFlow(*s.dp, Tuple(flow));
  return static_cast<int32_t>(s.dp->table->Lookup(p.maglev_hash));
}

std::vector<Neighbor> TrafficModel::Neighbors() const {
  // Every next hop of the config, not only the targeted services' (ecmplb resolves them all).
  std::map<std::pair<uint8_t, std::array<uint8_t, 16>>, Neighbor> all;
  for (const IpAddr& a : all_next_hops_) all[{a.family, a.bytes}] = Neighbor{a, NeighborMac(a)};
  std::vector<Neighbor> out;
  for (auto& [k, n] : all) out.push_back(n);
  return out;
}

}  // namespace ecmplb::gen
