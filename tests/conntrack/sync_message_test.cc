// Tests of the flow-sync wire format (conntrack/sync_message.h): entry and header round trips,
// bounded encoding, and every malformed body and header refused with its reason.
#include "conntrack/sync_message.h"

#include <cstdio>
#include <vector>

#include "gtest/gtest.h"

namespace ecmplb::conntrack::sync {
namespace {

Addr V4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  Addr x;
  x.family = 4;
  x.bytes[0] = a;
  x.bytes[1] = b;
  x.bytes[2] = c;
  x.bytes[3] = d;
  return x;
}

Addr V6(uint8_t last) {
  Addr x;
  x.family = 6;
  x.bytes = {0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, last};
  return x;
}

Entry V4Entry(uint16_t cport = 40000) {
  Entry e;
  e.vip = V4(10, 100, 0, 1);
  e.vport = 443;
  e.proto = 6;
  e.client = V4(192, 0, 2, 7);
  e.cport = cport;
  e.backend = V4(10, 0, 1, 12);
  e.bport = 0;
  e.state = FlowState::kEstablished;
  e.age_s = 0x01020304;
  e.assigned_age_s = 0xa0b0c0d0;
  return e;
}

Entry V6Entry(uint16_t cport = 50000) {
  Entry e;
  e.vip = V6(1);
  e.vport = 53;
  e.proto = 17;
  e.client = V6(2);
  e.cport = cport;
  e.backend = V6(3);
  e.bport = 8053;
  e.state = FlowState::kClosing;
  e.age_s = 7;
  e.assigned_age_s = 900;
  return e;
}

std::vector<uint8_t> Body(const std::vector<Entry>& entries) {
  std::vector<uint8_t> out;
  EXPECT_EQ(EncodeEntries(entries, kMaxBodyBytes, &out), entries.size());
  return out;
}

BodyError Decode(const std::vector<uint8_t>& body, std::vector<Entry>* out = nullptr) {
  std::vector<Entry> tmp;
  return DecodeEntries(body, out ? out : &tmp);
}

TEST(SyncMessageTest, EntrySizes) {
  EXPECT_EQ(EncodedSize(V4Entry()), 28u);
  EXPECT_EQ(EncodedSize(V6Entry()), 64u);
  EXPECT_EQ(kSealOverhead, 68u);
  EXPECT_EQ(MaxBodyBytes(), 1332u);
  std::printf("sync wire: IPv4 entry %zu B, IPv6 entry %zu B; per datagram (%zu B): %zu IPv4 "
              "or %zu IPv6 entries\n",
              EncodedSize(V4Entry()), EncodedSize(V6Entry()), kMaxDatagram,
              (kMaxBodyBytes - kBodyHeaderBytes) / kEntryBytesV4,
              (kMaxBodyBytes - kBodyHeaderBytes) / kEntryBytesV6);
}

TEST(SyncMessageTest, V4EntryExactBytes) {
  const std::vector<uint8_t> body = Body({V4Entry()});
  const std::vector<uint8_t> want = {
      0x00, 0x01,                    // count
      0x14, 0x06,                    // established | v4, tcp
      10,   100,  0,    1,    0x01, 0xbb,  // vip:443
      192,  0,    2,    7,    0x9c, 0x40,  // client:40000
      10,   0,    1,    12,   0x00, 0x00,  // backend:0
      0x01, 0x02, 0x03, 0x04,              // age_s
      0xa0, 0xb0, 0xc0, 0xd0,              // assigned_age_s
  };
  EXPECT_EQ(body, want);
}

TEST(SyncMessageTest, RoundTripV4AndV6) {
  std::vector<Entry> in = {V4Entry(1), V6Entry(2), V4Entry(3)};
  in[2].state = FlowState::kClosing;
  in[2].proto = 17;
  const std::vector<uint8_t> body = Body(in);
  EXPECT_EQ(body.size(), kBodyHeaderBytes + 28 + 64 + 28);
  std::vector<Entry> out = {V6Entry(9)};  // decoding appends
  ASSERT_EQ(Decode(body, &out), BodyError::kOk);
  ASSERT_EQ(out.size(), 4u);
  EXPECT_EQ(out[0], V6Entry(9));
  EXPECT_EQ(out[1], in[0]);
  EXPECT_EQ(out[2], in[1]);
  EXPECT_EQ(out[3], in[2]);
}

TEST(SyncMessageTest, EmptyBody) {
  std::vector<uint8_t> body;
  EXPECT_EQ(EncodeEntries({}, kMaxBodyBytes, &body), 0u);
  EXPECT_EQ(body, (std::vector<uint8_t>{0, 0}));
  std::vector<Entry> out;
  EXPECT_EQ(Decode(body, &out), BodyError::kOk);
  EXPECT_TRUE(out.empty());
  // Less than a count: nothing appended.
  std::vector<uint8_t> none;
  EXPECT_EQ(EncodeEntries(std::vector<Entry>{V4Entry()}, 1, &none), 0u);
  EXPECT_TRUE(none.empty());
}

TEST(SyncMessageTest, EncodeStopsAtMaxBytesAndDecodes) {
  std::vector<Entry> in;
  for (uint16_t i = 1; i <= 100; ++i) in.push_back(i % 3 == 0 ? V6Entry(i) : V4Entry(i));
  for (size_t max : {size_t{2}, size_t{29}, size_t{30}, size_t{93}, size_t{94}, size_t{500},
                     size_t{1332}, size_t{5000}}) {
    std::vector<uint8_t> body = {0xee};  // appends after what is there
    const size_t n = EncodeEntries(in, max, &body);
    const size_t used = body.size() - 1;
    EXPECT_LE(used, std::min(max, kMaxBodyBytes)) << max;
    // The next entry would not have fitted.
    ASSERT_LT(n, in.size());
    EXPECT_GT(used + EncodedSize(in[n]), std::min(max, kMaxBodyBytes)) << max;
    std::vector<Entry> out;
    ASSERT_EQ(DecodeEntries(std::span(body).subspan(1), &out), BodyError::kOk) << max;
    EXPECT_EQ(out, std::vector<Entry>(in.begin(), in.begin() + n)) << max;
  }
  std::vector<uint8_t> body;
  EXPECT_EQ(EncodeEntries(in, 2 + 28, &body), 1u);
  EXPECT_EQ(body.size(), 30u);
  // A full body of IPv4 entries holds kMaxEntriesPerBody.
  std::vector<Entry> v4(100, V4Entry());
  body.clear();
  EXPECT_EQ(EncodeEntries(v4, 100000, &body), kMaxEntriesPerBody);
  EXPECT_EQ(Decode(body), BodyError::kOk);
}

TEST(SyncMessageTest, EncodeStopsAtInvalidEntry) {
  std::vector<Entry> in = {V4Entry(1), V4Entry(2), V4Entry(3)};
  in[1].state = FlowState::kNew;
  std::vector<uint8_t> body;
  EXPECT_EQ(EncodeEntries(in, kMaxBodyBytes, &body), 1u);
  EXPECT_EQ(body.size(), 30u);
}

TEST(SyncMessageTest, CheckEntry) {
  EXPECT_EQ(CheckEntry(V4Entry()), BodyError::kOk);
  EXPECT_EQ(CheckEntry(V6Entry()), BodyError::kOk);
  Entry e = V4Entry();
  e.client = V6(2);  // mixed families
  EXPECT_EQ(CheckEntry(e), BodyError::kBadFamily);
  e = V6Entry();
  e.backend = V4(10, 0, 0, 1);
  EXPECT_EQ(CheckEntry(e), BodyError::kBadFamily);
  e = V4Entry();
  e.vip.family = 5;
  EXPECT_EQ(CheckEntry(e), BodyError::kBadFamily);
  for (FlowState s : {FlowState::kNew, FlowState::kProbation, FlowState::kSynced,
                      static_cast<FlowState>(9)}) {
    e = V4Entry();
    e.state = s;
    EXPECT_EQ(CheckEntry(e), BodyError::kBadState);
  }
  e = V4Entry();
  e.proto = 1;
  EXPECT_EQ(CheckEntry(e), BodyError::kBadProto);
  e = V4Entry();
  e.vip.bytes[7] = 1;  // IPv4 padding
  EXPECT_EQ(CheckEntry(e), BodyError::kBadAddress);
  e = V4Entry();
  e.client = V4(0, 0, 0, 0);
  EXPECT_EQ(CheckEntry(e), BodyError::kBadAddress);
  e = V4Entry();
  e.vport = 0;
  EXPECT_EQ(CheckEntry(e), BodyError::kBadAddress);
  e = V4Entry();
  e.cport = 0;
  EXPECT_EQ(CheckEntry(e), BodyError::kBadAddress);
  e = V4Entry();
  e.bport = 0;  // the backend keeps the port today
  EXPECT_EQ(CheckEntry(e), BodyError::kOk);
}

TEST(SyncMessageTest, TruncatedAtEveryOffset) {
  const std::vector<uint8_t> body = Body({V4Entry(1), V6Entry(2), V4Entry(3)});
  for (size_t len = 0; len < body.size(); ++len) {
    std::vector<Entry> out = {V4Entry(77)};
    const std::vector<uint8_t> cut(body.begin(), body.begin() + len);
    EXPECT_EQ(Decode(cut, &out), BodyError::kTruncated) << len;
    EXPECT_EQ(out, std::vector<Entry>{V4Entry(77)}) << len;  // unchanged
  }
}

TEST(SyncMessageTest, TrailingBytesAndCountMismatch) {
  std::vector<uint8_t> body = Body({V4Entry(1), V4Entry(2)});
  std::vector<uint8_t> trailing = body;
  trailing.push_back(0);
  EXPECT_EQ(Decode(trailing), BodyError::kTrailingBytes);
  std::vector<uint8_t> fewer = body;
  fewer[1] = 1;  // count says 1, two entries present
  EXPECT_EQ(Decode(fewer), BodyError::kTrailingBytes);
  std::vector<uint8_t> more = body;
  more[1] = 3;  // count says 3, two present
  EXPECT_EQ(Decode(more), BodyError::kTruncated);
  std::vector<uint8_t> many = body;
  many[0] = 0;
  many[1] = kMaxEntriesPerBody + 1;
  EXPECT_EQ(Decode(many), BodyError::kTooManyEntries);
  many[0] = 0xff;
  many[1] = 0xff;
  EXPECT_EQ(Decode(many), BodyError::kTooManyEntries);
}

// Body offsets inside the first (IPv4) entry.
constexpr size_t kFlags = 2, kProto = 3, kVip = 4, kVport = 8, kClient = 10, kCport = 14,
                 kBackend = 16, kBport = 20;

BodyError DecodeWith(size_t offset, uint8_t value, std::vector<Entry> entries = {V4Entry(1),
                                                                                 V4Entry(2)}) {
  std::vector<uint8_t> body = Body(entries);
  body[offset] = value;
  std::vector<Entry> out = {V6Entry(5)};
  const BodyError err = Decode(body, &out);
  if (err != BodyError::kOk) {
    EXPECT_EQ(out, std::vector<Entry>{V6Entry(5)});
  }
  return err;
}

TEST(SyncMessageTest, MalformedEntriesRefusedWithReason) {
  EXPECT_EQ(DecodeWith(kFlags, 0x10), BodyError::kBadFamily);
  EXPECT_EQ(DecodeWith(kFlags, 0x15), BodyError::kBadFamily);
  EXPECT_EQ(DecodeWith(kFlags, 0x1f), BodyError::kBadFamily);
  EXPECT_EQ(DecodeWith(kFlags, 0x04), BodyError::kBadState);  // new
  EXPECT_EQ(DecodeWith(kFlags, 0x34), BodyError::kBadState);  // probation
  EXPECT_EQ(DecodeWith(kFlags, 0x44), BodyError::kBadState);  // synced
  EXPECT_EQ(DecodeWith(kFlags, 0xf4), BodyError::kBadState);
  EXPECT_EQ(DecodeWith(kFlags, 0x24), BodyError::kOk);  // closing
  EXPECT_EQ(DecodeWith(kProto, 0), BodyError::kBadProto);
  EXPECT_EQ(DecodeWith(kProto, 1), BodyError::kBadProto);
  EXPECT_EQ(DecodeWith(kProto, 58), BodyError::kBadProto);
  EXPECT_EQ(DecodeWith(kProto, 17), BodyError::kOk);
  // An IPv4 entry read as IPv6: it runs past the end.
  EXPECT_EQ(DecodeWith(kFlags, 0x16), BodyError::kTruncated);
  // Zero ports of the service and the client; bport 0 is fine.
  EXPECT_EQ(DecodeWith(kVport, 0), BodyError::kOk);  // high byte only
  {
    std::vector<Entry> e = {V4Entry(1)};
    e[0].vport = 0x0100;  // one byte set
    EXPECT_EQ(DecodeWith(kVport + 1, 0, e), BodyError::kOk);
    EXPECT_EQ(DecodeWith(kVport, 0, e), BodyError::kBadAddress);
    e[0].cport = 0x0100;
    EXPECT_EQ(DecodeWith(kCport, 0, e), BodyError::kBadAddress);
  }
  EXPECT_EQ(DecodeWith(kBport, 0), BodyError::kOk);
  // All-zero addresses.
  for (size_t a : {kVip, kClient, kBackend}) {
    std::vector<uint8_t> body = Body({V4Entry(1)});
    for (size_t i = 0; i < 4; ++i) body[a + i] = 0;
    EXPECT_EQ(Decode(body), BodyError::kBadAddress) << a;
  }
  // A bad second entry refuses the whole body.
  std::vector<uint8_t> body = Body({V4Entry(1), V6Entry(2)});
  body[2 + 28 + 1] = 99;
  std::vector<Entry> out;
  EXPECT_EQ(Decode(body, &out), BodyError::kBadProto);
  EXPECT_TRUE(out.empty());
}

TEST(SyncMessageTest, EnumNames) {
  EXPECT_STREQ(BodyErrorName(BodyError::kOk), "ok");
  EXPECT_STREQ(BodyErrorName(BodyError::kTruncated), "truncated");
  EXPECT_STREQ(BodyErrorName(BodyError::kTrailingBytes), "trailing_bytes");
  EXPECT_STREQ(BodyErrorName(BodyError::kTooManyEntries), "too_many_entries");
  EXPECT_STREQ(BodyErrorName(BodyError::kBadAddress), "bad_address");
  EXPECT_STREQ(BodyErrorName(static_cast<BodyError>(200)), "invalid");
  EXPECT_STREQ(HeaderErrorName(HeaderError::kBadMagic), "bad_magic");
  EXPECT_STREQ(HeaderErrorName(HeaderError::kBadFlags), "bad_flags");
  EXPECT_STREQ(HeaderErrorName(static_cast<HeaderError>(200)), "invalid");
  EXPECT_STREQ(MessageTypeName(MessageType::kBulkRequest), "bulk_request");
  EXPECT_STREQ(MessageTypeName(static_cast<MessageType>(0)), "invalid");
}

Header SomeHeader() {
  Header h;
  h.type = MessageType::kBulkChunk;
  h.key_id = 7;
  h.sender_id = 0x11223344;
  h.epoch = 0x0102030405060708;
  h.seq = 0xfffffffffffffffe;
  return h;
}

std::vector<uint8_t> HeaderBytes(const Header& h) {
  std::vector<uint8_t> out(kHeaderBytes);
  EncodeHeader(h, std::span<uint8_t, kHeaderBytes>(out.data(), kHeaderBytes));
  return out;
}

TEST(SyncMessageTest, HeaderRoundTrip) {
  const std::vector<uint8_t> b = HeaderBytes(SomeHeader());
  const std::vector<uint8_t> want = {'E',  'L',  'B',  'S',  1,    3,    7,    0,    0x11, 0x22,
                                     0x33, 0x44, 1,    2,    3,    4,    5,    6,    7,    8,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe};
  EXPECT_EQ(b, want);
  Header h;
  ASSERT_EQ(DecodeHeader(b, &h), HeaderError::kOk);
  EXPECT_EQ(h, SomeHeader());
  // Longer input: the header is its first 28 bytes.
  std::vector<uint8_t> longer = b;
  longer.resize(100, 0xaa);
  Header h2;
  ASSERT_EQ(DecodeHeader(longer, &h2), HeaderError::kOk);
  EXPECT_EQ(h2, SomeHeader());
  for (MessageType t : {MessageType::kEntries, MessageType::kBulkRequest, MessageType::kBulkChunk,
                        MessageType::kBulkEnd}) {
    Header x = SomeHeader();
    x.type = t;
    Header y;
    ASSERT_EQ(DecodeHeader(HeaderBytes(x), &y), HeaderError::kOk);
    EXPECT_EQ(y, x);
  }
}

TEST(SyncMessageTest, HeaderMalformed) {
  const std::vector<uint8_t> good = HeaderBytes(SomeHeader());
  const Header untouched = SomeHeader();
  for (size_t len = 0; len < kHeaderBytes; ++len) {
    Header h = untouched;
    EXPECT_EQ(DecodeHeader(std::span(good).first(len), &h), HeaderError::kTruncated) << len;
    EXPECT_EQ(h, untouched);
  }
  auto with = [&](size_t off, uint8_t v) {
    std::vector<uint8_t> b = good;
    b[off] = v;
    Header h = untouched;
    const HeaderError err = DecodeHeader(b, &h);
    EXPECT_EQ(h, untouched);
    return err;
  };
  for (size_t i = 0; i < 4; ++i) EXPECT_EQ(with(i, 'X'), HeaderError::kBadMagic) << i;
  EXPECT_EQ(with(4, 0), HeaderError::kBadVersion);
  EXPECT_EQ(with(4, 2), HeaderError::kBadVersion);
  EXPECT_EQ(with(5, 0), HeaderError::kBadType);
  EXPECT_EQ(with(5, 6), HeaderError::kBadType);
  EXPECT_EQ(with(5, 0xff), HeaderError::kBadType);
  EXPECT_EQ(with(7, 1), HeaderError::kBadFlags);
  EXPECT_EQ(with(7, 0x80), HeaderError::kBadFlags);
}

TEST(SyncMessageTest, FleetBeaconRoundTripAndMalformed) {
  const FleetBeacon b{1234567890123, 0x0123456789abcdefULL, true};
  std::vector<uint8_t> body;
  EncodeFleetBeacon(b, &body);
  ASSERT_EQ(body.size(), kFleetBodyBytes);
  FleetBeacon out;
  ASSERT_EQ(DecodeFleetBeacon(body, &out), BodyError::kOk);
  EXPECT_EQ(out, b);
  EXPECT_EQ(DecodeFleetBeacon(std::span(body).first(16), &out), BodyError::kTruncated);
  body.push_back(0);
  EXPECT_EQ(DecodeFleetBeacon(body, &out), BodyError::kTrailingBytes);
  body.pop_back();
  body[16] = 2;
  EXPECT_EQ(DecodeFleetBeacon(body, &out), BodyError::kBadState);
}

}  // namespace
}  // namespace ecmplb::conntrack::sync
