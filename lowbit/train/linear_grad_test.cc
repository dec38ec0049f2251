#include "lowbit/train/linear_grad.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "lowbit/core/test_support.h"
#include "lowbit/train/operand_quant.h"
#include "lowbit/train/precision_recipe.h"

namespace lowbit {
namespace {

using testing_support::normal_values;

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

std::vector<float> rounded(const OperandQuant& q, const std::vector<float>& v, int64_t rows, int64_t cols,
                           bool reduce_over_rows) {
  std::vector<float> out(v.size());
  q.apply(v.data(), rows, cols, reduce_over_rows, 0, 0, nullptr, out.data(), 1);
  return out;
}

// c[i, j] = sum_k a[i, k]·b[k, j] (a_t: a stored [k, n]; b_t: b stored
// [m, k]), in double.
std::vector<double> product(const std::vector<float>& a, bool a_t, const std::vector<float>& b, bool b_t, int64_t n,
                            int64_t m, int64_t k) {
  std::vector<double> c(static_cast<size_t>(n * m), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      double s = 0;
      for (int64_t t = 0; t < k; ++t) {
        const float x = a_t ? a[t * n + i] : a[i * k + t];
        const float y = b_t ? b[j * k + t] : b[t * m + j];
        s += double{x} * y;
      }
      c[static_cast<size_t>(i * m + j)] = s;
    }
  }
  return c;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], 2e-5 * (1 + std::fabs(want[i]))) << what << " at " << i;
  }
}

// The three products of a quantized Linear against their definition: each
// operand rounded along its product's reduction axis (OperandQuant::apply,
// the reference layout), then multiplied in double. The recipes mix
// operands the library rounds as stored (axis free) with ones it leaves
// transposed for the product, in every combination the backward pass
// meets; all round to nearest, so the seeds do not matter.
TEST(LinearGrad, QuantizedProductsMatchTheirDefinition) {
  const int64_t n = 96, in = 64, out = 48;
  const std::vector<float> x = normal_values(n * in, 1), w = normal_values(out * in, 2, 0.2f);
  const std::vector<float> dy = normal_values(n * out, 3, 0.01f);
  struct Case {
    const char *fx, *fw, *ddy, *dw, *wdy, *wx;
  } cases[] = {
      {"mxfp8_e4m3", "nvfp4/b16x16", "mxfp8_e5m2", "nvfp4/b16x16", "mxfp8_e5m2", "float8_e4m3fn/tensor"},
      {"nvfp4", "float8_e4m3fn/tensor", "bfloat16", "mxfp4", "float8_e5m2/tensor", "mxfp8_e4m3"},
      {"float32", "float32", "float32", "int8/channel", "nvfp4", "nvfp4"},
      {"float8_e4m3fn/tensor", "float8_e4m3fn/tensor", "float8_e5m2/tensor", "float8_e4m3fn/tensor",
       "float8_e5m2/tensor", "float8_e4m3fn/tensor"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.dw);
    LayerPrecision p;
    p.forward = {OperandQuant::parse(c.fx, "t"), OperandQuant::parse(c.fw, "t")};
    p.dgrad = {OperandQuant::parse(c.ddy, "t"), OperandQuant::parse(c.dw, "t")};
    p.wgrad = {OperandQuant::parse(c.wdy, "t"), OperandQuant::parse(c.wx, "t")};
    std::vector<float> cache;
    LinearQuant q{&p, 77, nullptr, &cache};

    std::vector<float> y(static_cast<size_t>(n * out));
    linear_forward(x.data(), n, in, w.data(), out, y.data(), 2, &q);
    expect_close(y, product(rounded(p.forward.a, x, n, in, false), false, rounded(p.forward.b, w, out, in, false), true,
                            n, out, in), "y");

    std::vector<float> dx(static_cast<size_t>(n * in)), g(static_cast<size_t>(out * in), 0.0f);
    linear_backward(dy.data(), x.data(), n, in, w.data(), out, dx.data(), false, g.data(), 2, &q);
    expect_close(dx, product(rounded(p.dgrad.a, dy, n, out, false), false, rounded(p.dgrad.b, w, out, in, true), false,
                             n, in, out), "dx");
    expect_close(g, product(rounded(p.wgrad.a, dy, n, out, true), true, rounded(p.wgrad.b, x, n, in, true), false,
                            out, in, n), "dw");

    // The same bits with no weight shared from the forward pass, and at
    // one thread.
    std::vector<float> dx1(dx.size()), g1(g.size(), 0.0f);
    LinearQuant fresh{&p, 77, nullptr, nullptr};
    linear_backward(dy.data(), x.data(), n, in, w.data(), out, dx1.data(), false, g1.data(), 1, &fresh);
    EXPECT_TRUE(same_bits(dx, dx1));
    EXPECT_TRUE(same_bits(g, g1));
  }
}

}  // namespace
}  // namespace lowbit
