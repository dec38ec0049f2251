#include "lowbit/kernels/cholesky.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

namespace lowbit {
namespace {

// A = M Mᵀ + n I for a random M: symmetric positive definite and well
// conditioned.
std::vector<double> spd(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> nd;
  std::vector<double> m(n * n), a(n * n);
  for (double& v : m) v = nd(rng);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < n; ++k) s += m[i * n + k] * m[j * n + k];
      a[i * n + j] = s + (i == j ? n : 0);
    }
  }
  return a;
}

TEST(Cholesky, LowerFactorReproducesTheMatrix) {
  for (int64_t n : {1, 2, 7, 65}) {
    const std::vector<double> a = spd(n, 3);
    std::vector<double> l = a;
    ASSERT_TRUE(cholesky_lower(l.data(), n));
    for (int64_t i = 0; i < n; ++i) {
      EXPECT_GT(l[i * n + i], 0);
      for (int64_t j = i + 1; j < n; ++j) EXPECT_EQ(l[i * n + j], 0) << i << "," << j;
      for (int64_t j = 0; j <= i; ++j) {
        double s = 0;
        for (int64_t k = 0; k <= j; ++k) s += l[i * n + k] * l[j * n + k];
        EXPECT_NEAR(s, a[i * n + j], 1e-10 * n) << n << ": " << i << "," << j;
      }
    }
  }
}

TEST(Cholesky, InverseUpperFactorTimesMatrixIsIdentity) {
  const int64_t n = 40;
  const std::vector<double> a = spd(n, 5);
  std::vector<double> u = a;
  ASSERT_TRUE(inverse_cholesky_upper(u.data(), n));
  // Upper triangular with a positive diagonal, and Uᵀ U A = I.
  std::vector<double> uu(n * n, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    EXPECT_GT(u[i * n + i], 0);
    for (int64_t j = 0; j < i; ++j) EXPECT_EQ(u[i * n + j], 0) << i << "," << j;
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < n; ++k) s += u[k * n + i] * u[k * n + j];
      uu[i * n + j] = s;
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0;
      for (int64_t k = 0; k < n; ++k) s += uu[i * n + k] * a[k * n + j];
      EXPECT_NEAR(s, i == j ? 1.0 : 0.0, 1e-10) << i << "," << j;
    }
  }
}

TEST(Cholesky, InverseUpperFactorReadsOnlyTheUpperTriangle) {
  const int64_t n = 9;
  const std::vector<double> a = spd(n, 8);
  std::vector<double> full = a, upper = a;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < i; ++j) upper[i * n + j] = 1e300;  // garbage below
  }
  ASSERT_TRUE(inverse_cholesky_upper(full.data(), n));
  ASSERT_TRUE(inverse_cholesky_upper(upper.data(), n));
  EXPECT_EQ(full, upper);
}

TEST(Cholesky, NotPositiveDefiniteIsReported) {
  std::vector<double> a = {1, 2, 2, 1};  // eigenvalues 3 and -1
  EXPECT_FALSE(cholesky_lower(a.data(), 2));
  a = {1, 2, 2, 1};
  EXPECT_FALSE(inverse_cholesky_upper(a.data(), 2));
  a = {0};
  EXPECT_FALSE(cholesky_lower(a.data(), 1));
  a = {std::nan("")};
  EXPECT_FALSE(cholesky_lower(a.data(), 1));
  EXPECT_TRUE(cholesky_lower(nullptr, 0));
}

}  // namespace
}  // namespace lowbit
