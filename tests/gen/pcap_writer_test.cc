// Tests of ecmplb-gen's pcap writer: the classic file header, record headers and count.
#include "bench/gen/pcap_writer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "tests/support/temp_dir.h"

namespace ecmplb::gen {
namespace {

uint32_t U32(const std::string& s, size_t at) {
  uint32_t v;
  std::memcpy(&v, s.data() + at, 4);
  return v;
}
uint16_t U16(const std::string& s, size_t at) {
  uint16_t v;
  std::memcpy(&v, s.data() + at, 2);
  return v;
}

TEST(PcapWriterTest, HeaderAndRecords) {
  auto dir = test_support::TempDir::Create("gen_pcap");
  ASSERT_TRUE(dir.ok());
  const std::string path = dir->File("out.pcap");
  PcapWriter w;
  ASSERT_TRUE(w.Open(path, 2).ok());
  std::vector<uint8_t> a(60, 0xAB), b(1514, 0xCD), c(64, 0xEF);
  EXPECT_TRUE(w.wants_more());
  w.Write(a, 1'700'000'000'123'456'789ULL);
  w.Write(b, 1'700'000'001'000'000'000ULL);
  EXPECT_FALSE(w.wants_more());
  w.Write(c, 1);  // past max_records: dropped
  EXPECT_EQ(w.records(), 2u);
  ASSERT_TRUE(w.Close().ok());

  const std::string s = test_support::ReadFile(path);
  ASSERT_EQ(s.size(), kPcapFileHeaderLen + 2 * kPcapRecordHeaderLen + 60 + 1514);
  EXPECT_EQ(U32(s, 0), 0xa1b2c3d4u);  // host order, microsecond timestamps
  EXPECT_EQ(U16(s, 4), 2);
  EXPECT_EQ(U16(s, 6), 4);
  EXPECT_EQ(U32(s, 8), 0u);
  EXPECT_EQ(U32(s, 12), 0u);
  EXPECT_EQ(U32(s, 16), 65535u);
  EXPECT_EQ(U32(s, 20), 1u);  // LINKTYPE_ETHERNET
  size_t at = kPcapFileHeaderLen;
  EXPECT_EQ(U32(s, at), 1'700'000'000u);
  EXPECT_EQ(U32(s, at + 4), 123'456u);
  EXPECT_EQ(U32(s, at + 8), 60u);
  EXPECT_EQ(U32(s, at + 12), 60u);
  EXPECT_EQ(static_cast<uint8_t>(s[at + 16]), 0xAB);
  at += kPcapRecordHeaderLen + 60;
  EXPECT_EQ(U32(s, at), 1'700'000'001u);
  EXPECT_EQ(U32(s, at + 4), 0u);
  EXPECT_EQ(U32(s, at + 8), 1514u);
  EXPECT_EQ(U32(s, at + 12), 1514u);
}

TEST(PcapWriterTest, OpenFailsWithAClearMessage) {
  PcapWriter w;
  absl::Status st = w.Open("/nonexistent-dir/x.pcap", 1);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("--pcap /nonexistent-dir/x.pcap"), std::string::npos);
}

}  // namespace
}  // namespace ecmplb::gen
