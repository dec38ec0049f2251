// gemv_rows on every SIMD target against gemv_rows_reference (the order of
// gemv.h in plain scalar code), bit for bit, for each block kind, row counts
// around the four-row step and any row range; and the reference against a
// sum in long double (it computes the right thing, not only a fixed thing).
#include "lowbit/kernels/gemv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <vector>

#include "lowbit/kernels/array_ops.h"

namespace lowbit {
namespace {

using kernels::GemvCodes;
using kernels::GemvMatrix;

// Random block records: scales of both signs and several magnitudes (a
// subnormal and a zero among them), random codes.
std::vector<uint8_t> random_blocks(GemvCodes c, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t nb = rows * cols / kernels::kGemvBlock, stride = kernels::gemv_block_bytes(c);
  std::vector<uint8_t> data(static_cast<size_t>(nb * stride));
  for (int64_t b = 0; b < nb; ++b) {
    uint8_t* rec = data.data() + b * stride;
    float d = nd(rng) * 0.01f, m = nd(rng) * 0.05f;
    if (b % 17 == 3) d = 1e-40f;  // subnormal
    if (b % 19 == 5) d = 0.0f;
    std::memcpy(rec, &d, 4);
    if (c == GemvCodes::kQ4_1) std::memcpy(rec + 4, &m, 4);
    for (int64_t j = c == GemvCodes::kQ4_1 ? 8 : 4; j < stride; ++j) rec[j] = static_cast<uint8_t>(rng());
  }
  return data;
}

std::vector<float> random_x(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 2.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = nd(rng);
  return x;
}

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(Gemv, EveryTargetEqualsTheReferenceBitForBit) {
  for (GemvCodes c : {GemvCodes::kQ8_0, GemvCodes::kQ4_0, GemvCodes::kQ4_1}) {
    for (int64_t rows : {1, 3, 4, 5, 9, 64}) {
      for (int64_t cols : {32, 64, 576}) {
        const std::vector<uint8_t> data = random_blocks(c, rows, cols, static_cast<uint32_t>(rows * 1000 + cols));
        const GemvMatrix w{c, rows, cols, data.data()};
        const std::vector<float> x = random_x(cols, static_cast<uint32_t>(cols));
        std::vector<float> want(static_cast<size_t>(rows));
        kernels::gemv_rows_reference(w, x.data(), 0, rows, want.data());
        for (KernelTarget t : available_targets()) {
          set_kernel_target(t);
          std::vector<float> got(static_cast<size_t>(rows), -1.0f);
          kernels::gemv_rows(w, x.data(), 0, rows, got.data());
          // Any row range gives each row the same bits (rows are grouped
          // by four, and a row's sum never depends on its group).
          std::vector<float> parts(static_cast<size_t>(rows), -1.0f);
          for (int64_t r = 0; r < rows; r += 3) kernels::gemv_rows(w, x.data(), r, std::min(rows, r + 3), parts.data());
          reset_kernel_target();
          EXPECT_TRUE(same_bits(want, got)) << kernel_target_name(t) << " codes " << static_cast<int>(c) << " rows "
                                            << rows << " cols " << cols;
          EXPECT_TRUE(same_bits(want, parts)) << kernel_target_name(t);
        }
      }
    }
  }
}

TEST(Gemv, DequantizedRowIsTheBlockFormula) {
  // Q4_1 by hand: d = 0.5, m = -1, codes 0..15 then 15..0.
  std::vector<uint8_t> rec(24);
  const float d = 0.5f, m = -1.0f;
  std::memcpy(rec.data(), &d, 4);
  std::memcpy(rec.data() + 4, &m, 4);
  for (int j = 0; j < 16; ++j) rec[8 + j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  std::vector<float> got(32);
  for (KernelTarget t : available_targets()) {
    set_kernel_target(t);
    kernels::gemv_dequantize_row(GemvMatrix{GemvCodes::kQ4_1, 1, 32, rec.data()}, 0, got.data());
    reset_kernel_target();
    for (int j = 0; j < 32; ++j) {
      const int q = j < 16 ? j : 15 - (j - 16);
      EXPECT_EQ(got[j], static_cast<float>(q) * 0.5f - 1.0f) << kernel_target_name(t) << " element " << j;
    }
  }
}

TEST(Gemv, ReferenceComputesTheProduct) {
  for (GemvCodes c : {GemvCodes::kQ8_0, GemvCodes::kQ4_0, GemvCodes::kQ4_1}) {
    const int64_t rows = 6, cols = 256;
    const std::vector<uint8_t> data = random_blocks(c, rows, cols, 7);
    const GemvMatrix w{c, rows, cols, data.data()};
    const std::vector<float> x = random_x(cols, 8);
    std::vector<float> y(rows), row(cols);
    kernels::gemv_rows_reference(w, x.data(), 0, rows, y.data());
    for (int64_t r = 0; r < rows; ++r) {
      kernels::gemv_dequantize_row(w, r, row.data());
      long double s = 0, mag = 0;
      for (int64_t k = 0; k < cols; ++k) {
        s += static_cast<long double>(row[k]) * x[k];
        mag += std::abs(static_cast<long double>(row[k]) * x[k]);
      }
      EXPECT_NEAR(y[r], static_cast<double>(s), 1e-6 * static_cast<double>(mag) + 1e-30) << r;
    }
  }
}

TEST(Gemv, NonFiniteInputsPropagate) {
  const int64_t rows = 4, cols = 64;
  const std::vector<uint8_t> data = random_blocks(GemvCodes::kQ8_0, rows, cols, 9);
  std::vector<float> x = random_x(cols, 10);
  x[40] = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> y(rows);
  kernels::gemv_rows(GemvMatrix{GemvCodes::kQ8_0, rows, cols, data.data()}, x.data(), 0, rows, y.data());
  for (float v : y) EXPECT_TRUE(std::isnan(v));
}

}  // namespace
}  // namespace lowbit
