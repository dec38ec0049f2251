#include "lowbit/ggml/type.h"

#include <gtest/gtest.h>

#include "lowbit/core/error.h"

namespace lowbit {
namespace {

TEST(GgmlType, LooksUpByIdAndName) {
  const auto q4k = ggml_type_info(12);
  ASSERT_TRUE(q4k.has_value());
  EXPECT_EQ(q4k->name, "Q4_K");
  EXPECT_EQ(q4k->block_elems, 256u);
  EXPECT_EQ(q4k->block_bytes, 144u);
  EXPECT_FALSE(ggml_type_info(4).has_value());  // retired Q4_2
  EXPECT_FALSE(ggml_type_info(1000).has_value());
  const auto mx = ggml_type_by_name("mxfp4");
  ASSERT_TRUE(mx.has_value());
  EXPECT_EQ(static_cast<uint32_t>(mx->type), 39u);
  EXPECT_FALSE(ggml_type_by_name("q4_k_m").has_value());
}

TEST(GgmlType, RowBytesChecksBlocksAndOverflow) {
  EXPECT_EQ(ggml_row_bytes(GgmlType::kQ4_0, 64, "w"), 36u);
  EXPECT_EQ(ggml_row_bytes(GgmlType::kF32, 3, "w"), 12u);
  EXPECT_THROW(ggml_row_bytes(GgmlType::kQ4_K, 100, "w"), Error);
  EXPECT_THROW(ggml_row_bytes(GgmlType::kF64, uint64_t{1} << 62, "w"), Error);
}

}  // namespace
}  // namespace lowbit
