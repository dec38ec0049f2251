// The `--nan keep` rule for ggml blocks: every block whose input holds a NaN
// or an infinity decodes to NaN in every element, every other block keeps
// the bytes of plain quantization, and thread counts change nothing.
#include "lowbit/ggml/nonfinite.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "lowbit/core/test_support.h"
#include "lowbit/ggml/row_codec.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();

std::vector<GgmlType> quantizable_types() {
  std::vector<GgmlType> ts;
  for (const GgmlTypeInfo& info : ggml_types()) {
    if (ggml_can_quantize(info.type)) ts.push_back(info.type);
  }
  return ts;
}

bool plain(GgmlType t) { return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16; }

bool finite(const float* x, uint64_t n) {
  for (uint64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

// The float16 fields that carry the NaN, as byte offsets in a block: the
// table in docs/ggml_types.md ("NaN and inf"), written out independently of
// the library's own.
const std::map<std::string, std::vector<int>>& documented_nan_fields() {
  static const std::map<std::string, std::vector<int>> m = {
      {"Q4_0", {0}},      {"Q4_1", {0, 2}}, {"Q5_0", {0}},    {"Q5_1", {0, 2}}, {"Q8_0", {0}},
      {"Q2_K", {80, 82}}, {"Q3_K", {108}},  {"Q4_K", {0, 2}}, {"Q5_K", {0, 2}}, {"Q6_K", {208}},
      {"IQ4_NL", {0}},    {"IQ4_XS", {0}},  {"TQ1_0", {52}},  {"TQ2_0", {64}},  {"Q1_0", {0}},
  };
  return m;
}

// Rows of 1024 (four super-blocks of 256, a multiple of every block size).
// Row 0 and the last row are clean; each other row holds one NaN, +inf or
// -inf in its second super-block (elements 256..511), at the first, middle
// or last position of the type's block there or of the super-block; one row
// holds all three in different blocks, and one holds a non-finite value in
// every element of a block.
struct Input {
  uint64_t rows = 0, cols = 1024;
  std::vector<float> x;
};

Input make_input(GgmlType t, uint32_t seed) {
  const uint64_t b = ggml_type_info(t).block_elems;
  Input in;
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<std::vector<std::pair<uint64_t, float>>> specials;
  specials.push_back({});
  for (float v : {kNaN, kInf, -kInf}) {
    for (uint64_t pos : {uint64_t{0}, b / 2, b - 1, uint64_t{0}, uint64_t{128}, uint64_t{255}}) {
      specials.push_back({{256 + pos, v}});
    }
  }
  specials.push_back({{3, kNaN}, {600, kInf}, {1023, -kInf}});
  std::vector<std::pair<uint64_t, float>> whole;
  for (uint64_t j = 0; j < b; ++j) whole.push_back({512 + j, j % 2 ? kNaN : -kInf});
  specials.push_back(whole);
  specials.push_back({});
  in.rows = specials.size();
  in.x.resize(in.rows * in.cols);
  for (auto& v : in.x) v = g(rng);
  for (uint64_t r = 0; r < in.rows; ++r) {
    for (const auto& [col, v] : specials[r]) in.x[r * in.cols + col] = v;
  }
  return in;
}

std::vector<float> zero_filled(const std::vector<float>& x) {
  std::vector<float> z(x);
  for (float& v : z) v = std::isfinite(v) ? v : 0.0f;
  return z;
}

std::vector<float> importance(uint64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> g;
  std::vector<float> w(cols);
  for (float& v : w) v = std::exp(g(rng));
  return w;
}

class GgmlNonfinite : public ::testing::TestWithParam<GgmlType> {};

TEST_P(GgmlNonfinite, MarkedBlocksDecodeToNaNAndTheOthersKeepTheirBytes) {
  const GgmlType t = GetParam();
  const GgmlTypeInfo info = ggml_type_info(t);
  const std::string name(info.name);
  ASSERT_TRUE(ggml_type_can_hold_nan(t)) << name;
  const Input in = make_input(t, 7);
  const uint64_t rows = in.rows, cols = in.cols, be = info.block_elems, bb = info.block_bytes;
  const uint64_t row_bytes = ggml_row_bytes(t, cols, "test"), blocks_per_row = cols / be;
  const std::vector<float> z = zero_filled(in.x), w = importance(cols, 3);
  const bool row_statistics =
      t == GgmlType::kQ4_0 || t == GgmlType::kQ4_1 || t == GgmlType::kQ5_0 || t == GgmlType::kQ5_1;
  for (const float* imp : {static_cast<const float*>(nullptr), w.data()}) {
    const std::string what = name + (imp ? " with importance" : "");
    std::vector<uint8_t> raw(rows * row_bytes), ref(rows * row_bytes);
    ggml_quantize_rows(t, in.x.data(), rows, cols, raw.data(), imp, 1);
    ggml_quantize_rows(t, z.data(), rows, cols, ref.data(), imp, 1);
    std::vector<uint8_t> got(rows * row_bytes), got3(rows * row_bytes);
    const uint64_t marked = ggml_quantize_rows_keeping_nonfinite(t, in.x.data(), rows, cols, got.data(), imp, 1);
    const uint64_t marked3 = ggml_quantize_rows_keeping_nonfinite(t, in.x.data(), rows, cols, got3.data(), imp, 3);
    EXPECT_EQ(got3, got) << what;
    EXPECT_EQ(marked3, marked) << what;
    std::vector<float> y(rows * cols);
    ggml_dequantize_rows(t, got.data(), rows, cols, y.data(), 1);
    uint64_t bad_blocks = 0;
    for (uint64_t r = 0; r < rows; ++r) {
      const bool clean_row = finite(&in.x[r * cols], cols);
      if (clean_row) {
        // The whole row is what plain quantization of x gives.
        EXPECT_EQ(0, std::memcmp(&got[r * row_bytes], &raw[r * row_bytes], row_bytes)) << what << " row " << r;
      }
      for (uint64_t b = 0; b < blocks_per_row; ++b) {
        const float* xb = &in.x[r * cols + b * be];
        const float* yb = &y[r * cols + b * be];
        const uint8_t* gb = &got[r * row_bytes + b * bb];
        const uint8_t* rb = &ref[r * row_bytes + b * bb];
        const std::string where = what + " row " + std::to_string(r) + " block " + std::to_string(b);
        if (finite(xb, be)) {
          EXPECT_EQ(0, std::memcmp(gb, rb, bb)) << where;
          // The same as the raw codec's bytes for x, except where the
          // legacy types' importance path uses row statistics.
          if (!imp || !row_statistics) {
            EXPECT_EQ(0, std::memcmp(gb, &raw[r * row_bytes + b * bb], bb)) << where;
          }
          continue;
        }
        ++bad_blocks;
        if (plain(t)) {
          // Element-wise: NaN stays NaN, an infinity the same infinity.
          EXPECT_TRUE(std::isnan(xb[0]) ? std::isnan(yb[0]) : yb[0] == xb[0]) << where;
          EXPECT_EQ(0, std::memcmp(gb, &raw[r * row_bytes + b * bb], bb)) << where;
          continue;
        }
        for (uint64_t j = 0; j < be; ++j) EXPECT_TRUE(std::isnan(yb[j])) << where << " element " << j;
        // Only the documented float16 fields differ from the zero-filled
        // quantization, and they hold 0x7E00.
        std::vector<uint8_t> expect(rb, rb + bb);
        for (int off : documented_nan_fields().at(name)) {
          expect[off] = 0x00;
          expect[off + 1] = 0x7E;
        }
        EXPECT_EQ(std::vector<uint8_t>(gb, gb + bb), expect) << where;
      }
    }
    EXPECT_EQ(marked, bad_blocks) << what;
    // The marking step alone, after quantizing the zero-filled copy (the
    // plain types: x itself, whose conversion keeps NaN and inf), gives the
    // same bytes and count.
    std::vector<uint8_t> two_step(plain(t) ? raw : ref);
    EXPECT_EQ(ggml_mark_nonfinite_blocks(t, in.x.data(), rows, cols, two_step.data(), 3), bad_blocks) << what;
    EXPECT_EQ(two_step, got) << what;
  }
}

TEST_P(GgmlNonfinite, RawCodecsTakeNonFiniteInput) {
  // The raw codecs (`lowbit ggml quantize --allow-nonfinite`) keep ggml's
  // behaviour on NaN and inf (docs/ggml_types.md): whatever bytes that is,
  // it must be defined (the sanitizer build runs this) and independent of
  // the thread count.
  const GgmlType t = GetParam();
  const Input in = make_input(t, 9);
  const std::vector<float> w = importance(in.cols, 5);
  const uint64_t row_bytes = ggml_row_bytes(t, in.cols, "test");
  for (const float* imp : {static_cast<const float*>(nullptr), w.data()}) {
    std::vector<uint8_t> a(in.rows * row_bytes), b(in.rows * row_bytes);
    ggml_quantize_rows(t, in.x.data(), in.rows, in.cols, a.data(), imp, 1);
    ggml_quantize_rows(t, in.x.data(), in.rows, in.cols, b.data(), imp, 3);
    EXPECT_EQ(a, b) << ggml_type_info(t).name;
    std::vector<float> y(in.rows * in.cols);
    ggml_dequantize_rows(t, a.data(), in.rows, in.cols, y.data(), 1);
  }
}

std::vector<GgmlType> nan_capable_types() {
  std::vector<GgmlType> ts;
  for (GgmlType t : quantizable_types()) {
    if (ggml_type_can_hold_nan(t)) ts.push_back(t);
  }
  return ts;
}

INSTANTIATE_TEST_SUITE_P(Types, GgmlNonfinite, ::testing::ValuesIn(nan_capable_types()),
                         [](const ::testing::TestParamInfo<GgmlType>& p) {
                           return std::string(ggml_type_info(p.param).name);
                         });

TEST(GgmlNonfiniteTypes, OnlyMxfp4AndNvfp4CannotHoldNaN) {
  // Every scale byte of theirs decodes to a finite value in ggml and gguf-py
  // (E8M0 0xFF to 2^127, halved: ggml_e8m0_to_fp32_half; UE4M3 0x7F to 0),
  // so no code makes a NaN (MXFP4's largest scales overflow to inf).
  for (GgmlType t : quantizable_types()) {
    const bool fp4 = t == GgmlType::kMXFP4 || t == GgmlType::kNVFP4;
    EXPECT_EQ(ggml_type_can_hold_nan(t), !fp4) << ggml_type_info(t).name;
    if (!plain(t) && !fp4) {
      EXPECT_TRUE(documented_nan_fields().contains(std::string(ggml_type_info(t).name)));
    }
  }
  EXPECT_FALSE(ggml_type_can_hold_nan(GgmlType::kIQ2_XXS));
  EXPECT_FALSE(ggml_type_can_hold_nan(GgmlType::kF64));
  for (GgmlType t : {GgmlType::kMXFP4, GgmlType::kNVFP4}) {
    const uint64_t be = ggml_type_info(t).block_elems, bb = ggml_type_info(t).block_bytes;
    std::vector<uint8_t> blk(bb, 0x77);
    std::vector<float> y(be);
    for (int s = 0; s < 256; ++s) {
      blk[0] = static_cast<uint8_t>(s);
      ggml_dequantize_row(t, blk.data(), be, y.data());
      for (uint64_t j = 0; j < be; ++j) {
        EXPECT_FALSE(std::isnan(y[j])) << ggml_type_info(t).name << " scale byte " << s << " element " << j;
      }
    }
  }
}

TEST(GgmlNonfiniteTypes, Mxfp4AndNvfp4RefuseNonFiniteBlocksAndWriteNothing) {
  for (GgmlType t : {GgmlType::kMXFP4, GgmlType::kNVFP4}) {
    const Input in = make_input(t, 11);
    const uint64_t bytes = in.rows * ggml_row_bytes(t, in.cols, "test");
    std::vector<uint8_t> out(bytes, 0xA5);
    const Error e = catch_error(
        [&] { ggml_quantize_rows_keeping_nonfinite(t, in.x.data(), in.rows, in.cols, out.data(), nullptr, 2); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    const std::string msg = e.what();
    EXPECT_NE(msg.find(std::string(ggml_type_info(t).name) + " has no block that decodes to NaN"), std::string::npos)
        << msg;
    EXPECT_EQ(out, std::vector<uint8_t>(bytes, 0xA5));
    EXPECT_EQ(catch_error([&] { ggml_mark_nonfinite_blocks(t, in.x.data(), in.rows, in.cols, out.data(), 2); }).kind(),
              ErrorKind::kInput);
    EXPECT_EQ(out, std::vector<uint8_t>(bytes, 0xA5));
    // Without NaN or inf they quantize as usual.
    const std::vector<float> z = zero_filled(in.x);
    std::vector<uint8_t> ref(bytes);
    ggml_quantize_rows(t, z.data(), in.rows, in.cols, ref.data(), nullptr, 1);
    EXPECT_EQ(ggml_quantize_rows_keeping_nonfinite(t, z.data(), in.rows, in.cols, out.data(), nullptr, 2), 0u);
    EXPECT_EQ(out, ref);
    EXPECT_EQ(ggml_mark_nonfinite_blocks(t, z.data(), in.rows, in.cols, out.data(), 2), 0u);
    EXPECT_EQ(out, ref);
  }
}

TEST(GgmlNonfiniteTypes, LargeTensorsWithFewNonFiniteRows) {
  // Rows of 2^19 elements, so that a batch of zero-filled copies (2^20
  // elements) holds two of them: rows 0 and 5, then 6 and 11, are quantized
  // in two batches, rows 1-4 and 7-10 straight from x in two runs.
  const uint64_t rows = 12, cols = uint64_t{1} << 19;
  std::mt19937 rng(5);
  std::normal_distribution<float> g;
  std::vector<float> x(rows * cols);
  for (float& v : x) v = g(rng);
  x[0] = kNaN;
  x[5 * cols + cols - 1] = kInf;
  x[6 * cols + 17] = -kInf;
  x[11 * cols + cols / 2] = kNaN;
  const std::vector<float> z = zero_filled(x);
  for (GgmlType t : {GgmlType::kQ8_0, GgmlType::kQ4_K}) {
    const uint64_t rb = ggml_row_bytes(t, cols, "test"), be = ggml_type_info(t).block_elems;
    std::vector<uint8_t> ref(rows * rb), got(rows * rb), got1(rows * rb);
    ggml_quantize_rows(t, z.data(), rows, cols, ref.data(), nullptr, 2);
    EXPECT_EQ(ggml_mark_nonfinite_blocks(t, x.data(), rows, cols, ref.data(), 2), 4u);
    EXPECT_EQ(ggml_quantize_rows_keeping_nonfinite(t, x.data(), rows, cols, got.data(), nullptr, 2), 4u);
    EXPECT_TRUE(got == ref) << ggml_type_info(t).name;
    EXPECT_EQ(ggml_quantize_rows_keeping_nonfinite(t, x.data(), rows, cols, got1.data(), nullptr, 1), 4u);
    EXPECT_TRUE(got1 == ref) << ggml_type_info(t).name;
    std::vector<float> y(cols);
    ggml_dequantize_row(t, &got[5 * rb], cols, y.data());
    uint64_t nan = 0;
    for (uint64_t j = 0; j < cols; ++j) nan += std::isnan(y[j]);
    EXPECT_EQ(nan, be);
    EXPECT_TRUE(std::isnan(y[cols - 1]));
  }
}

TEST(GgmlNonfiniteTypes, HasNonfinite) {
  std::vector<float> x(1000, 1.5f);
  EXPECT_FALSE(has_nonfinite(x.data(), x.size()));
  EXPECT_FALSE(has_nonfinite(nullptr, 0));
  x[999] = std::numeric_limits<float>::max();
  EXPECT_FALSE(has_nonfinite(x.data(), x.size()));
  for (float v : {kNaN, -kNaN, kInf, -kInf}) {
    for (size_t i : {size_t{0}, size_t{17}, size_t{999}}) {
      std::vector<float> y(x);
      y[i] = v;
      EXPECT_TRUE(has_nonfinite(y.data(), y.size())) << v << " at " << i;
      EXPECT_FALSE(has_nonfinite(y.data(), i)) << v << " at " << i;
    }
  }
}

TEST(GgmlNonfiniteTypes, ArgumentsAreCheckedLikeTheCodec) {
  std::vector<float> x(64);
  std::vector<uint8_t> out(64);
  EXPECT_EQ(catch_error([&] {
              ggml_quantize_rows_keeping_nonfinite(GgmlType::kIQ2_XXS, x.data(), 1, 256, out.data(), nullptr, 1);
            }).kind(),
            ErrorKind::kUsage);
  EXPECT_EQ(catch_error([&] { ggml_mark_nonfinite_blocks(GgmlType::kQ4_0, x.data(), 1, 40, out.data(), 1); }).kind(),
            ErrorKind::kInput);
  EXPECT_EQ(ggml_quantize_rows_keeping_nonfinite(GgmlType::kQ4_K, nullptr, 0, 256, nullptr, nullptr, 2), 0u);
  EXPECT_EQ(ggml_mark_nonfinite_blocks(GgmlType::kQ4_K, nullptr, 0, 256, nullptr, 2), 0u);
}

}  // namespace
}  // namespace lowbit
