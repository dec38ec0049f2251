#include "lowbit/train/operand_quant.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"
#include "lowbit/format/registry.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/quant/quantizer.h"

namespace lowbit {
namespace {

using testing_support::normal_values;

std::vector<float> transposed(const std::vector<float>& x, int64_t rows, int64_t cols) {
  std::vector<float> t(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) t[static_cast<size_t>(c * rows + r)] = x[static_cast<size_t>(r * cols + c)];
  }
  return t;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// The transform keeps every dot product along the transformed axis (so a
// product of two transformed operands is the original product) and every
// row's norm; a tail of fewer than 16 columns is left alone.
TEST(RandomHadamard, OrthogonalAlongTheRows) {
  const int64_t rows = 3, cols = 37;
  std::vector<float> a = normal_values(rows * cols, 1), b = normal_values(rows * cols, 2);
  std::vector<float> ha = a, hb = b;
  random_hadamard_rows(ha.data(), rows, cols, 99, 2);
  random_hadamard_rows(hb.data(), rows, cols, 99, 1);
  for (int64_t r = 0; r < rows; ++r) {
    double dot = 0, hdot = 0, n = 0, hn = 0;
    for (int64_t c = 0; c < cols; ++c) {
      const size_t i = static_cast<size_t>(r * cols + c);
      dot += double{a[i]} * b[i];
      hdot += double{ha[i]} * hb[i];
      n += double{a[i]} * a[i];
      hn += double{ha[i]} * ha[i];
    }
    EXPECT_NEAR(hdot, dot, 1e-4);
    EXPECT_NEAR(hn, n, 1e-4);
    for (int64_t c = 32; c < cols; ++c) EXPECT_EQ(ha[r * cols + c], a[r * cols + c]);
  }
  EXPECT_NE(ha, a);
  std::vector<float> other = a;
  random_hadamard_rows(other.data(), rows, cols, 100, 1);
  EXPECT_NE(other, ha);  // the seed draws the signs
}

TEST(OperandQuant, ParsesEveryForm) {
  EXPECT_TRUE(OperandQuant::parse("float32", "t").identity());
  EXPECT_TRUE(OperandQuant::parse("none", "t").identity());
  EXPECT_EQ(OperandQuant::parse("bfloat16", "t").kind, OperandQuant::Kind::kCast);
  EXPECT_EQ(OperandQuant::parse("float16+sr", "t").scheme.round.mode, Rounding::kStochastic);
  const OperandQuant fp8 = OperandQuant::parse("float8_e4m3fn/tensor+delayed:8", "t");
  EXPECT_EQ(fp8.kind, OperandQuant::Kind::kScheme);
  EXPECT_EQ(fp8.history, 8);
  EXPECT_EQ(OperandQuant::parse("float8_e4m3fn/tensor+delayed", "t").history, 16);
  const OperandQuant nv = OperandQuant::parse("nvfp4/round=stochastic+rht", "t");
  EXPECT_TRUE(nv.hadamard);
  EXPECT_EQ(nv.scheme.round.mode, Rounding::kStochastic);
  EXPECT_EQ(OperandQuant::parse("mxfp8_e4m3", "t").kind, OperandQuant::Kind::kScheme);
  for (const char* bad : {"", "mxfp4+delayed", "float8_e4m3fn/tensor+delayed:0", "int8/channel/outliers=0.01",
                          "nosuchformat", "bfloat16+fast", "none+sr", "int4/tensor/asym+delayed"}) {
    EXPECT_THROW(OperandQuant::parse(bad, "t"), Error) << bad;
  }
}

// Blocks run along the reduction axis: along columns it is the scheme's own
// quantization of the matrix; along rows, that of the transpose,
// transposed back. Per-tensor scales and casts ignore the axis.
TEST(OperandQuant, BlocksRunAlongTheReductionAxis) {
  const int64_t rows = 64, cols = 48;
  const std::vector<float> x = normal_values(rows * cols, 3);
  const OperandQuant mx = OperandQuant::parse("mxfp4", "t");
  std::vector<float> along_cols(x.size()), along_rows(x.size()), want(x.size());
  mx.apply(x.data(), rows, cols, false, 1, 2, nullptr, along_cols.data(), 2);
  fakequant_tensor(TensorView(x.data(), {uint64_t(rows), uint64_t(cols)}), want.data(), mx.scheme);
  EXPECT_TRUE(same_bits(along_cols, want));
  mx.apply(x.data(), rows, cols, true, 1, 2, nullptr, along_rows.data(), 2);
  const std::vector<float> t = transposed(x, rows, cols);
  std::vector<float> tq(t.size());
  fakequant_tensor(TensorView(t.data(), {uint64_t(cols), uint64_t(rows)}), tq.data(), mx.scheme);
  EXPECT_TRUE(same_bits(along_rows, transposed(tq, cols, rows)));
  EXPECT_FALSE(same_bits(along_rows, along_cols));
  // A cast: the format engine element by element, whatever the axis.
  const OperandQuant bf = OperandQuant::parse("bfloat16", "t");
  std::vector<float> c1(x.size()), c2(x.size()), cw(x.size());
  bf.apply(x.data(), rows, cols, false, 0, 0, nullptr, c1.data(), 1);
  bf.apply(x.data(), rows, cols, true, 0, 0, nullptr, c2.data(), 2);
  fakequant_array(parse_format("bfloat16"), x.data(), cw.data(), x.size(), ArrayOptions{});
  EXPECT_TRUE(same_bits(c1, cw));
  EXPECT_TRUE(same_bits(c2, cw));
}

// Delayed scaling: the first step scales by its own amax (the same bits as
// current scaling); later steps by the largest amax of the history, which
// the current amax joins after use.
TEST(OperandQuant, DelayedScalingUsesTheHistory) {
  const OperandQuant cur = OperandQuant::parse("float8_e4m3fn/tensor", "t");
  const OperandQuant del = OperandQuant::parse("float8_e4m3fn/tensor+delayed:2", "t");
  const std::vector<float> big = normal_values(256, 4, 4.0f), small = normal_values(256, 5, 1.0f);
  AmaxHistory h;
  std::vector<float> a(256), b(256), want(256);
  del.apply(big.data(), 16, 16, false, 0, 0, &h, a.data(), 1);
  cur.apply(big.data(), 16, 16, false, 0, 0, nullptr, b.data(), 1);
  EXPECT_TRUE(same_bits(a, b));
  ASSERT_EQ(h.values.size(), 1u);
  float amax_big = 0;
  for (float v : big) amax_big = std::max(amax_big, std::fabs(v));
  EXPECT_EQ(h.values[0], amax_big);
  // The small tensor is scaled by the big one's amax.
  del.apply(small.data(), 16, 16, false, 0, 0, &h, a.data(), 1);
  const float s = static_cast<float>(amax_big / 448.0);
  for (size_t i = 0; i < 256; ++i) want[i] = small[i] * (1.0f / s);
  fakequant_array(parse_format("float8_e4m3fn"), want.data(), want.data(), 256, ArrayOptions{});
  for (float& v : want) v *= s;
  EXPECT_TRUE(same_bits(a, want));
  // A history of 2: after two more small steps the big amax is gone.
  del.apply(small.data(), 16, 16, false, 0, 0, &h, a.data(), 1);
  del.apply(small.data(), 16, 16, false, 0, 0, &h, a.data(), 1);
  cur.apply(small.data(), 16, 16, false, 0, 0, nullptr, b.data(), 1);
  EXPECT_TRUE(same_bits(a, b));
  EXPECT_THROW(del.apply(small.data(), 16, 16, false, 0, 0, nullptr, a.data(), 1), Error);
}

TEST(OperandQuant, StochasticRoundingFollowsItsSeedAndNotTheThreads) {
  const OperandQuant sr = OperandQuant::parse("e5m2/tensor/round=stochastic", "t");
  const std::vector<float> x = normal_values(4096, 6);
  std::vector<float> a(x.size()), b(x.size()), c(x.size());
  sr.apply(x.data(), 64, 64, true, 7, 0, nullptr, a.data(), 1);
  sr.apply(x.data(), 64, 64, true, 7, 0, nullptr, b.data(), 2);
  sr.apply(x.data(), 64, 64, true, 8, 0, nullptr, c.data(), 2);
  EXPECT_TRUE(same_bits(a, b));
  EXPECT_FALSE(same_bits(a, c));
}

}  // namespace
}  // namespace lowbit
