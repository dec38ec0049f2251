#include "lowbit/kernels/matmul.h"

#include <gtest/gtest.h>

#include "lowbit/core/test_support.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace lowbit {
namespace {

using testing_support::normal_values;


// y = x·wᵀ + b in double: the reference, rounded once.
std::vector<double> reference(const std::vector<float>& x, int64_t n, int64_t k, int64_t ldx,
                              const std::vector<float>& w, int64_t m, const std::vector<float>& bias) {
  std::vector<double> y(static_cast<size_t>(n * m));
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      double s = bias.empty() ? 0.0 : bias[j];
      for (int64_t t = 0; t < k; ++t) s += static_cast<double>(x[i * ldx + t]) * w[j * k + t];
      y[i * m + j] = s;
    }
  }
  return y;
}

// Shapes around the tile sizes (a partial last tile in both directions),
// a decode-like single row, and a padded input stride.
TEST(Matmul, MatchesDoubleReferenceAndIsThreadInvariant) {
  struct Case {
    int64_t n, k, m, ldx;
    bool bias;
  };
  for (const Case c : {Case{1, 576, 300, 576, false}, Case{300, 64, 129, 70, true}, Case{257, 33, 1, 33, true},
                       Case{5, 1, 7, 1, false}}) {
    const auto x = normal_values(static_cast<size_t>(c.n * c.ldx), 1);
    const auto w = normal_values(static_cast<size_t>(c.m * c.k), 2);
    const auto b = c.bias ? normal_values(static_cast<size_t>(c.m), 3) : std::vector<float>{};
    const auto ref = reference(x, c.n, c.k, c.ldx, w, c.m, b);
    std::vector<float> first;
    for (int threads : {1, 2, 3}) {
      std::vector<float> y(static_cast<size_t>(c.n * (c.m + 3)), -7.0f);
      matmul_nt(x.data(), c.n, c.k, c.ldx, w.data(), c.m, c.bias ? b.data() : nullptr, y.data(), c.m + 3, threads);
      for (int64_t i = 0; i < c.n; ++i) {
        for (int64_t j = 0; j < c.m; ++j) {
          // float32 accumulation over k terms of unit variance.
          ASSERT_NEAR(y[i * (c.m + 3) + j], ref[i * c.m + j], 1e-5 * std::sqrt(double(c.k)) * 8 + 1e-6)
              << "n=" << c.n << " k=" << c.k << " m=" << c.m << " at " << i << "," << j;
        }
        // The padding of each output row is left alone.
        for (int64_t j = c.m; j < c.m + 3; ++j) ASSERT_EQ(y[i * (c.m + 3) + j], -7.0f);
      }
      if (first.empty()) {
        first = y;
      } else {
        ASSERT_EQ(0, std::memcmp(first.data(), y.data(), y.size() * sizeof(float))) << "threads=" << threads;
      }
    }
  }
}

TEST(Matmul, EmptyReductionGivesTheBias) {
  const std::vector<float> b = {1.5f, -2.0f};
  std::vector<float> y(4, 9.0f);
  matmul_nt(nullptr, 2, 0, 0, nullptr, 2, b.data(), y.data(), 2, 2);
  EXPECT_EQ(y, (std::vector<float>{1.5f, -2.0f, 1.5f, -2.0f}));
}

TEST(Matmul, GramUpperTriangleInDoubleThreadInvariantAndAccumulating) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t n = 70, k = 300;  // k crosses kGramTile twice
  std::vector<float> x(static_cast<size_t>(n * k));
  for (float& v : x) v = nd(rng);
  std::vector<double> g1(static_cast<size_t>(k * k), 0.0), g2 = g1;
  gram_add_upper(x.data(), n, k, g1.data(), 1);
  gram_add_upper(x.data(), n, k, g2.data(), 3);
  for (int64_t i = 0; i < k; ++i) {
    for (int64_t j = i; j < k; ++j) {
      double want = 0;
      for (int64_t r = 0; r < n; ++r) want += double{x[r * k + i]} * double{x[r * k + j]};
      const size_t at = static_cast<size_t>(i * k + j);
      ASSERT_NEAR(g1[at], want, 1e-12 * (1 + std::fabs(want))) << i << "," << j;
      ASSERT_EQ(std::memcmp(&g1[at], &g2[at], sizeof(double)), 0) << i << "," << j;
    }
  }
  // A second call adds.
  gram_add_upper(x.data(), n, k, g1.data(), 2);
  EXPECT_NEAR(g1[static_cast<size_t>(5 * k + 200)], 2 * g2[static_cast<size_t>(5 * k + 200)], 1e-9);
}

// The backward products: dx = dy·w and g (+)= dyᵀ·x, against double sums,
// across tile edges, thread-invariant bit for bit.
TEST(Matmul, BackwardProductsMatchDoubleAndAreThreadInvariant) {
  const int64_t n = 300, m = 150, k = 270, ldx = 275;  // partial tiles everywhere, padded x
  const auto dy = normal_values(static_cast<size_t>(n * m), 4);
  const auto w = normal_values(static_cast<size_t>(m * k), 5);
  const auto x = normal_values(static_cast<size_t>(n * ldx), 6);
  std::vector<float> dx1(static_cast<size_t>(n * ldx), -7.0f), dx2 = dx1;
  matmul_nn(dy.data(), n, m, w.data(), k, dx1.data(), ldx, false, 1);
  matmul_nn(dy.data(), n, m, w.data(), k, dx2.data(), ldx, false, 3);
  ASSERT_EQ(std::memcmp(dx1.data(), dx2.data(), dx1.size() * sizeof(float)), 0);
  for (int64_t i = 0; i < n; i += 7) {
    for (int64_t j = 0; j < k; ++j) {
      double want = 0;
      for (int64_t t = 0; t < m; ++t) want += double{dy[i * m + t]} * w[t * k + j];
      ASSERT_NEAR(dx1[i * ldx + j], want, 1e-4 * std::sqrt(double(m))) << i << "," << j;
    }
    for (int64_t j = k; j < ldx; ++j) ASSERT_EQ(dx1[i * ldx + j], -7.0f);
  }
  // accumulate adds dy·w to what is there.
  std::vector<float> dx3(dx1.size(), 1.0f);
  matmul_nn(dy.data(), n, m, w.data(), k, dx3.data(), ldx, true, 2);
  EXPECT_NEAR(dx3[ldx + 4], dx1[ldx + 4] + 1.0f, 1e-4);
  std::vector<float> g1(static_cast<size_t>(m * k), 0.5f), g2 = g1;
  matmul_tn(dy.data(), n, m, x.data(), k, ldx, g1.data(), true, 1);
  matmul_tn(dy.data(), n, m, x.data(), k, ldx, g2.data(), true, 2);
  ASSERT_EQ(std::memcmp(g1.data(), g2.data(), g1.size() * sizeof(float)), 0);
  for (int64_t i = 0; i < m; i += 5) {
    for (int64_t j = 0; j < k; j += 3) {
      double want = 0.5;
      for (int64_t r = 0; r < n; ++r) want += double{dy[r * m + i]} * x[r * ldx + j];
      ASSERT_NEAR(g1[i * k + j], want, 1e-4 * std::sqrt(double(n))) << i << "," << j;
    }
  }
  // Without accumulate the old contents are ignored.
  std::vector<float> g3(static_cast<size_t>(m * k), 1e30f);
  matmul_tn(dy.data(), n, m, x.data(), k, ldx, g3.data(), false, 2);
  EXPECT_NEAR(g3[0], g1[0] - 0.5f, 1e-3);
}

}  // namespace
}  // namespace lowbit
