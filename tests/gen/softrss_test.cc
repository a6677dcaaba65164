// ecmplb-gen's table-driven Toeplitz hash and --steer softrss against DPDK's own rte_softrss
// (rte_thash.h, header-only; no EAL needed): the queue the generator picks for a flow is the
// one PeerSteeredQueue(rte_softrss(tuple, len, kRssKey), queues) names.
#include <rte_thash.h>

#include <gtest/gtest.h>

#include <random>

#include "bench/gen/toeplitz.h"
#include "dataplane/rss.h"
#include "tests/gen/gen_fixture.h"

namespace ecmplb::gen {
namespace {

using testing::MakeModel;
using testing::TestModelOptions;

uint32_t DpdkHash(const dataplane::FlowTuple& t) {
  if (t.family == 4) {
    rte_ipv4_tuple v4;
    v4.src_addr = dataplane::LoadBe32(t.src.bytes.data());
    v4.dst_addr = dataplane::LoadBe32(t.dst.bytes.data());
    v4.sport = t.sport;
    v4.dport = t.dport;
    return rte_softrss(reinterpret_cast<uint32_t*>(&v4), RTE_THASH_V4_L4_LEN, dataplane::kRssKey);
  }
  rte_ipv6_tuple v6;
  rte_ipv6_hdr hdr{};
  std::memcpy(hdr.src_addr, t.src.bytes.data(), 16);
  std::memcpy(hdr.dst_addr, t.dst.bytes.data(), 16);
  rte_thash_load_v6_addrs(&hdr, reinterpret_cast<rte_thash_tuple*>(&v6));
  v6.sport = t.sport;
  v6.dport = t.dport;
  return rte_softrss(reinterpret_cast<uint32_t*>(&v6), RTE_THASH_V6_L4_LEN, dataplane::kRssKey);
}

TEST(SoftRssTest, ToeplitzHasherEqualsRteSoftrss) {
  ToeplitzHasher h(std::span<const uint8_t>(dataplane::kRssKey, dataplane::kRssKeyLength), 36);
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    dataplane::FlowTuple t;
    t.family = i % 2 ? 6 : 4;
    t.src.family = t.dst.family = t.family;
    for (auto& b : t.src.bytes) b = static_cast<uint8_t>(rng());
    for (auto& b : t.dst.bytes) b = static_cast<uint8_t>(rng());
    if (t.family == 4) {
      std::fill(t.src.bytes.begin() + 4, t.src.bytes.end(), 0);
      std::fill(t.dst.bytes.begin() + 4, t.dst.bytes.end(), 0);
    }
    t.sport = static_cast<uint16_t>(rng());
    t.dport = static_cast<uint16_t>(rng());
    uint8_t in[36];
    const size_t a = t.family == 4 ? 4 : 16;
    std::memcpy(in, t.src.bytes.data(), a);
    std::memcpy(in + a, t.dst.bytes.data(), a);
    dataplane::StoreBe16(in + 2 * a, t.sport);
    dataplane::StoreBe16(in + 2 * a + 2, t.dport);
    ASSERT_EQ(h.Hash(std::span<const uint8_t>(in, 2 * a + 4)), DpdkHash(t)) << i;
  }
}

TEST(SoftRssTest, ModelQueueIsPeerSteeredQueueOfRteSoftrss) {
  for (uint16_t queues : {2, 3, 8}) {
    ModelOptions o = TestModelOptions(5000);
    o.queues = queues;
    o.steering = Steering::kSoftRss;
    auto m = MakeModel(o);
    ASSERT_NE(m, nullptr);
    for (uint64_t f = 0; f < 5000; ++f) {
      ASSERT_EQ(m->QueueOf(f), dataplane::PeerSteeredQueue(DpdkHash(m->Tuple(f)), queues)) << f;
    }
  }
}

}  // namespace
}  // namespace ecmplb::gen
