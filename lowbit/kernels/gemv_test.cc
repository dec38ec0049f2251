// gemv_rows on every SIMD target against gemv_rows_reference (the order of
// gemv.h in plain scalar code), bit for bit, for each block kind, row counts
// around the four-row group and any split into groups; and the reference against a
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

// A random matrix in gemv.h's layout: float16 scales of both signs and
// several magnitudes (subnormals, zeros, the largest finite among them),
// random codes. Padding rows are random too: the kernel must ignore them.
std::vector<uint8_t> random_blocks(GemvCodes c, int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<uint8_t> data(static_cast<size_t>(kernels::gemv_matrix_bytes(c, rows, cols)));
  for (uint8_t& v : data) v = static_cast<uint8_t>(rng());
  const uint16_t edges[] = {0x0001, 0x03FF, 0x0000, 0x8000, 0x7BFF, 0xFBFF};
  const int64_t nb = cols / kernels::kGemvBlock, padded = kernels::gemv_groups(rows) * kernels::kGemvRows;
  for (int64_t r = 0; r < padded; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      for (int k = 0; k < (c == GemvCodes::kQ4_1 ? 2 : 1); ++k) {
        // Mostly ordinary scales (exponent 2^-12 .. 2^-4), some edges.
        uint16_t h = static_cast<uint16_t>((rng() & 0x83FF) | ((3 + rng() % 8) << 10));
        if (rng() % 7 == 0) h = edges[rng() % 6];
        std::memcpy(data.data() + kernels::gemv_scale_offset(c, cols, r, b) + 8 * k, &h, 2);
      }
    }
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
          // Any split into whole groups gives each row the same bits.
          std::vector<float> parts(static_cast<size_t>(rows), -1.0f);
          for (int64_t r = 0; r < rows; r += 8) kernels::gemv_rows(w, x.data(), r, std::min(rows, r + 8), parts.data());
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
  // Q4_1 by hand, row 2 of a three-row group: d = 0.5 (float16 0x3800),
  // m = -1 (0xBC00), codes 0..15 then 15..0; the other rows' bytes 0xFF.
  const GemvCodes c = GemvCodes::kQ4_1;
  std::vector<uint8_t> tile(static_cast<size_t>(kernels::gemv_matrix_bytes(c, 3, 32)), 0xFF);
  const uint16_t d = 0x3800, m = 0xBC00;
  std::memcpy(tile.data() + kernels::gemv_scale_offset(c, 32, 2, 0), &d, 2);
  std::memcpy(tile.data() + kernels::gemv_scale_offset(c, 32, 2, 0) + 8, &m, 2);
  uint8_t* codes = tile.data() + kernels::gemv_codes_offset(c, 32, 2, 0);
  for (int j = 0; j < 16; ++j) codes[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  std::vector<float> got(32);
  for (KernelTarget t : available_targets()) {
    set_kernel_target(t);
    kernels::gemv_dequantize_row(GemvMatrix{c, 3, 32, tile.data()}, 2, got.data());
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
