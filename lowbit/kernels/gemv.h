// y = W·x for one token (decode), reading W in a compact block form and
// dequantizing it in registers: a token's matrix-vector product is bound by
// the bytes of W it reads, and the float32 copy is 4 to 7 times larger than
// the blocks it came from.
//
// The blocks are ggml's legacy 32-element blocks (Q8_0, Q4_0, Q4_1),
// regrouped so that one product reads one sequential stream: four rows'
// blocks at the same column side by side in a tile (layout below). Each
// weight is the float ggml_dequantize_row gives, computed the same way
// (the float16 scale widened exactly, then two roundings for Q4_1:
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
inline constexpr int64_t kGemvRows = 4;    // rows per group (one tile holds a block of each)

// How a block's codes become weights.
enum class GemvCodes : uint8_t {
  kQ8_0,  // int8 q[32]:                   w = float(q) * d
  kQ4_0,  // 16 bytes of nibbles:          w = float(q - 8) * d
  kQ4_1,  // 16 bytes of nibbles:          w = float(q) * d + m
};

// Layout. Rows are taken in groups of kGemvRows (the last group padded with
// zero blocks: scales +0, codes 0). A group is cols / 32 tiles, one per
// block column, in column order, and the groups follow each other. A tile
// holds block b of the group's rows i = 0..3:
//
//   float16 d[4]            the scales, row i at byte 2i (little-endian)
//   float16 m[4]            Q4_1 only: the mins
//   codes[4][code bytes]    row i's codes: 32 int8 (Q8_0), or 16 bytes of
//                           nibbles as ggml stores them (byte j, j < 16,
//                           holds element j in its low four bits and element
//                           j + 16 in its high four)
//
// So the scales of a tile convert with one float16 load, and a product
// reads the whole matrix front to back.
inline constexpr int64_t gemv_code_bytes(GemvCodes c) { return c == GemvCodes::kQ8_0 ? 32 : 16; }
inline constexpr int64_t gemv_tile_scale_bytes(GemvCodes c) { return c == GemvCodes::kQ4_1 ? 16 : 8; }
inline constexpr int64_t gemv_tile_bytes(GemvCodes c) {
  return gemv_tile_scale_bytes(c) + kGemvRows * gemv_code_bytes(c);
}
inline constexpr int64_t gemv_groups(int64_t rows) { return (rows + kGemvRows - 1) / kGemvRows; }
inline constexpr int64_t gemv_matrix_bytes(GemvCodes c, int64_t rows, int64_t cols) {
  return gemv_groups(rows) * (cols / kGemvBlock) * gemv_tile_bytes(c);
}
// Byte offsets, within the matrix, of block b of row r: its tile, its scale
// (+ 8: its min), its codes.
inline constexpr int64_t gemv_tile_offset(GemvCodes c, int64_t cols, int64_t r, int64_t b) {
  return ((r / kGemvRows) * (cols / kGemvBlock) + b) * gemv_tile_bytes(c);
}
inline constexpr int64_t gemv_scale_offset(GemvCodes c, int64_t cols, int64_t r, int64_t b) {
  return gemv_tile_offset(c, cols, r, b) + 2 * (r % kGemvRows);
}
inline constexpr int64_t gemv_codes_offset(GemvCodes c, int64_t cols, int64_t r, int64_t b) {
  return gemv_tile_offset(c, cols, r, b) + gemv_tile_scale_bytes(c) + (r % kGemvRows) * gemv_code_bytes(c);
}

// A [rows, cols] matrix in that layout, cols a multiple of 32,
// gemv_matrix_bytes(codes, rows, cols) bytes at data.
struct GemvMatrix {
  GemvCodes codes = GemvCodes::kQ8_0;
  int64_t rows = 0, cols = 0;
  const uint8_t* data = nullptr;
};

// y[r] = sum_k W[r, k] * x[k] for r in [r0, r1), in the order above. x holds
// cols floats. r0 is a multiple of 4, and so is r1 unless it is rows (work
// is split by whole groups). Single-threaded: callers split the groups into
// fixed tasks.
void gemv_rows(const GemvMatrix& w, const float* x, int64_t r0, int64_t r1, float* y);
// The same by the plain scalar loop: the specification gemv_rows is tested
// against.
void gemv_rows_reference(const GemvMatrix& w, const float* x, int64_t r0, int64_t r1, float* y);

// Row r of W as float32, dequantized by the SIMD path gemv_rows uses, for
// tests that pin it to ggml_dequantize_row.
void gemv_dequantize_row(const GemvMatrix& w, int64_t r, float* out);

}  // namespace lowbit::kernels
