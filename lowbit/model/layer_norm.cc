#include "lowbit/model/layer_norm.h"

#include <algorithm>
#include <cmath>

#include "lowbit/core/thread_pool.h"

namespace lowbit {

namespace {

// Rows per task: enough work per task (a 384-wide row is a few hundred
// nanoseconds) to pay for the hand-off. Rows are independent, so the
// split changes no result.
constexpr int64_t kRowsPerTask = 64;

void normalize_row(const float* x, int64_t dim, const float* gamma, const float* beta, double eps, float* y) {
  // Two passes in double: the mean first, then the centred squares, so
  // that a large mean does not cancel away the variance (torch also
  // centres before squaring).
  double sum = 0;
  for (int64_t j = 0; j < dim; ++j) sum += x[j];
  const double mean = sum / static_cast<double>(dim);
  double sq = 0;
  for (int64_t j = 0; j < dim; ++j) {
    const double d = x[j] - mean;
    sq += d * d;
  }
  const double rstd = 1.0 / std::sqrt(sq / static_cast<double>(dim) + eps);
  for (int64_t j = 0; j < dim; ++j) {
    y[j] = static_cast<float>((x[j] - mean) * rstd * gamma[j] + beta[j]);
  }
}

}  // namespace

void layer_norm(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* gamma, const float* beta,
                double eps, float* y, int64_t ldy, int threads) {
  if (rows <= 0 || dim <= 0) return;
  const int64_t tasks = (rows + kRowsPerTask - 1) / kRowsPerTask;
  ThreadPool::global().parallel_for(static_cast<size_t>(tasks), threads, [&](size_t t) {
    const int64_t r0 = static_cast<int64_t>(t) * kRowsPerTask, r1 = std::min(rows, r0 + kRowsPerTask);
    for (int64_t r = r0; r < r1; ++r) normalize_row(x + r * ldx, dim, gamma, beta, eps, y + r * ldy);
  });
}

}  // namespace lowbit
