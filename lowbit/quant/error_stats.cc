#include "lowbit/quant/error_stats.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "lowbit/core/thread_pool.h"
#include "lowbit/kernels/error_kernels.h"

namespace lowbit {

void ErrorStats::add(float x, float x_hat) { add(static_cast<double>(x), static_cast<double>(x_hat)); }

void ErrorStats::add(double x, double x_hat) {
  if (!std::isfinite(x) || !std::isfinite(x_hat)) {
    ++nonfinite;
    lost += std::isfinite(x);
    return;
  }
  const double a = x, b = x_hat, d = b - a;
  ++count;
  sum_x2 += a * a;
  sum_y2 += b * b;
  sum_xy += a * b;
  sum_err2 += d * d;
  max_abs_err = std::max(max_abs_err, std::fabs(d));
}

// The chunk's sums in SIMD, in the canonical order of error_kernels.h (the
// same bits on every target), merged into these.
void ErrorStats::add(const float* x, const float* x_hat, size_t n) {
  const kernels::ErrorSums s = kernels::error_sums(x, x_hat, n);
  merge(ErrorStats{n - s.nonfinite, s.nonfinite, s.lost, s.sum_x2, s.sum_y2, s.sum_xy, s.sum_err2, s.max_abs_err});
}

void ErrorStats::merge(const ErrorStats& o) {
  count += o.count;
  nonfinite += o.nonfinite;
  lost += o.lost;
  sum_x2 += o.sum_x2;
  sum_y2 += o.sum_y2;
  sum_xy += o.sum_xy;
  sum_err2 += o.sum_err2;
  max_abs_err = std::max(max_abs_err, o.max_abs_err);
}

double ErrorStats::mse() const {
  if (lost) return std::numeric_limits<double>::infinity();
  return count ? sum_err2 / static_cast<double>(count) : 0.0;
}

double ErrorStats::qsnr_db() const {
  if (lost) return -std::numeric_limits<double>::infinity();
  if (sum_err2 == 0) return std::numeric_limits<double>::infinity();
  return -10.0 * std::log10(sum_err2 / sum_x2);
}

double ErrorStats::cosine() const {
  if (lost) return std::numeric_limits<double>::quiet_NaN();
  const double d = std::sqrt(sum_x2 * sum_y2);
  return d > 0 ? sum_xy / d : (sum_x2 == sum_y2 ? 1.0 : 0.0);
}

double ErrorStats::relative_rmse() const {
  if (lost) return std::numeric_limits<double>::infinity();
  if (sum_err2 == 0) return 0.0;
  return std::sqrt(sum_err2 / sum_x2);
}

ErrorStats error_stats(const float* x, const float* x_hat, size_t n, int threads) {
  // Fixed chunks, merged in order: the sums do not depend on the threads.
  constexpr size_t kChunk = 1 << 16;
  const size_t chunks = (n + kChunk - 1) / kChunk;
  std::vector<ErrorStats> parts(chunks);
  ThreadPool::global().parallel_for(chunks, threads > 0 ? threads : default_thread_count(), [&](size_t c) {
    const size_t b = c * kChunk;
    parts[c].add(x + b, x_hat + b, std::min(n, b + kChunk) - b);
  });
  ErrorStats total;
  for (const auto& p : parts) total.merge(p);
  return total;
}

double CrestStats::crest_factor(const float* x, size_t n) {
  double amax = 0, sum_sq = 0;
  for (size_t i = 0; i < n; ++i) {
    const double a = std::fabs(static_cast<double>(x[i]));
    amax = std::max(amax, a);
    sum_sq += a * a;
  }
  if (n == 0 || sum_sq == 0) return 0.0;
  return amax / std::sqrt(sum_sq / static_cast<double>(n));
}

void CrestStats::add_block(const float* x, size_t n) {
  const double c = crest_factor(x, n);
  if (c == 0) {
    ++zero_blocks;
    return;
  }
  min = blocks ? std::min(min, c) : c;
  max = blocks ? std::max(max, c) : c;
  ++blocks;
  sum += c;
  sum_sq += c * c;
}

void CrestStats::merge(const CrestStats& o) {
  if (o.blocks) {
    min = blocks ? std::min(min, o.min) : o.min;
    max = blocks ? std::max(max, o.max) : o.max;
  }
  blocks += o.blocks;
  zero_blocks += o.zero_blocks;
  sum += o.sum;
  sum_sq += o.sum_sq;
}

double CrestStats::mean() const { return blocks ? sum / static_cast<double>(blocks) : 0.0; }

double CrestStats::stddev() const {
  if (blocks < 2) return 0.0;
  const double m = mean();
  return std::sqrt(std::max(0.0, sum_sq / static_cast<double>(blocks) - m * m));
}

}  // namespace lowbit
