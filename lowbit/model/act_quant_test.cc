#include "lowbit/model/act_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/format/registry.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/quant/quantizer.h"

namespace lowbit {
namespace {

std::vector<float> randn(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> v(n);
  for (float& x : v) x = nd(rng);
  return v;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(ActQuantTest, Float32IsTheIdentity) {
  const std::vector<float> x = randn(7 * 96, 1);
  for (const char* spec : {"float32/tensor", "float32/channel", "float32/g32"}) {
    std::vector<float> y(x.size());
    const ActQuant a = ActQuant::dynamic(spec);
    EXPECT_TRUE(a.identity()) << spec;
    a.apply(x.data(), 7, 96, y.data(), 2);
    EXPECT_TRUE(same_bits(x, y)) << spec;
  }
  EXPECT_FALSE(ActQuant::dynamic("bfloat16/tensor").identity());
}

TEST(ActQuantTest, DynamicIsTheTensorQuantizerPerTokenRow) {
  const int64_t rows = 5, cols = 64;
  const std::vector<float> x = randn(static_cast<size_t>(rows * cols), 2);
  for (const char* spec : {"int8/channel", "int8/tensor", "mxfp8_e4m3", "nvfp4", "e4m3fn/g32"}) {
    const ActQuant a = ActQuant::dynamic(spec);
    std::vector<float> want(x.size()), got1(x.size()), got2(x.size());
    fakequant_tensor(TensorView(x.data(), {rows, cols}), want.data(), parse_scheme(spec));
    a.apply(x.data(), rows, cols, got1.data(), 1);
    a.apply(x.data(), rows, cols, got2.data(), 2);
    EXPECT_TRUE(same_bits(want, got1)) << spec;
    EXPECT_TRUE(same_bits(got1, got2)) << spec;
  }
  // Per token: each row scaled by its own absmax, so a row alone gives the
  // same values as inside the matrix.
  const ActQuant a = ActQuant::dynamic("int8/channel");
  std::vector<float> all(x.size()), row(static_cast<size_t>(cols));
  a.apply(x.data(), rows, cols, all.data(), 1);
  a.apply(x.data() + 3 * cols, 1, cols, row.data(), 1);
  EXPECT_EQ(0, std::memcmp(row.data(), all.data() + 3 * cols, row.size() * sizeof(float)));
}

TEST(ActQuantTest, StaticScaleFromCalibratedAmaxSaturates) {
  const ActQuant a = ActQuant::fixed("int8/tensor", 2.0f);
  const std::vector<float> x = {0.0f, 1.0f, -2.0f, 3.0f, -100.0f, 0.0079f};
  std::vector<float> y(x.size());
  a.apply(x.data(), 1, static_cast<int64_t>(x.size()), y.data(), 1);
  // s = 2 / 127; values beyond saturate to int8's ends, -128 s and 127 s.
  const float s = 2.0f / 127.0f, inv = 1.0f / s;
  for (size_t i = 0; i < x.size(); ++i) {
    const float code = std::fmax(-128.0f, std::fmin(127.0f, std::nearbyint(x[i] * inv)));
    EXPECT_EQ(y[i], code * s) << i;
  }
  EXPECT_EQ(a.bits_per_element(64), 8);
  // e4m3fn: the format engine's rounding of x / s.
  const ActQuant f = ActQuant::fixed("e4m3fn/tensor", 448.0f);
  std::vector<float> z(x.size()), want(x.size());
  f.apply(x.data(), 1, static_cast<int64_t>(x.size()), z.data(), 1);
  ArrayOptions o;
  fakequant_array(parse_format("e4m3fn"), x.data(), want.data(), x.size(), o);
  EXPECT_TRUE(same_bits(z, want));
}

TEST(ActQuantTest, SchemesARuntimeTensorCannotTake) {
  EXPECT_THROW(ActQuant::dynamic("int8/tensor/outliers=0.01"), Error);
  EXPECT_THROW(ActQuant::dynamic("nvfp4/b16x16"), Error);
  EXPECT_THROW(ActQuant::dynamic("int8/channel:1"), Error);
  EXPECT_THROW(ActQuant::fixed("int8/channel", 1.0f), Error);
  EXPECT_THROW(ActQuant::fixed("int8/tensor/asym", 1.0f), Error);
  EXPECT_THROW(ActQuant::fixed("int8/tensor", 0.0f), Error);
  EXPECT_THROW(ActQuant::fixed("int8/tensor", NAN), Error);
  EXPECT_THROW(ActQuant::dynamic("nosuchformat/tensor"), Error);
}

TEST(ActQuantTest, BitsPerElement) {
  EXPECT_EQ(ActQuant::dynamic("float32/tensor").bits_per_element(64), 32);
  EXPECT_DOUBLE_EQ(ActQuant::dynamic("mxfp4").bits_per_element(64), 4.25);
  // The default scale format is 16 bits wide: one per row of 64.
  EXPECT_DOUBLE_EQ(ActQuant::dynamic("int8/channel").bits_per_element(64), 8.25);
}

}  // namespace
}  // namespace lowbit
