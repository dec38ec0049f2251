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

// The transform as the definition gives it, one group of 16 at a time
// (sign, then the Sylvester butterflies, then 1/4): the library's version
// turns the groups on their side to vectorize, with the same arithmetic,
// so the bits must agree.
TEST(RandomHadamard, SameBitsAsOneGroupAtATime) {
  const int64_t rows = 5, cols = 16 * 7 + 3;
  const std::vector<float> x = normal_values(rows * cols, 11);
  std::vector<float> got = x;
  random_hadamard_rows(got.data(), rows, cols, 1234, 2);
  // The signs: transform a one-hot row per position and read them back
  // from the first output of each group (H's first row is all ones).
  std::vector<float> sign(static_cast<size_t>(cols), 1.0f);
  for (int64_t i = 0; i < cols / 16 * 16; ++i) {
    std::vector<float> e(static_cast<size_t>(cols), 0.0f);
    e[static_cast<size_t>(i)] = 1.0f;
    random_hadamard_rows(e.data(), 1, cols, 1234, 1);
    sign[static_cast<size_t>(i)] = e[static_cast<size_t>(i / 16 * 16)] > 0 ? 1.0f : -1.0f;
  }
  std::vector<float> want = x;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g + 16 <= cols; g += 16) {
      float v[16];
      for (int i = 0; i < 16; ++i) v[i] = want[r * cols + g + i] * sign[g + i];
      for (int h = 1; h < 16; h *= 2) {
        for (int i = 0; i < 16; i += 2 * h) {
          for (int j = i; j < i + h; ++j) {
            const float a = v[j], c = v[j + h];
            v[j] = a + c;
            v[j + h] = a - c;
          }
        }
      }
      for (int i = 0; i < 16; ++i) want[r * cols + g + i] = v[i] * 0.25f;
    }
  }
  EXPECT_TRUE(same_bits(got, want));
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

// Which roundings ignore the axis: those run on the operand as stored (and
// so may be shared between products, linear_grad.cc). Square 2-D blocks
// (NVFP4's 16x16 weights) give the same values along rows and columns.
TEST(OperandQuant, AxisFreeRoundingsGiveTheSameValuesAlongEitherAxis) {
  for (const char* spec : {"none", "bfloat16", "float8_e4m3fn/tensor", "nvfp4/b16x16", "float16+sr"}) {
    EXPECT_TRUE(OperandQuant::parse(spec, "t").axis_free()) << spec;
  }
  for (const char* spec : {"mxfp8_e4m3", "nvfp4", "int8/channel", "nvfp4/b16x16+rht", "float32+rht"}) {
    EXPECT_FALSE(OperandQuant::parse(spec, "t").axis_free()) << spec;
  }
  const int64_t rows = 48, cols = 40;  // ragged 16x16 tiles on both axes
  const std::vector<float> x = normal_values(rows * cols, 12, 2.0f);
  const OperandQuant w = OperandQuant::parse("nvfp4/b16x16", "t");
  std::vector<float> along_cols(x.size()), along_rows(x.size()), t_quant(x.size());
  w.apply(x.data(), rows, cols, false, 1, 2, nullptr, along_cols.data(), 2);
  EXPECT_FALSE(w.round_for_product(x.data(), rows, cols, true, 3, 4, nullptr, along_rows.data(), 1));
  EXPECT_TRUE(same_bits(along_rows, along_cols));
  // The definition: the scheme's quantization of the transpose, transposed
  // back, is the same.
  const std::vector<float> t = transposed(x, rows, cols);
  fakequant_tensor(TensorView(t.data(), {uint64_t(cols), uint64_t(rows)}), t_quant.data(), w.scheme);
  EXPECT_TRUE(same_bits(transposed(t_quant, cols, rows), along_cols));
}

// Along the rows, a rounding that depends on the axis is left transposed
// for the product: exactly the transpose of what apply() returns.
TEST(OperandQuant, RoundForProductLeavesRowRoundingsTransposed) {
  const int64_t rows = 96, cols = 40;
  const std::vector<float> x = normal_values(rows * cols, 13);
  for (const char* spec : {"mxfp8_e4m3", "nvfp4/round=stochastic+rht", "float32+rht"}) {
    const OperandQuant q = OperandQuant::parse(spec, "t");
    std::vector<float> a(x.size()), b(x.size());
    q.apply(x.data(), rows, cols, true, 5, 6, nullptr, a.data(), 2);
    EXPECT_TRUE(q.round_for_product(x.data(), rows, cols, true, 5, 6, nullptr, b.data(), 1)) << spec;
    EXPECT_TRUE(same_bits(b, transposed(a, rows, cols))) << spec;
    // Along the columns: as stored.
    EXPECT_FALSE(q.round_for_product(x.data(), rows, cols, false, 5, 6, nullptr, b.data(), 1)) << spec;
    q.apply(x.data(), rows, cols, false, 5, 6, nullptr, a.data(), 2);
    EXPECT_TRUE(same_bits(a, b)) << spec;
  }
}

}  // namespace
}  // namespace lowbit
