#include "lowbit/kernels/cholesky.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <string>
#include <utility>

#include "lowbit/core/error.h"
#include "lowbit/kernels/matmul.h"

// LAPACK as OpenBLAS exports it (column-major, 32-bit integers: Debian's
// libopenblas is the LP64 build).
extern "C" {
void dpotrf_(const char* uplo, const int* n, double* a, const int* lda, int* info);
void dtrtri_(const char* uplo, const char* diag, const int* n, double* a, const int* lda, int* info);
}

namespace lowbit {
namespace {

int lapack_n(int64_t n) {
  if (n < 0 || n > INT_MAX / 2) fail_internal("cholesky: matrix order out of range: " + std::to_string(n));
  return static_cast<int>(n);
}

}  // namespace

// A row-major matrix is its transpose in column-major order. A symmetric A
// is its own transpose, so asking LAPACK for the upper factor U (A = Uᵀ U,
// column-major) leaves Uᵀ = L in row-major terms: the lower factor.
bool cholesky_lower(double* a, int64_t n) {
  if (n == 0) return true;
  single_threaded_blas();
  const int nn = lapack_n(n);
  int info = 0;
  dpotrf_("U", &nn, a, &nn, &info);
  if (info < 0) fail_internal("dpotrf: bad argument " + std::to_string(-info));
  if (info > 0) return false;
  for (int64_t i = 0; i < n; ++i) std::fill(a + i * n + i + 1, a + (i + 1) * n, 0.0);
  // dpotrf stops at a pivot <= 0 but lets NaN through.
  for (int64_t i = 0; i < n; ++i) {
    if (!(a[i * n + i] > 0)) return false;
  }
  return true;
}

void invert_lower_triangular(double* l, int64_t n) {
  if (n == 0) return;
  single_threaded_blas();
  const int nn = lapack_n(n);
  int info = 0;
  // Row-major lower is column-major upper.
  dtrtri_("U", "N", &nn, l, &nn, &info);
  if (info < 0) fail_internal("dtrtri: bad argument " + std::to_string(-info));
  if (info > 0) fail_internal("dtrtri: singular triangular factor");
}

bool inverse_cholesky_upper(double* a, int64_t n) {
  // J A J: element (i, j) of the reversed matrix is a[n-1-i][n-1-j], which
  // is the whole array read backwards.
  std::reverse(a, a + n * n);
  if (!cholesky_lower(a, n)) return false;
  invert_lower_triangular(a, n);
  std::reverse(a, a + n * n);  // J L⁻¹ J
  return true;
}

}  // namespace lowbit
