// ggml's NVFP4 blocks derived by hand from quantize_row_nvfp4_ref and
// ggml_fp32_to_ue4m3 / ggml_ue4m3_to_fp32 (ggml-impl.h): the sub-block
// scale's rounding quirks, the nearest doubled-E2M1 code with first-index
// ties, the nibble layout, and the shortcut that skips the code search
// against that search on many random sub-blocks.
#include <gtest/gtest.h>

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
  std::vector<uint8_t> b(36 * x.size() / 64);
  ggml_quantize_row(GgmlType::kNVFP4, x.data(), x.size(), b.data());
  return b;
}
// Code of element j (0..63) of a block.
uint8_t code(const std::vector<uint8_t>& b, int j) {
  const int s = j / 16, l = j % 16;
  const uint8_t byte = b[4 + 8 * s + l % 8];
  return l < 8 ? byte & 0xF : byte >> 4;
}
std::vector<float> decode(const std::vector<uint8_t>& b) {
  std::vector<float> y(b.size() / 36 * 64);
  ggml_dequantize_row(GgmlType::kNVFP4, b.data(), y.size(), y.data());
  return y;
}

TEST(GgmlNvfp4, SubBlockScaleRoundsAsGgmlDoes) {
  // Sub-block s holds one element of magnitude 6 * v (the rest smaller), so
  // its scale byte is ggml_fp32_to_ue4m3(v).
  struct Case {
    float v;
    uint8_t ue;
  };
  const Case cases[] = {
      {1.0f, 0x38},            // 2^0: exponent 7, mantissa 0
      {1.0625f, 0x39},         // a tie between 1 and 1.125: up (RNE would keep 1)
      {1.03125f, 0x38},        // below the tie: down
      {1.1875f, 0x3A},         // the tie between 1.125 and 1.25: up (RNE: 1.25 too)
      {1.9375f, 0x40},         // rounds up into the next binade: 2^1
      {3.0f / 512, 0x03},      // UE4M3 subnormal: (int)(x * 512 + 0.5) = 3
      {0.0078125f, 0x04},      // 2^-7 = 4 * 2^-9, still the subnormal path
      {7.5f / 512, 0x07},      // (int)(8) = 8 clamped to 7
      {300.0f, 0x7E},          // exponent 15 (x >= 256) gives 448 (RNE: 288 = 0x79)
      {500.0f, 0x7E},          // above 448: 448
      {0.5f / 512, 0x01},      // 2^-10: (int)(0.5 + 0.5) = 1, the smallest scale
      {0.25f / 512, 0x00},     // 2^-11: (int)(0.25 + 0.5) = 0, an all-zero sub-block
  };
  for (const Case& c : cases) {
    std::vector<float> x(64, 0.0f);
    for (int s = 0; s < 4; ++s) x[16 * s + 3] = 6.0f * c.v;
    const auto b = encode(x);
    for (int s = 0; s < 4; ++s) EXPECT_EQ(b[s], c.ue) << "v = " << c.v;
  }
}

TEST(GgmlNvfp4, NearestCodeTiesAndLayout) {
  // amax = 6: ue = 0x38 (1.0), d = 0.5: codes stand for the E2M1 values.
  std::vector<float> x(64, 0.0f);
  const float in[] = {6, 5, -5, 0.25f, -0.25f, 1.5f, -3, 0.75f, -0.0f, 2.5f, -1.25f, 4, 0.5f, -6, 3.5f, 1};
  const uint8_t expect[] = {7, 6, 14, 0, 0, 3, 13, 1, 0, 4, 10, 6, 1, 15, 5, 2};
  for (int j = 0; j < 16; ++j) x[16 + j] = in[j];  // sub-block 1
  x[0] = 6;                                            // sub-block 0: 6 and zeros
  const auto b = encode(x);
  EXPECT_EQ(b[1], 0x38);
  for (int j = 0; j < 16; ++j) EXPECT_EQ(code(b, 16 + j), expect[j]) << "x = " << in[j];
  // Byte 4 + 8 + l: element l in the low nibble, l + 8 in the high one.
  EXPECT_EQ(b[12], expect[0] | expect[8] << 4);
  EXPECT_EQ(b[19], expect[7] | expect[15] << 4);
  const auto y = decode(b);
  const float values[] = {6, 4, -4, 0, 0, 1.5f, -3, 0.5f, 0, 2, -1, 4, 0.5f, -6, 3, 1};
  for (int j = 0; j < 16; ++j) EXPECT_EQ(y[16 + j], values[j]) << j;
  EXPECT_EQ(y[0], 6.0f);
  // Sub-blocks 2 and 3 are all zero: scale 0, codes 0.
  EXPECT_EQ(b[2], 0);
  EXPECT_EQ(b[3], 0);
}

TEST(GgmlNvfp4, InfiniteAndNanElements) {
  // inf: amax / 6 = inf, clamped to 448: ue 0x7E, d = 224. Every error of
  // the inf element is inf, so code 0; 300 is nearest 224 (code 1); NaN
  // errors never win: code 0. NaN is skipped by the amax.
  std::vector<float> x(64, 0.0f);
  x[0] = std::numeric_limits<float>::infinity();
  x[1] = 300.0f;
  x[2] = -700.0f;
  x[16] = std::numeric_limits<float>::quiet_NaN();
  x[17] = 6.0f;
  const auto b = encode(x);
  EXPECT_EQ(b[0], 0x7E);
  EXPECT_EQ(code(b, 0), 0);
  EXPECT_EQ(code(b, 1), 1);
  EXPECT_EQ(code(b, 2), 11);  // -672 = -3 * 224
  EXPECT_EQ(b[1], 0x38);
  EXPECT_EQ(code(b, 16), 0);
  EXPECT_EQ(code(b, 17), 7);
}

