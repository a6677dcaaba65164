#include "control/sync_wire.h"

#include <fcntl.h>
#include <sodium.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"

namespace ecmplb::control::sync {

namespace wire = conntrack::sync;

static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == wire::kNonceBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == wire::kTagBytes);
static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == sizeof(Key::bytes));

namespace {

bool SodiumReady() {
  static const bool ready = sodium_init() >= 0;  // 0: initialised now, 1: already was
  return ready;
}

// A line of the key file: "<id> <64 hex>" or "send <id>".
bool ParseId(absl::string_view s, uint8_t* id) {
  if (s.empty() || s.size() > 3) return false;
  for (char c : s) {
    if (c < '0' || c > '9') return false;
  }
  uint32_t v = 0;
  if (!absl::SimpleAtoi(s, &v) || v > 255) return false;
  *id = static_cast<uint8_t>(v);
  return true;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

absl::Status LineError(size_t line, absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("line ", line, ": ", what));
}

}  // namespace

absl::Status InitCrypto() {
  if (!SodiumReady()) return absl::InternalError("libsodium: sodium_init failed");
  return absl::OkStatus();
}

Keyring::~Keyring() {
  if (!keys_.empty()) sodium_memzero(keys_.data(), keys_.size() * sizeof(Key));
}

absl::Status Keyring::Add(const Key& key) {
  if (Find(key.id) != nullptr) {
    return absl::AlreadyExistsError(absl::StrCat("sync key id ", key.id, " is already loaded"));
  }
  keys_.push_back(key);
  return absl::OkStatus();
}

absl::Status Keyring::SetSendKey(uint8_t id) {
  for (size_t i = 0; i < keys_.size(); ++i) {
    if (keys_[i].id == id) {
      send_index_ = static_cast<int>(i);
      return absl::OkStatus();
    }
  }
  return absl::NotFoundError(absl::StrCat("sync key id ", id, " is not loaded"));
}

const Key* Keyring::Find(uint8_t id) const {
  for (const Key& k : keys_) {
    if (k.id == id) return &k;
  }
  return nullptr;
}

const Key* Keyring::send_key() const {
  return send_index_ >= 0 ? &keys_[static_cast<size_t>(send_index_)] : nullptr;
}

absl::StatusOr<Keyring> ParseKeyText(std::string_view text) {
  Keyring ring;
  size_t line_no = 0;
  size_t send_line = 0;
  uint8_t send_id = 0;
  bool first = true;
  uint8_t first_id = 0;
  // Debian's Abseil has its own string_view: work in it.
  const absl::string_view all(text.data(), text.size());
  for (absl::string_view line : absl::StrSplit(all, '\n')) {
    ++line_no;
    if (const size_t hash = line.find('#'); hash != absl::string_view::npos) {
      line = line.substr(0, hash);
    }
    const std::vector<absl::string_view> fields =
        absl::StrSplit(line, absl::ByAnyChar(" \t\r"), absl::SkipEmpty());
    if (fields.empty()) continue;
    if (fields.size() != 2) {
      return LineError(line_no, absl::StrCat("expected \"<id> <64 hex characters>\" or "
                                              "\"send <id>\", got ",
                                              fields.size(), " fields"));
    }
    if (fields[0] == "send") {
      if (send_line != 0) {
        return LineError(line_no, absl::StrCat("a second send line (the first is line ",
                                               send_line, ")"));
      }
      if (!ParseId(fields[1], &send_id)) {
        return LineError(line_no, "send: the key id must be a number from 0 to 255");
      }
      send_line = line_no;
      continue;
    }
    Key key;
    if (!ParseId(fields[0], &key.id)) {
      return LineError(line_no, "the key id must be a number from 0 to 255");
    }
    const absl::string_view hex = fields[1];
    if (hex.size() != 2 * key.bytes.size()) {
      return LineError(line_no, absl::StrCat("key ", key.id, ": expected 64 hex characters, got ",
                                             hex.size()));
    }
    for (size_t i = 0; i < key.bytes.size(); ++i) {
      const int hi = HexValue(hex[2 * i]), lo = HexValue(hex[2 * i + 1]);
      if (hi < 0 || lo < 0) {
        sodium_memzero(key.bytes.data(), key.bytes.size());
        return LineError(line_no, absl::StrCat("key ", key.id, ": not a hex character at position ",
                                               hi < 0 ? 2 * i + 1 : 2 * i + 2));
      }
      key.bytes[i] = static_cast<uint8_t>(hi << 4 | lo);
    }
    const absl::Status added = ring.Add(key);
    sodium_memzero(key.bytes.data(), key.bytes.size());
    if (!added.ok()) return LineError(line_no, absl::StrCat("duplicate key id ", key.id));
    if (first) {
      first = false;
      first_id = key.id;
    }
  }
  if (ring.size() == 0) return absl::InvalidArgumentError("no key (expected \"<id> <64 hex>\")");
  if (send_line != 0) {
    if (!ring.SetSendKey(send_id).ok()) {
      return LineError(send_line, absl::StrCat("send: no key with id ", send_id));
    }
  } else {
    const absl::Status set = ring.SetSendKey(first_id);  // listed: cannot fail
    if (!set.ok()) return set;
  }
  return ring;
}

