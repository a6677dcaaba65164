// Tests of ecmplb-gen's frames: parseable by ecmplb's parser with valid checksums, exact
// sizes, the 64-byte minimum, VLAN, and where seq/timestamp/flow live.
#include "bench/gen/frame_builder.h"

#include <gtest/gtest.h>

#include <vector>

#include "dataplane/packet/parse.h"
#include "tests/gen/gen_fixture.h"

namespace ecmplb::gen {
namespace {

using dataplane::LoadBe16;
using dataplane::LoadBe32;
using testing::MakeModel;
using testing::TestModelOptions;

std::vector<uint8_t> Frame(const TrafficModel& m, uint64_t flow, uint32_t seq, uint32_t ts) {
  std::vector<uint8_t> f(2048, 0xEE);
  f.resize(BuildFrame(m, flow, seq, ts, f.data()));
  return f;
}

void ExpectValid(const TrafficModel& m, uint64_t flow, const std::vector<uint8_t>& f) {
  const GenService& s = m.service(m.ServiceOf(flow));
  ASSERT_EQ(f.size(), s.frame_len);
  dataplane::ParsedPacket p;
  ASSERT_EQ(dataplane::Parse(f, &p, dataplane::IpChecksumMode::kVerify),
            dataplane::ParseResult::kOk);
  EXPECT_EQ(p.ip_end(), f.size());  // no padding: the IP packet fills the frame
  EXPECT_EQ(p.Flow(), m.Tuple(flow));
  const std::span<const uint8_t> l4(f.data() + p.l4_offset, f.size() - p.l4_offset);
  EXPECT_EQ(dataplane::L4Checksum(p.src, p.dst, p.proto, l4), 0) << "flow " << flow;
  EXPECT_EQ(p.ttl, kTtl);
  if (p.family == 4) {
    EXPECT_TRUE(p.dont_fragment);
  }
}

TEST(FrameBuilderTest, EveryServiceParsesWithValidChecksums) {
  auto m = MakeModel();
  ASSERT_NE(m, nullptr);
  for (uint64_t flow = 0; flow < 200; ++flow) {
    for (uint32_t seq : {0u, 1u, 0xFFFFFFFFu}) {
      ExpectValid(*m, flow, Frame(*m, flow, seq, seq * 7919u));
    }
  }
  ExpectValid(*m, m->flows() + 3, Frame(*m, m->flows() + 3, 5, 6));  // a new flow
}

TEST(FrameBuilderTest, SeqTimestampAndFlags) {
  auto m = MakeModel();
  ASSERT_NE(m, nullptr);
  // Flow 0: IPv4 TCP (DR). Established: ACK; seq in the sequence field, ts in the ack field.
  auto f = Frame(*m, 0, 0x12345678, 0xCAFEBABE);
  EXPECT_EQ(LoadBe16(f.data() + 14 + 4), 0x5678);  // IPv4 id = seq & 0xffff
  EXPECT_EQ(LoadBe32(f.data() + 34 + 4), 0x12345678u);
  EXPECT_EQ(LoadBe32(f.data() + 34 + 8), 0xCAFEBABEu);
  EXPECT_EQ(f[34 + 13], inet::tcp_flag::kAck);
  EXPECT_EQ(LoadBe16(f.data() + 6 + 0), 0x02bb);  // source MAC: the generator's
  EXPECT_EQ(f[0], 0x02);
  EXPECT_EQ(f[1], 0xaa);  // destination: the balancer
  // A new flow of the same service: SYN.
  const uint64_t nf = m->flows() + (5 - m->flows() % 5);  // service 0
  ASSERT_EQ(m->ServiceOf(nf), 0u);
  EXPECT_EQ(Frame(*m, nf, 1, 2)[34 + 13], inet::tcp_flag::kSyn);
  // Flow 1: IPv4 UDP: seq and ts are the first 8 payload bytes.
  auto u = Frame(*m, 1, 0x01020304, 0x05060708);
  EXPECT_EQ(LoadBe16(u.data() + 34 + 4), 60 - 34);  // UDP length
  EXPECT_EQ(LoadBe32(u.data() + 42), 0x01020304u);
  EXPECT_EQ(LoadBe32(u.data() + 46), 0x05060708u);
}

TEST(FrameBuilderTest, DeterministicFiller) {
  auto m = MakeModel();
  ASSERT_NE(m, nullptr);
  EXPECT_EQ(Frame(*m, 7, 3, 9), Frame(*m, 7, 3, 9));
  ModelOptions o = TestModelOptions();
  o.frame_size = 200;
  m = MakeModel(o);
  auto a = Frame(*m, 0, 1, 0), b = Frame(*m, 0, 2, 0), c = Frame(*m, 5, 1, 0);
  // Payload (after TCP) differs with seq and with flow.
  EXPECT_NE(std::vector<uint8_t>(a.begin() + 54, a.end()),
            std::vector<uint8_t>(b.begin() + 54, b.end()));
  EXPECT_NE(std::vector<uint8_t>(a.begin() + 54, a.end()),
            std::vector<uint8_t>(c.begin() + 54, c.end()));
}

TEST(FrameBuilderTest, SizesExact) {
  for (uint32_t size : {64u, 65u, 128u, 777u, 1518u}) {
    ModelOptions o = TestModelOptions();
    o.frame_size = size;
    auto m = MakeModel(o);
    ASSERT_NE(m, nullptr);
    for (uint64_t flow = 0; flow < 5; ++flow) {
      auto f = Frame(*m, flow, 1, 1);
      const bool v6 = m->service(m->ServiceOf(flow)).key.vip.is_v6();
      const size_t min = v6 ? (flow == 3 ? 74 : 70) : 60;
      EXPECT_EQ(f.size(), std::max<size_t>(size - kFcsLen, min)) << size << " " << flow;
      ExpectValid(*m, flow, f);
    }
  }
}

TEST(FrameBuilderTest, Vlan) {
  ModelOptions o = TestModelOptions();
  o.vlan = 42;
  auto m = MakeModel(o);
  ASSERT_NE(m, nullptr);
  for (uint64_t flow = 0; flow < 5; ++flow) {
    auto f = Frame(*m, flow, 1, 1);
    EXPECT_EQ(LoadBe16(f.data() + 12), dataplane::ether_type::kVlan);
    EXPECT_EQ(LoadBe16(f.data() + 14), 42);
    ExpectValid(*m, flow, f);
    dataplane::ParsedPacket p;
    ASSERT_EQ(dataplane::Parse(f, &p), dataplane::ParseResult::kOk);
    EXPECT_TRUE(p.has_vlan);
  }
  EXPECT_EQ(m->service(0).frame_len, 60);  // 64 B still fits IPv4 TCP with the tag
  EXPECT_EQ(m->service(3).frame_len, 78);
}

}  // namespace
}  // namespace ecmplb::gen
