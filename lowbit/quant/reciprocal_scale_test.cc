#include "lowbit/quant/reciprocal_scale.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>

#include "lowbit/core/error.h"

namespace lowbit {
namespace {

// Brute force over a window far wider than the one the function searches:
// the float32 g in +-64 ulps of 1/s whose 1.0f / g is nearest s (the
// smallest such g on ties, as only the distance is compared below).
struct Brute {
  bool exact = false;
  double best_err = INFINITY;
};
Brute brute(float s) {
  Brute b;
  float g = 1.0f / s;
  for (int k = 0; k < 64; ++k) g = std::nextafter(g, 0.0f);
  for (int k = 0; k <= 128; ++k, g = std::nextafter(g, INFINITY)) {
    const float back = 1.0f / g;
    b.exact = b.exact || back == s;
    b.best_err = std::min(b.best_err, std::fabs(static_cast<double>(back) - s));
  }
  return b;
}

uint32_t ulps_apart(float a, float b) {
  const uint32_t x = std::bit_cast<uint32_t>(a), y = std::bit_cast<uint32_t>(b);
  return x > y ? x - y : y - x;
}

TEST(ReciprocalPreimage, AgreesWithBruteForceAcrossBinades) {
  std::mt19937 rng(7);
  int exact = 0, total = 0;
  for (int e : {-126, -100, -20, -8, -3, 0, 5, 40, 100, 126}) {
    for (int i = 0; i < 4000; ++i) {
      const uint32_t mant = rng() & 0x7FFFFF;
      const float s = std::ldexp(std::bit_cast<float>(0x3F800000u | mant), e);
      const ReciprocalScale r = reciprocal_preimage(s);
      const Brute b = brute(s);
      ASSERT_EQ(r.back, 1.0f / r.g) << s;
      ASSERT_EQ(r.exact, b.exact) << s;
      ASSERT_EQ(std::fabs(static_cast<double>(r.back) - s), b.best_err) << s;
      if (r.exact) {
        ASSERT_EQ(std::bit_cast<uint32_t>(r.back), std::bit_cast<uint32_t>(s));
      } else if (e < 126) {  // at e = 126, 1/s is subnormal and coarser
        ASSERT_EQ(ulps_apart(r.back, s), 1u) << s;
        // Only significands above sqrt 2 lack a preimage.
        ASSERT_GT(std::ldexp(s, -std::ilogb(s)), std::sqrt(2.0f)) << s;
      }
      if (e < 126) {
        exact += r.exact;
        ++total;
      }
    }
  }
  // About one float32 in six has no preimage (the docs' figure).
  const double missing = 1.0 - static_cast<double>(exact) / total;
  EXPECT_GT(missing, 0.10);
  EXPECT_LT(missing, 0.24);
}

TEST(ReciprocalPreimage, ZeroAndBadInput) {
  const ReciprocalScale z = reciprocal_preimage(0.0f);
  EXPECT_TRUE(std::isinf(z.g));
  EXPECT_EQ(z.back, 0.0f);
  EXPECT_TRUE(z.exact);
  EXPECT_THROW(reciprocal_preimage(std::numeric_limits<float>::quiet_NaN()), Error);
  EXPECT_THROW(reciprocal_preimage(-1.0f), Error);
  EXPECT_THROW(reciprocal_preimage(INFINITY), Error);
}

}  // namespace
}  // namespace lowbit
