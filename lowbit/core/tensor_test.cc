#include "lowbit/core/tensor.h"

#include <gtest/gtest.h>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

TEST(DType, NamesBitsAndRoundTrips) {
  EXPECT_EQ(all_dtypes().size(), 20u);
  for (const DType d : all_dtypes()) {
    EXPECT_EQ(parse_dtype(dtype_name(d)), d);
    EXPECT_NE(dtype_names().find(dtype_name(d)), std::string::npos);
  }
  EXPECT_EQ(dtype_bits(DType::kF4), 4u);
  EXPECT_EQ(dtype_bits(DType::kF6_E2M3), 6u);
  EXPECT_EQ(dtype_bits(DType::kBF16), 16u);
  EXPECT_EQ(dtype_bits(static_cast<DType>(200)), 0u);
  EXPECT_STREQ(dtype_name(static_cast<DType>(200)), "?");
  // Names come from untrusted files: quoted with control characters escaped.
  const Error e = catch_error([] { parse_dtype("F\n7"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("'F\\x0a7'"), std::string::npos) << e.what();
}

TEST(TensorView, ShapeArithmetic) {
  const float x[6] = {};
  const TensorView m(x, {2, 3});
  EXPECT_EQ(m.numel(), 6u);
  EXPECT_EQ(m.rows(), 2u);
  EXPECT_EQ(m.cols(), 3u);
  const TensorView scalar(x, {});
  EXPECT_EQ(scalar.numel(), 1u);
  EXPECT_EQ(scalar.rows(), 1u);
  EXPECT_EQ(scalar.cols(), 1u);
  const TensorView empty(x, {4, 0});
  EXPECT_EQ(empty.numel(), 0u);
  EXPECT_EQ(empty.rows(), 0u);
  const TensorView huge(x, {uint64_t{1} << 40, uint64_t{1} << 40});
  EXPECT_EQ(catch_error([&] { (void)huge.numel(); }).kind(), ErrorKind::kInput);
}

}  // namespace
}  // namespace lowbit
