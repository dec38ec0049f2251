#include "lowbit/quant/error_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace lowbit {
namespace {

TEST(ErrorStats, ClosedFormValues) {
  // x = (3, 4), x_hat = (3, 5): error energy 1, signal energy 25.
  const float x[] = {3, 4}, y[] = {3, 5};
  ErrorStats s;
  s.add(x, y, 2);
  EXPECT_EQ(s.count, 2u);
  EXPECT_DOUBLE_EQ(s.mse(), 0.5);
  EXPECT_DOUBLE_EQ(s.qsnr_db(), -10 * std::log10(1.0 / 25.0));
  EXPECT_DOUBLE_EQ(s.relative_rmse(), 0.2);
  EXPECT_DOUBLE_EQ(s.cosine(), (9.0 + 20.0) / std::sqrt(25.0 * 34.0));
  EXPECT_DOUBLE_EQ(s.max_abs_err, 1.0);
  ErrorStats exact;
  exact.add(x, x, 2);
  EXPECT_TRUE(std::isinf(exact.qsnr_db()));
  EXPECT_DOUBLE_EQ(exact.cosine(), 1.0);
}

TEST(ErrorStats, NonFinitePairsAreCountedApart) {
  const float x[] = {1, NAN, 2, INFINITY}, y[] = {1, 1, NAN, 1};
  ErrorStats s;
  s.add(x, y, 4);
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.nonfinite, 3u);
  // The pair (2, NaN): a finite value lost. The error is unbounded, and the
  // statistics say so rather than describe the one finite pair.
  EXPECT_EQ(s.lost, 1u);
  EXPECT_EQ(s.qsnr_db(), -INFINITY);
  EXPECT_EQ(s.mse(), INFINITY);
  EXPECT_EQ(s.relative_rmse(), INFINITY);
  EXPECT_TRUE(std::isnan(s.cosine()));
}

TEST(ErrorStats, NonFiniteInputAloneLosesNothing) {
  // NaN in, NaN out (a kept NaN weight): excluded, nothing lost.
  const float x[] = {1, NAN, 2, INFINITY}, y[] = {1.5f, NAN, 2, NAN};
  ErrorStats s;
  s.add(x, y, 4);
  EXPECT_EQ(s.lost, 0u);
  EXPECT_NEAR(s.qsnr_db(), -10 * std::log10(0.25 / 5), 1e-12);
  ErrorStats d;
  for (int i = 0; i < 4; ++i) d.add(static_cast<double>(x[i]), static_cast<double>(y[i]));
  EXPECT_EQ(d.qsnr_db(), s.qsnr_db());
}

TEST(ErrorStats, MergingHalvesEqualsOnePassAndThreadsDoNotMatter) {
  std::mt19937 rng(4);
  std::normal_distribution<float> nd(0, 1);
  const size_t n = 300000;
  std::vector<float> x(n), y(n);
  for (size_t i = 0; i < n; ++i) {
    x[i] = nd(rng);
    y[i] = x[i] + 0.01f * nd(rng);
  }
  ErrorStats whole, a, b;
  whole.add(x.data(), y.data(), n);
  a.add(x.data(), y.data(), n / 3);
  b.add(x.data() + n / 3, y.data() + n / 3, n - n / 3);
  a.merge(b);
  EXPECT_EQ(a.count, whole.count);
  EXPECT_NEAR(a.qsnr_db(), whole.qsnr_db(), 1e-9);
  EXPECT_EQ(a.max_abs_err, whole.max_abs_err);
  const ErrorStats t1 = error_stats(x.data(), y.data(), n, 1);
  const ErrorStats t2 = error_stats(x.data(), y.data(), n, 2);
  const ErrorStats t3 = error_stats(x.data(), y.data(), n, 3);
  EXPECT_EQ(t1.sum_err2, t2.sum_err2);  // bit-identical, not just close
  EXPECT_EQ(t1.sum_err2, t3.sum_err2);
  EXPECT_EQ(t1.sum_xy, t3.sum_xy);
  EXPECT_NEAR(t1.qsnr_db(), 40.0, 0.1);  // noise at 1% of the signal's RMS
}

TEST(CrestStats, BlocksAndMerge) {
  const float flat[] = {1, -1, 1, -1};
  const float spike[] = {4, 0, 0, 0};
  const float zero[] = {0, 0, 0, 0};
  EXPECT_DOUBLE_EQ(CrestStats::crest_factor(flat, 4), 1.0);
  EXPECT_DOUBLE_EQ(CrestStats::crest_factor(spike, 4), 2.0);  // 4 / sqrt(16 / 4)
  CrestStats a, b;
  a.add_block(flat, 4);
  b.add_block(spike, 4);
  b.add_block(zero, 4);
  a.merge(b);
  EXPECT_EQ(a.blocks, 2u);
  EXPECT_EQ(a.zero_blocks, 1u);
  EXPECT_DOUBLE_EQ(a.mean(), 1.5);
  EXPECT_DOUBLE_EQ(a.min, 1.0);
  EXPECT_DOUBLE_EQ(a.max, 2.0);
  EXPECT_DOUBLE_EQ(a.stddev(), 0.5);
}

}  // namespace
}  // namespace lowbit
