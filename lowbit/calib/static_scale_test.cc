#include "lowbit/calib/static_scale.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/model/act_quant.h"

namespace lowbit {
namespace {

// Laplace(0, 1) values: heavy enough tails that a 4-bit grid does best
// clipping them (the MSE-optimal clip of a Laplace at 4 bits is near 5,
// the largest of 200000 values near 12).
std::vector<float> outlier_data() {
  std::mt19937 rng(5);
  std::exponential_distribution<float> ed(1.0f);
  std::vector<float> x(200000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = (i % 2 ? 1.0f : -1.0f) * ed(rng);
  return x;
}

double mse_at(const std::vector<float>& x, const char* spec, float amax) {
  const ActQuant a = ActQuant::fixed(spec, amax);
  std::vector<float> y(x.size());
  a.apply(x.data(), 1, static_cast<int64_t>(x.size()), y.data(), 1);
  double e = 0;
  for (size_t i = 0; i < x.size(); ++i) e += (double{y[i]} - x[i]) * (double{y[i]} - x[i]);
  return e;
}

TEST(StaticScaleTest, RulesParse) {
  EXPECT_EQ(StaticRule::parse("absmax").kind, StaticRule::Kind::kAbsmax);
  EXPECT_EQ(StaticRule::parse("percentile:99.9").percentile, 99.9);
  EXPECT_EQ(StaticRule::parse("mse").name(), "mse");
  EXPECT_EQ(StaticRule::parse("kl").name(), "kl");
  for (const char* bad : {"percentile:0", "percentile:101", "percentile:x", "entropy", "percentile:"}) {
    EXPECT_THROW(StaticRule::parse(bad), Error) << bad;
  }
}

TEST(StaticScaleTest, EachRuleOnDataWithOutliers) {
  const std::vector<float> x = outlier_data();
  AbsHistogram h;
  h.add(x.data(), static_cast<int64_t>(x.size()));
  float absmax = 0;
  for (float v : x) absmax = std::max(absmax, std::fabs(v));
  const Scheme int4 = parse_scheme("int4/tensor");
  EXPECT_EQ(static_amax(StaticRule::parse("absmax"), absmax, nullptr, int4), absmax);
  EXPECT_THROW(static_amax(StaticRule::parse("mse"), absmax, nullptr, int4), Error);
  // The 99.9th percentile of |x| is ln(1000) = 6.9.
  const float p = static_amax(StaticRule::parse("percentile:99.9"), absmax, &h, int4);
  EXPECT_NEAR(p, std::log(1000.0), 0.35);
  // MSE clips the tails for int4: its amax is well below absmax, and its
  // true error on the data is below absmax's.
  const float m = static_amax(StaticRule::parse("mse"), absmax, &h, int4);
  EXPECT_LT(m, absmax / 1.5f);
  EXPECT_LT(mse_at(x, "int4/tensor", m), 0.8 * mse_at(x, "int4/tensor", absmax));
  // No amax does better on the data than the choice by more than the
  // histogram's resolution allows.
  for (float t = 1.0f; t < absmax; t *= 1.05f) {
    EXPECT_GT(mse_at(x, "int4/tensor", t), 0.97 * mse_at(x, "int4/tensor", m)) << t;
  }
  // KL (entropy calibration) clips too.
  const float k = static_amax(StaticRule::parse("kl"), absmax, &h, int4);
  EXPECT_LT(k, absmax);
  EXPECT_GT(k, 1.0f);
  // int8's grid is 16 times finer, so its MSE clip is larger.
  const float m8 = static_amax(StaticRule::parse("mse"), absmax, &h, parse_scheme("int8/tensor"));
  EXPECT_GT(m8, m);
  EXPECT_LE(m8, absmax);
}

}  // namespace
}  // namespace lowbit
