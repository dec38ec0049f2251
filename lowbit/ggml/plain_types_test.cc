// The plain ggml types and the float16/bfloat16 conversions every block
// codec uses, against lowbit's format engine (the project's scalar model of
// float16 and bfloat16) and ggml's documented NaN rules.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "lowbit/format/codec.h"
#include "lowbit/format/registry.h"
#include "lowbit/ggml/row_codec.h"
#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit {
namespace {

using ggml_internal::f32_bits;
using ggml_internal::f32_from_bits;
using ggml_internal::fp16_to_fp32;
using ggml_internal::fp32_to_fp16;

// Floats that probe every float16 rounding decision: each float16 value's
// neighbourhood (the value, the midpoints to its neighbours and one float32
// ulp either side of them) across the whole range, beyond it, and random
// bit patterns.
std::vector<float> fp16_probes() {
  std::vector<float> v;
  const Codec f16(parse_format("float16"));
  for (uint32_t h = 0; h < 0x7C00; ++h) {
    const float a = static_cast<float>(f16.decode(h));
    const float b = static_cast<float>(f16.decode(h + 1));  // 0x7C00 decodes to inf
    const float mid = std::isinf(b) ? 65520.0f : static_cast<float>((static_cast<double>(a) + b) / 2);
    for (float x : {a, mid, std::nextafter(mid, 0.0f), std::nextafter(mid, 1e30f)}) {
      v.push_back(x);
      v.push_back(-x);
    }
  }
  std::mt19937 rng(7);
  for (int i = 0; i < 200000; ++i) v.push_back(f32_from_bits(static_cast<uint32_t>(rng())));
  for (float x : {0.0f, -0.0f, 1e-45f, 2.9802322e-08f /* 2^-25 */, 3e38f, std::numeric_limits<float>::infinity(),
                  -std::numeric_limits<float>::infinity()}) {
    v.push_back(x);
  }
  return v;
}

TEST(GgmlPlainTypes, Fp16ConversionIsTheFormatEnginesRneIeee) {
  const Codec f16(parse_format("float16"));
  RoundOptions o;
  o.overflow = Overflow::kIeee;
  for (float x : fp16_probes()) {
    if (std::isnan(x)) continue;
    ASSERT_EQ(fp32_to_fp16(x), f16.encode(x, o)) << "x = " << x << " bits " << std::hex << f32_bits(x);
  }
}

TEST(GgmlPlainTypes, Fp16NanIsSignAnd7E00) {
  // ggml_compute_fp32_to_fp16 returns (sign >> 16) | 0x7E00 for every NaN.
  EXPECT_EQ(fp32_to_fp16(f32_from_bits(0x7FC00000)), 0x7E00);
  EXPECT_EQ(fp32_to_fp16(f32_from_bits(0x7F800001)), 0x7E00);
  EXPECT_EQ(fp32_to_fp16(f32_from_bits(0xFFFFFFFF)), 0xFE00);
}

TEST(GgmlPlainTypes, Fp16WideningIsExactForEveryCode) {
  const Codec f16(parse_format("float16"));
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float y = fp16_to_fp32(static_cast<uint16_t>(h));
    if ((h & 0x7C00) == 0x7C00 && (h & 0x3FF)) {
      // NaN: sign, payload and signalling bit kept, as numpy widens.
      ASSERT_EQ(f32_bits(y), ((h & 0x8000u) << 16) | 0x7F800000u | ((h & 0x3FFu) << 13)) << h;
    } else {
      ASSERT_EQ(f32_bits(y), f32_bits(static_cast<float>(f16.decode(h)))) << h;
    }
  }
}

TEST(GgmlPlainTypes, F16RowUsesTheSameConversion) {
  std::vector<float> x = fp16_probes();
  x.push_back(std::numeric_limits<float>::quiet_NaN());
  x.push_back(-std::numeric_limits<float>::quiet_NaN());
  x.push_back(f32_from_bits(0x7F800001));
  std::vector<uint8_t> out(2 * x.size());
  ggml_quantize_row(GgmlType::kF16, x.data(), x.size(), out.data());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(ggml_internal::load_u16(&out[2 * i]), fp32_to_fp16(x[i])) << i;
  }
  std::vector<float> back(x.size());
  ggml_dequantize_row(GgmlType::kF16, out.data(), x.size(), back.data());
  for (size_t i = 0; i < x.size(); ++i) ASSERT_EQ(f32_bits(back[i]), f32_bits(fp16_to_fp32(fp32_to_fp16(x[i]))));
}

