// ggml's Q1_0 blocks derived by hand from quantize_row_q1_0_ref: d is the
// float16 of the mean |x| (summed in element order in float32), and each
// element is one sign bit, set for x >= 0.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "lowbit/ggml/row_codec.h"
#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit {
namespace {

std::vector<uint8_t> encode(const std::vector<float>& x) {
  std::vector<uint8_t> b(18 * x.size() / 128);
  ggml_quantize_row(GgmlType::kQ1_0, x.data(), x.size(), b.data());
  return b;
}

TEST(GgmlQ1_0, MeanMagnitudeAndSignBits) {
  // 64 elements of +-3 and 64 of +-1: mean |x| = 2 (float16 0x4000).
  std::vector<float> x(128);
  for (int j = 0; j < 128; ++j) x[j] = (j < 64 ? 3.0f : 1.0f) * (j % 3 == 0 ? -1.0f : 1.0f);
  const auto b0 = encode(x);
  EXPECT_EQ(ggml_internal::load_u16(b0.data()), 0x4000);
  x[5] = -0.0f;  // -0 >= 0: a set bit
  x[7] = 0.0f;
  const auto b = encode(x);
  for (int j = 0; j < 128; ++j) {
    const bool bit = (b[2 + j / 8] >> (j % 8)) & 1;
    EXPECT_EQ(bit, x[j] >= 0.0f) << j;
  }
  EXPECT_TRUE((b[2] >> 5) & 1);
  std::vector<float> y(128);
  ggml_dequantize_row(GgmlType::kQ1_0, b.data(), 128, y.data());
  const float d = ggml_internal::fp16_to_fp32(ggml_internal::load_u16(b.data()));
  for (int j = 0; j < 128; ++j) EXPECT_EQ(y[j], x[j] >= 0.0f ? d : -d) << j;
}

TEST(GgmlQ1_0, ExactMeanByHand) {
  // |x| = 1.5 everywhere: sum 192, mean 1.5 = float16 0x3E00; signs alternate.
  std::vector<float> x(256);
  for (int j = 0; j < 256; ++j) x[j] = j % 2 ? -1.5f : 1.5f;
  const auto b = encode(x);
  for (int blk = 0; blk < 2; ++blk) {
    EXPECT_EQ(ggml_internal::load_u16(b.data() + 18 * blk), 0x3E00);
    for (int k = 0; k < 16; ++k) EXPECT_EQ(b[18 * blk + 2 + k], 0x55);  // bits 0, 2, 4, 6: the even elements
  }
}

TEST(GgmlQ1_0, NanMakesTheScaleNanAndItsBitClear) {
  std::vector<float> x(128, 1.0f);
  x[9] = std::numeric_limits<float>::quiet_NaN();
  const auto b = encode(x);
  EXPECT_EQ(ggml_internal::load_u16(b.data()), 0x7E00);
  EXPECT_EQ(b[2 + 1] & 0x02, 0);  // NaN >= 0 is false
  EXPECT_EQ(b[2 + 1] & 0x01, 1);
}

TEST(GgmlQ1_0, SumsInElementOrderAcrossBlocks) {
  // Five blocks (four sums run side by side, then one alone) against a plain
  // in-order sum per block, on magnitudes that span 2^-20 .. 2^20 so that
  // the order of the additions shows in the float32 sums.
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> e(-20, 20);
  std::normal_distribution<float> nd;
  std::vector<float> x(128 * 5);
  for (float& v : x) v = std::ldexp(nd(rng), e(rng));
  const auto b = encode(x);
  for (int blk = 0; blk < 5; ++blk) {
    float sum = 0;
    for (int j = 0; j < 128; ++j) sum += std::fabs(x[128 * blk + j]);
    EXPECT_EQ(ggml_internal::load_u16(b.data() + 18 * blk), ggml_internal::fp32_to_fp16(sum / 128.0f)) << blk;
  }
}

}  // namespace
}  // namespace lowbit
