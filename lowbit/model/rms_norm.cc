#include "lowbit/model/rms_norm.h"

#include <algorithm>
#include <cmath>

#include "lowbit/core/thread_pool.h"

namespace lowbit {

namespace {
// Rows per task: rows are independent, so this sets the grain only.
constexpr int64_t kRowsPerTask = 16;
}  // namespace

void rms_norm(const float* x, int64_t n, int64_t dim, int64_t ldx, const float* w, float eps, float* y, int64_t ldy,
              int threads) {
  if (n <= 0) return;
  const int64_t tasks = (n + kRowsPerTask - 1) / kRowsPerTask;
  ThreadPool::global().parallel_for(static_cast<size_t>(tasks), threads, [&](size_t task) {
    const int64_t r0 = static_cast<int64_t>(task) * kRowsPerTask;
    const int64_t r1 = std::min(n, r0 + kRowsPerTask);
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * ldx;
      float* yr = y + r * ldy;
      double sum = 0.0;
      for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(xr[i]) * static_cast<double>(xr[i]);
      const double mean = dim > 0 ? sum / static_cast<double>(dim) : 0.0;
      const float scale = static_cast<float>(1.0 / std::sqrt(mean + static_cast<double>(eps)));
      for (int64_t i = 0; i < dim; ++i) {
        const float normed = xr[i] * scale;
        yr[i] = normed * w[i];
      }
    }
  });
}

}  // namespace lowbit
