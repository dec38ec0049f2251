// Q4_0, Q4_1, Q5_0, Q5_1, Q8_0 on blocks whose bytes are derived by hand
// from ggml's reference quantizers (the derivations are in the comments).
// Byte equality with gguf-py's quantizers on varied data is checked in
// tests/python/test_ggml_codec.py.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "lowbit/ggml/row_codec.h"
#include "lowbit/ggml/row_codec_internal.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit {
namespace {

std::vector<uint8_t> quantize(GgmlType t, const std::vector<float>& x, const float* w = nullptr) {
  std::vector<uint8_t> out(ggml_row_bytes(t, x.size(), "test"));
  ggml_quantize_row(t, x.data(), x.size(), out.data(), w);
  return out;
}
std::vector<float> dequantize(GgmlType t, const std::vector<uint8_t>& b, size_t n) {
  std::vector<float> y(n);
  ggml_dequantize_row(t, b.data(), n, y.data());
  return y;
}

TEST(GgmlLegacy, Q4_0HandBlock) {
  // x_j = j - 16: the largest |x| is x_0 = -16, so d = -16 / -8 = 2 (fp16
  // 0x4000), id = 0.5 and q_j = min(15, trunc((j - 16) / 2 + 8.5)) =
  // min(15, trunc(j / 2 + 0.5)): 0, 1, 1, 2, 2, ..., 15, 15, 15 (q_31 = 16
  // is capped). Byte l holds q_l | q_{l+16} << 4.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j - 16);
  const auto b = quantize(GgmlType::kQ4_0, x);
  ASSERT_EQ(b.size(), 18u);
  EXPECT_EQ(b[0], 0x00);
  EXPECT_EQ(b[1], 0x40);
  for (int l = 0; l < 16; ++l) {
    const int lo = (l + 1) / 2, hi = std::min(15, (l + 17) / 2);
    EXPECT_EQ(b[2 + l], lo | (hi << 4)) << l;
  }
  const auto y = dequantize(GgmlType::kQ4_0, b, 32);
  EXPECT_EQ(y[0], -16.0f);   // (0 - 8) * 2
  EXPECT_EQ(y[31], 14.0f);   // (15 - 8) * 2
}

TEST(GgmlLegacy, Q4_0TieOnTheMaximumMagnitudeTakesTheFirst) {
  // |x_3| = |x_10| = 2 and the rest smaller: ggml keeps the first, so with
  // x_3 = -2, d = -2 / -8 = 0.25 and x_10 = 2 gives trunc(8 + 8.5) = 16,
  // capped at 15 (value 1.75); with the signs swapped d = -0.25 and x_10 =
  // -2 becomes -1.75.
  for (const float s : {1.0f, -1.0f}) {
    std::vector<float> x(32, 0.5f * s);
    x[3] = -2 * s;
    x[10] = 2 * s;
    const auto y = dequantize(GgmlType::kQ4_0, quantize(GgmlType::kQ4_0, x), 32);
    EXPECT_EQ(y[3], -2 * s);
    EXPECT_EQ(y[10], 1.75f * s);
  }
}

TEST(GgmlLegacy, Q8_0RoundsHalfAwayFromZero) {
  // amax = 127 makes d = 1 exactly (fp16 0x3C00) and q = roundf(x).
  std::vector<float> x(32, 0.0f);
  x[0] = -127;
  x[1] = 0.5f;
  x[2] = -0.5f;
  x[3] = 2.5f;
  x[4] = -3.5f;
  x[5] = 126.49f;
  const auto b = quantize(GgmlType::kQ8_0, x);
  ASSERT_EQ(b.size(), 34u);
  EXPECT_EQ(b[0], 0x00);
  EXPECT_EQ(b[1], 0x3C);
  const int8_t expect[6] = {-127, 1, -1, 3, -4, 126};
  for (int j = 0; j < 6; ++j) EXPECT_EQ(static_cast<int8_t>(b[2 + j]), expect[j]) << j;
}

TEST(GgmlLegacy, Q5TypesKeepTheFifthBitInALittleEndianWord) {
  // Q5_1 with x_j = j: min 0, max 31, d = 31 / 31 = 1, q_j = j; Q5_0 with
  // x_j = j - 16: d = -16 / -16 = 1, q_j = trunc(j + 0.5) = j. Both: qh =
  // the fifth bits, set for j >= 16 (bytes 00 00 FF FF); byte l = l | l << 4.
  for (const bool with_min : {false, true}) {
    std::vector<float> x(32);
    for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(with_min ? j : j - 16);
    const GgmlType t = with_min ? GgmlType::kQ5_1 : GgmlType::kQ5_0;
    const auto b = quantize(t, x);
    const size_t qh = with_min ? 4 : 2;
    EXPECT_EQ(ggml_internal::load_u16(b.data()), 0x3C00);
    if (with_min) {
      EXPECT_EQ(ggml_internal::load_u16(b.data() + 2), 0);
    }
    EXPECT_EQ(ggml_internal::load_u32(b.data() + qh), 0xFFFF0000u);
    for (int l = 0; l < 16; ++l) EXPECT_EQ(b[qh + 4 + l], l | (l << 4));
    const auto y = dequantize(t, b, 32);
    for (int j = 0; j < 32; ++j) EXPECT_EQ(y[j], x[j]);
  }
}

TEST(GgmlLegacy, Q4_1StoresTheMinAndCapsAt15) {
  // x_j = j % 16 + 3: min 3 (fp16 0x4200), d = 15 / 15 = 1, q = x - 3.
  std::vector<float> x(32);
  for (int j = 0; j < 32; ++j) x[j] = static_cast<float>(j % 16 + 3);
  const auto b = quantize(GgmlType::kQ4_1, x);
  EXPECT_EQ(ggml_internal::load_u16(b.data()), 0x3C00);
  EXPECT_EQ(ggml_internal::load_u16(b.data() + 2), 0x4200);
  for (int l = 0; l < 16; ++l) EXPECT_EQ(b[4 + l], l | (l << 4));
  EXPECT_EQ(dequantize(GgmlType::kQ4_1, b, 32), x);
}

TEST(GgmlLegacy, NanAndInfBlocksFollowGgml) {
  // Q8_0: ggml's MAX(amax, |x|) lets a NaN through only as the last
  // element; then d = NaN (fp16 0x7E00) and every code is (int8)NaN = 0.
  std::vector<float> x(32, 1.0f);
  x[31] = std::numeric_limits<float>::quiet_NaN();
  auto b = quantize(GgmlType::kQ8_0, x);
  EXPECT_EQ(ggml_internal::load_u16(b.data()), 0x7E00);
  for (int j = 0; j < 32; ++j) EXPECT_EQ(b[2 + j], 0);
  // Elsewhere the NaN is skipped by the max and encodes as code 0.
  x[31] = 1.0f;
  x[5] = std::numeric_limits<float>::quiet_NaN();
  b = quantize(GgmlType::kQ8_0, x);
  EXPECT_EQ(ggml_internal::load_u16(b.data()), ggml_internal::fp32_to_fp16(1.0f / 127));
  EXPECT_EQ(b[2 + 5], 0);
  EXPECT_EQ(b[2 + 6], 127);
  // Q4_0 with an inf: d = -inf (fp16 0xFC00), id = -0, so the inf gives
  // (int8)NaN = 0 and the finite elements 0 * ... + 8.5 -> 8.
  std::vector<float> z(32, 1.0f);
  z[7] = std::numeric_limits<float>::infinity();
  b = quantize(GgmlType::kQ4_0, z);
  EXPECT_EQ(ggml_internal::load_u16(b.data()), 0xFC00);
  EXPECT_EQ(b[2 + 7], 0x80);  // element 7 (code 0) and element 23 (code 8)
  EXPECT_EQ(b[2 + 0], 0x88);
}

TEST(GgmlLegacy, SimdPathEqualsTheScalarModelOnEveryTarget) {
  // Blocks of every kind the SIMD path must match or hand to the model:
  // Gaussian; grids whose x * id (+ offset) lands exactly on integers and
  // halves (the truncations' and roundf's ties: d is a power of two for
  // Q4_0/Q5_0 and Q4_1/Q5_1 by the planted extremes); values next to Q8_0's
  // halves; the largest magnitude twice with opposite signs (the first
  // wins); +0, -0 and mixed zeros, alone or beside values of one sign (the
  // sign of a zero min, max or d is stored); subnormal (d underflows or id
  // overflows); huge (d overflows to inf); FLT_MAX and inf everywhere; and
  // NaN or inf at varying positions. Runs of them come in random order so
  // that a model block interrupts a SIMD run anywhere.
  std::mt19937 rng(21);
  std::normal_distribution<float> g;
  constexpr float kInf = std::numeric_limits<float>::infinity();
  std::vector<float> x;
  for (int block = 0; block < 6000; ++block) {
    const int kind = static_cast<int>(rng() % 17);
    const int special = static_cast<int>(rng() % 32), other = static_cast<int>((special + 1 + rng() % 31) % 32);
    const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 9) - 4);
    const float top = static_cast<float>(std::array{7.5f, 8.0f, 15.0f, 16.0f, 31.0f}[rng() % 5]);
    for (int j = 0; j < 32; ++j) {
      float v = g(rng);
      switch (kind) {
        case 1: v = (static_cast<float>(static_cast<int>(rng() % 255)) - 127.0f) * 0.5f; break;
        case 2: v = std::nextafter(std::round(v * 40) + 0.5f, j % 2 ? 0.0f : 1e9f) / 40; break;
        case 3: v = 0.0f; break;
        case 4: v *= 1e-39f; break;
        case 5: v *= 1e-44f; break;
        case 6: v *= 3e38f; break;
        case 7: v = j == special ? std::numeric_limits<float>::quiet_NaN() : v; break;
        case 8: v = j == special ? -kInf : v; break;
        case 9:  // a grid of halves with -top (or 0 and top) planted
          v = scale * 0.5f * static_cast<float>(static_cast<int>(rng() % 65) - 32);
          v = j == special ? -top * scale : j == other ? (rng() % 2 ? 0.0f : top * scale) : v;
          break;
        case 10:  // the grid shifted to non-negative values (Q4_1/Q5_1 ties)
          v = j == special ? 0.0f : j == other ? top * scale : scale * 0.5f * static_cast<float>(rng() % 63);
          break;
        case 11: v = j == special ? 4.0f : j == other ? -4.0f : v; break;
        case 12: v = rng() % 2 ? 0.0f : -0.0f; break;
        case 13: v = rng() % 3 == 0 ? (rng() % 2 ? 0.0f : -0.0f) : (kind + special) % 2 ? std::fabs(v) : -std::fabs(v); break;
        case 14: v = j == special ? kInf : v; break;
        case 15: v = special % 3 == 0 ? kInf : special % 3 == 1 ? std::numeric_limits<float>::max() : -kInf; break;
        default: break;
      }
      x.push_back(v);
    }
  }
  for (const GgmlType type : {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ8_0}) {
    const size_t bytes = ggml_row_bytes(type, 32, "test");
    ggml_internal::force_scalar_model(true);
    const auto model = quantize(type, x);
    ggml_internal::force_scalar_model(false);
    for (KernelTarget target : available_targets()) {
      if (target == KernelTarget::kScalar) continue;
      set_kernel_target(target);
      const auto simd = quantize(type, x);
      for (size_t b = 0; b < model.size(); b += bytes) {
        ASSERT_TRUE(std::equal(model.begin() + b, model.begin() + b + bytes, simd.begin() + b))
            << ggml_type_info(type).name << " block " << b / bytes << " on " << kernel_target_name(target);
      }
    }
    reset_kernel_target();
  }
}

}  // namespace
}  // namespace lowbit
