// sync_message.h: the wire format of flow-state sync between LB hosts (issue 15), pure code on
// byte spans (no I/O, no crypto). A sync datagram is
//
//   header (28 B, clear, the AEAD's additional data) | nonce (24 B) | sealed body | tag (16 B)
//
// The header and the body's plaintext are defined here; sealing (XChaCha20-Poly1305), keys and
// the replay window live in control/sync_wire.h. The body is a 2-byte entry count followed by
// that many entries, each a flags byte (address family in the low nibble, 4 or 6, flow state
// in the high nibble) then proto, the service, client and backend addresses and ports, and two
// ages. All integers are big-endian. An IPv4 entry takes 28 bytes, an IPv6 entry 64.
//
// Thread-safety: stateless functions and value types, safe from any thread.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "conntrack/flow_state.h"

namespace ecmplb::conntrack::sync {

inline constexpr uint8_t kWireVersion = 1;
// The whole UDP payload, header, nonce and tag included: fits a 1500-byte MTU with IPv6 and
// UDP headers (1400 + 48 = 1448) and leaves room for a tunnel.
inline constexpr size_t kMaxDatagram = 1400;
inline constexpr size_t kHeaderBytes = 28;
// The sealed message's overhead beyond the body: the header, the XChaCha20-Poly1305 nonce and
// its tag (control/sync_wire.cc checks these against libsodium's constants).
inline constexpr size_t kNonceBytes = 24;
inline constexpr size_t kTagBytes = 16;
inline constexpr size_t kSealOverhead = kHeaderBytes + kNonceBytes + kTagBytes;  // 68
inline constexpr size_t kMaxBodyBytes = kMaxDatagram - kSealOverhead;           // 1332
inline constexpr size_t MaxBodyBytes() { return kMaxBodyBytes; }

// The body: a 2-byte entry count, then the entries.
inline constexpr size_t kBodyHeaderBytes = 2;
inline constexpr size_t kEntryBytesV4 = 28;
inline constexpr size_t kEntryBytesV6 = 64;
// At most this many entries in one body (all IPv4): a larger count is refused before anything
// else is read (kTooManyEntries).
inline constexpr size_t kMaxEntriesPerBody = (kMaxBodyBytes - kBodyHeaderBytes) / kEntryBytesV4;

enum class MessageType : uint8_t {
  kEntries = 1,      // entries learned or changed since the last message
  kBulkRequest = 2,  // "send me your whole table" (a host that just started)
  kBulkChunk = 3,    // part of the answer to a bulk request
  kBulkEnd = 4,      // the answer is complete
  kFleet = 5,        // fleet mode's beacon: the sender's applied configuration (FleetBeacon)
};
const char* MessageTypeName(MessageType t);  // "entries", ...; "invalid" for other values
inline constexpr bool IsMessageType(uint8_t v) {
  return v >= static_cast<uint8_t>(MessageType::kEntries) &&
         v <= static_cast<uint8_t>(MessageType::kFleet);
}

struct Addr {
  uint8_t family = 0;  // 4 or 6
  // IPv4: bytes[0..3] in network order, the rest zero. IPv6: all 16 bytes.
  std::array<uint8_t, 16> bytes{};
  friend bool operator==(const Addr&, const Addr&) = default;
};

struct Entry {
  Addr vip;  // the service's identity (ports in host order)
  uint16_t vport = 0;
  uint8_t proto = 0;  // 6 (TCP) or 17 (UDP)
  Addr client;        // the flow's client side
  uint16_t cport = 0;
  Addr backend;  // the backend's identity (bport 0 today: DR and GRE keep the port)
  uint16_t bport = 0;
  // Only kEstablished and kClosing are valid on the wire.
  FlowState state = FlowState::kEstablished;
  uint32_t age_s = 0;  // seconds since the flow was last seen on the sender
  // Seconds since this backend was assigned (flow start or re-pick): smaller = newer
  // assignment; bulk sync keeps the newest.
  uint32_t assigned_age_s = 0;
  friend bool operator==(const Entry&, const Entry&) = default;
};

enum class BodyError : uint8_t {
  kOk = 0,
  kTruncated,       // the body ends inside its count or an entry (or count > entries present)
  kTrailingBytes,   // bytes after the last counted entry (or count < entries present)
  kBadFamily,       // family not 4 or 6; encoder: vip, client and backend of mixed families
  kBadState,        // state not established or closing
  kBadProto,        // proto not TCP or UDP
  kTooManyEntries,  // count above kMaxEntriesPerBody
  kBadAddress,      // an all-zero address, vport or cport 0, or IPv4 with nonzero padding
};
inline constexpr uint8_t kBodyErrorCount = 8;
const char* BodyErrorName(BodyError e);  // snake_case: "ok", "truncated", "trailing_bytes", ...

// kOk if `e` can go on the wire (what the decoder would accept), else why not.
BodyError CheckEntry(const Entry& e);
// Bytes `e` takes in a body: kEntryBytesV4 or kEntryBytesV6 (by vip.family: 6 -> IPv6, else
// IPv4).
size_t EncodedSize(const Entry& e);

// Appends one body to `out`: the count, then the leading entries of `entries` that fit in
// min(max_bytes, kMaxBodyBytes) bytes of body (count included). Stops at the first entry that
// does not fit or is not valid (CheckEntry != kOk: filter with it first). Returns how many
// entries were encoded. If max_bytes < kBodyHeaderBytes, appends nothing and returns 0;
// otherwise an empty body (count 0) is a valid body.
size_t EncodeEntries(std::span<const Entry> entries, size_t max_bytes, std::vector<uint8_t>* out);

// Decodes one whole body and appends its entries to `out`. All or nothing: on any error `out`
// is left as it was (its capacity may have grown). Reads only inside `body`; one reserve on
// `out`, no other allocation.
BodyError DecodeEntries(std::span<const uint8_t> body, std::vector<Entry>* out);

// A kFleet body: what the sender's fleet agent applied (control/fleet_agent.h), so that a
// host cut off from etcd still hears that its peers moved on. 17 bytes, big-endian:
//   version(8: the config pointer's mod_revision) root(8: table fingerprint) flags(1: bit 0
//   serving, the others 0).
inline constexpr size_t kFleetBodyBytes = 17;
struct FleetBeacon {
  int64_t version = 0;
  uint64_t root = 0;
  bool serving = false;
  bool operator==(const FleetBeacon&) const = default;
};
void EncodeFleetBeacon(const FleetBeacon& b, std::vector<uint8_t>* out);  // appends
// kTruncated / kTrailingBytes for a body that is not exactly kFleetBodyBytes, kBadState for
// unknown flags.
BodyError DecodeFleetBeacon(std::span<const uint8_t> body, FleetBeacon* out);

// The clear message header (authenticated as the AEAD's additional data):
//   magic "ELBS"(4) version(1) type(1) key_id(1) flags(1, must be 0) sender_id(4) epoch(8)
//   seq(8) = 28 bytes, big-endian.
struct Header {
  MessageType type = MessageType::kEntries;
  uint8_t key_id = 0;
  uint32_t sender_id = 0;
  uint64_t epoch = 0;  // the sender's start (it restarts: a higher epoch)
  uint64_t seq = 0;    // per epoch, increasing
  friend bool operator==(const Header&, const Header&) = default;
};

void EncodeHeader(const Header& h, std::span<uint8_t, kHeaderBytes> out);

enum class HeaderError : uint8_t { kOk = 0, kTruncated, kBadMagic, kBadVersion, kBadType, kBadFlags };
inline constexpr uint8_t kHeaderErrorCount = 6;
const char* HeaderErrorName(HeaderError e);  // "ok", "truncated", "bad_magic", ...

// Decodes the header at the start of `datagram` (which may be longer). On error `*out` is
// unchanged.
HeaderError DecodeHeader(std::span<const uint8_t> datagram, Header* out);

}  // namespace ecmplb::conntrack::sync
