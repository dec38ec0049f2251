#include "lowbit/model/layer_norm.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace lowbit {
namespace {

TEST(LayerNorm, MatchesTheDefinition) {
  const std::vector<float> x = {1, 2, 3, 4, -10, 0, 10, 20};
  const std::vector<float> gamma = {1, 2, 0.5f, -1}, beta = {0, 1, -1, 0.25f};
  std::vector<float> y(8);
  layer_norm(x.data(), 2, 4, 4, gamma.data(), beta.data(), 1e-5, y.data(), 4, 1);
  for (int r = 0; r < 2; ++r) {
    double mean = 0, var = 0;
    for (int j = 0; j < 4; ++j) mean += x[r * 4 + j] / 4.0;
    for (int j = 0; j < 4; ++j) var += (x[r * 4 + j] - mean) * (x[r * 4 + j] - mean) / 4.0;
    for (int j = 0; j < 4; ++j) {
      const double want = (x[r * 4 + j] - mean) / std::sqrt(var + 1e-5) * gamma[j] + beta[j];
      EXPECT_NEAR(y[r * 4 + j], want, 1e-6) << r << "," << j;
    }
  }
}

TEST(LayerNorm, LargeMeanDoesNotCancelTheVariance) {
  // float32 one-pass sums (E[x^2] - E[x]^2) lose everything here.
  const std::vector<float> x = {1e4f + 1, 1e4f - 1};
  const std::vector<float> g = {1, 1}, b = {0, 0};
  std::vector<float> y(2);
  layer_norm(x.data(), 1, 2, 2, g.data(), b.data(), 0.0, y.data(), 2, 1);
  EXPECT_FLOAT_EQ(y[0], 1.0f);
  EXPECT_FLOAT_EQ(y[1], -1.0f);
}

TEST(LayerNorm, InPlaceWithStridesAndBitIdenticalAcrossThreads) {
  const int64_t rows = 300, dim = 37, ld = 40;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.5f, 3.0f);
  std::vector<float> x(rows * ld), g(dim), b(dim);
  for (auto& v : x) v = nd(rng);
  for (auto& v : g) v = nd(rng);
  for (auto& v : b) v = nd(rng);
  std::vector<float> y1(rows * dim), y2(rows * dim);
  layer_norm(x.data(), rows, dim, ld, g.data(), b.data(), 1e-12, y1.data(), dim, 1);
  layer_norm(x.data(), rows, dim, ld, g.data(), b.data(), 1e-12, y2.data(), dim, 2);
  EXPECT_EQ(std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)), 0);
  layer_norm(x.data(), rows, dim, ld, g.data(), b.data(), 1e-12, x.data(), ld, 3);  // in place
  for (int64_t r = 0; r < rows; ++r) {
    ASSERT_EQ(std::memcmp(x.data() + r * ld, y1.data() + r * dim, dim * sizeof(float)), 0) << r;
  }
}

}  // namespace
}  // namespace lowbit
