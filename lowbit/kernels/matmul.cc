#include "lowbit/kernels/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"

namespace lowbit {
namespace {

// OpenBLAS's own threads stay off: lowbit's pool parallelizes over fixed
// tiles (see the header). Set once, before the first call.
void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// cblas takes int dimensions.
int blas_int(int64_t v, const char* what) {
  if (v < 0 || v > INT32_MAX) fail_internal(std::string("matmul dimension out of range: ") + what);
  return static_cast<int>(v);
}

}  // namespace

void sgemm_nt_serial(int64_t n, int64_t m, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                     int64_t ldb, float* c, int64_t ldc) {
  single_threaded_blas();
  if (n == 0 || m == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < n; ++i) std::fill(c + i * ldc, c + i * ldc + m, 0.0f);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, blas_int(n, "n"), blas_int(m, "m"), blas_int(k, "k"), alpha,
              a, blas_int(lda, "lda"), b, blas_int(ldb, "ldb"), 0.0f, c, blas_int(ldc, "ldc"));
}

void sgemm_nn_serial(int64_t n, int64_t m, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float* c, int64_t ldc) {
  single_threaded_blas();
  if (n == 0 || m == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < n; ++i) std::fill(c + i * ldc, c + i * ldc + m, 0.0f);
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, blas_int(n, "n"), blas_int(m, "m"), blas_int(k, "k"), 1.0f,
              a, blas_int(lda, "lda"), b, blas_int(ldb, "ldb"), 0.0f, c, blas_int(ldc, "ldc"));
}

void matmul_nt(const float* x, int64_t n, int64_t k, int64_t ldx, const float* w, int64_t m, const float* bias,
               float* y, int64_t ldy, int threads) {
  if (n < 0 || m < 0 || k < 0 || ldx < k || ldy < m) fail_internal("matmul_nt: bad shape or stride");
  if (n == 0 || m == 0) return;
  const int64_t row_tiles = (n + kMatmulRowTile - 1) / kMatmulRowTile;
  const int64_t col_tiles = (m + kMatmulColTile - 1) / kMatmulColTile;
  ThreadPool::global().parallel_for(static_cast<size_t>(row_tiles * col_tiles), threads, [&](size_t task) {
    const int64_t r0 = static_cast<int64_t>(task) / col_tiles * kMatmulRowTile;
    const int64_t c0 = static_cast<int64_t>(task) % col_tiles * kMatmulColTile;
    const int64_t rows = std::min(kMatmulRowTile, n - r0);
    const int64_t cols = std::min(kMatmulColTile, m - c0);
    float* out = y + r0 * ldy + c0;
    sgemm_nt_serial(rows, cols, k, 1.0f, x + r0 * ldx, ldx, w + c0 * k, k, out, ldy);
    if (bias) {
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < cols; ++j) out[i * ldy + j] += bias[c0 + j];
      }
    }
  });
}

void gram_add_upper(const float* x, int64_t n, int64_t k, double* g, int threads) {
  if (n < 0 || k < 0) fail_internal("gram_add_upper: bad shape");
  if (n == 0 || k == 0) return;
  single_threaded_blas();
  std::vector<double> xd(static_cast<size_t>(n * k));
  for (size_t i = 0; i < xd.size(); ++i) xd[i] = x[i];
  const int64_t tiles = (k + kGramTile - 1) / kGramTile;
  // The upper triangle's tiles (I <= J), in a fixed order.
  std::vector<std::pair<int64_t, int64_t>> work;
  for (int64_t I = 0; I < tiles; ++I) {
    for (int64_t J = I; J < tiles; ++J) work.emplace_back(I, J);
  }
  ThreadPool::global().parallel_for(work.size(), threads, [&](size_t t) {
    const int64_t i0 = work[t].first * kGramTile, j0 = work[t].second * kGramTile;
    const int64_t ni = std::min(kGramTile, k - i0), nj = std::min(kGramTile, k - j0);
    // G[I, J] += X[:, I]ᵀ · X[:, J]
    cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blas_int(ni, "ni"), blas_int(nj, "nj"), blas_int(n, "n"),
                1.0, xd.data() + i0, blas_int(k, "k"), xd.data() + j0, blas_int(k, "k"), 1.0, g + i0 * k + j0,
                blas_int(k, "k"));
  });
}

}  // namespace lowbit
