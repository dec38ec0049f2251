// out[cols, rows] = in[rows, cols]ᵀ for float32 matrices, on the pool.
//
// The training emulation rounds operands along the tokens (a weight
// gradient's reduction axis) by transposing them first, so this runs on
// every step and must be near copy speed. Pure data movement: the result
// does not depend on the thread count or the SIMD target.
#pragma once

#include <cstdint>

namespace lowbit {

// in and out must not overlap.
void transpose(const float* in, int64_t rows, int64_t cols, float* out, int threads);

}  // namespace lowbit
