// Q2_K..Q6_K: the lane-parallel searches against the scalar model on every
// Highway target, hand-derived blocks, and the importance-weighted paths.
// gguf-py's dequantizer is checked against these blocks in
// tests/python/test_ggml_codec.py.
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

constexpr GgmlType kTypes[] = {GgmlType::kQ2_K, GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K};

std::vector<uint8_t> quantize_rows(GgmlType t, const std::vector<float>& x, size_t cols, const float* w) {
  const size_t rows = x.size() / cols;
  std::vector<uint8_t> out(rows * ggml_row_bytes(t, cols, "test"));
  ggml_quantize_rows(t, x.data(), rows, cols, out.data(), w, 1);
  return out;
}

// Rows of 512 from distributions that reach the searches' corner cases:
// Gaussian, heavy tails, one sign only, constant and all-zero groups, tiny,
// huge, and non-finite values.
std::vector<float> varied_rows(uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::student_t_distribution<float> heavy(1.5f);
  std::vector<float> x;
  for (int kind = 0; kind < 10; ++kind) {
    for (int i = 0; i < 512; ++i) {
      float v = g(rng);
      switch (kind) {
        case 1: v = heavy(rng); break;
        case 2: v = std::fabs(v); break;
        case 3: v = -std::fabs(v) * 1e-3f; break;
        case 4: v = i % 64 < 32 ? 0.75f : v; break;       // constant groups
        case 5: v = i % 96 < 40 ? 0.0f : v; break;        // all-zero groups
        case 6: v *= 1e-20f; break;
        case 7: v *= 1e30f; break;
        case 8: v = std::round(v * 3); break;             // many ties
        case 9: v = i == 17 ? std::numeric_limits<float>::quiet_NaN()
                  : i == 300 ? -std::numeric_limits<float>::infinity() : v; break;
        default: break;
      }
      x.push_back(v);
    }
  }
  return x;
}

TEST(GgmlKQuants, LaneSearchesEqualTheScalarModelOnEveryTarget) {
  const std::vector<float> x = varied_rows(5);
  std::vector<float> w(512);
  std::mt19937 rng(9);
  std::exponential_distribution<float> e;
  for (auto& v : w) v = e(rng);
  for (GgmlType t : kTypes) {
    for (const float* imp : {static_cast<const float*>(nullptr), static_cast<const float*>(w.data())}) {
      ggml_internal::force_scalar_model(true);
      const auto model = quantize_rows(t, x, 512, imp);
      ggml_internal::force_scalar_model(false);
      for (KernelTarget target : available_targets()) {
        if (target == KernelTarget::kScalar) continue;
        set_kernel_target(target);
        EXPECT_EQ(quantize_rows(t, x, 512, imp), model)
            << ggml_type_info(t).name << (imp ? " weighted" : "") << " on " << kernel_target_name(target);
      }
      reset_kernel_target();
    }
  }
}

// Groups of 16 drawn independently from many kinds, so that every lane of a
// SIMD pass meets every neighbour: the lanes' fast paths (codes rounded in
// float where every value is provably in range, computed weights, batched
// requantization) must fall back exactly where the model's integer
// arithmetic or its NaN handling matters. Rows of 37 super-blocks leave
// partly filled lane passes.
std::vector<float> random_groups(uint32_t seed, size_t n) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> x;
  while (x.size() < n) {
    const int kind = static_cast<int>(rng() % 14);
    const float scale = std::ldexp(1.0f, static_cast<int>(rng() % 40) - 20);
    const int special = static_cast<int>(rng() % 16);
    for (int i = 0; i < 16; ++i) {
      float v = g(rng) * scale;
      switch (kind) {
        case 1: v = 0.0f; break;
        case 2: v = scale; break;                                // constant
        case 3: v = std::fabs(v); break;                         // one sign
        case 4: v = -std::fabs(v); break;
        case 5: v *= 1e-38f; break;                              // subnormal products
        case 6: v *= 1e28f; break;                               // sums overflow
        case 7: v = i == special ? v * 1000.0f : v; break;       // an outlier
        case 8: v = std::round(v / scale * 2) * 0.5f; break;     // ties
        case 9: v = i == special ? std::nanf(scale > 1 ? "12345" : "") : v; break;  // a payload shows in nearest_int
        case 10: v = i == special ? std::numeric_limits<float>::infinity() : v; break;
        case 11: v = std::numeric_limits<float>::denorm_min() * static_cast<float>(rng() % 5); break;
        case 12: v = i == special ? v : 0.0f; break;             // one non-zero
        default: break;
      }
      x.push_back(v);
    }
  }
  return x;
}

