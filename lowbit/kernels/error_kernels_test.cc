// error_sums on every SIMD target against error_sums_reference (the
// canonical order in plain scalar code), bit for bit, for lengths around
// the 16-pair step, with inf and NaN on either side; and the reference
// against sums computed independently in long double.
#include "lowbit/kernels/error_kernels.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowbit/kernels/array_ops.h"

namespace lowbit {
namespace {

using kernels::ErrorSums;

void expect_same_bits(const ErrorSums& a, const ErrorSums& b) {
  EXPECT_EQ(a.nonfinite, b.nonfinite);
  EXPECT_EQ(a.lost, b.lost);
  // Bit equality (EXPECT_EQ on doubles is exact; these are never NaN).
  EXPECT_EQ(a.sum_x2, b.sum_x2);
  EXPECT_EQ(a.sum_y2, b.sum_y2);
  EXPECT_EQ(a.sum_xy, b.sum_xy);
  EXPECT_EQ(a.sum_err2, b.sum_err2);
  EXPECT_EQ(a.max_abs_err, b.max_abs_err);
}

struct Data {
  std::vector<float> x, y;
};

Data make(size_t n, uint32_t seed, bool specials) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 3.0f);
  Data v{std::vector<float>(n), std::vector<float>(n)};
  for (size_t i = 0; i < n; ++i) {
    v.x[i] = d(rng);
    v.y[i] = v.x[i] + 0.01f * d(rng);
  }
  if (specials && n > 0) {
    const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
    for (size_t i = 0; i < n; i += 37) (i % 2 ? v.x : v.y)[i] = i % 3 ? nan : -inf;
    v.y[n - 1] = inf;
  }
  return v;
}

TEST(ErrorSums, EveryTargetEqualsTheReferenceBitForBit) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{15}, size_t{16}, size_t{17}, size_t{33}, size_t{255}, size_t{4099},
                   size_t{65536}}) {
    for (bool specials : {false, true}) {
      const Data v = make(n, static_cast<uint32_t>(n) + 7, specials);
      const ErrorSums ref = kernels::error_sums_reference(v.x.data(), v.y.data(), n);
      for (KernelTarget t : available_targets()) {
        set_kernel_target(t);
        const ErrorSums got = kernels::error_sums(v.x.data(), v.y.data(), n);
        reset_kernel_target();
        SCOPED_TRACE("n " + std::to_string(n) + (specials ? " with inf/NaN" : "") + " target " +
                     kernel_target_name(t));
        expect_same_bits(got, ref);
      }
    }
  }
}

TEST(ErrorSums, ReferenceAgreesWithLongDoubleSums) {
  const size_t n = 10007;
  const Data v = make(n, 5, true);
  long double x2 = 0, y2 = 0, xy = 0, e2 = 0, emax = 0;
  uint64_t bad = 0, lost = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!std::isfinite(v.x[i]) || !std::isfinite(v.y[i])) {
      ++bad;
      lost += std::isfinite(v.x[i]);
      continue;
    }
    const long double a = v.x[i], b = v.y[i];
    x2 += a * a;
    y2 += b * b;
    xy += a * b;
    e2 += (b - a) * (b - a);
    emax = std::max(emax, std::fabs(b - a));
  }
  const ErrorSums s = kernels::error_sums_reference(v.x.data(), v.y.data(), n);
  EXPECT_EQ(s.nonfinite, bad);
  EXPECT_EQ(s.lost, lost);
  EXPECT_GT(lost, 0u);
  EXPECT_NEAR(s.sum_x2, static_cast<double>(x2), 1e-12 * static_cast<double>(x2));
  EXPECT_NEAR(s.sum_y2, static_cast<double>(y2), 1e-12 * static_cast<double>(y2));
  EXPECT_NEAR(s.sum_xy, static_cast<double>(xy), 1e-12 * static_cast<double>(x2));
  EXPECT_NEAR(s.sum_err2, static_cast<double>(e2), 1e-10 * static_cast<double>(e2));
  EXPECT_EQ(s.max_abs_err, static_cast<double>(emax));
}

}  // namespace
}  // namespace lowbit
