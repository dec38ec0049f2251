// LayerNorm over the last axis, as torch.nn.LayerNorm computes it (biased
// variance, eps inside the square root, an affine gamma and beta), with a
// fixed reduction order: each row's mean and variance are summed in
// double, left to right, and every output rounds once to float. A row's
// result depends only on that row, never on the thread count or on the
// other rows of the batch.
#pragma once

#include <cstdint>

namespace lowbit {

// y[r, :] = (x[r, :] - mean) / sqrt(var + eps) * gamma + beta for r < rows,
// over dim values; x and y have row strides ldx and ldy and may be the same
// array (ldx == ldy). Rows are split into fixed chunks across `threads`.
void layer_norm(const float* x, int64_t rows, int64_t dim, int64_t ldx, const float* gamma, const float* beta,
                double eps, float* y, int64_t ldy, int threads);

}  // namespace lowbit
