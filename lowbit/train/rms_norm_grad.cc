#include "lowbit/train/rms_norm_grad.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "lowbit/core/thread_pool.h"

namespace lowbit {

namespace {
// Rows per task, and so per partial sum of dw: fixed, because dw's
// summation order depends on it.
constexpr int64_t kRowsPerTask = 32;
}  // namespace

void rms_norm_backward(const float* x, const float* w, float eps, const float* dy, int64_t n, int64_t dim, float* dx,
                       float* dw, int threads) {
  if (n <= 0 || dim <= 0) return;
  const int64_t tasks = (n + kRowsPerTask - 1) / kRowsPerTask;
  std::vector<double> partial(static_cast<size_t>(tasks * dim), 0.0);
  ThreadPool::global().parallel_for(static_cast<size_t>(tasks), threads, [&](size_t task) {
    const int64_t r0 = static_cast<int64_t>(task) * kRowsPerTask;
    const int64_t r1 = std::min(n, r0 + kRowsPerTask);
    double* pw = partial.data() + static_cast<int64_t>(task) * dim;
    for (int64_t r = r0; r < r1; ++r) {
      const float* xr = x + r * dim;
      const float* g = dy + r * dim;
      float* d = dx + r * dim;
      // s exactly as rms_norm() computes it.
      double sum = 0.0;
      for (int64_t i = 0; i < dim; ++i) sum += static_cast<double>(xr[i]) * static_cast<double>(xr[i]);
      const float s = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(dim) + static_cast<double>(eps)));
      double dot = 0.0;  // Σ dn·x
      for (int64_t i = 0; i < dim; ++i) {
        const double dn = static_cast<double>(g[i]) * w[i];
        dot += dn * xr[i];
        pw[i] += static_cast<double>(g[i]) * static_cast<double>(xr[i] * s);
      }
      const double s3 = static_cast<double>(s) * s * s * dot / static_cast<double>(dim);
      for (int64_t i = 0; i < dim; ++i) {
        const double dn = static_cast<double>(g[i]) * w[i];
        d[i] += static_cast<float>(s * dn - xr[i] * s3);
      }
    }
  });
  for (int64_t i = 0; i < dim; ++i) {
    double t = 0.0;
    for (int64_t k = 0; k < tasks; ++k) t += partial[static_cast<size_t>(k * dim + i)];
    dw[i] += static_cast<float>(t);
  }
}

}  // namespace lowbit
