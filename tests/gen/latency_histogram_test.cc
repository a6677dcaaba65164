// Tests of ecmplb-gen's latency histogram: bucket bounds, quantiles within 1/16, min/max.
#include "bench/gen/latency_histogram.h"

#include <gtest/gtest.h>

#include <random>

namespace ecmplb::gen {
namespace {

TEST(LatencyHistogramTest, BucketsCoverEveryValueInOrder) {
  for (uint64_t v :
       {uint64_t{0}, uint64_t{1}, uint64_t{15}, uint64_t{16}, uint64_t{17}, uint64_t{31},
        uint64_t{32}, uint64_t{1000}, uint64_t{123456789}, uint64_t{1} << 40, ~uint64_t{0}}) {
    const size_t b = LatencyHistogram::BucketOf(v);
    ASSERT_LT(b, LatencyHistogram::kBuckets);
    EXPECT_LE(LatencyHistogram::BucketLow(b), v) << v;
    EXPECT_GE(LatencyHistogram::BucketHigh(b), v) << v;
  }
  for (size_t b = 1; b < LatencyHistogram::kBuckets; ++b) {
    EXPECT_EQ(LatencyHistogram::BucketLow(b), LatencyHistogram::BucketHigh(b - 1) + 1) << b;
  }
}

TEST(LatencyHistogramTest, Quantiles) {
  LatencyHistogram h;
  EXPECT_EQ(h.Quantile(0.5), 0u);
  for (uint64_t v = 1; v <= 100000; ++v) h.Add(v);
  EXPECT_EQ(h.count(), 100000u);
  EXPECT_EQ(h.min(), 1u);
  EXPECT_EQ(h.max(), 100000u);
  for (double q : {0.5, 0.9, 0.99, 0.999}) {
    const double want = q * 100000;
    const double got = static_cast<double>(h.Quantile(q));
    EXPECT_GE(got, want - 1) << q;
    EXPECT_LE(got, want * (1 + 1.0 / 16)) << q;
  }
  EXPECT_EQ(h.Quantile(1.0), 100000u);
  EXPECT_EQ(h.Quantile(0.0), 1u);
}

TEST(LatencyHistogramTest, Merge) {
  LatencyHistogram a, b;
  a.Add(10);
  b.Add(5);
  b.Add(1000);
  a.Merge(b);
  EXPECT_EQ(a.count(), 3u);
  EXPECT_EQ(a.min(), 5u);
  EXPECT_EQ(a.max(), 1000u);
  EXPECT_EQ(a.Quantile(0.5), 10u);
}

TEST(LatencyHistogramTest, CdfEndsAtOneAndRises) {
  LatencyHistogram h;
  EXPECT_TRUE(h.Cdf().empty());
  for (uint64_t v = 1; v <= 1000; ++v) h.Add(v * 100);
  const auto cdf = h.Cdf();
  ASSERT_FALSE(cdf.empty());
  EXPECT_DOUBLE_EQ(cdf.back().second, 1.0);
  EXPECT_EQ(cdf.back().first, h.max());
  for (size_t i = 1; i < cdf.size(); ++i) {
    EXPECT_GT(cdf[i].first, cdf[i - 1].first);
    EXPECT_GT(cdf[i].second, cdf[i - 1].second);
  }
  // Half the samples are at or below the median's bucket end.
  for (const auto& [ns, share] : cdf) {
    if (ns >= h.Quantile(0.5)) {
      EXPECT_GE(share, 0.5);
      break;
    }
  }
}

}  // namespace
}  // namespace ecmplb::gen
