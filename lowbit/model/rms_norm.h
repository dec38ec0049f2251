// RMSNorm (Zhang and Sennrich 2019), the normalization of Llama decoders:
// y = x / sqrt(mean(x^2) + eps) * w, row by row.
//
// The sum of squares is accumulated in double in index order, so a row's
// result is one fixed sequence of operations whatever the thread count;
// the scale is rounded to float once, and x * scale and then * w are two
// float products, as in ggml (rms_norm, then a separate multiply).
#pragma once

#include <cstdint>

namespace lowbit {

// y[r, :] = rms_norm(x[r, :]) * w for rows r < n of length dim (x with row
// stride ldx, y with row stride ldy; y may be x).
void rms_norm(const float* x, int64_t n, int64_t dim, int64_t ldx, const float* w, float eps, float* y, int64_t ldy,
              int threads);

}  // namespace lowbit
