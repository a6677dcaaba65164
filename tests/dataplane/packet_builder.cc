// Test-side packet builder; see packet_builder.h.
#include "tests/dataplane/packet_builder.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <span>

#include "dataplane/packet/checksum.h"

namespace ecmplb::dataplane::testing {
namespace {

void Die(const char* what, std::string_view text) {
  std::fprintf(stderr, "packet_builder: %s '%.*s'\n", what, static_cast<int>(text.size()),
               text.data());
  std::abort();
}

void Put16(std::vector<uint8_t>& v, uint16_t x) {
  v.push_back(static_cast<uint8_t>(x >> 8));
  v.push_back(static_cast<uint8_t>(x));
}
void Put32(std::vector<uint8_t>& v, uint32_t x) {
  Put16(v, static_cast<uint16_t>(x >> 16));
  Put16(v, static_cast<uint16_t>(x));
}
void PutAddr(std::vector<uint8_t>& v, const IpAddr& a) {
  v.insert(v.end(), a.bytes.begin(), a.bytes.begin() + a.size());
}

}  // namespace

MacAddr Mac(std::string_view text) {
  auto m = MacAddr::Parse(text);
  if (!m.ok()) Die("bad MAC", text);
  return *m;
}

IpAddr Ip(std::string_view text) {
  auto a = IpAddr::Parse(text);
  if (!a.ok()) Die("bad IP", text);
  return *a;
}

std::vector<uint8_t> FromHex(std::string_view hex) {
  std::vector<uint8_t> out;
  int pending = -1;
  for (char c : hex) {
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else if (c == ' ' || c == '\n' || c == '\t') {
      continue;
    } else {
      Die("bad hex", hex);
      return out;
    }
    if (pending < 0) {
      pending = d;
    } else {
      out.push_back(static_cast<uint8_t>(pending * 16 + d));
      pending = -1;
    }
  }
  if (pending >= 0) Die("odd number of hex digits", hex);
  return out;
}

std::string ToHex(const std::vector<uint8_t>& bytes) {
  std::string s;
  char buf[4];
  for (size_t i = 0; i < bytes.size(); ++i) {
    std::snprintf(buf, sizeof(buf), "%02x", bytes[i]);
    s += buf;
    s += (i % 16 == 15) ? '\n' : ' ';
  }
  return s;
}

PacketBuilder::PacketBuilder()
    : src_mac_(Mac("02:00:00:00:00:01")),
      dst_mac_(Mac("02:00:00:00:00:02")),
      src_(IpAddr::V4(0x0A000001)),
      dst_(IpAddr::V4(0x0A000002)) {}

PacketBuilder& PacketBuilder::Eth(const MacAddr& src, const MacAddr& dst) {
  src_mac_ = src;
  dst_mac_ = dst;
  return *this;
}
PacketBuilder& PacketBuilder::Vlan(uint16_t tci) {
  vlan_ = tci;
  return *this;
}
PacketBuilder& PacketBuilder::RawEtherType(uint16_t type) {
  raw_ether_type_ = type;
  return *this;
}
PacketBuilder& PacketBuilder::Ipv4(const IpAddr& src, const IpAddr& dst) {
  if (!src.is_v4() || !dst.is_v4()) Die("Ipv4 wants IPv4 addresses", "");
  src_ = src;
  dst_ = dst;
  return *this;
}
PacketBuilder& PacketBuilder::Ipv6(const IpAddr& src, const IpAddr& dst) {
  if (!src.is_v6() || !dst.is_v6()) Die("Ipv6 wants IPv6 addresses", "");
  src_ = src;
  dst_ = dst;
  return *this;
}
PacketBuilder& PacketBuilder::Ttl(uint8_t ttl) {
  ttl_ = ttl;
  return *this;
}
PacketBuilder& PacketBuilder::Tos(uint8_t tos) {
  tos_ = tos;
  return *this;
}
PacketBuilder& PacketBuilder::Id(uint16_t id) {
  id_ = id;
  return *this;
}
PacketBuilder& PacketBuilder::Df(bool df) {
  df_ = df;
  return *this;
}
PacketBuilder& PacketBuilder::Mf(bool mf) {
  mf_ = mf;
  return *this;
}
PacketBuilder& PacketBuilder::FragOffset(uint16_t units) {
  frag_offset_ = units;
  return *this;
}
PacketBuilder& PacketBuilder::Ipv4Options(size_t bytes) {
  if (bytes % 4 != 0 || bytes > 40) Die("bad IPv4 options length", "");
  ip_options_ = bytes;
  return *this;
}
PacketBuilder& PacketBuilder::Ipv6Extension(uint8_t type, size_t bytes) {
  if (bytes < 8 || bytes % 8 != 0 || bytes > 2048) Die("bad extension header length", "");
  extensions_.push_back(Extension{type, bytes, 0, 0});
  return *this;
}
PacketBuilder& PacketBuilder::Ipv6Fragment(uint16_t offset_units, bool more, uint32_t id) {
  extensions_.push_back(Extension{inet::ip_proto::kIpv6Fragment, 8,
                                  static_cast<uint16_t>(offset_units << 3 | (more ? 1 : 0)), id});
  return *this;
}
PacketBuilder& PacketBuilder::Tcp(uint16_t sport, uint16_t dport, uint8_t flags) {
  l4_ = L4::kTcp;
  sport_ = sport;
  dport_ = dport;
  tcp_flags_ = flags;
  return *this;
}
PacketBuilder& PacketBuilder::TcpOptions(size_t bytes) {
  if (bytes % 4 != 0 || bytes > 40) Die("bad TCP options length", "");
  tcp_options_ = bytes;
  return *this;
}
PacketBuilder& PacketBuilder::Udp(uint16_t sport, uint16_t dport) {
  l4_ = L4::kUdp;
  sport_ = sport;
  dport_ = dport;
  return *this;
}
PacketBuilder& PacketBuilder::Icmp(uint8_t type, uint8_t code, uint32_t rest) {
  l4_ = L4::kIcmp;
  icmp_type_ = type;
  icmp_code_ = code;
  icmp_rest_ = rest;
  return *this;
}
PacketBuilder& PacketBuilder::IcmpError(uint8_t type, uint8_t code, uint32_t rest,
                                        const std::vector<uint8_t>& quoted, size_t quote_limit) {
  Icmp(type, code, rest);
  const size_t n = std::min(quoted.size(), quote_limit);
  payload_.assign(quoted.begin(), quoted.begin() + n);
  return *this;
}
PacketBuilder& PacketBuilder::Proto(uint8_t proto) {
  l4_ = L4::kNone;
  proto_ = proto;
  return *this;
}
PacketBuilder& PacketBuilder::Payload(std::vector<uint8_t> payload) {
  payload_ = std::move(payload);
  return *this;
}
PacketBuilder& PacketBuilder::PayloadSize(size_t n) {
  payload_.resize(n);
  for (size_t i = 0; i < n; ++i) payload_[i] = static_cast<uint8_t>(i);
  return *this;
}
PacketBuilder& PacketBuilder::Padding(size_t n) {
  padding_ = n;
  return *this;
}

std::vector<uint8_t> PacketBuilder::BuildIp() const {
  const bool v6 = src_.is_v6();
  uint8_t proto = proto_;
  std::vector<uint8_t> l4;
  switch (l4_) {
    case L4::kTcp: {
      proto = inet::ip_proto::kTcp;
      Put16(l4, sport_);
      Put16(l4, dport_);
      Put32(l4, 0x01020304);  // sequence number
      Put32(l4, (tcp_flags_ & inet::tcp_flag::kAck) ? 0x0A0B0C0D : 0);
      l4.push_back(static_cast<uint8_t>(((20 + tcp_options_) / 4) << 4));
      l4.push_back(tcp_flags_);
      Put16(l4, 0xFFFF);                              // window
      Put16(l4, 0);                                   // checksum
      Put16(l4, 0);                                   // urgent pointer
      l4.insert(l4.end(), tcp_options_, uint8_t{1});  // NOP
      break;
    }
    case L4::kUdp:
      proto = inet::ip_proto::kUdp;
      Put16(l4, sport_);
      Put16(l4, dport_);
      Put16(l4, static_cast<uint16_t>(8 + payload_.size()));
      Put16(l4, 0);
      break;
    case L4::kIcmp:
      proto = v6 ? inet::ip_proto::kIcmpv6 : inet::ip_proto::kIcmp;
      l4.push_back(icmp_type_);
      l4.push_back(icmp_code_);
      Put16(l4, 0);
      Put32(l4, icmp_rest_);
      break;
    case L4::kNone:
      break;
  }
  const size_t csum_at = l4_ == L4::kTcp ? 16 : l4_ == L4::kUdp ? 6 : 2;
  l4.insert(l4.end(), payload_.begin(), payload_.end());
  if (l4_ != L4::kNone) {
    uint16_t c =
        (l4_ == L4::kIcmp && !v6) ? InternetChecksum(l4) : L4Checksum(src_, dst_, proto, l4);
    if (l4_ == L4::kUdp && c == 0) c = 0xFFFF;
    StoreBe16(l4.data() + csum_at, c);
  }

  std::vector<uint8_t> ip;
  if (v6) {
    std::vector<uint8_t> ext;
    uint8_t first = proto;
    for (size_t e = 0; e < extensions_.size(); ++e) {
      const Extension& x = extensions_[e];
      if (e == 0) first = x.type;
      ext.push_back(e + 1 < extensions_.size() ? extensions_[e + 1].type : proto);
      if (x.type == inet::ip_proto::kIpv6Fragment) {
        ext.push_back(0);
        Put16(ext, x.frag_field);
        Put32(ext, x.id);
        continue;
      }
      ext.push_back(static_cast<uint8_t>(x.bytes / 8 - 1));
      // PadN option over the remaining bytes (type 1, length).
      ext.push_back(1);
      ext.push_back(static_cast<uint8_t>(x.bytes - 4));
      ext.insert(ext.end(), x.bytes - 4, uint8_t{0});
    }
    Put32(ip, 0x60000000u | (uint32_t{tos_} << 20));
    Put16(ip, static_cast<uint16_t>(ext.size() + l4.size()));
    ip.push_back(first);
    ip.push_back(ttl_);
    PutAddr(ip, src_);
    PutAddr(ip, dst_);
    ip.insert(ip.end(), ext.begin(), ext.end());
  } else {
    const size_t hlen = 20 + ip_options_;
    ip.push_back(static_cast<uint8_t>(0x40 | (hlen / 4)));
    ip.push_back(tos_);
    Put16(ip, static_cast<uint16_t>(hlen + l4.size()));
    Put16(ip, id_);
    Put16(ip, static_cast<uint16_t>((df_ ? kIpv4FlagDf : 0) | (mf_ ? kIpv4FlagMf : 0) |
                                    (frag_offset_ & kIpv4FragOffsetMask)));
    ip.push_back(ttl_);
    ip.push_back(proto);
    Put16(ip, 0);
    PutAddr(ip, src_);
    PutAddr(ip, dst_);
    for (size_t i = 0; i < ip_options_; ++i) {
      ip.push_back(i + 1 == ip_options_ ? 0 : 1);  // NOPs, then EOL
    }
    StoreBe16(ip.data() + 10, Ipv4HeaderChecksum(ip));
  }
  ip.insert(ip.end(), l4.begin(), l4.end());
  return ip;
}

std::vector<uint8_t> PacketBuilder::Build() const {
  std::vector<uint8_t> f;
  f.insert(f.end(), dst_mac_.bytes.begin(), dst_mac_.bytes.end());
  f.insert(f.end(), src_mac_.bytes.begin(), src_mac_.bytes.end());
  if (vlan_) {
    Put16(f, ether_type::kVlan);
    Put16(f, *vlan_);
  }
  if (raw_ether_type_) {
    Put16(f, *raw_ether_type_);
    f.insert(f.end(), payload_.begin(), payload_.end());
  } else {
    Put16(f, src_.is_v6() ? ether_type::kIpv6 : ether_type::kIpv4);
    const std::vector<uint8_t> ip = BuildIp();
    f.insert(f.end(), ip.begin(), ip.end());
  }
  f.insert(f.end(), padding_, uint8_t{0});
  return f;
}

std::vector<std::vector<uint8_t>> FragmentFrame(const std::vector<uint8_t>& frame, size_t bytes,
                                                uint32_t id) {
  if (bytes == 0 || bytes % 8 != 0 || frame.size() < 14) Die("bad fragment size", "");
  const bool v6 = LoadBe16(frame.data() + 12) == ether_type::kIpv6;
  const size_t hlen = v6 ? kIpv6HeaderLen : size_t{static_cast<uint8_t>(frame[14] & 0x0F)} * 4;
  const size_t total = v6 ? kIpv6HeaderLen + LoadBe16(frame.data() + 18) : LoadBe16(frame.data() + 16);
  const std::vector<uint8_t> head(frame.begin(), frame.begin() + 14 + hlen);
  const std::vector<uint8_t> data(frame.begin() + 14 + hlen, frame.begin() + 14 + total);
  std::vector<std::vector<uint8_t>> out;
  for (size_t at = 0; at < data.size(); at += bytes) {
    const size_t n = std::min(bytes, data.size() - at);
    const bool more = at + n < data.size();
    std::vector<uint8_t> f = head;
    if (v6) {
      const uint8_t proto = f[14 + 6];
      f[14 + 6] = inet::ip_proto::kIpv6Fragment;
      f.push_back(proto);
      f.push_back(0);
      Put16(f, static_cast<uint16_t>((at / 8) << 3 | (more ? 1 : 0)));
      Put32(f, id);
      StoreBe16(f.data() + 18, static_cast<uint16_t>(8 + n));
    } else {
      StoreBe16(f.data() + 16, static_cast<uint16_t>(hlen + n));
      StoreBe16(f.data() + 18, static_cast<uint16_t>(id));
      StoreBe16(f.data() + 20, static_cast<uint16_t>((more ? kIpv4FlagMf : 0) | (at / 8)));
      StoreBe16(f.data() + 24, 0);
      StoreBe16(f.data() + 24, Ipv4HeaderChecksum(std::span<const uint8_t>(f.data() + 14, hlen)));
    }
    f.insert(f.end(), data.begin() + static_cast<std::ptrdiff_t>(at),
             data.begin() + static_cast<std::ptrdiff_t>(at + n));
    out.push_back(std::move(f));
  }
  return out;
}

}  // namespace ecmplb::dataplane::testing
