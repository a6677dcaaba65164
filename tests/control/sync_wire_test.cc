// Tests of the sealed flow-sync datagram (control/sync_wire.h): seal/open round trips, every
// altered, truncated, oversized or wrongly keyed datagram refused, key rotation, the replay
// window, and the key file parser and loader.
#include "control/sync_wire.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <optional>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/support/temp_dir.h"

namespace ecmplb::control::sync {
namespace {

namespace wire = conntrack::sync;
using Verdict = ReplayWindow::Verdict;

Key MakeKey(uint8_t id, uint8_t fill) {
  Key k;
  k.id = id;
  for (size_t i = 0; i < k.bytes.size(); ++i) k.bytes[i] = static_cast<uint8_t>(fill + i);
  return k;
}

Keyring Ring(std::vector<Key> keys, uint8_t send) {
  Keyring r;
  for (const Key& k : keys) EXPECT_TRUE(r.Add(k).ok());
  EXPECT_TRUE(r.SetSendKey(send).ok());
  return r;
}

wire::Header SomeHeader() {
  wire::Header h;
  h.type = wire::MessageType::kEntries;
  h.key_id = 99;  // replaced by the send key's id
  h.sender_id = 42;
  h.epoch = 1700000000;
  h.seq = 17;
  return h;
}

std::vector<uint8_t> SomeBody(size_t n = 100) {
  std::vector<uint8_t> b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(i * 7 + 3);
  return b;
}

std::vector<uint8_t> SealOk(const wire::Header& h, const std::vector<uint8_t>& body,
                            const Keyring& ring) {
  std::vector<uint8_t> out;
  const absl::Status s = Seal(h, body, ring, &out);
  EXPECT_TRUE(s.ok()) << s;
  return out;
}

TEST(SyncWireTest, SealOpenRoundTrip) {
  ASSERT_TRUE(InitCrypto().ok());
  const Keyring ring = Ring({MakeKey(3, 0x10)}, 3);
  for (size_t n : {size_t{0}, size_t{1}, size_t{100}, wire::kMaxBodyBytes}) {
    const std::vector<uint8_t> body = SomeBody(n);
    std::vector<uint8_t> out = {0xaa, 0xbb};  // Seal appends
    ASSERT_TRUE(Seal(SomeHeader(), body, ring, &out).ok());
    ASSERT_EQ(out.size(), 2 + wire::kSealOverhead + n);
    EXPECT_LE(out.size() - 2, wire::kMaxDatagram);
    wire::Header h;
    std::vector<uint8_t> plain = {1, 2, 3};  // replaced
    ASSERT_EQ(Open(std::span(out).subspan(2), ring, &h, &plain), OpenError::kOk) << n;
    wire::Header want = SomeHeader();
    want.key_id = 3;
    EXPECT_EQ(h, want);
    EXPECT_EQ(plain, body);
  }
}

TEST(SyncWireTest, NoncesDiffer) {
  const Keyring ring = Ring({MakeKey(3, 0x10)}, 3);
  const std::vector<uint8_t> a = SealOk(SomeHeader(), SomeBody(), ring);
  const std::vector<uint8_t> b = SealOk(SomeHeader(), SomeBody(), ring);
  EXPECT_NE(a, b);
  // The header is in the clear and the same.
  EXPECT_TRUE(std::equal(a.begin(), a.begin() + wire::kHeaderBytes, b.begin()));
}

TEST(SyncWireTest, SealRefuses) {
  std::vector<uint8_t> out = {9};
  Keyring empty;
  EXPECT_EQ(Seal(SomeHeader(), SomeBody(), empty, &out).code(),
            absl::StatusCode::kInvalidArgument);
  Keyring no_send;
  ASSERT_TRUE(no_send.Add(MakeKey(1, 1)).ok());
  EXPECT_EQ(Seal(SomeHeader(), SomeBody(), no_send, &out).code(),
            absl::StatusCode::kInvalidArgument);
  const Keyring ring = Ring({MakeKey(1, 1)}, 1);
  EXPECT_EQ(Seal(SomeHeader(), SomeBody(wire::kMaxBodyBytes + 1), ring, &out).code(),
            absl::StatusCode::kInvalidArgument);
  wire::Header bad = SomeHeader();
  bad.type = static_cast<wire::MessageType>(0);
  EXPECT_EQ(Seal(bad, SomeBody(), ring, &out).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(out, std::vector<uint8_t>{9});
}

TEST(SyncWireTest, EveryFlippedByteRefused) {
  const Keyring ring = Ring({MakeKey(3, 0x10)}, 3);
  const std::vector<uint8_t> sealed = SealOk(SomeHeader(), SomeBody(40), ring);
  for (size_t i = 0; i < sealed.size(); ++i) {
    for (uint8_t mask : {uint8_t{0x01}, uint8_t{0x80}, uint8_t{0xff}}) {
      std::vector<uint8_t> d = sealed;
      d[i] ^= mask;
      wire::Header h = SomeHeader();
      std::vector<uint8_t> body = {1};
      const OpenError e = Open(d, ring, &h, &body);
      EXPECT_NE(e, OpenError::kOk) << i;
      if (i >= wire::kHeaderBytes) {
        EXPECT_EQ(e, OpenError::kForged) << i;
      }
      EXPECT_TRUE(body.empty()) << i;
      EXPECT_EQ(h, SomeHeader()) << i;  // unchanged
    }
  }
  // Header fields that still decode are authenticated too.
  for (size_t i : {size_t{8}, size_t{12}, size_t{20}, size_t{27}}) {
    std::vector<uint8_t> d = sealed;
    d[i] ^= 1;
    wire::Header h;
    std::vector<uint8_t> body;
    EXPECT_EQ(Open(d, ring, &h, &body), OpenError::kForged) << i;
  }
}

TEST(SyncWireTest, WrongAndUnknownKey) {
  const Keyring sender = Ring({MakeKey(3, 0x10)}, 3);
  const std::vector<uint8_t> sealed = SealOk(SomeHeader(), SomeBody(), sender);
  wire::Header h;
  std::vector<uint8_t> body;
  // Same id, other bytes.
  EXPECT_EQ(Open(sealed, Ring({MakeKey(3, 0x11)}, 3), &h, &body), OpenError::kForged);
  // Id not loaded.
  EXPECT_EQ(Open(sealed, Ring({MakeKey(4, 0x10)}, 4), &h, &body), OpenError::kUnknownKey);
  EXPECT_EQ(Open(sealed, Keyring(), &h, &body), OpenError::kUnknownKey);
  // The key id byte changed to another loaded key.
  const Keyring both = Ring({MakeKey(3, 0x10), MakeKey(4, 0x20)}, 3);
  std::vector<uint8_t> d = sealed;
  d[6] = 4;
  EXPECT_EQ(Open(d, both, &h, &body), OpenError::kForged);
}

TEST(SyncWireTest, TruncatedAtEveryLength) {
  const Keyring ring = Ring({MakeKey(3, 0x10)}, 3);
  const std::vector<uint8_t> sealed = SealOk(SomeHeader(), SomeBody(30), ring);
  for (size_t len = 0; len < sealed.size(); ++len) {
    wire::Header h;
    std::vector<uint8_t> body;
    const OpenError e = Open(std::span(sealed).first(len), ring, &h, &body);
    if (len < wire::kSealOverhead) {
      EXPECT_EQ(e, OpenError::kTruncated) << len;
    } else {
      EXPECT_EQ(e, OpenError::kForged) << len;
    }
  }
}

TEST(SyncWireTest, Oversized) {
  const Keyring ring = Ring({MakeKey(3, 0x10)}, 3);
  std::vector<uint8_t> sealed = SealOk(SomeHeader(), SomeBody(wire::kMaxBodyBytes), ring);
  ASSERT_EQ(sealed.size(), wire::kMaxDatagram);
  sealed.push_back(0);
  wire::Header h;
  std::vector<uint8_t> body;
  EXPECT_EQ(Open(sealed, ring, &h, &body), OpenError::kOversized);
  std::vector<uint8_t> huge(70000, 0);
  EXPECT_EQ(Open(huge, ring, &h, &body), OpenError::kOversized);
}

TEST(SyncWireTest, BadHeader) {
  const Keyring ring = Ring({MakeKey(3, 0x10)}, 3);
  const std::vector<uint8_t> sealed = SealOk(SomeHeader(), SomeBody(), ring);
  for (auto [off, v] : {std::pair<size_t, uint8_t>{0, 'X'}, {4, 2}, {5, 0}, {5, 9}, {7, 1}}) {
    std::vector<uint8_t> d = sealed;
    d[off] = v;
    wire::Header h;
    std::vector<uint8_t> body;
    EXPECT_EQ(Open(d, ring, &h, &body), OpenError::kBadHeader) << off;
  }
}

TEST(SyncWireTest, KeyRotation) {
  const Keyring old_sender = Ring({MakeKey(1, 0x10)}, 1);
  const Keyring new_sender = Ring({MakeKey(1, 0x10), MakeKey(2, 0x20)}, 2);
  const Keyring receiver = Ring({MakeKey(1, 0x10), MakeKey(2, 0x20)}, 1);
  for (const Keyring* sender : {&old_sender, &new_sender}) {
    const std::vector<uint8_t> sealed = SealOk(SomeHeader(), SomeBody(), *sender);
    EXPECT_EQ(sealed[6], sender->send_key()->id);
    wire::Header h;
    std::vector<uint8_t> body;
    ASSERT_EQ(Open(sealed, receiver, &h, &body), OpenError::kOk);
    EXPECT_EQ(h.key_id, sender->send_key()->id);
    EXPECT_EQ(body, SomeBody());
  }
  // A receiver that dropped key 1 no longer opens the old sender's messages.
  const Keyring rotated = Ring({MakeKey(2, 0x20)}, 2);
  wire::Header h;
  std::vector<uint8_t> body;
  EXPECT_EQ(Open(SealOk(SomeHeader(), SomeBody(), old_sender), rotated, &h, &body),
            OpenError::kUnknownKey);
}

TEST(SyncWireTest, Keyring) {
  Keyring r;
  EXPECT_EQ(r.size(), 0u);
  EXPECT_EQ(r.send_key(), nullptr);
  EXPECT_EQ(r.SetSendKey(1).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(r.Add(MakeKey(1, 1)).ok());
  ASSERT_TRUE(r.Add(MakeKey(0, 2)).ok());
  EXPECT_EQ(r.Add(MakeKey(1, 3)).code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(r.size(), 2u);
  ASSERT_NE(r.Find(0), nullptr);
  EXPECT_EQ(r.Find(0)->bytes, MakeKey(0, 2).bytes);
  EXPECT_EQ(r.Find(7), nullptr);
  ASSERT_TRUE(r.SetSendKey(1).ok());
  EXPECT_EQ(r.send_key()->id, 1);
  Keyring copy = r;  // copies keep their send key
  EXPECT_EQ(copy.send_key()->id, 1);
  EXPECT_EQ(copy.send_key()->bytes, MakeKey(1, 1).bytes);
}

TEST(SyncWireTest, EnumNames) {
  EXPECT_STREQ(OpenErrorName(OpenError::kOk), "ok");
  EXPECT_STREQ(OpenErrorName(OpenError::kTruncated), "truncated");
  EXPECT_STREQ(OpenErrorName(OpenError::kOversized), "oversized");
  EXPECT_STREQ(OpenErrorName(OpenError::kBadHeader), "bad_header");
  EXPECT_STREQ(OpenErrorName(OpenError::kUnknownKey), "unknown_key");
  EXPECT_STREQ(OpenErrorName(OpenError::kForged), "forged");
  EXPECT_STREQ(OpenErrorName(static_cast<OpenError>(77)), "invalid");
  EXPECT_STREQ(ReplayVerdictName(Verdict::kAccept), "accept");
  EXPECT_STREQ(ReplayVerdictName(Verdict::kReplayed), "replayed");
  EXPECT_STREQ(ReplayVerdictName(Verdict::kTooOld), "too_old");
  EXPECT_STREQ(ReplayVerdictName(Verdict::kOldEpoch), "old_epoch");
  EXPECT_STREQ(ReplayVerdictName(static_cast<Verdict>(77)), "invalid");
}

// Check, then Accept when accepted (as the sync engine does).
Verdict See(ReplayWindow* w, uint64_t epoch, uint64_t seq) {
  const Verdict v = w->Check(epoch, seq);
  if (v == Verdict::kAccept) w->Accept(epoch, seq);
  return v;
}

TEST(ReplayWindowTest, DuplicatesAndOrder) {
  ReplayWindow w;
  EXPECT_EQ(w.Check(5, 0), Verdict::kAccept);
  EXPECT_EQ(w.Check(5, 0), Verdict::kAccept);  // Check changes nothing
  EXPECT_EQ(See(&w, 5, 0), Verdict::kAccept);
  EXPECT_EQ(w.epoch(), 5u);
  EXPECT_EQ(w.highest(), 0u);
  EXPECT_EQ(See(&w, 5, 0), Verdict::kReplayed);
  EXPECT_EQ(See(&w, 5, 3), Verdict::kAccept);
  EXPECT_EQ(See(&w, 5, 1), Verdict::kAccept);  // late but inside the window
  EXPECT_EQ(See(&w, 5, 2), Verdict::kAccept);
  for (uint64_t s : {0, 1, 2, 3}) EXPECT_EQ(See(&w, 5, s), Verdict::kReplayed) << s;
  EXPECT_EQ(w.highest(), 3u);
  // Accept of something refused is ignored.
  w.Accept(5, 1);
  w.Accept(4, 100);
  EXPECT_EQ(w.epoch(), 5u);
  EXPECT_EQ(w.highest(), 3u);
}

TEST(ReplayWindowTest, WindowEdge) {
  ReplayWindow w;
  EXPECT_EQ(See(&w, 1, 1000), Verdict::kAccept);
  EXPECT_EQ(See(&w, 1, 1000 - 64), Verdict::kTooOld);
  EXPECT_EQ(See(&w, 1, 0), Verdict::kTooOld);
  EXPECT_EQ(See(&w, 1, 1000 - 63), Verdict::kAccept);  // the oldest inside
  EXPECT_EQ(See(&w, 1, 1000 - 63), Verdict::kReplayed);
  // Moving up by one pushes 937 out of the window.
  EXPECT_EQ(See(&w, 1, 1001), Verdict::kAccept);
  EXPECT_EQ(See(&w, 1, 1000 - 63), Verdict::kTooOld);
  EXPECT_EQ(See(&w, 1, 1000), Verdict::kReplayed);
  // A jump of 64 or more clears the window.
  EXPECT_EQ(See(&w, 1, 1001 + 64), Verdict::kAccept);
  EXPECT_EQ(See(&w, 1, 1001), Verdict::kTooOld);
  EXPECT_EQ(See(&w, 1, 1002), Verdict::kAccept);
  EXPECT_EQ(See(&w, 1, 1001 + 63), Verdict::kAccept);
  EXPECT_EQ(See(&w, 1, 1001 + 64), Verdict::kReplayed);
  // A jump of exactly 63 keeps the old highest at the window's edge.
  ReplayWindow v;
  EXPECT_EQ(See(&v, 1, 10), Verdict::kAccept);
  EXPECT_EQ(See(&v, 1, 73), Verdict::kAccept);
  EXPECT_EQ(See(&v, 1, 10), Verdict::kReplayed);
  EXPECT_EQ(See(&v, 1, 11), Verdict::kAccept);
  EXPECT_EQ(See(&v, 1, 9), Verdict::kTooOld);
  // Extremes do not overflow.
  ReplayWindow x;
  EXPECT_EQ(See(&x, ~uint64_t{0}, ~uint64_t{0}), Verdict::kAccept);
  EXPECT_EQ(See(&x, ~uint64_t{0}, 0), Verdict::kTooOld);
  EXPECT_EQ(See(&x, ~uint64_t{0}, ~uint64_t{0} - 63), Verdict::kAccept);
  EXPECT_EQ(See(&x, ~uint64_t{0}, ~uint64_t{0}), Verdict::kReplayed);
}

TEST(ReplayWindowTest, Epochs) {
  ReplayWindow w;
  for (uint64_t s = 1; s <= 100; ++s) ASSERT_EQ(See(&w, 7, s), Verdict::kAccept);
  // The sender restarted: a higher epoch starts over, seq from 0.
  EXPECT_EQ(See(&w, 8, 0), Verdict::kAccept);
  EXPECT_EQ(w.epoch(), 8u);
  EXPECT_EQ(w.highest(), 0u);
  EXPECT_EQ(See(&w, 8, 1), Verdict::kAccept);
  EXPECT_EQ(See(&w, 8, 0), Verdict::kReplayed);
  // The old epoch is refused whatever its seq.
  EXPECT_EQ(See(&w, 7, 101), Verdict::kOldEpoch);
  EXPECT_EQ(See(&w, 7, 1), Verdict::kOldEpoch);
  EXPECT_EQ(See(&w, 0, 0), Verdict::kOldEpoch);
  EXPECT_EQ(w.epoch(), 8u);
}

// ---- key file ----

const char kHex1[] = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";
const char kHex2[] = "FFEEDDCCBBAA99887766554433221100FFEEDDCCBBAA99887766554433221100";

TEST(KeyFileTest, ParsesGoodText) {
  const std::string text = std::string("# flow sync keys\n\n  1 ") + kHex1 +
                           "   # the old key\r\n\t2\t" + kHex2 + "\n";
  auto ring = ParseKeyText(text);
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ(ring->size(), 2u);
  EXPECT_EQ(ring->send_key()->id, 1);  // the first listed
  for (size_t i = 0; i < 32; ++i) EXPECT_EQ(ring->Find(1)->bytes[i], i);
  EXPECT_EQ(ring->Find(2)->bytes[0], 0xff);
  EXPECT_EQ(ring->Find(2)->bytes[31], 0x00);
}

TEST(KeyFileTest, SendLine) {
  auto ring = ParseKeyText(std::string("send 2\n1 ") + kHex1 + "\n2 " + kHex2 + "\n");
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ(ring->send_key()->id, 2);
  auto zero = ParseKeyText(std::string("0 ") + kHex1 + "\n255 " + kHex2 + "\nsend 255");
  ASSERT_TRUE(zero.ok()) << zero.status();
  EXPECT_EQ(zero->send_key()->id, 255);
  EXPECT_NE(zero->Find(0), nullptr);
}

void ExpectRefused(const std::string& text, const std::string& needle) {
  auto ring = ParseKeyText(text);
  ASSERT_FALSE(ring.ok()) << text;
  EXPECT_EQ(ring.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ring.status().message().find(needle), absl::string_view::npos)
      << ring.status() << " lacks '" << needle << "'";
  EXPECT_EQ(ring.status().message().find('\n'), absl::string_view::npos);  // one line
  // Key material is never echoed.
  EXPECT_EQ(ring.status().message().find("0a0b0c"), absl::string_view::npos) << ring.status();
}

TEST(KeyFileTest, BadLinesRefusedNamingTheLine) {
  const std::string good = std::string("1 ") + kHex1 + "\n";
  ExpectRefused("", "no key");
  ExpectRefused("# nothing\n\n", "no key");
  ExpectRefused(good + "2\n", "line 2");                                  // one field
  ExpectRefused(good + "2 " + kHex2 + " extra\n", "line 2");               // three fields
  ExpectRefused(good + "256 " + kHex2 + "\n", "line 2: the key id");       // id out of range
  ExpectRefused(good + "-1 " + kHex2 + "\n", "line 2: the key id");
  ExpectRefused(good + "x " + kHex2 + "\n", "line 2: the key id");
  ExpectRefused(good + "1000 " + kHex2 + "\n", "line 2: the key id");
  ExpectRefused(good + "2 " + std::string(kHex2).substr(1) + "\n", "line 2: key 2: expected 64");
  ExpectRefused(good + "2 " + kHex2 + "0\n", "line 2: key 2: expected 64");
  std::string bad_hex = kHex2;
  bad_hex[10] = 'g';
  ExpectRefused(good + "2 " + bad_hex + "\n", "line 2: key 2: not a hex character at position 11");
  ExpectRefused(good + "\n1 " + kHex2 + "\n", "line 3: duplicate key id 1");
  ExpectRefused(good + "send 3\n", "line 2: send: no key with id 3");
  ExpectRefused(good + "send one\n", "line 2: send: the key id");
  ExpectRefused("send 1\n" + good + "send 1\n", "line 3: a second send line");
  ExpectRefused("send 1\n", "no key");
}

class KeyFileLoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto d = test_support::TempDir::Create("sync_keys");
    ASSERT_TRUE(d.ok()) << d.status();
    dir_.emplace(*std::move(d));
  }
  std::string Write(const std::string& name, const std::string& text, mode_t mode) {
    const std::string path = dir_->File(name);
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    EXPECT_GE(fd, 0);
    EXPECT_EQ(write(fd, text.data(), text.size()), static_cast<ssize_t>(text.size()));
    close(fd);
    EXPECT_EQ(chmod(path.c_str(), mode), 0);
    return path;
  }
  std::optional<test_support::TempDir> dir_;
};

TEST_F(KeyFileLoadTest, LoadsAPrivateFile) {
  const std::string path = Write("keys", std::string("1 ") + kHex1 + "\nsend 1\n", 0600);
  auto ring = LoadKeyFile(path);
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_EQ(ring->send_key()->id, 1);
  EXPECT_TRUE(LoadKeyFile(Write("ro", std::string("1 ") + kHex1, 0400)).ok());
}

TEST_F(KeyFileLoadTest, RefusesGroupOrOtherAccess) {
  for (mode_t mode : {0644, 0640, 0604, 0620, 0602, 0610}) {
    const std::string path = Write("keys", std::string("1 ") + kHex1 + "\n", mode);
    auto ring = LoadKeyFile(path);
    ASSERT_FALSE(ring.ok()) << std::oct << mode;
    EXPECT_EQ(ring.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_NE(ring.status().message().find("chmod 600 " + path), absl::string_view::npos)
        << ring.status();
  }
}

TEST_F(KeyFileLoadTest, ErrorsNameTheFile) {
  const std::string path = Write("bad", std::string("1 ") + kHex1 + "\n1 " + kHex2 + "\n", 0600);
  auto ring = LoadKeyFile(path);
  ASSERT_FALSE(ring.ok());
  EXPECT_EQ(ring.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ring.status().message(),
            "sync key file " + path + ": line 2: duplicate key id 1");
  auto missing = LoadKeyFile(dir_->File("absent"));
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  auto dir = LoadKeyFile(dir_->path());
  EXPECT_FALSE(dir.ok());
}

}  // namespace
}  // namespace ecmplb::control::sync
