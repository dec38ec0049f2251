// Quantization error statistics: small mergeable objects.
//
// ErrorStats accumulates the sums behind MSE, QSNR, cosine similarity,
// relative RMSE and the largest error for pairs (x, x_hat); CrestStats
// accumulates the crest factor (max |x| / RMS) of blocks. Each thread fills
// its own object over fixed chunks and the objects are merged in chunk order,
// so the result does not depend on the thread count (error_stats() below).
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowbit {

struct ErrorStats {
  uint64_t count = 0;      // pairs where both values are finite
  uint64_t nonfinite = 0;  // pairs where either is inf or NaN (not in the sums)
  // Of those, pairs where x is finite but x_hat is not: the error there is
  // unbounded, so mse, qsnr_db and relative_rmse say so (inf, -inf, inf)
  // and cosine is NaN, instead of describing only the finite pairs.
  uint64_t lost = 0;
  double sum_x2 = 0;       // sum of x^2
  double sum_y2 = 0;       // sum of x_hat^2
  double sum_xy = 0;       // sum of x * x_hat
  double sum_err2 = 0;     // sum of (x_hat - x)^2
  double max_abs_err = 0;

  void add(float x, float x_hat);
  // A pair of doubles (a float64 array's fake quantization): the same sums.
  void add(double x, double x_hat);
  // n pairs summed in SIMD in a fixed order (lowbit/kernels/error_kernels.h),
  // then added to these sums: identical on every SIMD target.
  void add(const float* x, const float* x_hat, size_t n);
  void merge(const ErrorStats& other);

  double mse() const;
  // -10 log10(sum (x - x_hat)^2 / sum x^2); +inf when there is no error.
  double qsnr_db() const;
  double cosine() const;         // sum x x_hat / sqrt(sum x^2 sum x_hat^2)
  double relative_rmse() const;  // sqrt(sum (x - x_hat)^2 / sum x^2)
};

// ErrorStats of two arrays, computed over fixed chunks on up to `threads`
// threads (0: all) and merged in chunk order: identical for any thread count.
ErrorStats error_stats(const float* x, const float* x_hat, size_t n, int threads = 0);

struct CrestStats {
  uint64_t blocks = 0;
  uint64_t zero_blocks = 0;  // all-zero blocks have no crest factor
  double sum = 0, sum_sq = 0;
  double min = 0, max = 0;

  // Crest factor of one block: max |x| / sqrt(mean x^2).
  static double crest_factor(const float* x, size_t n);
  void add_block(const float* x, size_t n);
  void merge(const CrestStats& other);

  double mean() const;
  double stddev() const;
};

}  // namespace lowbit
