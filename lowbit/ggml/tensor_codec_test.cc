#include "lowbit/ggml/tensor_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "lowbit/core/test_support.h"
#include "lowbit/ggml/codec_registry.h"
#include "lowbit/ggml/row_codec.h"

namespace lowbit {
namespace {

using testing_support::normal_values;


uint32_t scale_code(const QuantizedTensor& q, uint64_t b) {
  return static_cast<uint32_t>(q.scales[2 * b]) | static_cast<uint32_t>(q.scales[2 * b + 1]) << 8;
}

TEST(GgmlTensorCodec, BitsAndComponentsOfTheLayouts) {
  const std::vector<float> x = normal_values(256 * 64, 5);
  const QuantizedTensor q4 = parse_codec("q4_0")->quantize({x.data(), {64, 256}});
  const QuantizedTensor q8 = parse_codec("q8_0")->quantize({x.data(), {64, 256}});
  EXPECT_EQ(q4.bits_per_element(), 4.5);
  EXPECT_EQ(q8.bits_per_element(), 8.5);
  EXPECT_EQ(q4.codes.size(), x.size() / 2);
  EXPECT_EQ(q8.codes.size(), x.size());
  EXPECT_EQ(q8.num_blocks(), x.size() / 32);
  EXPECT_EQ(q8.spec(), "q8_0");
  EXPECT_EQ(q8.fixed_codec, &ggml_tensor_codec(GgmlType::kQ8_0));
}

// Element order in lowbit's components, ggml's block layout in a GGUF file:
// the same float16 d and the same values as the row codec's blocks.
TEST(GgmlTensorCodec, SameValuesAsTheRowCodec) {
  const std::vector<float> x = normal_values(32 * 40, 7);
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_0}) {
    const TensorCodec& c = ggml_tensor_codec(t);
    const QuantizedTensor q = c.quantize({x.data(), {4, 320}});
    std::vector<float> a(x.size()), b(x.size());
    dequantize(q, a.data(), 2);
    std::vector<uint8_t> blocks(ggml_row_bytes(t, 320, "row") * 4);
    ggml_quantize_rows(t, x.data(), 4, 320, blocks.data(), nullptr, 1);
    ggml_dequantize_rows(t, blocks.data(), 4, 320, b.data(), 1);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
    std::vector<float> f(x.size());
    c.fakequant({x.data(), {4, 320}}, f.data());
    EXPECT_EQ(0, std::memcmp(a.data(), f.data(), a.size() * 4));
  }
}

TEST(GgmlTensorCodec, RowsMustBeWholeBlocks) {
  std::vector<float> x(48, 1.0f);
  EXPECT_EQ(testing_support::catch_error([&] { parse_codec("q4_0")->quantize({x.data(), {48}}); }).kind(),
            ErrorKind::kInput);
}

// The layouts cut runs of finite blocks out for the GGUF codecs; a
// block with inf or NaN between them gets a NaN scale and codes 0, and every
// finite block comes out as it does alone.
TEST(GgmlTensorCodec, NonFiniteBlocksSplitTheFiniteRuns) {
  for (const char* spec : {"q4_0", "q8_0"}) {
    SCOPED_TRACE(spec);
    const TensorCodec& s = *parse_codec(spec);
    std::vector<float> x = normal_values(7 * 32, 17);
    x[2 * 32 + 5] = std::numeric_limits<float>::quiet_NaN();
    x[4 * 32] = -std::numeric_limits<float>::infinity();
    x[6 * 32 + 31] = std::numeric_limits<float>::infinity();
    const QuantizedTensor q = s.quantize({x.data(), {7 * 32}});
    const size_t code_bytes = q.codes.size() / 7;
    for (size_t b = 0; b < 7; ++b) {
      const bool bad = b == 2 || b == 4 || b == 6;
      const uint32_t sc = scale_code(q, b);
      if (bad) {
        EXPECT_EQ(sc, 0x7e00u) << b;
        for (size_t k = 0; k < code_bytes; ++k) EXPECT_EQ(q.codes[b * code_bytes + k], 0) << b;
        continue;
      }
      const QuantizedTensor one = s.quantize({x.data() + 32 * b, {32}});
      EXPECT_EQ(sc, scale_code(one, 0)) << b;
      EXPECT_TRUE(std::equal(one.codes.begin(), one.codes.end(), q.codes.begin() + static_cast<long>(b * code_bytes)))
          << b;
    }
  }
}


}  // namespace
}  // namespace lowbit
