// RMSNorm's backward pass. The forward is the runtime's rms_norm()
// (model/rms_norm.h): per row, s = 1/sqrt(mean(x²) + eps) rounded to
// float, n = x·s, y = n·w.
//
//   dw[i] += Σ_rows dy[i]·n[i]
//   dn    = dy·w
//   dx    += s·dn − x·s³·(Σ_j dn[j]·x[j]) / dim
//
// The row sums are in double; dw sums rows in fixed chunks, combined in
// chunk order, so the result is bit-identical for every thread count.
#pragma once

#include <cstdint>

namespace lowbit {

// x, dy: [n, dim] dense; w, dw: [dim]; dx: [n, dim], added to (the
// residual stream's gradient). s is recomputed from x as the forward did.
void rms_norm_backward(const float* x, const float* w, float eps, const float* dy, int64_t n, int64_t dim, float* dx,
                       float* dw, int threads);

}  // namespace lowbit
