#include "conntrack/sync_message.h"

#include <algorithm>
#include <cstring>
#include <iterator>
#include <utility>

#include "common/inet.h"

namespace ecmplb::conntrack::sync {
namespace {

constexpr uint8_t kMagic[4] = {'E', 'L', 'B', 'S'};

static_assert(kMaxEntriesPerBody == 47);
static_assert(kMaxEntriesPerBody <= 0xffff);

// Big-endian stores and loads on raw bytes (the callers check bounds).
inline void Put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void Put32(uint8_t* p, uint32_t v) {
  for (int i = 3; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
inline void Put64(uint8_t* p, uint64_t v) {
  for (int i = 7; i >= 0; --i, v >>= 8) p[i] = static_cast<uint8_t>(v);
}
inline uint16_t Get16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
inline uint32_t Get32(const uint8_t* p) {
  return (uint32_t{p[0]} << 24) | (uint32_t{p[1]} << 16) | (uint32_t{p[2]} << 8) | p[3];
}
inline uint64_t Get64(const uint8_t* p) { return (uint64_t{Get32(p)} << 32) | Get32(p + 4); }

inline bool ValidState(uint8_t s) {
  return s == static_cast<uint8_t>(FlowState::kEstablished) ||
         s == static_cast<uint8_t>(FlowState::kClosing);
}
inline bool ValidProto(uint8_t p) { return p == inet::ip_proto::kTcp || p == inet::ip_proto::kUdp; }

inline bool AllZero(const uint8_t* p, size_t n) {
  uint8_t acc = 0;
  for (size_t i = 0; i < n; ++i) acc |= p[i];
  return acc == 0;
}

// An address of `family` as stored in an Addr is usable: not all zero, IPv4 padding zero.
inline bool ValidAddr(const Addr& a) {
  if (a.family == 4) return !AllZero(a.bytes.data(), 4) && AllZero(a.bytes.data() + 4, 12);
  return !AllZero(a.bytes.data(), 16);
}

}  // namespace

void EncodeFleetBeacon(const FleetBeacon& b, std::vector<uint8_t>* out) {
  uint8_t buf[kFleetBodyBytes];
  Put64(buf, static_cast<uint64_t>(b.version));
  Put64(buf + 8, b.root);
  buf[16] = b.serving ? 1 : 0;
  out->insert(out->end(), buf, buf + kFleetBodyBytes);
}

BodyError DecodeFleetBeacon(std::span<const uint8_t> body, FleetBeacon* out) {
  if (body.size() < kFleetBodyBytes) return BodyError::kTruncated;
  if (body.size() > kFleetBodyBytes) return BodyError::kTrailingBytes;
  if ((body[16] & ~uint8_t{1}) != 0) return BodyError::kBadState;
  out->version = static_cast<int64_t>(Get64(body.data()));
  out->root = Get64(body.data() + 8);
  out->serving = (body[16] & 1) != 0;
  return BodyError::kOk;
}

const char* MessageTypeName(MessageType t) {
  switch (t) {
    case MessageType::kEntries:
      return "entries";
    case MessageType::kBulkRequest:
      return "bulk_request";
    case MessageType::kBulkChunk:
      return "bulk_chunk";
    case MessageType::kBulkEnd:
      return "bulk_end";
    case MessageType::kFleet:
      return "fleet";
  }
  return "invalid";
}

const char* BodyErrorName(BodyError e) {
  static constexpr const char* kNames[] = {"ok",         "truncated", "trailing_bytes",
                                           "bad_family", "bad_state", "bad_proto",
                                           "too_many_entries", "bad_address"};
  static_assert(std::size(kNames) == kBodyErrorCount);
  const auto i = static_cast<size_t>(e);
  return i < std::size(kNames) ? kNames[i] : "invalid";
}

const char* HeaderErrorName(HeaderError e) {
  static constexpr const char* kNames[] = {"ok",          "truncated", "bad_magic",
                                           "bad_version", "bad_type",  "bad_flags"};
  static_assert(std::size(kNames) == kHeaderErrorCount);
  const auto i = static_cast<size_t>(e);
  return i < std::size(kNames) ? kNames[i] : "invalid";
}

BodyError CheckEntry(const Entry& e) {
  const uint8_t f = e.vip.family;
  if (f != 4 && f != 6) return BodyError::kBadFamily;
  if (e.client.family != f || e.backend.family != f) return BodyError::kBadFamily;
  if (!ValidState(static_cast<uint8_t>(e.state))) return BodyError::kBadState;
  if (!ValidProto(e.proto)) return BodyError::kBadProto;
  if (!ValidAddr(e.vip) || !ValidAddr(e.client) || !ValidAddr(e.backend) || e.vport == 0 ||
      e.cport == 0) {
    return BodyError::kBadAddress;
  }
  return BodyError::kOk;
}

size_t EncodedSize(const Entry& e) { return e.vip.family == 6 ? kEntryBytesV6 : kEntryBytesV4; }

// Entry layout (n = 4 or 16 address bytes):
//   flags(1) = state << 4 | family   proto(1)
//   vip(n) vport(2)   client(n) cport(2)   backend(n) bport(2)
//   age_s(4) assigned_age_s(4)
size_t EncodeEntries(std::span<const Entry> entries, size_t max_bytes, std::vector<uint8_t>* out) {
  if (max_bytes < kBodyHeaderBytes) return 0;
  const size_t limit = std::min(max_bytes, kMaxBodyBytes);
  // First pass: how many entries go in, and how many bytes they take.
  size_t n = 0;
  size_t bytes = kBodyHeaderBytes;
  for (const Entry& e : entries) {
    const size_t sz = EncodedSize(e);
    if (bytes + sz > limit || CheckEntry(e) != BodyError::kOk) break;
    bytes += sz;
    ++n;
  }
  const size_t start = out->size();
  out->resize(start + bytes);
  uint8_t* p = out->data() + start;
  Put16(p, static_cast<uint16_t>(n));
  p += kBodyHeaderBytes;
  for (size_t i = 0; i < n; ++i) {
    const Entry& e = entries[i];
    const size_t alen = e.vip.family == 6 ? 16 : 4;
    *p++ = static_cast<uint8_t>((static_cast<uint8_t>(e.state) << 4) | e.vip.family);
    *p++ = e.proto;
    std::memcpy(p, e.vip.bytes.data(), alen);
    p += alen;
    Put16(p, e.vport);
    p += 2;
    std::memcpy(p, e.client.bytes.data(), alen);
    p += alen;
    Put16(p, e.cport);
    p += 2;
    std::memcpy(p, e.backend.bytes.data(), alen);
    p += alen;
    Put16(p, e.bport);
    p += 2;
    Put32(p, e.age_s);
    Put32(p + 4, e.assigned_age_s);
    p += 8;
  }
  return n;
}

BodyError DecodeEntries(std::span<const uint8_t> body, std::vector<Entry>* out) {
  if (body.size() < kBodyHeaderBytes) return BodyError::kTruncated;
  const size_t count = Get16(body.data());
  if (count > kMaxEntriesPerBody) return BodyError::kTooManyEntries;
  const uint8_t* p = body.data() + kBodyHeaderBytes;
  const uint8_t* const end = body.data() + body.size();
  const size_t old_size = out->size();
  out->reserve(old_size + count);
  BodyError err = BodyError::kOk;
  for (size_t i = 0; i < count; ++i) {
    if (p == end) {
      err = BodyError::kTruncated;
      break;
    }
    const uint8_t family = p[0] & 0x0f;
    const uint8_t state = p[0] >> 4;
    if (family != 4 && family != 6) {
      err = BodyError::kBadFamily;
      break;
    }
    if (!ValidState(state)) {
      err = BodyError::kBadState;
      break;
    }
    const size_t alen = family == 6 ? 16 : 4;
    const size_t size = family == 6 ? kEntryBytesV6 : kEntryBytesV4;
    if (static_cast<size_t>(end - p) < size) {
      err = BodyError::kTruncated;
      break;
    }
    if (!ValidProto(p[1])) {
      err = BodyError::kBadProto;
      break;
    }
    Entry& e = out->emplace_back();
    e.state = static_cast<FlowState>(state);
    e.proto = p[1];
    const uint8_t* q = p + 2;
    for (auto [addr, port] : {std::pair{&e.vip, &e.vport}, std::pair{&e.client, &e.cport},
                              std::pair{&e.backend, &e.bport}}) {
      addr->family = family;
      std::memcpy(addr->bytes.data(), q, alen);
      *port = Get16(q + alen);
      q += alen + 2;
    }
    e.age_s = Get32(q);
    e.assigned_age_s = Get32(q + 4);
    if (AllZero(e.vip.bytes.data(), alen) || AllZero(e.client.bytes.data(), alen) ||
        AllZero(e.backend.bytes.data(), alen) || e.vport == 0 || e.cport == 0) {
      err = BodyError::kBadAddress;
      break;
    }
    p += size;
  }
  if (err == BodyError::kOk && p != end) err = BodyError::kTrailingBytes;
  if (err != BodyError::kOk) out->resize(old_size);
  return err;
}

void EncodeHeader(const Header& h, std::span<uint8_t, kHeaderBytes> out) {
  uint8_t* p = out.data();
  std::memcpy(p, kMagic, 4);
  p[4] = kWireVersion;
  p[5] = static_cast<uint8_t>(h.type);
  p[6] = h.key_id;
  p[7] = 0;  // flags
  Put32(p + 8, h.sender_id);
  Put64(p + 12, h.epoch);
  Put64(p + 20, h.seq);
}

HeaderError DecodeHeader(std::span<const uint8_t> datagram, Header* out) {
  if (datagram.size() < kHeaderBytes) return HeaderError::kTruncated;
  const uint8_t* p = datagram.data();
  if (std::memcmp(p, kMagic, 4) != 0) return HeaderError::kBadMagic;
  if (p[4] != kWireVersion) return HeaderError::kBadVersion;
  if (!IsMessageType(p[5])) return HeaderError::kBadType;
  if (p[7] != 0) return HeaderError::kBadFlags;
  out->type = static_cast<MessageType>(p[5]);
  out->key_id = p[6];
  out->sender_id = Get32(p + 8);
  out->epoch = Get64(p + 12);
  out->seq = Get64(p + 20);
  return HeaderError::kOk;
}

}  // namespace ecmplb::conntrack::sync
