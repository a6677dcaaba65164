// sync_wire.h: the sealed flow-sync datagram (issue 15): the clear header of
// conntrack/sync_message.h as additional data, a random 24-byte nonce, the body encrypted with
// XChaCha20-Poly1305-IETF (libsodium) and its 16-byte tag; the keyring (several keys by id for
// rotation, loaded from a key file), and the per-sender replay window. Pure code on byte spans:
// no sockets, no threads.
//
// Thread-safety: Seal and Open are safe from any thread (libsodium is initialised once, on
// first use, thread-safely). Keyring and ReplayWindow are plain values: const methods may run
// concurrently, anything else needs one owner (the sync thread).
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "conntrack/sync_message.h"

namespace ecmplb::control::sync {

// libsodium's one-time initialisation (sodium_init); Seal and Open call it themselves. Call it
// at startup to learn early that the library cannot start (Internal).
absl::Status InitCrypto();

struct Key {
  uint8_t id = 0;
  std::array<uint8_t, 32> bytes{};
};

// Keys by id. Receivers accept any loaded key; senders seal with the send key.
class Keyring {
 public:
  Keyring() = default;
  Keyring(const Keyring&) = default;
  Keyring(Keyring&&) = default;
  Keyring& operator=(const Keyring&) = default;
  Keyring& operator=(Keyring&&) = default;
  ~Keyring();  // wipes the key bytes

  absl::Status Add(const Key& key);      // AlreadyExists for a duplicate id
  absl::Status SetSendKey(uint8_t id);   // NotFound unless a key with that id was added
  const Key* Find(uint8_t id) const;     // nullptr if absent
  const Key* send_key() const;           // nullptr until SetSendKey
  size_t size() const { return keys_.size(); }

 private:
  std::vector<Key> keys_;  // a handful: searched linearly
  int send_index_ = -1;
};

// Key file: one key per line, "<id 0-255> <64 hex characters>"; '#' starts a comment (to the
// end of the line); blank lines are ignored; a line "send <id>" names the send key, otherwise
// it is the first key listed. The whole file is refused (InvalidArgument, one line naming the
// line number, never echoing key material) on any bad line, a duplicate id, two send lines, a
// send id that is not listed, or no key at all. LoadKeyFile also refuses (FailedPrecondition) a
// file that group or others may read or write (st_mode & 077; the message says "chmod 600
// FILE") and anything but a regular file.
absl::StatusOr<Keyring> LoadKeyFile(const std::string& path);
absl::StatusOr<Keyring> ParseKeyText(std::string_view text);

// Appends the sealed datagram for header `h` (its key_id replaced by the send key's) and
// `body` to `*out`. InvalidArgument if there is no send key, `body` is longer than
// conntrack::sync::kMaxBodyBytes, or h.type is not a MessageType; Internal if libsodium
// cannot start. On error `*out` is unchanged.
absl::Status Seal(const conntrack::sync::Header& h, std::span<const uint8_t> body,
                  const Keyring& ring, std::vector<uint8_t>* out);

enum class OpenError : uint8_t {
  kOk = 0,
  kTruncated,    // shorter than header + nonce + tag
  kOversized,    // longer than kMaxDatagram
  kBadHeader,    // magic, version, type or flags (DecodeHeader)
  kUnknownKey,   // key_id not in the keyring
  kForged,       // the tag does not verify (wrong key, altered header, nonce or ciphertext)
};
inline constexpr uint8_t kOpenErrorCount = 6;
const char* OpenErrorName(OpenError e);  // "ok", "truncated", "oversized", "bad_header", ...

// Checks the size bounds, the header, the key id and the tag; on success sets *h and replaces
// *body with the plaintext. On error *h is unchanged and *body is empty. Reads only inside
// `datagram`. No replay check (ReplayWindow, after the body decoded).
OpenError Open(std::span<const uint8_t> datagram, const Keyring& ring,
               conntrack::sync::Header* h, std::vector<uint8_t>* body);

// One sender's replay window (as IPsec's, RFC 4303 appendix A): each (epoch, seq) is accepted
// once. A higher epoch than seen so far (the sender restarted) starts a new window; a lower one
// is refused; in the current epoch, a seq 64 or more behind the highest accepted is refused as
// too old, one already accepted as replayed. A fresh window accepts anything.
class ReplayWindow {
 public:
  static constexpr uint64_t kSize = 64;
  enum class Verdict : uint8_t { kAccept = 0, kReplayed, kTooOld, kOldEpoch };

  Verdict Check(uint64_t epoch, uint64_t seq) const;  // changes nothing
  // Records (epoch, seq) as seen. Call only after Check == kAccept and the message
  // authenticated and decoded; anything Check would refuse is ignored.
  void Accept(uint64_t epoch, uint64_t seq);

  uint64_t epoch() const { return epoch_; }      // 0 until the first Accept
  uint64_t highest() const { return highest_; }  // highest seq accepted in epoch()

 private:
  bool seen_ = false;
  uint64_t epoch_ = 0;
  uint64_t highest_ = 0;
  uint64_t bitmap_ = 0;  // bit i: seq highest_ - i accepted
};
inline constexpr uint8_t kReplayVerdictCount = 4;
const char* ReplayVerdictName(ReplayWindow::Verdict v);  // "accept", "replayed", "too_old", ...

}  // namespace ecmplb::control::sync
