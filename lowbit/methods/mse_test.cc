#include <gtest/gtest.h>

#include <random>

#include "lowbit/methods/method_registry.h"

namespace lowbit {
namespace {

std::vector<float> heavy(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::student_t_distribution<float> d(3.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

double weighted_err(const std::vector<float>& w, const QuantizedTensor& q, const std::vector<float>& imp) {
  std::vector<float> y(w.size());
  dequantize(q, y.data(), 1);
  double e = 0;
  for (size_t i = 0; i < w.size(); ++i) {
    const double d = double(y[i]) - w[i];
    e += imp[i % imp.size()] * d * d;
  }
  return e;
}

// mse is the scheme with scale=mse; with importance, scale=wmse over the
// columns; and it beats rtn on the error it minimizes.
TEST(Mse, IsTheClippingSearch) {
  const std::vector<float> w = heavy(32 * 256, 2);
  for (const char* spec : {"int4/g128/asym", "mxfp4", "nvfp4", "int8/channel"}) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    const Scheme searched = mse_method().stored_scheme(s, false);
    EXPECT_EQ(searched.rule, ScaleRule::kMse);
    const QuantizedTensor a = mse_method().quantize({w.data(), {32, 256}}, s, nullptr, {});
    const QuantizedTensor b = quantize({w.data(), {32, 256}}, searched);
    EXPECT_EQ(a.codes, b.codes);
    EXPECT_EQ(a.scales, b.scales);
    const std::vector<float> ones(256, 1.0f);
    const QuantizedTensor r = rtn_method().quantize({w.data(), {32, 256}}, s, nullptr, {});
    EXPECT_LE(weighted_err(w, a, ones), weighted_err(w, r, ones));
  }
}

TEST(Mse, ImportanceMakesItTheWeightedSearch) {
  const std::vector<float> w = heavy(16 * 128, 3);
  std::vector<float> imp(128);
  for (size_t c = 0; c < imp.size(); ++c) imp[c] = c % 7 == 0 ? 50.0f : 0.1f;
  CalibStats calib;
  calib.importance_per_column = imp;
  const Scheme s = parse_scheme("int4/g32/asym");
  EXPECT_EQ(mse_method().stored_scheme(s, true).rule, ScaleRule::kWmse);
  const QuantizedTensor a = mse_method().quantize({w.data(), {16, 128}}, s, &calib, {});
  QuantizeOptions o;
  o.importance = imp.data();
  o.importance_count = imp.size();
  o.importance_per_column = true;
  const QuantizedTensor b = quantize({w.data(), {16, 128}}, mse_method().stored_scheme(s, true), o);
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zeros, b.zeros);
  const QuantizedTensor plain = mse_method().quantize({w.data(), {16, 128}}, s, nullptr, {});
  EXPECT_LT(weighted_err(w, a, imp), weighted_err(w, plain, imp));
}

}  // namespace
}  // namespace lowbit