absl::StatusOr<Keyring> LoadKeyFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    const int err = errno;
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat("cannot open sync key file ", path, ": ", std::strerror(err)));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0) {
    const int err = errno;
    close(fd);
    return absl::Status(absl::ErrnoToStatusCode(err),
                        absl::StrCat("cannot stat sync key file ", path, ": ", std::strerror(err)));
  }
  if (!S_ISREG(st.st_mode)) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("sync key file ", path, " is not a regular file"));
  }
  if ((st.st_mode & 077) != 0) {
    close(fd);
    return absl::FailedPreconditionError(absl::StrFormat(
        "sync key file %s may be read or written by group or others (mode %04o): chmod 600 %s",
        path, st.st_mode & 07777, path));
  }
  constexpr size_t kMaxFileBytes = 64 * 1024;  // 256 keys take about 18 KiB
  std::string text;
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const int err = errno;
      close(fd);
      sodium_memzero(text.data(), text.size());
      return absl::Status(absl::ErrnoToStatusCode(err),
                          absl::StrCat("cannot read sync key file ", path, ": ", std::strerror(err)));
    }
    if (n == 0) break;
    if (text.size() + static_cast<size_t>(n) > kMaxFileBytes) {
      close(fd);
      sodium_memzero(text.data(), text.size());
      sodium_memzero(buf, sizeof buf);
      return absl::InvalidArgumentError(
          absl::StrCat("sync key file ", path, " is larger than ", kMaxFileBytes, " bytes"));
    }
    text.append(buf, static_cast<size_t>(n));
  }
  close(fd);
  sodium_memzero(buf, sizeof buf);
  absl::StatusOr<Keyring> ring = ParseKeyText(text);
  sodium_memzero(text.data(), text.size());
  if (!ring.ok()) {
    return absl::Status(ring.status().code(),
                        absl::StrCat("sync key file ", path, ": ", ring.status().message()));
  }
  return ring;
}

absl::Status Seal(const wire::Header& h, std::span<const uint8_t> body, const Keyring& ring,
                  std::vector<uint8_t>* out) {
  const Key* key = ring.send_key();
  if (key == nullptr) return absl::InvalidArgumentError("sync seal: no send key");
  if (body.size() > wire::kMaxBodyBytes) {
    return absl::InvalidArgumentError(absl::StrCat("sync seal: body of ", body.size(),
                                                   " bytes, at most ", wire::kMaxBodyBytes));
  }
  if (!wire::IsMessageType(static_cast<uint8_t>(h.type))) {
    return absl::InvalidArgumentError(
        absl::StrCat("sync seal: message type ", static_cast<int>(h.type), " is not defined"));
  }
  if (!SodiumReady()) return absl::InternalError("libsodium: sodium_init failed");
  wire::Header sealed = h;
  sealed.key_id = key->id;
  const size_t start = out->size();
  out->resize(start + wire::kSealOverhead + body.size());
  uint8_t* const hdr = out->data() + start;
  uint8_t* const nonce = hdr + wire::kHeaderBytes;
  uint8_t* const ct = nonce + wire::kNonceBytes;
  wire::EncodeHeader(sealed, std::span<uint8_t, wire::kHeaderBytes>(hdr, wire::kHeaderBytes));
  randombytes_buf(nonce, wire::kNonceBytes);
  unsigned long long ct_len = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(ct, &ct_len, body.data(), body.size(), hdr,
                                             wire::kHeaderBytes, nullptr, nonce,
                                             key->bytes.data());
  if (ct_len != body.size() + wire::kTagBytes) {  // cannot happen: a fixed-size construction
    out->resize(start);
    return absl::InternalError("sync seal: unexpected ciphertext length");
  }
  return absl::OkStatus();
}

