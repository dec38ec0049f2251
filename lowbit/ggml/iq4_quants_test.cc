// IQ4_NL and IQ4_XS on blocks derived by hand from llama.cpp's
// quantize_row_iq4_nl_impl, and their importance-weighted path.
#include <gtest/gtest.h>

#include <limits>
#include <vector>

#include "lowbit/ggml/row_codec.h"
#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit {
namespace {

constexpr int kValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};

std::vector<uint8_t> encode(GgmlType t, const std::vector<float>& x, const float* w = nullptr) {
  std::vector<uint8_t> b(ggml_row_bytes(t, x.size(), "test"));
  ggml_quantize_row(t, x.data(), x.size(), b.data(), w);
  return b;
}

// x_j = kValues[j % 16]: the block holds the table itself.
std::vector<float> table_block(size_t n) {
  std::vector<float> x(n);
  for (size_t j = 0; j < n; ++j) x[j] = static_cast<float>(kValues[j % 16]);
  return x;
}

TEST(GgmlIq4, NlBlockOfTableValues) {
  // max = x_0 = -127. The trial id = (0 + kValues[0]) / max = 1 maps every
  // element to its own entry, which maximizes sumqx^2 / sumq2 (equality in
  // Cauchy-Schwarz), so d = sumqx / sumq2 = 1 exactly (fp16 0x3C00) and the
  // final codes best_index(x_j / 1) = j % 16: byte l = l | l << 4.
  const auto x = table_block(32);
  const auto b = encode(GgmlType::kIQ4_NL, x);
  ASSERT_EQ(b.size(), 18u);
  EXPECT_EQ(ggml_internal::load_u16(b.data()), 0x3C00);
  for (int l = 0; l < 16; ++l) EXPECT_EQ(b[2 + l], l | (l << 4)) << l;
  std::vector<float> y(32);
  ggml_dequantize_row(GgmlType::kIQ4_NL, b.data(), 32, y.data());
  EXPECT_EQ(y, x);
}

TEST(GgmlIq4, XsBlockOfTableValues) {
  // Every group's scale is 1 (as above), so d = -max_scale / 32 = -1/32
  // (fp16 0xA800), each group scale nearest_int(-32 * 1) = -32, stored + 32
  // = 0 (scales_h and scales_l all zero), dl = 1 and the codes j % 16.
  const auto x = table_block(256);
  const auto b = encode(GgmlType::kIQ4_XS, x);
  ASSERT_EQ(b.size(), 136u);
  EXPECT_EQ(ggml_internal::load_u16(b.data()), 0xA800);
  for (int i = 2; i < 8; ++i) EXPECT_EQ(b[i], 0) << i;
  for (int l = 0; l < 128; ++l) EXPECT_EQ(b[8 + l], (l % 16) | ((l % 16) << 4)) << l;
  std::vector<float> y(256);
  ggml_dequantize_row(GgmlType::kIQ4_XS, b.data(), 256, y.data());
  EXPECT_EQ(y, x);
}

TEST(GgmlIq4, MidpointsGoToTheUpperEntry) {
  // best_index_int8 picks entry i once 2x >= v[i-1] + v[i]. Two elements sit
  // on midpoints but get importance 0, so they leave the scale search alone:
  // the other elements are table values, d is 1 as in NlBlockOfTableValues,
  // and the final codes are best_index(x): -115.5 (between -127 and -104)
  // gets code 1, 7 (between 1 and 13) code 9.
  auto x = table_block(32);
  x[17] = -115.5f;
  x[24] = 7.0f;
  std::vector<float> w(32, 1.0f);
  w[17] = w[24] = 0.0f;
  const auto b = encode(GgmlType::kIQ4_NL, x, w.data());
  ASSERT_EQ(ggml_internal::load_u16(b.data()), 0x3C00);
  EXPECT_EQ(b[2 + 1] >> 4, 1);  // element 17
  EXPECT_EQ(b[2 + 8] >> 4, 9);  // element 24
}

TEST(GgmlIq4, NonFiniteInputDoesNotCrash) {
  auto x = table_block(256);
  x[3] = std::numeric_limits<float>::quiet_NaN();
  x[100] = std::numeric_limits<float>::infinity();
  for (GgmlType t : {GgmlType::kIQ4_NL, GgmlType::kIQ4_XS}) {
    const auto b = encode(t, x);
    std::vector<float> y(256);
    ggml_dequantize_row(t, b.data(), 256, y.data());
    // An inf makes the group scale inf or NaN; the NaN itself is skipped by
    // the max search. The other groups are untouched.
    EXPECT_EQ(y[200], x[200]) << ggml_type_info(t).name;
  }
}

}  // namespace
}  // namespace lowbit
