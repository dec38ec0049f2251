// ColumnHistograms: every magnitude in the bin whose edges hold it, the
// under and over bins, NaNs left out, counts independent of how rows are
// added, and percentiles within a bin (1/8 octave) of the exact ones.
#include "lowbit/calib/column_histograms.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace lowbit {
namespace {

TEST(ColumnHistograms, EveryMagnitudeLiesInItsBin) {
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> exponent(-40.0f, 40.0f);
  for (int i = 0; i < 20000; ++i) {
    const float v = std::exp2(exponent(rng));
    const size_t b = ColumnHistograms::bin_of(v);
    ASSERT_LT(b, ColumnHistograms::kBins);
    EXPECT_LE(ColumnHistograms::lower(b), v) << v;
    EXPECT_LT(v, ColumnHistograms::upper(b)) << v;
  }
  EXPECT_EQ(ColumnHistograms::bin_of(0.0f), 0u);
  EXPECT_EQ(ColumnHistograms::bin_of(std::ldexp(1.0f, -33)), 0u);
  EXPECT_EQ(ColumnHistograms::bin_of(std::ldexp(1.0f, -32)), 1u);
  EXPECT_EQ(ColumnHistograms::bin_of(std::ldexp(1.0f, 32)), ColumnHistograms::kBins - 1);
  EXPECT_EQ(ColumnHistograms::bin_of(std::numeric_limits<float>::infinity()), ColumnHistograms::kBins - 1);
  // 8 bins per octave: 1, 1.125, ..., 1.875.
  EXPECT_EQ(ColumnHistograms::upper(ColumnHistograms::bin_of(1.0f)), 1.125f);
  EXPECT_EQ(ColumnHistograms::lower(ColumnHistograms::bin_of(1.9f)), 1.875f);
  EXPECT_EQ(ColumnHistograms::upper(ColumnHistograms::bin_of(1.9f)), 2.0f);
}

TEST(ColumnHistograms, PercentilesPerColumnWithinABinOfTheExactOnes) {
  // 3 columns of different scales; the last one with rare large outliers.
  const int64_t rows = 20000, cols = 3;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    x[r * cols + 0] = nd(rng);
    x[r * cols + 1] = 1e-3f * nd(rng);
    x[r * cols + 2] = (r % 997 == 0 ? 300.0f : 1.0f) * nd(rng);
  }
  x[5] = std::numeric_limits<float>::quiet_NaN();  // row 1, column 2: not counted
  ColumnHistograms all(cols), halves(cols);
  all.add(x.data(), rows);
  halves.add(x.data() + (rows / 2) * cols, rows - rows / 2);
  halves.add(x.data(), rows / 2);
  for (int64_t j = 0; j < cols; ++j) {
    EXPECT_TRUE(std::equal(all.counts(j).begin(), all.counts(j).end(), halves.counts(j).begin())) << j;
    uint64_t total = 0;
    for (uint32_t c : all.counts(j)) total += c;
    EXPECT_EQ(total, static_cast<uint64_t>(j == 2 ? rows - 1 : rows)) << j;
    std::vector<float> a;
    for (int64_t r = 0; r < rows; ++r) {
      if (!std::isnan(x[r * cols + j])) a.push_back(std::fabs(x[r * cols + j]));
    }
    std::sort(a.begin(), a.end());
    for (double p : {50.0, 99.0, 99.9, 99.99}) {
      const float exact = a[static_cast<size_t>(std::ceil(p / 100 * static_cast<double>(a.size()))) - 1];
      const float got = all.percentile(j, p);
      EXPECT_NEAR(got, exact, 0.125 * exact) << "column " << j << " p " << p;
    }
  }
  // The outlier column's tail is seen: its 99.99th percentile is far above
  // its 99th.
  EXPECT_GT(all.percentile(2, 99.99), 50 * all.percentile(2, 99.0));
  EXPECT_EQ(ColumnHistograms(2).percentile(0, 99.0), 0.0f);  // nothing counted
}

}  // namespace
}  // namespace lowbit
