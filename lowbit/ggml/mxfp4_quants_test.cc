// MXFP4 blocks derived by hand from quantize_row_mxfp4_ref: the exponent
// rule (including log2f's rounding just below powers of two), the nearest
// E2M1 code with ggml's first-index ties, and the E8M0 half-scale decode.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "lowbit/ggml/row_codec.h"
#include "lowbit/ggml/row_codec_internal.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit {
namespace {

std::vector<uint8_t> encode(const std::vector<float>& x) {
  std::vector<uint8_t> b(17 * x.size() / 32);
  ggml_quantize_row(GgmlType::kMXFP4, x.data(), x.size(), b.data());
  return b;
}
uint8_t code(const std::vector<uint8_t>& b, int j) { return j < 16 ? b[1 + j] & 0xF : b[1 + j - 16] >> 4; }

TEST(GgmlMxfp4, NearestCodeAndTies) {
  // amax = 6: floor(log2 6) = 2, e = 2 - 2 + 127 = 127, d = 2^(127 - 128) =
  // 0.5, so the codes' values are kValues * 0.5 = the E2M1 values. 5 lies
  // halfway between 4 (code 6) and 6 (code 7): the first, code 6; -5 gives
  // -4 (code 14); +-0.25 lie between 0 and +-0.5: code 0 (value 0 comes
  // first, and -0's code 8 never wins).
  std::vector<float> x(32, 0.0f);
  const float in[] = {6, 5, -5, 0.25f, -0.25f, 1.5f, -3, 0.75f, -0.0f};
  const uint8_t expect[] = {7, 6, 14, 0, 0, 3, 13, 1, 0};
  for (int j = 0; j < 9; ++j) x[j] = in[j];
  const auto b = encode(x);
  EXPECT_EQ(b[0], 127);
  for (int j = 0; j < 9; ++j) EXPECT_EQ(code(b, j), expect[j]) << "x = " << in[j];
  std::vector<float> y(32);
  ggml_dequantize_row(GgmlType::kMXFP4, b.data(), 32, y.data());
  EXPECT_EQ(y[1], 4.0f);
  EXPECT_EQ(y[6], -3.0f);
  EXPECT_EQ(y[7], 0.5f);  // 0.75 is halfway between 0.5 (code 1) and 1 (code 2): the first
}

TEST(GgmlMxfp4, ExponentFollowsLog2fRounding) {
  // log2 of 8(1 - 2^-24) is 3 - 8.6e-8, within half an ulp of 3 (1.19e-7):
  // log2f returns 3, so e = 3 - 2 + 127 = 128. One ulp lower, 8(1 - 2^-23)
  // gives 3 - 1.7e-7, which rounds below 3: e = 127.
  std::vector<float> x(32, 0.0f);
  x[0] = ggml_internal::f32_from_bits(0x40FFFFFF);
  EXPECT_EQ(encode(x)[0], 128);
  x[0] = ggml_internal::f32_from_bits(0x40FFFFFE);
  EXPECT_EQ(encode(x)[0], 127);
  // amax below 2^-125 makes floor(log2) - 2 + 127 negative; ggml's uint8 cast
  // keeps the low byte: amax = 2^-130 gives -5 -> 251.
  x[0] = std::ldexp(1.0f, -130);
  EXPECT_EQ(encode(x)[0], 251);
  // All zero: e = 0 and codes 0.
  const auto z = encode(std::vector<float>(32, 0.0f));
  for (uint8_t v : z) EXPECT_EQ(v, 0);
}

TEST(GgmlMxfp4, InfiniteAmaxGivesAnAllZeroBlock) {
  // amax = inf: e = (uint8)(inf) = 0, d = 2^-128; every error |k d - x| then
  // rounds to |x| (inf for the inf), so no code beats code 0.
  std::vector<float> x(32, -5.0f);
  x[3] = std::numeric_limits<float>::infinity();
  x[4] = 1e38f;
  for (uint8_t v : encode(x)) EXPECT_EQ(v, 0);
}

TEST(GgmlMxfp4, HalfScaleDecode) {
  // GGML_E8M0_TO_FP32_HALF: e = 0 and 1 are the subnormals 2^-128 and
  // 2^-127; e = 255 is 2^127. Code 7 is 12 half-units.
  std::vector<uint8_t> b(17, 0x77);
  std::vector<float> y(32);
  for (const int e : {0, 1, 2, 200, 255}) {
    b[0] = static_cast<uint8_t>(e);
    ggml_dequantize_row(GgmlType::kMXFP4, b.data(), 32, y.data());
    EXPECT_EQ(y[0], 12 * std::ldexp(1.0f, e - 128)) << e;
  }
}

TEST(GgmlMxfp4, SimdPathEqualsTheScalarModelOnEveryTarget) {
  // Blocks of every kind the SIMD path must match or hand to the model:
  // Gaussian at scales across the whole exponent range; E2M1 values and
  // their midpoints under the block's d (the first-index ties); amax within
  // a few hundred ulps below a power of two (log2f's rounding up); +0, -0
  // and mixed zeros; subnormal (the exponent byte wraps); huge, FLT_MAX and
  // inf; and NaN or inf at varying positions. Runs of them come in random
  // order so that a model block interrupts a SIMD run anywhere.
  std::mt19937 rng(39);
  std::normal_distribution<float> g;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float grid[] = {0, 0.25f, 0.5f, 0.75f, 1, 1.25f, 1.5f, 1.75f, 2, 2.5f, 3, 3.5f, 4, 5, 6};
  std::vector<float> x;
  for (int block = 0; block < 6000; ++block) {
    const int kind = static_cast<int>(rng() % 12);
    const int special = static_cast<int>(rng() % 32);
    const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 200) - 100);
    for (int j = 0; j < 32; ++j) {
      float v = g(rng) * scale;
      switch (kind) {
        case 1:  // the grid under d = scale / 2, amax = 6 scale planted
          v = (rng() % 2 ? scale : -scale) * grid[rng() % 15];
          v = j == special ? 6 * scale : v;
          break;
        case 2:
          v = j == special ? ggml_internal::f32_from_bits(ggml_internal::f32_bits(scale) - 1 - rng() % 512) : v / 4;
          break;
        case 3: v = rng() % 2 ? 0.0f : -0.0f; break;
        case 4: v = g(rng) * 1e-39f; break;
        case 5: v = g(rng) * 1e-44f; break;
        case 6: v = g(rng) * 3e38f; break;
        case 7: v = j == special ? std::numeric_limits<float>::quiet_NaN() : v; break;
        case 8: v = j == special ? (rng() % 2 ? kInf : -kInf) : v; break;
        case 9: v = j == special ? std::numeric_limits<float>::max() : v; break;
        default: break;
      }
      x.push_back(v);
    }
  }
  ggml_internal::force_scalar_model(true);
  const auto model = encode(x);
  ggml_internal::force_scalar_model(false);
  for (KernelTarget target : available_targets()) {
    if (target == KernelTarget::kScalar) continue;
    set_kernel_target(target);
    const auto simd = encode(x);
    for (size_t b = 0; b < model.size(); b += 17) {
      ASSERT_TRUE(std::equal(model.begin() + b, model.begin() + b + 17, simd.begin() + b))
          << "block " << b / 17 << " on " << kernel_target_name(target);
    }
  }
  reset_kernel_target();
}

}  // namespace
}  // namespace lowbit
