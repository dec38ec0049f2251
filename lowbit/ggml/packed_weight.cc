#include "lowbit/ggml/packed_weight.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"

namespace lowbit {
namespace {

kernels::GemvCodes codes_of(GgmlType t) {
  switch (t) {
    case GgmlType::kQ8_0: return kernels::GemvCodes::kQ8_0;
    case GgmlType::kQ4_0: return kernels::GemvCodes::kQ4_0;
    case GgmlType::kQ4_1: return kernels::GemvCodes::kQ4_1;
    default: break;
  }
  fail_usage(fmt::format("no packed GEMV kernel for {}", ggml_type_info(t).name));
}

}  // namespace

bool PackedWeight::supports(GgmlType t) {
  return t == GgmlType::kQ8_0 || t == GgmlType::kQ4_0 || t == GgmlType::kQ4_1;
}

PackedWeight PackedWeight::from_ggml(GgmlType t, std::span<const std::byte> bytes, int64_t rows, int64_t cols) {
  const kernels::GemvCodes c = codes_of(t);
  const GgmlTypeInfo info = ggml_type_info(t);
  if (rows < 0 || cols < 0 || cols % kernels::kGemvBlock != 0) {
    fail_input(fmt::format("a {} x {} {} matrix: rows of {} elements are not whole blocks of {}", rows, cols,
                           info.name, cols, kernels::kGemvBlock));
  }
  const uint64_t row_bytes = ggml_row_bytes(t, static_cast<uint64_t>(cols), "packed weight");
  if (bytes.size() != row_bytes * static_cast<uint64_t>(rows)) {
    fail_input(fmt::format("a {} x {} {} matrix takes {} bytes, not {}", rows, cols, info.name,
                           row_bytes * static_cast<uint64_t>(rows), bytes.size()));
  }
  PackedWeight p;
  p.type_ = t;
  p.rows_ = rows;
  p.cols_ = cols;
  const int64_t nb = cols / kernels::kGemvBlock;
  // Zero-filled, so the padding rows of the last group are zero blocks.
  p.data_.assign(static_cast<size_t>(kernels::gemv_matrix_bytes(c, rows, cols)), 0);
  const auto* in = reinterpret_cast<const uint8_t*>(bytes.data());
  const int64_t code_bytes = kernels::gemv_code_bytes(c);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < nb; ++b) {
      // ggml's block: float16 d, (float16 m for Q4_1), then the codes; the
      // float16 values are moved as they are.
      const uint8_t* blk = in + (r * nb + b) * info.block_bytes;
      uint8_t* out = p.data_.data();
      std::memcpy(out + kernels::gemv_scale_offset(c, cols, r, b), blk, 2);
      const uint8_t* codes = blk + 2;
      if (c == kernels::GemvCodes::kQ4_1) {
        std::memcpy(out + kernels::gemv_scale_offset(c, cols, r, b) + 8, blk + 2, 2);
        codes = blk + 4;
      }
      std::memcpy(out + kernels::gemv_codes_offset(c, cols, r, b), codes, static_cast<size_t>(code_bytes));
    }
  }
  return p;
}

static_assert(PackedWeight::kRowsPerTask % kernels::kGemvRows == 0, "tasks must be whole groups");

kernels::GemvMatrix PackedWeight::matrix() const noexcept {
  return kernels::GemvMatrix{type_ == GgmlType::kQ8_0   ? kernels::GemvCodes::kQ8_0
                             : type_ == GgmlType::kQ4_0 ? kernels::GemvCodes::kQ4_0
                                                        : kernels::GemvCodes::kQ4_1,
                             rows_, cols_, data_.data()};
}

void PackedWeight::multiply(const float* x, float* y, int threads) const {
  const kernels::GemvMatrix m = matrix();
  const int64_t tasks = (rows_ + kRowsPerTask - 1) / kRowsPerTask;
  ThreadPool::global().parallel_for(static_cast<size_t>(tasks), threads, [&](size_t task) {
    const int64_t r0 = static_cast<int64_t>(task) * kRowsPerTask;
    kernels::gemv_rows(m, x, r0, std::min(rows_, r0 + kRowsPerTask), y);
  });
}

void PackedWeight::multiply_all(std::span<const Product> products, int threads) {
  // first[i]: the index of product i's first task; at most a few products.
  constexpr size_t kMaxProducts = 8;
  if (products.size() > kMaxProducts) fail_internal("PackedWeight::multiply_all: too many products");
  size_t first[kMaxProducts + 1] = {0};
  kernels::GemvMatrix mats[kMaxProducts];
  for (size_t i = 0; i < products.size(); ++i) {
    mats[i] = products[i].w->matrix();
    first[i + 1] = first[i] + static_cast<size_t>((products[i].w->rows_ + kRowsPerTask - 1) / kRowsPerTask);
  }
  ThreadPool::global().parallel_for(first[products.size()], threads, [&](size_t task) {
    size_t i = 0;
    while (task >= first[i + 1]) ++i;
    const int64_t r0 = static_cast<int64_t>(task - first[i]) * kRowsPerTask;
    kernels::gemv_rows(mats[i], products[i].x, r0, std::min(mats[i].rows, r0 + kRowsPerTask), products[i].y);
  });
}

void PackedWeight::dequantize_row(int64_t r, float* out) const { kernels::gemv_dequantize_row(matrix(), r, out); }

}  // namespace lowbit
