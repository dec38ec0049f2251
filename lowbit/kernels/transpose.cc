// transpose (transpose.h), its tile kernel compiled once per Highway target.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/kernels/transpose.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Highway's headers first.
#include "lowbit/kernels/transpose.h"

#include <algorithm>

#include "lowbit/core/thread_pool.h"

#ifndef LOWBIT_KERNELS_TRANSPOSE_COMMON_
#define LOWBIT_KERNELS_TRANSPOSE_COMMON_
namespace lowbit::kernels {
// A tile of kTransposeRows x kTransposeCols goes through a buffer on the
// stack in 4x4 register transposes: the input is read in runs of
// kTransposeCols floats and the output written in runs of kTransposeRows.
// Walking the output a column at a time instead would store at a stride of
// the token count, a power of two, which puts every line of a tile in the
// same cache set. The sizes are the fastest measured on Zen 4 for 4096 x
// {256, 768} (about 2.3x the time of a copy, against 3.3x for a scalar
// 32 x 32 tile).
inline constexpr int64_t kTransposeRows = 64;
inline constexpr int64_t kTransposeCols = 16;
}  // namespace lowbit::kernels
#endif  // LOWBIT_KERNELS_TRANSPOSE_COMMON_

HWY_BEFORE_NAMESPACE();
namespace lowbit::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// out (row stride `rows`) = the transpose of one full tile of in (row
// stride `cols`).
void TransposeTileSimd(const float* HWY_RESTRICT in, int64_t cols, float* HWY_RESTRICT out, int64_t rows) {
  constexpr int64_t R = kTransposeRows, C = kTransposeCols;
#if HWY_TARGET == HWY_SCALAR
  for (int64_t c = 0; c < C; ++c) {
    for (int64_t r = 0; r < R; ++r) out[c * rows + r] = in[r * cols + c];
  }
#else
  const hn::FixedTag<float, 4> d;
  alignas(64) float tile[C][R];
  for (int64_t r = 0; r < R; r += 4) {
    for (int64_t c = 0; c < C; c += 4) {
      const float* p = in + r * cols + c;
      const auto a = hn::LoadU(d, p), b = hn::LoadU(d, p + cols);
      const auto e = hn::LoadU(d, p + 2 * cols), f = hn::LoadU(d, p + 3 * cols);
      const auto ab_lo = hn::InterleaveLower(d, a, b), ef_lo = hn::InterleaveLower(d, e, f);  // a0 b0 a1 b1, e0 f0 e1 f1
      const auto ab_hi = hn::InterleaveUpper(d, a, b), ef_hi = hn::InterleaveUpper(d, e, f);  // a2 b2 a3 b3, e2 f2 e3 f3
      hn::Store(hn::ConcatLowerLower(d, ef_lo, ab_lo), d, &tile[c][r]);
      hn::Store(hn::ConcatUpperUpper(d, ef_lo, ab_lo), d, &tile[c + 1][r]);
      hn::Store(hn::ConcatLowerLower(d, ef_hi, ab_hi), d, &tile[c + 2][r]);
      hn::Store(hn::ConcatUpperUpper(d, ef_hi, ab_hi), d, &tile[c + 3][r]);
    }
  }
  for (int64_t c = 0; c < C; ++c) std::copy(tile[c], tile[c] + R, out + c * rows);
#endif
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {
namespace kernels {
HWY_EXPORT(TransposeTileSimd);

// The dispatch names the kernel unqualified, from its own namespace: with
// HWY_COMPILE_ONLY_STATIC (the fuzzing build) the macro prefixes the
// target's namespace to whatever name it is given.
void transpose_tile(const float* in, int64_t cols, float* out, int64_t rows) {
  HWY_DYNAMIC_DISPATCH(TransposeTileSimd)(in, cols, out, rows);
}
}  // namespace kernels

void transpose(const float* in, int64_t rows, int64_t cols, float* out, int threads) {
  using kernels::kTransposeCols, kernels::kTransposeRows;
  if (rows <= 0 || cols <= 0) return;
  parallel_chunks((rows + kTransposeRows - 1) / kTransposeRows, 1, threads, [&](int64_t b, int64_t e) {
    for (int64_t rt = b; rt < e; ++rt) {
      const int64_t r0 = rt * kTransposeRows, nr = std::min(rows - r0, kTransposeRows);
      for (int64_t c0 = 0; c0 < cols; c0 += kTransposeCols) {
        const int64_t nc = std::min(cols - c0, kTransposeCols);
        if (nr == kTransposeRows && nc == kTransposeCols) {
          kernels::transpose_tile(in + r0 * cols + c0, cols, out + c0 * rows + r0, rows);
          continue;
        }
        for (int64_t r = 0; r < nr; ++r) {
          for (int64_t c = 0; c < nc; ++c) out[(c0 + c) * rows + r0 + r] = in[(r0 + r) * cols + c0 + c];
        }
      }
    }
  });
}

}  // namespace lowbit
#endif  // HWY_ONCE