TEST(GgmlPlainTypes, Bf16IsRneWithGgmlsQuietNan) {
  const Codec bf16(parse_format("bfloat16"));
  RoundOptions o;
  o.overflow = Overflow::kIeee;
  std::vector<float> x;
  std::mt19937 rng(3);
  for (int i = 0; i < 300000; ++i) x.push_back(f32_from_bits(static_cast<uint32_t>(rng())));
  for (uint32_t u : {0x3F808000u, 0x3F818000u, 0x7F7FFFFFu, 0x7F7F8000u, 0x00008000u, 0x80018000u, 0x7F800000u}) {
    x.push_back(f32_from_bits(u));  // ties to even, overflow to inf, subnormals
  }
  std::vector<uint8_t> out(2 * x.size());
  ggml_quantize_row(GgmlType::kBF16, x.data(), x.size(), out.data());
  for (size_t i = 0; i < x.size(); ++i) {
    const uint16_t got = ggml_internal::load_u16(&out[2 * i]);
    if (std::isnan(x[i])) {
      // ggml_compute_fp32_to_bf16: the top half with the quiet bit forced.
      ASSERT_EQ(got, static_cast<uint16_t>((f32_bits(x[i]) >> 16) | 64)) << i;
    } else {
      ASSERT_EQ(got, bf16.encode(x[i], o)) << "bits " << std::hex << f32_bits(x[i]);
    }
  }
  std::vector<float> back(x.size());
  ggml_dequantize_row(GgmlType::kBF16, out.data(), x.size(), back.data());
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_EQ(f32_bits(back[i]), static_cast<uint32_t>(ggml_internal::load_u16(&out[2 * i])) << 16);
  }
}

TEST(GgmlPlainTypes, F32IsACopyAndWiderTypesConvertToFloat) {
  const float x[3] = {1.5f, std::numeric_limits<float>::quiet_NaN(), -0.0f};
  uint8_t b[12];
  ggml_quantize_row(GgmlType::kF32, x, 3, b);
  EXPECT_EQ(std::memcmp(b, x, 12), 0);
  float y[3];
  ggml_dequantize_row(GgmlType::kF32, b, 3, y);
  EXPECT_EQ(std::memcmp(y, x, 12), 0);

  const double d[2] = {0.1, 1e300};
  ggml_dequantize_row(GgmlType::kF64, reinterpret_cast<const uint8_t*>(d), 2, y);
  EXPECT_EQ(y[0], 0.1f);
  EXPECT_TRUE(std::isinf(y[1]));
  const int8_t i8[2] = {-128, 127};
  ggml_dequantize_row(GgmlType::kI8, reinterpret_cast<const uint8_t*>(i8), 2, y);
  EXPECT_EQ(y[0], -128.0f);
  EXPECT_EQ(y[1], 127.0f);
  const int16_t i16[2] = {-32768, 1234};
  ggml_dequantize_row(GgmlType::kI16, reinterpret_cast<const uint8_t*>(i16), 2, y);
  EXPECT_EQ(y[0], -32768.0f);
  EXPECT_EQ(y[1], 1234.0f);
  // 2^24 + 1 is not a float: the conversion rounds to nearest even, 2^24.
  const int32_t i32[2] = {16777217, -7};
  ggml_dequantize_row(GgmlType::kI32, reinterpret_cast<const uint8_t*>(i32), 2, y);
  EXPECT_EQ(y[0], 16777216.0f);
  EXPECT_EQ(y[1], -7.0f);
  EXPECT_FALSE(ggml_can_quantize(GgmlType::kI32));
  EXPECT_TRUE(ggml_can_dequantize(GgmlType::kI32));
}

}  // namespace
}  // namespace lowbit
