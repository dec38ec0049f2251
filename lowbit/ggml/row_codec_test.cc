// The dispatcher and the row/thread driver: type checks, size checks, and
// results that do not depend on the thread count or on how rows are split.
#include "lowbit/ggml/row_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

TEST(GgmlCodec, SupportedTypes) {
  for (const GgmlTypeInfo& t : ggml_types()) {
    const std::string name(t.name);
    const bool read_only = name == "F64" || name == "I8" || name == "I16" || name == "I32";
    const bool unsupported = name.starts_with("IQ") && name != "IQ4_NL" && name != "IQ4_XS";
    const bool other = name == "Q8_1" || name == "Q8_K" || name == "I64";
    EXPECT_EQ(ggml_can_dequantize(t.type), !unsupported && !other) << name;
    EXPECT_EQ(ggml_can_quantize(t.type), !unsupported && !other && !read_only) << name;
  }
}

// Asking to write a type lowbit lacks is a usage mistake; meeting one it
// cannot read (in a file) is the input's.
TEST(GgmlCodec, UnsupportedTypeIsAnErrorListingTheSupportedOnes) {
  float x[256] = {};
  uint8_t out[256];
  const Error e = catch_error([&] { ggml_quantize_row(GgmlType::kIQ2_XXS, x, 256, out); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(e.what()).find("IQ2_XXS cannot be quantized"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("Q4_K"), std::string::npos) << e.what();
  EXPECT_EQ(std::string(e.what()).find("I32"), std::string::npos) << e.what();
  const Error d = catch_error([&] { ggml_dequantize_row(GgmlType::kQ8_K, out, 256, x); });
  EXPECT_EQ(d.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(d.what()).find("I32"), std::string::npos) << d.what();
}

TEST(GgmlCodec, PartialBlocksAreAnInputError) {
  float x[64] = {};
  uint8_t out[64];
  EXPECT_EQ(catch_error([&] { ggml_quantize_row(GgmlType::kQ4_0, x, 40, out); }).kind(), ErrorKind::kInput);
  EXPECT_EQ(catch_error([&] { ggml_dequantize_rows(GgmlType::kQ4_K, out, 1, 64, x, 1); }).kind(), ErrorKind::kInput);
  EXPECT_EQ(catch_error([&] {
              ggml_quantize_rows(GgmlType::kQ8_0, x, uint64_t{1} << 62, 64, out, nullptr, 1);
            }).kind(),
            ErrorKind::kInput);
}

TEST(GgmlCodec, RowsEqualRowByRowForEveryThreadCount) {
  // Rows long enough to be split into several pieces (and Q4_0 with
  // importance, whose rows are never split).
  const uint64_t rows = 3, cols = 65536 + 512;
  std::mt19937 rng(1);
  std::normal_distribution<float> g;
  std::vector<float> x(rows * cols), w(cols);
  for (auto& v : x) v = g(rng);
  for (auto& v : w) v = std::fabs(g(rng));
  for (GgmlType t : {GgmlType::kQ4_0, GgmlType::kQ4_K, GgmlType::kF16}) {
    for (const float* imp : {static_cast<const float*>(nullptr), static_cast<const float*>(w.data())}) {
      const uint64_t rb = ggml_row_bytes(t, cols, "test");
      std::vector<uint8_t> expect(rows * rb);
      for (uint64_t r = 0; r < rows; ++r) ggml_quantize_row(t, &x[r * cols], cols, &expect[r * rb], imp);
      std::vector<float> back(rows * cols);
      for (uint64_t r = 0; r < rows; ++r) ggml_dequantize_row(t, &expect[r * rb], cols, &back[r * cols]);
      for (int threads : {1, 2, 7}) {
        std::vector<uint8_t> got(rows * rb);
        ggml_quantize_rows(t, x.data(), rows, cols, got.data(), imp, threads);
        EXPECT_EQ(got, expect) << ggml_type_info(t).name << " threads " << threads;
        std::vector<float> y(rows * cols);
        ggml_dequantize_rows(t, got.data(), rows, cols, y.data(), threads);
        EXPECT_EQ(y, back) << ggml_type_info(t).name << " threads " << threads;
      }
    }
  }
}

TEST(GgmlCodec, ImportanceLowersTheWeightedError) {
  // The weighted paths minimize an importance-weighted error, so on rows of
  // random data with strongly uneven per-column weights, the weighted squared
  // error summed over the rows must be below the plain quantizer's.
  std::mt19937 rng(11);
  std::normal_distribution<float> g;
  const uint64_t rows = 32, cols = 1024;
  std::vector<float> x(rows * cols), w(cols);
  for (auto& v : x) v = g(rng);
  for (auto& v : w) v = std::exp(2 * g(rng));
  for (GgmlType t : {GgmlType::kQ4_0, GgmlType::kQ4_1, GgmlType::kQ5_0, GgmlType::kQ5_1, GgmlType::kQ2_K,
                     GgmlType::kQ3_K, GgmlType::kQ4_K, GgmlType::kQ5_K, GgmlType::kQ6_K, GgmlType::kIQ4_NL,
                     GgmlType::kIQ4_XS}) {
    double err[2] = {0, 0};
    for (int weighted = 0; weighted < 2; ++weighted) {
      std::vector<uint8_t> q(rows * ggml_row_bytes(t, cols, "test"));
      ggml_quantize_rows(t, x.data(), rows, cols, q.data(), weighted ? w.data() : nullptr, 1);
      std::vector<float> y(x.size());
      ggml_dequantize_rows(t, q.data(), rows, cols, y.data(), 1);
      for (size_t i = 0; i < x.size(); ++i) err[weighted] += w[i % cols] * (x[i] - y[i]) * (x[i] - y[i]);
    }
    EXPECT_LT(err[1], err[0]) << ggml_type_info(t).name;
  }
}

TEST(GgmlCodec, EmptyTensors) {
  ggml_quantize_rows(GgmlType::kQ4_K, nullptr, 0, 256, nullptr, nullptr, 2);
  ggml_dequantize_rows(GgmlType::kQ4_K, nullptr, 3, 0, nullptr, 2);
}

}  // namespace
}  // namespace lowbit
