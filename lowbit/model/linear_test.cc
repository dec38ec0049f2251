#include "lowbit/model/linear.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <memory>
#include <span>
#include <random>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/ggml/row_codec.h"

namespace lowbit {
namespace {

TEST(Linear, ComputesXTimesWTransposedPlusBias) {
  // W = [[1, 2, 3], [-1, 0, 0.5]], b = [0.25, -1].
  const Linear l("blk.0.ffn_up", {1, 2, 3, -1, 0, 0.5f}, 2, 3, {0.25f, -1});
  const std::vector<float> x = {1, 1, 1, 2, 0, -2};
  std::vector<float> y(4);
  l.forward(x.data(), 2, y.data(), 2);
  EXPECT_EQ(y, (std::vector<float>{6.25f, -1.5f, -3.75f, -4.0f}));
}

TEST(Linear, RefusesWeightsOfTheWrongSize) {
  EXPECT_THROW(Linear("w", std::vector<float>(5), 2, 3), Error);
  EXPECT_THROW(Linear("w", std::vector<float>(6), 2, 3, std::vector<float>(3)), Error);
}

TEST(Linear, OneTokenGoesThroughThePackedWeightABatchThroughBlas) {
  const int64_t out = 5, in = 64;
  std::mt19937 rng(1);
  std::normal_distribution<float> nd(0.0f, 0.1f);
  std::vector<float> w0(out * in), bias(out), x(2 * in);
  for (float& v : w0) v = nd(rng);
  for (float& v : bias) v = nd(rng);
  for (float& v : x) v = nd(rng) * 10;
  std::vector<uint8_t> bytes(ggml_row_bytes(GgmlType::kQ4_1, in, "w") * out);
  ggml_quantize_rows(GgmlType::kQ4_1, w0.data(), out, in, bytes.data(), nullptr, 1);
  std::vector<float> w(out * in);
  ggml_dequantize_rows(GgmlType::kQ4_1, bytes.data(), out, in, w.data(), 1);
  auto packed = std::make_shared<const PackedWeight>(
      PackedWeight::from_ggml(GgmlType::kQ4_1, std::as_bytes(std::span(bytes)), out, in));
  const Linear plain("l", w, out, in, bias);
  Linear l("l", w, out, in, bias);
  l.set_packed(packed);
  // n = 1: the GEMV's bits plus the bias.
  std::vector<float> y(out), want(out);
  l.forward(x.data(), 1, y.data(), 2);
  packed->multiply(x.data(), want.data(), 1);
  for (int64_t j = 0; j < out; ++j) want[j] += bias[j];
  EXPECT_EQ(std::memcmp(y.data(), want.data(), y.size() * sizeof(float)), 0);
  // The BLAS path agrees to float rounding.
  std::vector<float> blas(out);
  plain.forward(x.data(), 1, blas.data(), 1);
  for (int64_t j = 0; j < out; ++j) EXPECT_NEAR(y[j], blas[j], 1e-5 * (1 + std::abs(blas[j])));
  // n = 2: BLAS, as without the packed weight.
  std::vector<float> y2(2 * out), p2(2 * out);
  l.forward(x.data(), 2, y2.data(), 2);
  plain.forward(x.data(), 2, p2.data(), 2);
  EXPECT_EQ(y2, p2);
  // Several one-token forwards at once (packed: one dispatch; a plain
  // Linear among them: one by one) are the bits of each forward alone.
  std::vector<float> a(out, -1.0f), b(out, -1.0f), c(out, -1.0f), plain1(out);
  const Linear::OneToken both[] = {{&l, x.data(), a.data()}, {&l, x.data() + in, b.data()}};
  Linear::forward_one(both, 3);
  std::vector<float> want_b(out);
  l.forward(x.data() + in, 1, want_b.data(), 1);
  EXPECT_EQ(std::memcmp(a.data(), y.data(), a.size() * sizeof(float)), 0);
  EXPECT_EQ(std::memcmp(b.data(), want_b.data(), b.size() * sizeof(float)), 0);
  const Linear::OneToken mixed[] = {{&l, x.data(), a.data()}, {&plain, x.data(), c.data()}};
  Linear::forward_one(mixed, 2);
  plain.forward(x.data(), 1, plain1.data(), 2);
  EXPECT_EQ(std::memcmp(a.data(), y.data(), a.size() * sizeof(float)), 0);
  EXPECT_EQ(c, plain1);
  // A packed weight of another shape is refused.
  Linear other("o", std::vector<float>(4 * in), 4, in);
  EXPECT_THROW(other.set_packed(packed), Error);
}

}  // namespace
}  // namespace lowbit