TEST(GgmlKQuants, LanePathsEqualTheScalarModelOnManyRandomGroups) {
  constexpr size_t kCols = 256 * 37;
  const std::vector<float> x = random_groups(17, kCols * 6);
  std::vector<float> w(kCols);
  std::mt19937 rng(3);
  std::exponential_distribution<float> e;
  for (auto& v : w) v = rng() % 7 == 0 ? 0.0f : e(rng);
  for (GgmlType t : kTypes) {
    for (const float* imp : {static_cast<const float*>(nullptr), static_cast<const float*>(w.data())}) {
      ggml_internal::force_scalar_model(true);
      const auto model = quantize_rows(t, x, kCols, imp);
      ggml_internal::force_scalar_model(false);
      const size_t block = ggml_type_info(t).block_bytes;
      for (KernelTarget target : available_targets()) {
        if (target == KernelTarget::kScalar) continue;
        set_kernel_target(target);
        const auto lanes = quantize_rows(t, x, kCols, imp);
        for (size_t b = 0; b < model.size(); b += block) {
          ASSERT_TRUE(std::equal(model.begin() + b, model.begin() + b + block, lanes.begin() + b))
              << ggml_type_info(t).name << (imp ? " weighted" : "") << " super-block " << b / block << " on "
              << kernel_target_name(target);
        }
      }
      reset_kernel_target();
    }
  }
}

TEST(GgmlKQuants, Q4_KConstantBlock) {
  // x = 1 everywhere: each group has min = max = 1, so the search's min is
  // clamped to 0, iscale = 15, codes 15, scale 1/15 (weights av_x + |x| =
  // 2 make every later step's D = 64 * 64 l^2 - (64 l)^2 = 0, so none is
  // taken) and min -0. Then max_scale = 1/15, max_min = 0: ls =
  // nearest_int(63 / (1/15) * (1/15)) = 63, lm = 0, d = fp16((1/15) / 63),
  // dmin = 0. Packing 63 and 0: bytes 0..3 = 63 | 3 << 6 = 0xFF, 4..7 = 0,
  // 8..11 = 0x0F. Requantized codes round(1 / (63 d)) = 15: nibbles 0xFF.
  std::vector<float> x(256, 1.0f);
  const auto b = quantize_rows(GgmlType::kQ4_K, x, 256, nullptr);
  ASSERT_EQ(b.size(), 144u);
  EXPECT_EQ(ggml_internal::load_u16(b.data()), ggml_internal::fp32_to_fp16((1.0f / 15.0f) / 63.0f));
  EXPECT_EQ(ggml_internal::load_u16(b.data() + 2), 0);
  const uint8_t scales[12] = {0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0x0F, 0x0F, 0x0F, 0x0F};
  for (int i = 0; i < 12; ++i) EXPECT_EQ(b[4 + i], scales[i]) << i;
  for (int i = 16; i < 144; ++i) ASSERT_EQ(b[i], 0xFF) << i;
}

TEST(GgmlKQuants, Q6_KConstantBlock) {
  // x = 1 everywhere: make_qx_quants gives iscale = -32, codes -32, sumlx =
  // -512, suml2 = 16384, scale -1/32 (no candidate is strictly better: each
  // has sumlx^2 / suml2 = 16 = best). Then iscale = -128 / (-1/32) = 4096,
  // d = fp16(2^-12) = 0x0C00, group scales nearest_int(4096 * -1/32) = -128,
  // and the requantized codes nearest_int(1 / (2^-12 * -128)) = -32 + 32 = 0.
  std::vector<float> x(256, 1.0f);
  const auto b = quantize_rows(GgmlType::kQ6_K, x, 256, nullptr);
  ASSERT_EQ(b.size(), 210u);
  for (int i = 0; i < 192; ++i) ASSERT_EQ(b[i], 0) << i;
  for (int i = 192; i < 208; ++i) EXPECT_EQ(b[i], 0x80) << i;
  EXPECT_EQ(ggml_internal::load_u16(b.data() + 208), 0x0C00);
  std::vector<float> y(256);
  ggml_dequantize_row(GgmlType::kQ6_K, b.data(), 256, y.data());
  for (float v : y) ASSERT_EQ(v, 1.0f);  // 2^-12 * -128 * (0 - 32)
}

TEST(GgmlKQuants, AllZeroSuperBlocksAreAllZeroBytes) {
  // Every search returns scale 0 (and min 0) and codes 0 for an all-zero
  // group (even Q3_K's make_q3_quants, whose codes are otherwise stored + 4),
  // d and dmin are then 0 and the requantization skips every group.
  std::vector<float> x(256, 0.0f);
  for (GgmlType t : kTypes) {
    const auto b = quantize_rows(t, x, 256, nullptr);
    for (size_t i = 0; i < b.size(); ++i) ASSERT_EQ(b[i], 0) << ggml_type_info(t).name << " byte " << i;
  }
}

TEST(GgmlKQuants, RoundTripErrorIsSmall) {
  // A sanity bound on Gaussian data: relative RMS error under 2^-(bits - 1.5).
  std::mt19937 rng(8);
  std::normal_distribution<float> g;
  std::vector<float> x(4096);
  for (auto& v : x) v = g(rng);
  const int bits[] = {2, 3, 4, 5, 6};
  for (int k = 0; k < 5; ++k) {
    const auto q = quantize_rows(kTypes[k], x, 4096, nullptr);
    std::vector<float> y(x.size());
    ggml_dequantize_row(kTypes[k], q.data(), x.size(), y.data());
    double e = 0, s = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      e += (x[i] - y[i]) * (x[i] - y[i]);
      s += x[i] * x[i];
    }
    EXPECT_LT(std::sqrt(e / s), std::pow(2.0, -(bits[k] - 1.5))) << ggml_type_info(kTypes[k]).name;
  }
}

}  // namespace
}  // namespace lowbit
