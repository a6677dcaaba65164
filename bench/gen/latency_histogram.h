// latency_histogram.h: a log-linear histogram of latencies in nanoseconds (16 linear
// sub-buckets per power of two, so a percentile is within 1/16 = 6.25% of the true value),
// with exact minimum and maximum.
//
// Thread-safety: none; one owner (the RX loop), read after the run or merged by the owner.
// Fast path: Add() is a count-leading-zeros, a shift and an increment; no allocation.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace ecmplb::gen {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 4;
  static constexpr size_t kSub = size_t{1} << kSubBits;
  static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSub;

  static size_t BucketOf(uint64_t v) {
    if (v < kSub) return static_cast<size_t>(v);
    const unsigned e = 63 - static_cast<unsigned>(std::countl_zero(v));  // >= kSubBits
    const uint64_t sub = (v >> (e - kSubBits)) & (kSub - 1);
    return (e - kSubBits + 1) * kSub + static_cast<size_t>(sub);
  }
  // Smallest value of bucket b.
  static uint64_t BucketLow(size_t b) {
    if (b < kSub) return b;
    const unsigned e = static_cast<unsigned>(b / kSub) + kSubBits - 1;
    return (uint64_t{1} << e) | (uint64_t{b % kSub} << (e - kSubBits));
  }
  // Largest value of bucket b.
  static uint64_t BucketHigh(size_t b) {
    if (b < kSub) return b;
    const unsigned e = static_cast<unsigned>(b / kSub) + kSubBits - 1;
    return BucketLow(b) + (uint64_t{1} << (e - kSubBits)) - 1;
  }

  void Add(uint64_t v) {
    ++counts_[BucketOf(v)];
    ++total_;
    if (v < min_) min_ = v;
    if (v > max_) max_ = v;
  }
  void Merge(const LatencyHistogram& o) {
    for (size_t i = 0; i < kBuckets; ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    if (o.min_ < min_) min_ = o.min_;
    if (o.max_ > max_) max_ = o.max_;
  }

  uint64_t count() const { return total_; }
  uint64_t min() const { return total_ ? min_ : 0; }
  uint64_t max() const { return max_; }
  // Value at quantile q in [0, 1]: the upper end of the bucket holding the ceil(q*n)-th
  // smallest sample, clamped to [min, max]; 0 when empty.
  uint64_t Quantile(double q) const {
    if (total_ == 0) return 0;
    uint64_t rank = static_cast<uint64_t>(q * static_cast<double>(total_) + 0.999999);
    if (rank < 1) rank = 1;
    if (rank > total_) rank = total_;
    uint64_t seen = 0;
    for (size_t b = 0; b < kBuckets; ++b) {
      seen += counts_[b];
      if (seen >= rank) {
        uint64_t v = BucketHigh(b);
        if (v > max_) v = max_;
        if (v < min_) v = min_;
        return v;
      }
    }
    return max_;
  }

  // The cumulative distribution: (upper end of each non-empty bucket, clamped to max; share
  // of samples at or below it), in increasing order. Empty when there are no samples.
  std::vector<std::pair<uint64_t, double>> Cdf() const {
    std::vector<std::pair<uint64_t, double>> out;
    uint64_t seen = 0;
    for (size_t b = 0; b < kBuckets && seen < total_; ++b) {
      if (counts_[b] == 0) continue;
      seen += counts_[b];
      out.emplace_back(std::min(BucketHigh(b), max_),
                       static_cast<double>(seen) / static_cast<double>(total_));
    }
    return out;
  }

 private:
  std::array<uint64_t, kBuckets> counts_{};
  uint64_t total_ = 0;
  uint64_t min_ = ~uint64_t{0};
  uint64_t max_ = 0;
};

}  // namespace ecmplb::gen
