#include "lowbit/train/linear_grad.h"

#include "lowbit/kernels/matmul.h"

namespace lowbit {

void linear_forward(const float* x, int64_t n, int64_t in, const float* w, int64_t out, float* y, int threads) {
  matmul_nt(x, n, in, in, w, out, nullptr, y, out, threads);
}

void linear_backward(const float* dy, const float* x, int64_t n, int64_t in, const float* w, int64_t out, float* dx,
                     bool accumulate_dx, float* dw, int threads) {
  if (dx) matmul_nn(dy, n, out, w, in, dx, in, accumulate_dx, threads);
  matmul_tn(dy, n, out, x, in, in, dw, /*accumulate=*/true, threads);
}

}  // namespace lowbit
