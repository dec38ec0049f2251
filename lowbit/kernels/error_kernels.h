// The sums behind ErrorStats (lowbit/quant/error_stats.h) over a chunk of
// pairs (x, x_hat), in SIMD, in one canonical order that every target
// follows, so the sums are the same bits on AVX-512, AVX2, SSE4 and the
// one-lane target:
//
//   pair i goes to partial i mod 16 (in double; a pair where x or x_hat is
//   inf or NaN adds 0 to every sum and 1 to `nonfinite`, and 1 to `lost`
//   too when x is finite), each partial
//   accumulating its pairs in index order; then the 16 partials are added
//   as a fixed tree: k + 8, then k + 4, k + 2, k + 1.
//
// Per pair, with a = x and b = x_hat widened to double: a*a, b*b and a*b
// are exact, d = b - a is one rounding, d*d another; max_abs_err = max |d|.
// (model_quantizer computes this for every tensor it writes: the scalar
// sums, four dependent chains, took twice as long as the quantization.)
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowbit::kernels {

struct ErrorSums {
  uint64_t nonfinite = 0;
  uint64_t lost = 0;  // of those, pairs with x finite and x_hat inf or NaN
  double sum_x2 = 0, sum_y2 = 0, sum_xy = 0, sum_err2 = 0;
  double max_abs_err = 0;
};

ErrorSums error_sums(const float* x, const float* x_hat, size_t n);

// The same sums by the plain scalar loop in the same canonical order: the
// specification error_sums is tested against.
ErrorSums error_sums_reference(const float* x, const float* x_hat, size_t n);

}  // namespace lowbit::kernels