TEST(GgmlNvfp4, DecodeIsHalfTheUe4m3Value) {
  // Code 7 (12 half-units) times ggml_ue4m3_to_fp32: 0 and 0x7F read as 0;
  // the top bit of the byte is ignored ((x >> 3) & 0xF).
  std::vector<uint8_t> b(36, 0x77);
  const struct {
    uint8_t ue;
    float value;  // UE4M3 value / 2 * 12
  } cases[] = {{0x00, 0}, {0x7F, 0}, {0x01, 6.0f / 512}, {0x38, 6.0f}, {0x7E, 448.0f * 6}, {0xB8, 6.0f}};
  for (const auto& c : cases) {
    b[0] = c.ue;
    EXPECT_EQ(decode(b)[0], c.value) << int(c.ue);
  }
}

TEST(GgmlNvfp4, ShortcutEqualsTheSearch) {
  // Random sub-blocks over 40 binades, with exact E2M1 points, midpoints and
  // their neighbours mixed in: each code must be ggml's search for the
  // sub-block's decoded d (first index with the smallest float32 error).
  static const float kValues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};
  std::mt19937 rng(11);
  std::normal_distribution<float> nd;
  std::uniform_int_distribution<int> e(-25, 15), pick(0, 15), kind(0, 3);
  std::vector<float> x(64 * 512);
  for (size_t s = 0; s < x.size() / 16; ++s) {
    const float scale = std::ldexp(1.0f, e(rng));
    for (int j = 0; j < 16; ++j) {
      float v = nd(rng) * scale;
      if (kind(rng) == 0) {
        const float on = kValues[pick(rng)] * scale * 0.25f;
        v = kind(rng) == 0 ? std::nextafter(on, 0.0f) : on;
      }
      x[16 * s + j] = v;
    }
  }
  const auto b = encode(x);
  int checked = 0;
  for (size_t s = 0; s < x.size() / 16; ++s) {
    const size_t blk = s / 4;
    // d: the decode of code 7 (12 d) under the sub-block's scale byte.
    std::vector<uint8_t> one(36, 0);
    one[0] = b[36 * blk + s % 4];
    one[4] = 0x07;
    const float dd = decode(one)[0] / 12.0f;
    for (int j = 0; j < 16; ++j) {
      const float xv = x[16 * s + j];
      int best = 0;
      float best_err = std::fabs(kValues[0] * dd - xv);
      for (int i = 1; i < 16; ++i) {
        const float err = std::fabs(kValues[i] * dd - xv);
        if (err < best_err) {
          best = i;
          best_err = err;
        }
      }
      const std::vector<uint8_t> block(b.begin() + 36 * blk, b.begin() + 36 * (blk + 1));
      ASSERT_EQ(code(block, static_cast<int>(16 * (s % 4) + j)), best) << "x = " << xv << " d = " << dd;
      ++checked;
    }
  }
  EXPECT_EQ(checked, static_cast<int>(x.size()));
}

TEST(GgmlNvfp4, SimdPathEqualsTheScalarModelOnEveryTarget) {
  // Sub-blocks of every kind the SIMD path must match or hand to the model:
  // Gaussian across the UE4M3 range and beyond it (subnormal scales, scales
  // that round to 0, saturated ones); E2M1 values and midpoints under the
  // sub-block's d (the first-index ties); +-0; NaN, inf and FLT_MAX at
  // varying positions. They come in random order, so that a model block
  // interrupts a SIMD run anywhere.
  std::mt19937 rng(41);
  std::normal_distribution<float> g;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  const float grid[] = {0, 0.25f, 0.5f, 0.75f, 1, 1.25f, 1.5f, 1.75f, 2, 2.5f, 3, 3.5f, 4, 5, 6};
  std::vector<float> x;
  for (int sub = 0; sub < 4 * 3000; ++sub) {
    const int kind = static_cast<int>(rng() % 10);
    const int special = static_cast<int>(rng() % 16);
    const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 40) - 25);
    for (int j = 0; j < 16; ++j) {
      float v = g(rng) * scale;
      switch (kind) {
        case 1:  // the grid under a scale byte of value `scale`, amax = 6 scale planted
          v = (rng() % 2 ? scale : -scale) * grid[rng() % 15];
          v = j == special ? 6 * scale : v;
          break;
        case 2: v = rng() % 2 ? 0.0f : -0.0f; break;
        case 3: v = g(rng) * 1e-5f; break;
        case 4: v = g(rng) * 3e38f; break;
        case 5: v = j == special ? std::numeric_limits<float>::quiet_NaN() : v; break;
        case 6: v = j == special ? (rng() % 2 ? kInf : -kInf) : v; break;
        case 7: v = j == special ? std::numeric_limits<float>::max() : v; break;
        default: break;
      }
      x.push_back(v);
    }
  }
  ggml_internal::force_scalar_model(true);
  const auto model = encode(x);
  ggml_internal::force_scalar_model(false);
  int simd_targets = 0;
  for (KernelTarget target : available_targets()) {
    if (target == KernelTarget::kScalar) continue;
    set_kernel_target(target);
    const auto simd = encode(x);
    ++simd_targets;
    for (size_t b = 0; b < model.size(); b += 36) {
      ASSERT_TRUE(std::equal(model.begin() + b, model.begin() + b + 36, simd.begin() + b))
          << "block " << b / 36 << " on " << kernel_target_name(target);
    }
  }
  reset_kernel_target();
  EXPECT_GT(simd_targets, 0);
}

}  // namespace
}  // namespace lowbit
