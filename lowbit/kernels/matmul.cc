#include "lowbit/kernels/matmul.h"

#include <cblas.h>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"

namespace lowbit {

void single_threaded_blas() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

namespace {


// cblas takes int dimensions.
int blas_int(int64_t v, const char* what) {
  if (v < 0 || v > INT32_MAX) fail_internal(std::string("matmul dimension out of range: ") + what);
  return static_cast<int>(v);
}

// fn(r0, c0, rows, cols) for every tile of an n x m output cut into tiles
// of tr x tc, on the pool. The tiles depend on the shape alone, never on
// the thread count (the header says why).
void for_tiles(int64_t n, int64_t m, int64_t tr, int64_t tc, int threads,
               const std::function<void(int64_t r0, int64_t c0, int64_t rows, int64_t cols)>& fn) {
  const int64_t row_tiles = (n + tr - 1) / tr;
  const int64_t col_tiles = (m + tc - 1) / tc;
  ThreadPool::global().parallel_for(static_cast<size_t>(row_tiles * col_tiles), threads, [&](size_t task) {
    const int64_t r0 = static_cast<int64_t>(task) / col_tiles * tr;
    const int64_t c0 = static_cast<int64_t>(task) % col_tiles * tc;
    fn(r0, c0, std::min(tr, n - r0), std::min(tc, m - c0));
  });
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

void sgemm_tn_serial(int64_t n, int64_t m, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                     int64_t ldb, float beta, float* c, int64_t ldc) {
  single_threaded_blas();
  if (n == 0 || m == 0) return;
  if (k == 0) {
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < m; ++j) c[i * ldc + j] = beta == 0.0f ? 0.0f : beta * c[i * ldc + j];
    }
    return;
  }
  cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, blas_int(n, "n"), blas_int(m, "m"), blas_int(k, "k"), alpha,
              a, blas_int(lda, "lda"), b, blas_int(ldb, "ldb"), beta, c, blas_int(ldc, "ldc"));
}

void matmul_nn(const float* dy, int64_t n, int64_t m, const float* w, int64_t k, float* dx, int64_t ldx,
               bool accumulate, int threads) {
  if (n < 0 || m < 0 || k < 0 || ldx < k) fail_internal("matmul_nn: bad shape or stride");
  matmul_tiled(false, dy, m, false, w, k, n, k, m, dx, ldx, accumulate, kMatmulRowTile, kMatmulColTile, threads);
}

void matmul_tn(const float* dy, int64_t n, int64_t m, const float* x, int64_t k, int64_t ldx, float* g,
               bool accumulate, int threads) {
  if (n < 0 || m < 0 || k < 0 || ldx < k) fail_internal("matmul_tn: bad shape or stride");
  matmul_tiled(true, dy, m, false, x, ldx, m, k, n, g, k, accumulate, kGradTileRows, kGradTileCols, threads);
}

void matmul_nt(const float* x, int64_t n, int64_t k, int64_t ldx, const float* w, int64_t m, const float* bias,
               float* y, int64_t ldy, int threads) {
  if (n < 0 || m < 0 || k < 0 || ldx < k || ldy < m) fail_internal("matmul_nt: bad shape or stride");
  if (n == 0 || m == 0) return;
  for_tiles(n, m, kMatmulRowTile, kMatmulColTile, threads, [&](int64_t r0, int64_t c0, int64_t rows, int64_t cols) {
    float* out = y + r0 * ldy + c0;
    sgemm_nt_serial(rows, cols, k, 1.0f, x + r0 * ldx, ldx, w + c0 * k, k, out, ldy);
    if (bias) {
      for (int64_t i = 0; i < rows; ++i) {
        for (int64_t j = 0; j < cols; ++j) out[i * ldy + j] += bias[c0 + j];
      }
    }
  });
}

void matmul_tiled(bool trans_a, const float* a, int64_t lda, bool trans_b, const float* b, int64_t ldb, int64_t n,
                  int64_t m, int64_t k, float* c, int64_t ldc, bool accumulate, int64_t tile_rows, int64_t tile_cols,
                  int threads) {
  if (n < 0 || m < 0 || k < 0 || ldc < m || tile_rows < 1 || tile_cols < 1 || lda < (trans_a ? n : k) ||
      ldb < (trans_b ? k : m)) {
    fail_internal("matmul_tiled: bad shape or stride");
  }
  if (n == 0 || m == 0) return;
  for_tiles(n, m, tile_rows, tile_cols, threads, [&](int64_t r0, int64_t c0, int64_t rows, int64_t cols) {
    float* out = c + r0 * ldc + c0;
    if (k == 0) {
      for (int64_t i = 0; i < rows && !accumulate; ++i) std::fill(out + i * ldc, out + i * ldc + cols, 0.0f);
      return;
    }
    single_threaded_blas();
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans,
                blas_int(rows, "n"), blas_int(cols, "m"), blas_int(k, "k"), 1.0f, trans_a ? a + r0 : a + r0 * lda,
                blas_int(lda, "lda"), trans_b ? b + c0 * ldb : b + c0, blas_int(ldb, "ldb"), accumulate ? 1.0f : 0.0f,
                out, blas_int(ldc, "ldc"));
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
