// exception_policy.cc: see exception_policy.h.
#include "dataplane/exception_policy.h"

#include "common/inet.h"
#include "dataplane/snapshot.h"

namespace ecmplb::dataplane {

const char* ExceptionClassName(ExceptionClass c) {
  switch (c) {
    case ExceptionClass::kOther:
      return "other";
    case ExceptionClass::kArp:
      return "arp";
    case ExceptionClass::kOspf:
      return "ospf";
    case ExceptionClass::kBfd:
      return "bfd";
    case ExceptionClass::kHealthReply:
      return "health";
    case ExceptionClass::kBgp:
      return "bgp";
    case ExceptionClass::kUnsolicited:
      return "unsolicited";
    case ExceptionClass::kSync:
      return "sync";
    case ExceptionClass::kNd:
      return "nd";
    case ExceptionClass::kFleet:
      return "fleet";
  }
  return "?";
}

namespace {

constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint8_t kProtoOspf = 89;
constexpr uint16_t kBfdSingleHopPort = 3784;
constexpr uint16_t kBgpPort = 179;
constexpr uint8_t kTcpSyn = 0x02, kTcpAck = 0x10, kTcpRst = 0x04;

constexpr uint8_t kNeighborSolicitation = 135, kNeighborAdvertisement = 136;

bool IsLinkLocal6(const IpAddr& a) {
  return a.is_v6() && a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80;
}

// The sender is on the host's own link: its IPv4 subnet, its IPv6 subnet, or (IPv6: what
// routing protocols and ND speak from) a link-local address.
bool InHostSubnet(const IpAddr& a, const HostInfo& h) {
  if (a.is_v4()) {
    if (!h.address.is_v4()) return false;
    const uint32_t mask = h.prefix_length == 0 ? 0 : ~uint32_t{0} << (32 - h.prefix_length);
    return (a.v4_host() & mask) == (h.address.v4_host() & mask);
  }
  if (IsLinkLocal6(a)) return true;
  if (!h.address6.is_v6()) return false;
  for (size_t bit = 0; bit < h.prefix_length6; bit += 8) {
    const size_t n = h.prefix_length6 - bit;
    const uint8_t mask = n >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - n));
    if ((a.bytes[bit / 8] & mask) != (h.address6.bytes[bit / 8] & mask)) return false;
  }
  return true;
}

}  // namespace

ExceptionClass ClassifyException(std::span<const uint8_t> frame, ParseResult r,
                                 const ParsedPacket& p, const Snapshot& snap) {
  const HostInfo& h = snap.host();
  if (r == ParseResult::kNotIp) {
    // ARP (Ethernet/IPv4: 28 bytes) whose target protocol address is ours.
    const size_t arp = p.l2_len;
    if (p.ether_type == kEtherTypeArp && frame.size() >= arp + 28 && h.address.is_v4() &&
        frame[arp + 5] == 4 && LoadBe32(frame.data() + arp + 24) == h.address.v4_host()) {
      return ExceptionClass::kArp;
    }
    return ExceptionClass::kOther;
  }
  if (p.proto == kProtoOspf) {
    // OSPFv2 from the subnet, OSPFv3 from a link-local address (RFC 5340): TTL / hop limit 1.
    const bool from_link = p.family == 4 ? InHostSubnet(p.src, h) : IsLinkLocal6(p.src);
    return p.ttl == 1 && from_link ? ExceptionClass::kOspf : ExceptionClass::kOther;
  }
  if (p.proto == inet::ip_proto::kIcmpv6 && p.has_l4 && p.ttl == 255 &&
      (p.icmp_type == kNeighborSolicitation || p.icmp_type == kNeighborAdvertisement)) {
    return ExceptionClass::kNd;  // a hop limit of 255 cannot have crossed a router
  }
  const bool to_host = p.dst == h.address || (h.address6.is_v6() && p.dst == h.address6);
  if (p.proto == inet::ip_proto::kUdp && p.has_l4) {
    // Single-hop BFD (RFC 5881): TTL / hop limit 255, from the link, to the
    // host; OSPFv3's sessions run between link-local addresses.
    const bool link_local = IsLinkLocal6(p.src) && IsLinkLocal6(p.dst);
    if (p.dport == kBfdSingleHopPort && p.ttl == 255 && InHostSubnet(p.src, h) &&
        (to_host || link_local)) {
      return ExceptionClass::kBfd;
    }
    if (to_host && p.dport == h.exception.sync_port && h.exception.sync_port != 0) {
      // Only the configured peers: a forged sync message from anywhere else never reaches
      // the kernel (the sync engine would refuse it too, at a higher cost).
      return p.src.is_v4() && h.exception.IsSyncPeer(p.src.v4_host())
                 ? ExceptionClass::kSync
                 : ExceptionClass::kUnsolicited;
    }
    // Replies to the host's own UDP and DNS health checks come from a backend's address.
    if (to_host && snap.IsBackend(p.src)) return ExceptionClass::kHealthReply;
    if (to_host && h.exception.drop_unsolicited && !h.exception.allow_udp[p.dport]) {
      return ExceptionClass::kUnsolicited;
    }
    return ExceptionClass::kOther;
  }
  if (p.proto == inet::ip_proto::kTcp && p.has_l4 && to_host) {
    const bool bare_syn = (p.tcp_flags & (kTcpSyn | kTcpAck | kTcpRst)) == kTcpSyn;
    if (!bare_syn && snap.IsBackend(p.src)) return ExceptionClass::kHealthReply;
    if (p.dport == kBgpPort || p.sport == kBgpPort) return ExceptionClass::kBgp;
    if (h.exception.IsFleetEndpoint(p.src, p.sport)) return ExceptionClass::kFleet;
    // Bulk flow sync: TCP to our sync port (a peer asks) or from a peer's (it answers), from
    // configured peers only.
    const uint16_t sp = h.exception.sync_port;
    if (sp != 0 && (p.dport == sp || p.sport == sp)) {
      return p.src.is_v4() && h.exception.IsSyncPeer(p.src.v4_host())
                 ? ExceptionClass::kSync
                 : ExceptionClass::kUnsolicited;
    }
    if (h.exception.drop_unsolicited && !h.exception.allow_tcp[p.dport]) {
      return ExceptionClass::kUnsolicited;
    }
  }
  return ExceptionClass::kOther;
}

}  // namespace ecmplb::dataplane
