// A weight matrix kept in its GGUF block form for one-token products
// (decode): Q8_0, Q4_0 and Q4_1 rows, regrouped for the GEMV kernel
// (lowbit/kernels/gemv.h): blocks of four rows side by side, so that a
// product reads the matrix as one stream. The bytes of the blocks are kept
// as they are (float16 scales included), so the packed form is the size of
// the GGUF tensor, plus at most three padding rows.
//
// The values are exactly those ggml_dequantize_row gives for the same bytes
// (packed_weight_test pins it on every SIMD target), so a product through
// the packed form multiplies the model's own float32 weights; only the
// summation order differs from the BLAS path (docs/runtime.md).
//
//   PackedWeight p = PackedWeight::from_ggml(GgmlType::kQ4_1, bytes, rows, cols);
//   p.multiply(x, y, threads);  // y[rows] = W·x
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/ggml/type.h"
#include "lowbit/kernels/gemv.h"

namespace lowbit {

class PackedWeight {
 public:
  // Rows per task of multiply(): fixed (whole groups of the kernel's four
  // rows), so the partition never depends on the thread count (each row is
  // computed whole by one task anyway).
  static constexpr int64_t kRowsPerTask = 32;

  // Whether `t` has a kernel: Q8_0, Q4_0, Q4_1.
  static bool supports(GgmlType t);

  // rows x cols of type t from the tensor's GGUF bytes (rows rows of
  // ggml_row_bytes(t, cols) bytes). ErrorKind::kUsage for an unsupported
  // type, kInput when the byte count or the shape does not fit the type.
  static PackedWeight from_ggml(GgmlType t, std::span<const std::byte> bytes, int64_t rows, int64_t cols);

  GgmlType type() const noexcept { return type_; }
  int64_t rows() const noexcept { return rows_; }
  int64_t cols() const noexcept { return cols_; }
  // Bytes held (what one product reads).
  uint64_t bytes() const noexcept { return data_.size(); }

  // y[r] = sum_k W[r, k] x[k] for every row, in gemv.h's order: bit-identical
  // for every thread count and SIMD target.
  void multiply(const float* x, float* y, int threads) const;

  // Several products in one parallel_for (a decoder block's Q, K and V, or
  // its gate and up): the tasks are each product's own tasks of
  // kRowsPerTask rows, listed one product after another, so every y is the
  // same bits as multiply() gives, for one dispatch instead of several.
  struct Product {
    const PackedWeight* w;
    const float* x;  // w->cols() floats
    float* y;        // w->rows() floats
  };
  static void multiply_all(std::span<const Product> products, int threads);
  // Row r as float32, through the kernel's dequantization.
  void dequantize_row(int64_t r, float* out) const;

  kernels::GemvMatrix matrix() const noexcept;

 private:
  GgmlType type_ = GgmlType::kF32;
  int64_t rows_ = 0, cols_ = 0;
  std::vector<uint8_t> data_;  // tiles (gemv.h)
};

}  // namespace lowbit
