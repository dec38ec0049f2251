// The dispatcher over the per-family codec tables and the row/thread driver.
#include "lowbit/ggml/row_codec.h"

#include <algorithm>
#include <array>
#include <string>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit {

namespace {

using ggml_internal::RowCodec;

constexpr uint32_t kMaxId = 64;

// Codecs by ggml type id, gathered once from the family tables.
const std::array<const RowCodec*, kMaxId>& codec_table() {
  static const std::array<const RowCodec*, kMaxId> table = [] {
    std::array<const RowCodec*, kMaxId> t{};
    for (const auto family : {ggml_internal::plain_codecs(), ggml_internal::legacy_codecs(),
                              ggml_internal::k_quant_codecs(), ggml_internal::iq4_codecs(),
                              ggml_internal::mxfp4_codecs(), ggml_internal::ternary_codecs(),
                              ggml_internal::nvfp4_codecs(), ggml_internal::binary_codecs()}) {
      for (const RowCodec& c : family) t[static_cast<uint32_t>(c.type)] = &c;
    }
    return t;
  }();
  return table;
}

const RowCodec* find(GgmlType t) {
  const auto id = static_cast<uint32_t>(t);
  return id < kMaxId ? codec_table()[id] : nullptr;
}

std::string supported_names(bool quantize) {
  std::string names;
  for (const GgmlTypeInfo& info : ggml_types()) {
    const RowCodec* c = find(info.type);
    if (c && (!quantize || c->quantize)) names.append(names.empty() ? "" : ", ").append(info.name);
  }
  return names;
}

const RowCodec& require(GgmlType t, bool quantize) {
  const RowCodec* c = find(t);
  if (!c || (quantize && !c->quantize)) {
    const auto info = ggml_type_info(static_cast<uint32_t>(t));
    const std::string name = info ? std::string(info->name) : "id " + std::to_string(static_cast<uint32_t>(t));
    // Asking for a type lowbit cannot write is a usage mistake; meeting
    // one it cannot read (in a file) is the input's.
    const std::string message = std::string("ggml type ")
                                    .append(name)
                                    .append(quantize ? " cannot be quantized" : " cannot be dequantized")
                                    .append(" by lowbit; supported: ")
                                    .append(supported_names(quantize));
    if (quantize) fail_usage(message);
    fail_input(message);
  }
  return *c;
}

// Elements per task when rows may be split: big enough that a task's
// overhead vanishes, small enough to balance two threads on one tensor.
constexpr uint64_t kTaskElements = 1 << 16;

// Calls fn(first_row, row_count) or fn over block-aligned pieces of rows:
// fn(row, col0, count). Pieces are fixed by the shape alone, so the output
// does not depend on the thread count.
template <class Fn>
void for_pieces(uint64_t rows, uint64_t cols, uint64_t block, bool whole_rows, int threads, Fn fn) {
  if (rows == 0 || cols == 0) return;
  const uint64_t per_task = whole_rows ? std::max<uint64_t>(1, kTaskElements / cols) * cols
                                       : std::max<uint64_t>(block, kTaskElements / block * block);
  const uint64_t total = rows * cols;
  const uint64_t tasks = (total + per_task - 1) / per_task;
  ThreadPool::global().parallel_for(tasks, threads <= 0 ? default_thread_count() : threads, [&](size_t task) {
    uint64_t e = task * per_task;
    const uint64_t end = std::min(total, e + per_task);
    while (e < end) {
      const uint64_t row = e / cols, col = e % cols;
      const uint64_t count = std::min(end - e, cols - col);
      fn(row, col, count);
      e += count;
    }
  });
}

}  // namespace

bool ggml_can_dequantize(GgmlType t) { return find(t) != nullptr; }
bool ggml_can_quantize(GgmlType t) {
  const RowCodec* c = find(t);
  return c && c->quantize;
}

void ggml_quantize_row(GgmlType t, const float* x, uint64_t n, uint8_t* out, const float* importance) {
  const RowCodec& c = require(t, true);
  ggml_row_bytes(t, n, "ggml row");  // whole blocks, or a kInput error
  c.quantize(x, n, out, importance);
}

void ggml_dequantize_row(GgmlType t, const uint8_t* in, uint64_t n, float* out) {
  const RowCodec& c = require(t, false);
  ggml_row_bytes(t, n, "ggml row");
  c.dequantize(in, n, out);
}

void ggml_quantize_rows(GgmlType t, const float* x, uint64_t rows, uint64_t cols, uint8_t* out,
                        const float* importance_per_col, int threads) {
  const RowCodec& c = require(t, true);
  const GgmlTypeInfo info = ggml_type_info(t);
  const uint64_t row_bytes = ggml_row_bytes(t, cols, "ggml tensor row");
  mul_or_fail(rows, row_bytes, "ggml tensor byte count");
  mul_or_fail(rows, cols, "ggml tensor element count");
  const bool whole_rows = c.row_statistics && importance_per_col != nullptr;
  for_pieces(rows, cols, info.block_elems, whole_rows, threads, [&](uint64_t row, uint64_t col, uint64_t count) {
    c.quantize(x + row * cols + col, count, out + row * row_bytes + col / info.block_elems * info.block_bytes,
               importance_per_col ? importance_per_col + col : nullptr);
  });
}

void ggml_dequantize_rows(GgmlType t, const uint8_t* in, uint64_t rows, uint64_t cols, float* out, int threads) {
  const RowCodec& c = require(t, false);
  const GgmlTypeInfo info = ggml_type_info(t);
  const uint64_t row_bytes = ggml_row_bytes(t, cols, "ggml tensor row");
  mul_or_fail(rows, row_bytes, "ggml tensor byte count");
  mul_or_fail(rows, cols, "ggml tensor element count");
  for_pieces(rows, cols, info.block_elems, false, threads, [&](uint64_t row, uint64_t col, uint64_t count) {
    c.dequantize(in + row * row_bytes + col / info.block_elems * info.block_bytes, count, out + row * cols + col);
  });
}

}  // namespace lowbit
