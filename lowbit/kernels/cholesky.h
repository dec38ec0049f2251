// Cholesky factors of symmetric positive definite float64 matrices, for the
// data-aware methods (GPTQ's inverse Hessian factor; later AWQ and LoRC's
// whitening). LAPACK from OpenBLAS does the arithmetic on one thread
// (matmul.h: single_threaded_blas), so the factors are the same bits at
// any thread count.
//
// Matrices are row-major n x n. Only the lower triangle of the input is
// read (the upper one for inverse_cholesky_upper, which reverses it).
#pragma once

#include <cstdint>

namespace lowbit {

// A = L Lᵀ: a becomes L, lower triangular with a positive diagonal, its
// strict upper triangle zeroed. False, leaving `a` unspecified, when A is
// not positive definite (a pivot <= 0 or NaN).
bool cholesky_lower(double* a, int64_t n);

// L (lower triangular, nonzero diagonal) becomes L⁻¹, in place.
void invert_lower_triangular(double* l, int64_t n);

// GPTQ's factor: the upper triangular U with A⁻¹ = Uᵀ U and a positive
// diagonal, in place of A. It is found without forming A⁻¹: with J the
// reversal of the indices, if J A J = L Lᵀ then A⁻¹ = (J L⁻¹ J)ᵀ (J L⁻¹ J)
// and J L⁻¹ J is upper triangular, so U = J L⁻¹ J (one factorization and
// one triangular inverse, 2n³/3 flops, against 5n³/3 for the
// factor-invert-factor of GPTQ's reference; U is unique, so both give it
// up to rounding). False when A is not positive definite.
bool inverse_cholesky_upper(double* a, int64_t n);

}  // namespace lowbit
