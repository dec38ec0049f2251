#include "lowbit/train/qat.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

TEST(Qat, Parses) {
  EXPECT_EQ(QatSpec::parse("lsq+:int4", "q").bits, 4);
  EXPECT_EQ(QatSpec::parse("ternary", "q").kind, QatSpec::Kind::kTernary);
  EXPECT_FALSE(QatSpec::parse("none", "q").active());
  for (const char* bad : {"lsq+:int1", "lsq+:int9", "lsq:int4", "int4", ""}) {
    EXPECT_THROW(QatSpec::parse(bad, "q"), Error) << bad;
  }
}

// LSQ+ on a hand-checked row: s = 0.5, β = 0.25, 3 bits (levels -4..3).
TEST(Qat, LsqPlusForwardAndItsStraightThroughGradients) {
  const float w[] = {0.25f, 0.6f, -3.0f, 2.5f, 0.375f};
  const float s = 0.5f, b = 0.25f;
  float w_hat[5];
  lsq_forward(w, 1, 5, &s, &b, 3, w_hat, 1);
  // v = (w - 0.25)/0.5 = 0, 0.7, -6.5, 4.5, 0.25 -> round/clamp 0, 1, -4, 3, 0
  EXPECT_EQ(w_hat[0], 0.25f);
  EXPECT_EQ(w_hat[1], 0.75f);
  EXPECT_EQ(w_hat[2], -1.75f);
  EXPECT_EQ(w_hat[3], 1.75f);
  EXPECT_EQ(w_hat[4], 0.25f);
  const float g[] = {1, 1, 1, 1, 1};
  float dw[5] = {}, ds = 0, db = 0;
  lsq_backward(w, 1, 5, &s, &b, 3, g, dw, &ds, &db, 1);
  EXPECT_EQ(dw[0], 1);  // inside: straight through
  EXPECT_EQ(dw[2], 0);  // clipped below
  EXPECT_EQ(dw[3], 0);  // clipped above
  const double scale = 1.0 / std::sqrt(5.0 * 4.0);
  // ds: (0 - 0) + (1 - 0.7) + (-4) + 3 + (0 - 0.25); db: the two clipped ones.
  EXPECT_NEAR(ds, (0.3 - 4 + 3 - 0.25) * scale, 1e-6);
  EXPECT_NEAR(db, 2 * scale, 1e-6);
}

TEST(Qat, LsqInitCoversThreeSigma) {
  const std::vector<float> w = testing_support::normal_values(4096, 1, 0.02f);
  float s = 0, b = 1;
  lsq_init(w.data(), 1, 4096, 4, &s, &b);
  EXPECT_NEAR(s, 3 * 0.02 / 8, 0.0005);
  EXPECT_EQ(b, 0.0f);
}

TEST(Qat, TernaryAndEightBitActivations) {
  const std::vector<float> w = testing_support::normal_values(1000, 2);
  std::vector<float> wh(w.size());
  ternary_forward(w.data(), 1000, wh.data());
  std::set<float> values(wh.begin(), wh.end());
  EXPECT_EQ(values.size(), 3u);
  double mean_abs = 0;
  for (float v : w) mean_abs += std::fabs(v);
  mean_abs /= 1000;
  EXPECT_NEAR(*values.rbegin(), mean_abs, 1e-6);
  EXPECT_EQ(*values.begin(), -*values.rbegin());
  const std::vector<float> x = {1, -2, 0.5f, 4, 0, 0, 0, 0};
  std::vector<float> xq(8);
  absmax_int8_rows(x.data(), 2, 4, xq.data(), 1);
  EXPECT_EQ(xq[3], 4.0f);
  EXPECT_NEAR(xq[1], std::nearbyint(-2 * 127.0 / 4) * 4 / 127, 1e-6);
  EXPECT_EQ(xq[4], 0.0f);  // an all-zero row stays zero
}

}  // namespace
}  // namespace lowbit
