// checker.cc: see checker.h.
#include "bench/gen/checker.h"

#include <cstring>

#include "bench/gen/frame_builder.h"
#include "dataplane/packet/encap.h"

namespace ecmplb::gen {
namespace {

using dataplane::LoadBe16;
using dataplane::LoadBe32;
namespace et = dataplane::ether_type;

constexpr uint16_t kNoBackend = 0xFFFF;  // first_seen_: a next hop that is no backend

}  // namespace

void CheckCounts::Merge(const CheckCounts& o) {
  rx_packets += o.rx_packets;
  rx_bytes += o.rx_bytes;
  other += o.other;
  sampled_out += o.sampled_out;
  checked += o.checked;
  ok += o.ok;
  wrong_backend += o.wrong_backend;
  moved += o.moved;
  corrupt += o.corrupt;
  unknown += o.unknown;
}

const char* VerdictName(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      return "ok";
    case Verdict::kWrongBackend:
      return "wrong_backend";
    case Verdict::kMoved:
      return "moved";
    case Verdict::kCorrupt:
      return "corrupt";
    case Verdict::kUnknown:
      return "unknown";
    case Verdict::kOther:
      return "other";
    case Verdict::kSampledOut:
      return "sampled_out";
  }
  return "?";
}

Checker::Checker(const TrafficModel& model, CheckerOptions options)
    : m_(model), opt_(options), flow_state_(model.flows(), 0) {
  if (opt_.sample < 1) opt_.sample = 1;
  host_v4_ = model.host_v4();
  gue_port_ = model.snapshot().host().gue_port;
  tunnel_v4_ = model.snapshot().host().tunnel_source.v4_host();
  if (opt_.flood_net.base.is_v4()) {
    flood_base_ = opt_.flood_net.base.v4_host();
    flood_size_ = uint64_t{1} << (32 - opt_.flood_net.prefix);
  }
  const ModelOptions& o = model.options();
  for (int i = 0; i < 2; ++i) {
    const uint16_t type = i == 0 ? et::kIpv4 : et::kIpv6;
    l2_len_ = dataplane::internal::WriteL2(l2_loopback_[i], o.src_mac, o.dst_mac,
                                           o.vlan.has_value(), o.vlan.value_or(0), type);
    dataplane::internal::WriteL2(l2_forwarded_[i], o.dst_mac, o.dst_mac, o.vlan.has_value(),
                                 o.vlan.value_or(0), type);
  }
}

Verdict Checker::Count(Verdict v) {
  switch (v) {
    case Verdict::kOk:
      ++counts_.ok;
      ++counts_.checked;
      break;
    case Verdict::kWrongBackend:
      ++counts_.wrong_backend;
      ++counts_.checked;
      break;
    case Verdict::kMoved:
      ++counts_.moved;
      ++counts_.checked;
      break;
    case Verdict::kCorrupt:
      ++counts_.corrupt;
      ++counts_.checked;
      break;
    case Verdict::kUnknown:
      ++counts_.unknown;
      break;
    case Verdict::kOther:
      ++counts_.other;
      break;
    case Verdict::kSampledOut:
      ++counts_.sampled_out;
      break;
  }
  return v;
}

int32_t Checker::BackendByMac(const GenService& s, const uint8_t* mac, int32_t hint) const {
  if (hint >= 0 &&
      std::memcmp(s.next_hop_mac[static_cast<size_t>(hint)].bytes.data(), mac, 6) == 0) {
    return hint;
  }
  for (size_t i = 0; i < s.next_hop_mac.size(); ++i) {
    if (std::memcmp(s.next_hop_mac[i].bytes.data(), mac, 6) == 0) return static_cast<int32_t>(i);
  }
  return -1;
}

int32_t Checker::BackendByAddr(const GenService& s, const uint8_t* addr4, int32_t hint) const {
  const auto& b = s.dp->backends;
  if (hint >= 0 && b[static_cast<size_t>(hint)].addr.is_v4() &&
      std::memcmp(b[static_cast<size_t>(hint)].addr.bytes.data(), addr4, 4) == 0) {
    return hint;
  }
  for (size_t i = 0; i < b.size(); ++i) {
    if (b[i].addr.is_v4() && std::memcmp(b[i].addr.bytes.data(), addr4, 4) == 0) {
      return static_cast<int32_t>(i);
    }
  }
  return -1;
}