const char* OpenErrorName(OpenError e) {
  static constexpr const char* kNames[] = {"ok",         "truncated",   "oversized",
                                           "bad_header", "unknown_key", "forged"};
  static_assert(std::size(kNames) == kOpenErrorCount);
  const auto i = static_cast<size_t>(e);
  return i < std::size(kNames) ? kNames[i] : "invalid";
}

OpenError Open(std::span<const uint8_t> datagram, const Keyring& ring, wire::Header* h,
               std::vector<uint8_t>* body) {
  body->clear();
  if (datagram.size() > wire::kMaxDatagram) return OpenError::kOversized;
  if (datagram.size() < wire::kSealOverhead) return OpenError::kTruncated;
  wire::Header header;
  if (wire::DecodeHeader(datagram, &header) != wire::HeaderError::kOk) {
    return OpenError::kBadHeader;
  }
  const Key* key = ring.Find(header.key_id);
  if (key == nullptr) return OpenError::kUnknownKey;
  // sodium_init failing would leave nothing authenticated: refuse like a bad tag.
  if (!SodiumReady()) return OpenError::kForged;
  const uint8_t* const nonce = datagram.data() + wire::kHeaderBytes;
  const uint8_t* const ct = nonce + wire::kNonceBytes;
  const size_t ct_len = datagram.size() - wire::kHeaderBytes - wire::kNonceBytes;
  body->resize(ct_len - wire::kTagBytes);
  unsigned long long plain_len = 0;
  if (crypto_aead_xchacha20poly1305_ietf_decrypt(body->data(), &plain_len, nullptr, ct, ct_len,
                                                 datagram.data(), wire::kHeaderBytes, nonce,
                                                 key->bytes.data()) != 0 ||
      plain_len != body->size()) {
    body->clear();
    return OpenError::kForged;
  }
  *h = header;
  return OpenError::kOk;
}

ReplayWindow::Verdict ReplayWindow::Check(uint64_t epoch, uint64_t seq) const {
  if (!seen_ || epoch > epoch_) return Verdict::kAccept;
  if (epoch < epoch_) return Verdict::kOldEpoch;
  if (seq > highest_) return Verdict::kAccept;
  const uint64_t behind = highest_ - seq;
  if (behind >= kSize) return Verdict::kTooOld;
  return (bitmap_ >> behind) & 1 ? Verdict::kReplayed : Verdict::kAccept;
}

void ReplayWindow::Accept(uint64_t epoch, uint64_t seq) {
  if (Check(epoch, seq) != Verdict::kAccept) return;
  if (!seen_ || epoch > epoch_) {
    seen_ = true;
    epoch_ = epoch;
    highest_ = seq;
    bitmap_ = 1;
    return;
  }
  if (seq > highest_) {
    const uint64_t ahead = seq - highest_;
    bitmap_ = ahead >= kSize ? 0 : bitmap_ << ahead;
    bitmap_ |= 1;
    highest_ = seq;
    return;
  }
  bitmap_ |= uint64_t{1} << (highest_ - seq);
}

const char* ReplayVerdictName(ReplayWindow::Verdict v) {
  static constexpr const char* kNames[] = {"accept", "replayed", "too_old", "old_epoch"};
  static_assert(std::size(kNames) == kReplayVerdictCount);
  const auto i = static_cast<size_t>(v);
  return i < std::size(kNames) ? kNames[i] : "invalid";
}

}  // namespace ecmplb::control::sync
