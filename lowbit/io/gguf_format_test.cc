#include "lowbit/io/gguf_format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

namespace lowbit {
namespace {

constexpr uint64_t kInt64Max = std::numeric_limits<int64_t>::max();

TEST(GgufFormat, AlignmentRules) {
  for (uint64_t a = 1; a != 0; a <<= 1) EXPECT_TRUE(is_valid_gguf_alignment(a)) << a;
  for (uint64_t a : {0ull, 3ull, 6ull, 48ull, 96ull, 0xffffffffull}) EXPECT_FALSE(is_valid_gguf_alignment(a)) << a;

  EXPECT_EQ(gguf_align_up(0, 32), 0u);
  EXPECT_EQ(gguf_align_up(1, 32), 32u);
  EXPECT_EQ(gguf_align_up(32, 32), 32u);
  EXPECT_EQ(gguf_align_up(33, 32), 64u);
  EXPECT_EQ(gguf_align_up(77, 1), 77u);
  EXPECT_EQ(gguf_align_up(UINT64_MAX - 31, 32), UINT64_MAX - 31);  // already a multiple
  EXPECT_FALSE(gguf_align_up(UINT64_MAX - 30, 32).has_value());
}

// Byte sizes from the block geometry in the ggml type table, for every
// type: three blocks per row, two rows.
TEST(GgufFormat, TensorSizeOfEveryType) {
  for (const GgmlTypeInfo& t : ggml_types()) {
    const std::vector<uint64_t> ne = {3ull * t.block_elems, 2};
    const GgufTensorSize s = gguf_tensor_size("w", t, ne);
    EXPECT_TRUE(s.problem.empty()) << t.name << ": " << s.problem;
    EXPECT_EQ(s.numel, 6ull * t.block_elems) << t.name;
    EXPECT_EQ(s.nbytes, 6ull * t.block_bytes) << t.name;
  }
}

TEST(GgufFormat, ScalarsAndZeroSizedTensors) {
  const GgmlTypeInfo f32 = ggml_type_info(GgmlType::kF32);
  const GgmlTypeInfo q4 = ggml_type_info(GgmlType::kQ4_0);
  GgufTensorSize s = gguf_tensor_size("scalar", f32, {});
  EXPECT_TRUE(s.problem.empty());
  EXPECT_EQ(s.numel, 1u);
  EXPECT_EQ(s.nbytes, 4u);
  // A scalar is a row of one element: not a whole Q4_0 block.
  EXPECT_NE(gguf_tensor_size("scalar", q4, {}).problem.find("not a multiple of the Q4_0 block size 32"),
            std::string::npos);

  for (const std::vector<uint64_t>& ne : std::vector<std::vector<uint64_t>>{{0}, {0, 7}, {64, 0, 3}, {32, 5, 0, 0}}) {
    s = gguf_tensor_size("empty", q4, ne);
    EXPECT_TRUE(s.problem.empty()) << s.problem;
    EXPECT_EQ(s.numel, 0u);
    EXPECT_EQ(s.nbytes, 0u);
  }
}

TEST(GgufFormat, TensorSizeProblemsNameTheTensor) {
  const GgmlTypeInfo f32 = ggml_type_info(GgmlType::kF32);
  const GgmlTypeInfo q4 = ggml_type_info(GgmlType::kQ4_0);
  const GgmlTypeInfo f64 = ggml_type_info(GgmlType::kF64);
  const auto problem = [](const GgmlTypeInfo& t, std::vector<uint64_t> ne) {
    return gguf_tensor_size("blk.0.w", t, ne).problem;
  };
  EXPECT_EQ(problem(f32, {1, 1, 1, 1, 1}), "tensor 'blk.0.w' has 5 dimensions; ggml allows at most 4");
  EXPECT_EQ(problem(q4, {33, 2}),
            "tensor 'blk.0.w' has 33 elements per row (ne[0]), not a multiple of the Q4_0 block size 32");
  // 32 elements in all but 16 per row: ggml checks rows, not the total.
  EXPECT_NE(problem(q4, {16, 2}).find("16 elements per row"), std::string::npos);
  EXPECT_NE(problem(f32, {kInt64Max + 1}).find("ne[0] = 9223372036854775808, over 2^63 - 1"), std::string::npos);
  EXPECT_NE(problem(f32, {1ull << 32, 1ull << 31}).find("size overflow"), std::string::npos);  // 2^63
  EXPECT_NE(problem(f32, {1ull << 32, 1ull << 32}).find("size overflow"), std::string::npos);  // 2^64
  // 2^62 elements fit, but at 4 bytes each make 2^64 bytes.
  EXPECT_NE(problem(f32, {1ull << 31, 1ull << 31}).find("byte count"), std::string::npos);
  EXPECT_NE(problem(f64, {kInt64Max}).find("byte count"), std::string::npos);
  // The largest count ggml accepts, in a type whose bytes still fit.
  EXPECT_TRUE(problem(ggml_type_info(GgmlType::kI8), {kInt64Max}).empty());
}

TEST(GgufFormat, ReverseDims) {
  EXPECT_EQ(reverse_dims(std::vector<uint64_t>{576, 49152}), (std::vector<uint64_t>{49152, 576}));
  EXPECT_EQ(reverse_dims(std::vector<uint64_t>{}), std::vector<uint64_t>{});
  EXPECT_EQ(reverse_dims(std::vector<uint64_t>{1, 2, 3, 4}), (std::vector<uint64_t>{4, 3, 2, 1}));
}

TEST(GgufFormat, QuoteEscapesAndShortens) {
  EXPECT_EQ(gguf_quote("blk.0"), "'blk.0'");
  EXPECT_EQ(gguf_quote(std::string("a\nb\0c\x7f", 6)), "'a\\x0ab\\x00c\\x7f'");
  const std::string shown = gguf_quote(std::string(500, 'x'));
  EXPECT_EQ(shown, "'" + std::string(200, 'x') + "...'");
}

}  // namespace
}  // namespace lowbit