Verdict Checker::Check(std::span<const uint8_t> frame, uint32_t now_ns32) {
  const uint8_t* f = frame.data();
  const size_t n = frame.size();
  ++counts_.rx_packets;
  counts_.rx_bytes += n;
  const ModelOptions& o = m_.options();

  // L2.
  if (n < dataplane::kEthHeaderLen) return Count(Verdict::kOther);
  size_t l2 = dataplane::kEthHeaderLen;
  uint16_t type = LoadBe16(f + 12);
  if (type == et::kVlan) {
    if (n < dataplane::kEthVlanHeaderLen) return Count(Verdict::kOther);
    type = LoadBe16(f + 16);
    l2 = dataplane::kEthVlanHeaderLen;
  }
  if (type != et::kIpv4 && type != et::kIpv6) return Count(Verdict::kOther);

  // Outer IP: the packet itself, or (IPv4) a tunnel around it: GRE (protocol 47), IPIP (4 or
  // 41) or GUE (UDP to host.gue_port, the inner packet right after the UDP header).
  const uint8_t* ip = f + l2;
  size_t avail = n - l2;
  uint8_t family;
  using dataplane::ForwardMode;
  ForwardMode tunnel = ForwardMode::kDr;
  size_t overhead = 0;
  if (type == et::kIpv4 && avail >= dataplane::kIpv4MinHeaderLen) {
    const uint8_t proto = ip[9];
    if (proto == inet::ip_proto::kGre) {
      tunnel = ForwardMode::kGre;
      overhead = dataplane::kGreOverhead;
    } else if (proto == inet::ip_proto::kIpip || proto == inet::ip_proto::kIpv6) {
      tunnel = ForwardMode::kIpip;
      overhead = dataplane::kIpipOverhead;
    } else if (proto == inet::ip_proto::kUdp && ip[0] == 0x45 &&
               avail > dataplane::kGueOverhead && LoadBe16(ip + 22) == gue_port_ &&
               LoadBe32(ip + 12) == tunnel_v4_) {
      tunnel = ForwardMode::kGue;
      overhead = dataplane::kGueOverhead;
    }
  }
  if (type == et::kIpv4 && flood_size_ != 0 && avail >= dataplane::kIpv4MinHeaderLen &&
      (uint64_t{LoadBe32(ip + 12) - flood_base_} < flood_size_ ||
       uint64_t{LoadBe32(ip + 16) - flood_base_} < flood_size_)) {
    return Count(Verdict::kOther);  // flood, or the answer to it
  }
  // The balancer's own kernel (flow sync to its peers, health checks): not ours. Tunnels come
  // from the host address too: they are test traffic.
  if (type == et::kIpv4 && host_v4_ != 0 && avail >= dataplane::kIpv4MinHeaderLen &&
      tunnel == ForwardMode::kDr && LoadBe32(ip + 12) == host_v4_) {
    return Count(Verdict::kOther);
  }
  if (type == et::kIpv4) {
    if (avail < dataplane::kIpv4MinHeaderLen || (ip[0] >> 4) != 4) return Count(Verdict::kUnknown);
    const uint8_t proto = ip[9];
    if (tunnel != ForwardMode::kDr) {
      if (opt_.mode != ExpectMode::kBalancer) return Count(Verdict::kUnknown);
      if (ip[0] != 0x45 || avail <= overhead) return Count(Verdict::kUnknown);
      if (tunnel == ForwardMode::kGre) {
        const uint16_t inner_type = LoadBe16(ip + 22);
        if (inner_type != et::kIpv4 && inner_type != et::kIpv6) return Count(Verdict::kUnknown);
        family = inner_type == et::kIpv4 ? 4 : 6;
      } else if (tunnel == ForwardMode::kIpip) {
        family = proto == inet::ip_proto::kIpip ? 4 : 6;
      } else {
        family = ip[overhead] >> 4;
        if (family != 4 && family != 6) return Count(Verdict::kUnknown);
      }
      ip += overhead;
      avail -= overhead;
    } else if (proto == inet::ip_proto::kTcp || proto == inet::ip_proto::kUdp) {
      family = 4;
    } else {
      return Count(Verdict::kOther);  // ICMP, OSPF, ...
    }
  } else {
    if (avail < dataplane::kIpv6HeaderLen || (ip[0] >> 4) != 6) return Count(Verdict::kUnknown);
    if (ip[6] != inet::ip_proto::kTcp && ip[6] != inet::ip_proto::kUdp) {
      return Count(Verdict::kOther);
    }
    family = 6;
  }

  // The inner (or only) packet: our flow?
  const uint8_t *src, *dst, *l4;
  uint8_t proto;
  if (family == 4) {
    if (avail < dataplane::kIpv4MinHeaderLen || ip[0] != 0x45) return Count(Verdict::kUnknown);
    proto = ip[9];
    src = ip + 12;
    dst = ip + 16;
    l4 = ip + dataplane::kIpv4MinHeaderLen;
  } else {
    if (avail < dataplane::kIpv6HeaderLen || (ip[0] >> 4) != 6) return Count(Verdict::kUnknown);
    proto = ip[6];
    src = ip + 8;
    dst = ip + 24;
    l4 = ip + dataplane::kIpv6HeaderLen;
  }
  const size_t l4_avail = avail - static_cast<size_t>(l4 - ip);
  const bool tcp = proto == inet::ip_proto::kTcp;
  if (!tcp && proto != inet::ip_proto::kUdp) return Count(Verdict::kUnknown);
  if (l4_avail < (tcp ? dataplane::kTcpMinHeaderLen : dataplane::kUdpHeaderLen + kUdpStampLen)) {
    return Count(Verdict::kUnknown);
  }
  uint64_t flow;
  size_t si;
  if (!m_.FlowOf(family, src, LoadBe16(l4), &flow, &si)) return Count(Verdict::kUnknown);
  const GenService& s = m_.service(si);
  if (s.key.proto != proto || s.key.port != LoadBe16(l4 + 2) ||
      std::memcmp(s.key.vip.bytes.data(), dst, s.key.vip.size()) != 0 ||
      tunnel != (opt_.mode == ExpectMode::kBalancer ? s.forward : ForwardMode::kDr)) {
    return Count(Verdict::kUnknown);
  }
  if (--sample_countdown_ != 0) return Count(Verdict::kSampledOut);
  sample_countdown_ = opt_.sample;

  // Rebuild the IP packet from (flow, seq, ts) and compare.
  const uint32_t seq = LoadBe32(l4 + (tcp ? 4 : 8));
  const uint32_t ts = LoadBe32(l4 + (tcp ? 8 : 12));
  if (avail < s.ip_len) return Count(Verdict::kCorrupt);
  // Trailing bytes: only Ethernet padding up to 60 bytes may follow the IP packet.
  const size_t frame_end = static_cast<size_t>(ip - f) + s.ip_len;
  if (n > frame_end && n > 60) return Count(Verdict::kCorrupt);
  if (!IpPacketMatches(m_, si, flow, seq, ts, ip)) return Count(Verdict::kCorrupt);

  // L2 (and a tunnel's outer) headers.
  int32_t observed;
  int32_t expected = -1;
  if (opt_.mode == ExpectMode::kLoopback) {
    // As sent, with the MACs swapped.
    const uint8_t* e = l2_loopback_[family == 4 ? 0 : 1];
    if (l2 != l2_len_ || std::memcmp(e + 12, f + 12, l2 - 12) != 0) {
      return Count(Verdict::kCorrupt);
    }
    if (std::memcmp(e, f, 12) != 0) return Count(Verdict::kWrongBackend);
    observed = 0;
    expected = 0;
  } else {
    // Established flows: Maglev's pick is computed once and kept with the first-seen record.
    if (flow < flow_state_.size()) {
      uint32_t& st = flow_state_[flow];
      if ((st & 0xFFFF) == 0) st |= static_cast<uint32_t>(m_.ExpectedBackend(flow) + 1) & 0xFFFF;
      expected = static_cast<int32_t>(st & 0xFFFF) - 1;
    } else {
      expected = m_.ExpectedBackend(flow);
    }
    // Everything but the destination MAC must be exactly what ecmplb writes for `observed`.
    if (tunnel == ForwardMode::kDr) {
      observed = BackendByMac(s, f, expected);
      const uint8_t* e = l2_forwarded_[family == 4 ? 0 : 1];
      if (l2 != l2_len_ || std::memcmp(e + 12, f + 12, l2 - 12) != 0 ||
          (opt_.check_src_mac && std::memcmp(e + 6, f + 6, 6) != 0)) {
        return Count(Verdict::kCorrupt);
      }
    } else {
      const uint8_t* outer = f + l2;
      observed = BackendByAddr(s, outer + 16, expected);
      if (observed >= 0) {
        const dataplane::HostInfo& host = m_.snapshot().host();
        const bool df = family == 6 || (ip[6] & 0x40) != 0;
        const uint8_t outer_proto = tunnel == ForwardMode::kGre   ? inet::ip_proto::kGre
                                    : tunnel == ForwardMode::kGue ? inet::ip_proto::kUdp
                                    : family == 4                 ? inet::ip_proto::kIpip
                                                                  : inet::ip_proto::kIpv6;
        const size_t el2 = dataplane::internal::WriteL2(
            scratch_, s.next_hop_mac[static_cast<size_t>(observed)], o.dst_mac, o.vlan.has_value(),
            o.vlan.value_or(0), et::kIpv4);
        dataplane::internal::WriteIpv4Header(
            scratch_ + el2, family == 4 ? ip[1] : static_cast<uint8_t>(LoadBe16(ip) >> 4),
            static_cast<uint16_t>(overhead + s.ip_len), df ? uint16_t{0} : LoadBe16(ip + 4), df,
            dataplane::kOriginTtl, outer_proto, host.tunnel_source,
            s.dp->backends[static_cast<size_t>(observed)].addr);
        uint8_t* th = scratch_ + el2 + dataplane::kIpv4MinHeaderLen;
        if (tunnel == ForwardMode::kGre) {
          dataplane::StoreBe16(th, 0);
          dataplane::StoreBe16(th + 2, family == 4 ? et::kIpv4 : et::kIpv6);
        } else if (tunnel == ForwardMode::kGue) {
          // The source port comes from the flow's hash: any in 49152..65535.
          const uint16_t sport = LoadBe16(outer + dataplane::kIpv4MinHeaderLen);
          if (sport < 0xC000) return Count(Verdict::kCorrupt);
          dataplane::StoreBe16(th, sport);
          dataplane::StoreBe16(th + 2, gue_port_);
          dataplane::StoreBe16(th + 4, static_cast<uint16_t>(dataplane::kUdpHeaderLen + s.ip_len));
          dataplane::StoreBe16(th + 6, 0);
        }
        if (el2 != l2 || std::memcmp(scratch_ + 6, f + 6, l2 + overhead - 6) != 0) {
          if (!opt_.check_src_mac) {
            // Compare all but the source MAC.
            if (el2 != l2 || std::memcmp(scratch_ + 12, f + 12, l2 + overhead - 12) != 0) {
              return Count(Verdict::kCorrupt);
            }
          } else {
            return Count(Verdict::kCorrupt);
          }
        }
        // The outer destination MAC must be the next hop's.
        if (std::memcmp(scratch_, f, 6) != 0) observed = -1;
      }
    }
  }
  latency_.Add(static_cast<uint32_t>(now_ns32 - ts));
  if (opt_.mode == ExpectMode::kBalancer && flow < flow_state_.size()) {
    const uint32_t rec = observed >= 0 ? static_cast<uint32_t>(observed + 1) : kNoBackend;
    uint32_t& st = flow_state_[flow];
    const uint32_t first = st >> 16;
    if (first == 0) {
      st |= rec << 16;
    } else if (first != rec) {
      return Count(Verdict::kMoved);
    }
  }
  if (observed < 0 || observed != expected) return Count(Verdict::kWrongBackend);
  return Count(Verdict::kOk);
}

}  // namespace ecmplb::gen
