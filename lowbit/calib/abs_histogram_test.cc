#include "lowbit/calib/abs_histogram.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "lowbit/core/error.h"

namespace lowbit {
namespace {

TEST(AbsHistogramTest, BinsTileEveryFiniteMagnitude) {
  // 16 bins per octave: [1, 1.0625) is one bin, 1.0625 starts the next.
  EXPECT_EQ(AbsHistogram::bin_of(1.0f) + 1, AbsHistogram::bin_of(1.0625f));
  EXPECT_EQ(AbsHistogram::bin_of(1.06f), AbsHistogram::bin_of(1.0f));
  EXPECT_EQ(AbsHistogram::bin_of(-3.0f), AbsHistogram::bin_of(3.0f));
  EXPECT_EQ(AbsHistogram::lower(AbsHistogram::bin_of(1.0f)), 1.0f);
  EXPECT_EQ(AbsHistogram::upper(AbsHistogram::bin_of(1.0f)), 1.0625f);
  EXPECT_EQ(AbsHistogram::bin_of(0.0f), 0u);
  EXPECT_EQ(AbsHistogram::bin_of(std::numeric_limits<float>::max()), AbsHistogram::kBins - 1);
  EXPECT_GE(AbsHistogram::bin_of(std::numeric_limits<float>::infinity()), AbsHistogram::kBins);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> u(-40.0f, 40.0f);
  for (int i = 0; i < 10000; ++i) {
    const float x = std::ldexp(1.0f + std::fabs(u(rng)) / 40.0f, static_cast<int>(u(rng)));
    const size_t b = AbsHistogram::bin_of(x);
    EXPECT_LE(AbsHistogram::lower(b), x);
    EXPECT_LT(x, AbsHistogram::upper(b));
  }
}

TEST(AbsHistogramTest, CountsMergeAndPercentiles) {
  std::vector<float> x;
  for (int i = 1; i <= 1000; ++i) x.push_back(static_cast<float>(i) * (i % 2 ? 1.0f : -1.0f));
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  x.push_back(-std::numeric_limits<float>::infinity());
  AbsHistogram whole, a, b;
  whole.add(x.data(), static_cast<int64_t>(x.size()));
  a.add(x.data(), 300);
  b.add(x.data() + 300, static_cast<int64_t>(x.size()) - 300);
  b.merge(a);
  EXPECT_EQ(whole.counts(), b.counts());
  EXPECT_EQ(whole.total(), 1000u);  // NaN and inf not counted
  // The p-th percentile of 1..1000 is about 10 p, within a bin (4.4%).
  for (double p : {10.0, 50.0, 90.0, 99.0, 99.9}) {
    EXPECT_NEAR(whole.percentile(p), 10 * p, 10 * p * 0.045) << p;
  }
  EXPECT_EQ(whole.percentile(100), AbsHistogram::upper(AbsHistogram::bin_of(1000.0f)));
  EXPECT_EQ(AbsHistogram().percentile(50), 0.0f);
  EXPECT_THROW(AbsHistogram::from_counts(std::vector<uint64_t>(3)), Error);
  EXPECT_EQ(AbsHistogram::from_counts(whole.counts()).counts(), whole.counts());
}

}  // namespace
}  // namespace lowbit
