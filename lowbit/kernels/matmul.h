// Dense float32 matrix products for the runtime: y = x·wᵀ, the shape of
// every linear layer (weights stored [out, in], as checkpoints store them).
//
// OpenBLAS computes each tile; lowbit decides the tiles. Results must be
// bit-identical for every thread count (DESIGN.md), and a BLAS that splits
// one call across its own threads may change the summation order with the
// thread count. So OpenBLAS runs single-threaded inside each call, and the
// output is cut into tiles of a fixed size, independent of the thread
// count; lowbit's pool runs the tiles. Each output element is then always
// computed by the same sgemm call on the same operands, whichever thread
// runs it.
#pragma once

#include <cstdint>

namespace lowbit {

// Turns OpenBLAS's own threads off, once (the calls here do it first):
// lowbit's pool parallelizes over fixed tiles instead. Other callers of
// OpenBLAS or its LAPACK (cholesky.h) call it before their first call.
void single_threaded_blas();

// Rows of x and of w per tile. Fixed: changing them changes results in the
// last bits (a different sgemm shape may take a different kernel path).
inline constexpr int64_t kMatmulRowTile = 256;  // rows of x (tokens)
inline constexpr int64_t kMatmulColTile = 128;  // rows of w (output features)

// y[i, j] = sum_k x[i, k] * w[j, k] (+ bias[j] if bias is not null), for
// i < n, j < m. x has row stride ldx >= k, y row stride ldy >= m, w is
// dense [m, k]. n, m or k may be 0 (k = 0 gives y = bias or 0).
void matmul_nt(const float* x, int64_t n, int64_t k, int64_t ldx, const float* w, int64_t m, const float* bias,
               float* y, int64_t ldy, int threads);

// C = alpha * A·Bᵀ on one thread, A [n, k] (stride lda), B [m, k] (stride
// ldb), C [n, m] (stride ldc): the single-threaded OpenBLAS call behind
// matmul_nt, for kernels that do their own partitioning (attention).
void sgemm_nt_serial(int64_t n, int64_t m, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                     int64_t ldb, float* c, int64_t ldc);
// C = A·B on one thread, A [n, k] (stride lda), B [k, m] (stride ldb).
void sgemm_nn_serial(int64_t n, int64_t m, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                     float* c, int64_t ldc);

// C = alpha * Aᵀ·B + beta * C on one thread, A [k, n] (stride lda), B
// [k, m] (stride ldb), C [n, m] (stride ldc): the reduction over k rows
// that a weight gradient needs.
void sgemm_tn_serial(int64_t n, int64_t m, int64_t k, float alpha, const float* a, int64_t lda, const float* b,
                     int64_t ldb, float beta, float* c, int64_t ldc);

// The two products of a linear layer's backward pass, tiled like
// matmul_nt so that results are bit-identical for every thread count.
// dx[n, k] (+)= dy[n, m] · w[m, k] (w dense [m, k], as weights are
// stored), adding to dx when `accumulate`; dx has row stride ldx >= k.
void matmul_nn(const float* dy, int64_t n, int64_t m, const float* w, int64_t k, float* dx, int64_t ldx,
               bool accumulate, int threads);
// g[m, k] (+)= dy[n, m]ᵀ · x[n, k] (x row stride ldx >= k), adding to g when
// `accumulate`. Each tile of g is one sgemm over all n rows: the sum over
// rows never splits across threads.
inline constexpr int64_t kGradTileRows = 128;  // rows of g per tile
inline constexpr int64_t kGradTileCols = 256;  // columns of g per tile
void matmul_tn(const float* dy, int64_t n, int64_t m, const float* x, int64_t k, int64_t ldx, float* g,
               bool accumulate, int threads);

// C[n, m] (+)= op(A)·op(B) for operands in either layout: op(A) [n, k] is
// A as stored [n, k] (row stride lda) or, when trans_a, the transpose of A
// stored [k, n]; op(B) [k, m] is B stored [k, m] or, when trans_b, the
// transpose of B stored [m, k]. C is cut into tiles of tile_rows x
// tile_cols, each one single-threaded sgemm over all of k: bit-identical
// for every thread count. The training emulation uses it for operands it
// rounded along the reduction axis and left transposed (operand_quant.h),
// so that they need no transposing back.
void matmul_tiled(bool trans_a, const float* a, int64_t lda, bool trans_b, const float* b, int64_t ldb, int64_t n,
                  int64_t m, int64_t k, float* c, int64_t ldc, bool accumulate, int64_t tile_rows, int64_t tile_cols,
                  int threads);

// Gram matrix accumulation for GPTQ's Hessian: g[i, j] += sum_r x[r, i] *
// x[r, j] over the n rows of x [n, k] (row-major, dense), in float64 (each
// x converted exactly), for i <= j: the upper triangle of the k x k
// row-major g. Entries below the diagonal are unspecified (the diagonal
// tiles write theirs too): mirror the upper triangle when reading. Tiles of kGramTile x kGramTile of g, each one dgemm, run on the
// pool: bit-identical for every thread count, and repeated calls add in
// call order.
inline constexpr int64_t kGramTile = 128;
void gram_add_upper(const float* x, int64_t n, int64_t k, double* g, int threads);

}  // namespace lowbit
