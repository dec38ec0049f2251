#include "lowbit/model/rms_norm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace lowbit {
namespace {

TEST(RmsNormTest, MatchesDoubleDefinitionAndThreadCounts) {
  const int64_t n = 50, dim = 96;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 3.0f);
  std::vector<float> x(static_cast<size_t>(n * dim)), w(static_cast<size_t>(dim));
  for (float& v : x) v = nd(rng);
  for (float& v : w) v = 1.0f + nd(rng) / 10;
  std::vector<float> y1(x.size()), y2(x.size());
  rms_norm(x.data(), n, dim, dim, w.data(), 1e-5f, y1.data(), dim, 1);
  rms_norm(x.data(), n, dim, dim, w.data(), 1e-5f, y2.data(), dim, 4);
  EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * 4), 0);
  for (int64_t r = 0; r < n; ++r) {
    double s = 0;
    for (int64_t i = 0; i < dim; ++i) s += double{x[static_cast<size_t>(r * dim + i)]} * x[static_cast<size_t>(r * dim + i)];
    const double scale = 1 / std::sqrt(s / dim + 1e-5);
    for (int64_t i = 0; i < dim; ++i) {
      const double want = x[static_cast<size_t>(r * dim + i)] * scale * w[static_cast<size_t>(i)];
      EXPECT_NEAR(y1[static_cast<size_t>(r * dim + i)], want, 1e-6 * (1 + std::abs(want)));
    }
  }
}

TEST(RmsNormTest, StridesInPlaceAndZeroRow) {
  std::vector<float> x{0, 0, 0, 9, 3, 4, 0, 9}, w{1, 1, 1};
  rms_norm(x.data(), 2, 3, 4, w.data(), 0.0f, x.data(), 4, 1);
  // A zero row with eps 0 divides by zero: inf * 0 is NaN, which the model
  // then reports; with the usual eps it stays 0.
  EXPECT_EQ(x[3], 9);
  EXPECT_EQ(x[7], 9);
  const float s = static_cast<float>(1.0 / std::sqrt(25.0 / 3));
  EXPECT_EQ(x[4], 3 * s);
  EXPECT_EQ(x[5], 4 * s);
  std::vector<float> z{0, 0, 0};
  rms_norm(z.data(), 1, 3, 3, w.data(), 1e-5f, z.data(), 3, 1);
  EXPECT_EQ(z, (std::vector<float>{0, 0, 0}));
}

}  // namespace
}  // namespace lowbit
