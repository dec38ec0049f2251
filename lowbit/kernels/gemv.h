// y = W·x for one token (decode), reading W in a compact block form and
// dequantizing it in registers: a token's matrix-vector product is bound by
// the bytes of W it reads, and the float32 copy is 4 to 7 times larger than
// the blocks it came from.
//
// The layout is ggml's legacy 32-element blocks with the float16 scales
// widened to float32 once (lowbit/ggml/packed_weight.h builds it from GGUF
// bytes), so the inner loop converts no float16. Each weight is the float
// ggml_dequantize_row gives, computed the same way (two roundings for Q4_1:
// float(q) * d, then + m), so W is exactly the model's float32 weight.
//
// Summation order (the specification; gemv_rows_reference is its scalar
// text, and every SIMD target and thread count gives the same bits):
//
//   acc[0..7] = +0; for k = 0 .. cols-1 in order:
//     acc[k mod 8] = fma(w[k], x[k], acc[k mod 8])       (one rounding)
//   y = ((acc0 + acc4) + (acc2 + acc6)) + ((acc1 + acc5) + (acc3 + acc7))
//
// Eight accumulators whatever the vector width (AVX-512 runs 8-lane
// vectors, a 4-lane target two of them). Targets without a hardware FMA
// run the scalar text (std::fma), slower but the same bits.
#pragma once

#include <cstdint>

namespace lowbit::kernels {

inline constexpr int64_t kGemvBlock = 32;  // elements per block

// How a block's codes become weights.
enum class GemvCodes : uint8_t {
  kQ8_0,  // int8 q[32]:                   w = float(q) * d
  kQ4_0,  // 16 bytes of nibbles:          w = float(q - 8) * d
  kQ4_1,  // 16 bytes of nibbles:          w = float(q) * d + m
};

// A block as stored here: float scale d, float m (kQ4_1 only), then the
// codes: 32 int8 (kQ8_0), or 16 bytes of nibbles as ggml stores them (byte
// j, j < 16, holds element j in its low four bits and element j + 16 in its
// high four). One record per block keeps one memory stream per row.
inline constexpr int64_t gemv_code_bytes(GemvCodes c) { return c == GemvCodes::kQ8_0 ? 32 : 16; }
inline constexpr int64_t gemv_block_bytes(GemvCodes c) {
  return c == GemvCodes::kQ8_0 ? 4 + 32 : c == GemvCodes::kQ4_0 ? 4 + 16 : 4 + 4 + 16;
}

// A [rows, cols] matrix, cols a multiple of 32: block b of row r is the
// record at data + (r * cols / 32 + b) * gemv_block_bytes(codes), 4-byte
// aligned.
struct GemvMatrix {
  GemvCodes codes = GemvCodes::kQ8_0;
  int64_t rows = 0, cols = 0;
  const uint8_t* data = nullptr;
};

// y[r] = sum_k W[r, k] * x[k] for r in [r0, r1), in the order above. x holds
// cols floats. Single-threaded: callers split rows into fixed tasks.
void gemv_rows(const GemvMatrix& w, const float* x, int64_t r0, int64_t r1, float* y);
// The same by the plain scalar loop: the specification gemv_rows is tested
// against.
void gemv_rows_reference(const GemvMatrix& w, const float* x, int64_t r0, int64_t r1, float* y);

// Row r of W as float32, dequantized by the SIMD path gemv_rows uses, for
// tests that pin it to ggml_dequantize_row.
void gemv_dequantize_row(const GemvMatrix& w, int64_t r, float* out);

}  // namespace lowbit::kernels
