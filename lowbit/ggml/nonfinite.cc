#include "lowbit/ggml/nonfinite.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/ggml/row_codec.h"
#include "lowbit/ggml/row_codec_internal.h"
#include "lowbit/kernels/small_block_kernels.h"

namespace lowbit {

namespace {

// Where each type keeps its float16 scale fields, as byte offsets in a
// block (docs/ggml_types.md, "Layouts"). Every one of them gets the NaN, so
// that each term of the decode (d products, dmin or m terms) is NaN by
// itself and no decoder, however it groups the arithmetic, gets a number.
struct NanFields {
  GgmlType type;
  uint8_t count;
  uint8_t offset[2];
};

constexpr NanFields kNanFields[] = {
    {GgmlType::kQ4_0, 1, {0, 0}},    // d
    {GgmlType::kQ4_1, 2, {0, 2}},    // d, m
    {GgmlType::kQ5_0, 1, {0, 0}},    // d
    {GgmlType::kQ5_1, 2, {0, 2}},    // d, m
    {GgmlType::kQ8_0, 1, {0, 0}},    // d
    {GgmlType::kQ2_K, 2, {80, 82}},  // scales[16], qs[64], d, dmin
    {GgmlType::kQ3_K, 1, {108, 0}},  // hmask[32], qs[64], scales[12], d
    {GgmlType::kQ4_K, 2, {0, 2}},    // d, dmin
    {GgmlType::kQ5_K, 2, {0, 2}},    // d, dmin
    {GgmlType::kQ6_K, 1, {208, 0}},  // ql[128], qh[64], scales[16], d
    {GgmlType::kIQ4_NL, 1, {0, 0}},  // d
    {GgmlType::kIQ4_XS, 1, {0, 0}},  // d
    {GgmlType::kTQ1_0, 1, {52, 0}},  // qs[48], qh[4], d
    {GgmlType::kTQ2_0, 1, {64, 0}},  // qs[64], d
    {GgmlType::kQ1_0, 1, {0, 0}},    // d
};

// ggml's own float16 NaN (GGML_FP32_TO_FP16 of a NaN float32), little-endian.
constexpr uint16_t kFp16NaN = 0x7E00;

const NanFields* nan_fields(GgmlType t) {
  for (const NanFields& f : kNanFields) {
    if (f.type == t) return &f;
  }
  return nullptr;
}

bool is_plain(GgmlType t) { return t == GgmlType::kF32 || t == GgmlType::kF16 || t == GgmlType::kBF16; }

// max_abs_bits orders NaN above inf above every finite value.
constexpr uint32_t kInfBits = 0x7F800000u;
bool finite_run(const float* x, uint64_t n) { return kernels::max_abs_bits(x, n) < kInfBits; }

// Rows per task for the scans: whole rows, about 64 Ki elements a task.
uint64_t rows_per_task(uint64_t cols) {
  return std::max<uint64_t>(1, (uint64_t{1} << 16) / std::max<uint64_t>(1, cols));
}

// The rows holding a NaN or an infinity, in increasing order: one
// vectorized scan per row, rows split over threads.
std::vector<uint64_t> nonfinite_rows(const float* x, uint64_t rows, uint64_t cols, int threads) {
  if (rows == 0 || cols == 0) return {};
  const uint64_t per_task = rows_per_task(cols);
  const uint64_t tasks = (rows + per_task - 1) / per_task;
  std::vector<std::vector<uint64_t>> found(tasks);
  ThreadPool::global().parallel_for(tasks, threads <= 0 ? default_thread_count() : threads, [&](size_t task) {
    const uint64_t r1 = std::min(rows, (task + 1) * per_task);
    for (uint64_t r = task * per_task; r < r1; ++r) {
      if (!finite_run(x + r * cols, cols)) found[task].push_back(r);
    }
  });
  std::vector<uint64_t> all;
  for (const auto& f : found) all.insert(all.end(), f.begin(), f.end());
  return all;
}

// Sum of fn(row) over the given rows, split over threads.
template <class Fn>
uint64_t sum_over_rows(const std::vector<uint64_t>& rows, int threads, Fn fn) {
  std::vector<uint64_t> sums(rows.size(), 0);
  ThreadPool::global().parallel_for(rows.size(), threads <= 0 ? default_thread_count() : threads,
                                    [&](size_t i) { sums[i] = fn(rows[i]); });
  uint64_t total = 0;
  for (uint64_t v : sums) total += v;
  return total;
}

uint64_t count_nonfinite(const float* x, uint64_t n) {
  uint64_t bad = 0;
  for (uint64_t i = 0; i < n; ++i) bad += (ggml_internal::f32_bits(x[i]) & kInfBits) == kInfBits;
  return bad;
}

// Marks one row's blocks (a row known to hold NaN or inf); returns how many.
uint64_t mark_row(const NanFields& f, const GgmlTypeInfo& info, const float* x, uint64_t cols, uint8_t* row) {
  uint64_t marked = 0;
  for (uint64_t b = 0; b < cols / info.block_elems; ++b) {
    if (finite_run(x + b * info.block_elems, info.block_elems)) continue;
    uint8_t* blk = row + b * info.block_bytes;
    for (int k = 0; k < f.count; ++k) ggml_internal::store_u16(blk + f.offset[k], kFp16NaN);
    ++marked;
  }
  return marked;
}

[[noreturn]] void fail_cannot_hold_nan(const GgmlTypeInfo& info, uint64_t blocks) {
  const std::string why = info.type == GgmlType::kMXFP4   ? "ggml reads every E8M0 scale byte as a finite power of two"
                          : info.type == GgmlType::kNVFP4 ? "ggml reads every UE4M3 scale byte as a finite number"
                                                          : "lowbit cannot quantize it";
  fail_input(std::string("ggml type ")
                 .append(info.name)
                 .append(" has no block that decodes to NaN (")
                 .append(why)
                 .append("), but ")
                 .append(std::to_string(blocks))
                 .append(blocks == 1 ? " block" : " blocks")
                 .append(" of the tensor hold NaN or inf; replace those values (lowbit quantize --nan zero) or pick "
                         "another type"));
}

// Blocks holding NaN or inf, counted without writing anything.
uint64_t count_nonfinite_blocks(const GgmlTypeInfo& info, const float* x, uint64_t rows, uint64_t cols, int threads) {
  return sum_over_rows(nonfinite_rows(x, rows, cols, threads), threads, [&](uint64_t r) {
    uint64_t n = 0;
    for (uint64_t b = 0; b < cols / info.block_elems; ++b) {
      n += !finite_run(x + r * cols + b * info.block_elems, info.block_elems);
    }
    return n;
  });
}

// Checks the arguments the way ggml_quantize_rows does and returns the
// type's entry; a usage error for a type lowbit cannot quantize.
GgmlTypeInfo checked_info(GgmlType t, uint64_t rows, uint64_t cols) {
  if (!ggml_can_quantize(t)) ggml_quantize_row(t, nullptr, 0, nullptr);  // the usage error listing the types
  const uint64_t row_bytes = ggml_row_bytes(t, cols, "ggml tensor row");
  mul_or_fail(rows, row_bytes, "ggml tensor byte count");
  mul_or_fail(rows, cols, "ggml tensor element count");
  return ggml_type_info(t);
}

// Elements per batch of zero-filled rows: bounds the extra memory whatever
// the tensor's size (a row longer than this is copied alone).
constexpr uint64_t kCopyElements = uint64_t{1} << 20;

}  // namespace

bool ggml_type_can_hold_nan(GgmlType t) { return is_plain(t) || (nan_fields(t) && ggml_can_quantize(t)); }

bool has_nonfinite(const float* x, uint64_t n) { return !finite_run(x, n); }

uint64_t ggml_mark_nonfinite_blocks(GgmlType t, const float* x, uint64_t rows, uint64_t cols, uint8_t* blocks,
                                    int threads) {
  const GgmlTypeInfo info = checked_info(t, rows, cols);
  const std::vector<uint64_t> bad_rows = nonfinite_rows(x, rows, cols, threads);
  if (is_plain(t)) {
    return sum_over_rows(bad_rows, threads, [&](uint64_t r) { return count_nonfinite(x + r * cols, cols); });
  }
  const NanFields* f = nan_fields(t);
  if (!f) {
    if (!bad_rows.empty()) fail_cannot_hold_nan(info, count_nonfinite_blocks(info, x, rows, cols, threads));
    return 0;
  }
  const uint64_t row_bytes = ggml_row_bytes(t, cols, "ggml tensor row");
  return sum_over_rows(bad_rows, threads,
                       [&](uint64_t r) { return mark_row(*f, info, x + r * cols, cols, blocks + r * row_bytes); });
}

uint64_t ggml_quantize_rows_keeping_nonfinite(GgmlType t, const float* x, uint64_t rows, uint64_t cols, uint8_t* out,
                                              const float* importance_per_col, int threads) {
  const GgmlTypeInfo info = checked_info(t, rows, cols);
  // The plain conversions keep NaN and inf by themselves.
  if (is_plain(t)) {
    ggml_quantize_rows(t, x, rows, cols, out, importance_per_col, threads);
    return ggml_mark_nonfinite_blocks(t, x, rows, cols, out, threads);
  }
  const std::vector<uint64_t> bad_rows = nonfinite_rows(x, rows, cols, threads);
  if (!bad_rows.empty() && !nan_fields(t)) {
    fail_cannot_hold_nan(info, count_nonfinite_blocks(info, x, rows, cols, threads));
  }
  const uint64_t row_bytes = ggml_row_bytes(t, cols, "ggml tensor row");
  // The runs of rows without NaN or inf go to the codec as they are, one
  // call per run (all of x in the common case), so they keep its own
  // splitting over threads.
  uint64_t run = 0;
  for (uint64_t next_bad : bad_rows) {
    if (next_bad > run) {
      ggml_quantize_rows(t, x + run * cols, next_bad - run, cols, out + run * row_bytes, importance_per_col, threads);
    }
    run = next_bad + 1;
  }
  if (rows > run) {
    ggml_quantize_rows(t, x + run * cols, rows - run, cols, out + run * row_bytes, importance_per_col, threads);
  }
  if (bad_rows.empty()) return 0;
  // The others in batches: gathered with their non-finite values replaced by
  // 0, quantized together, put in place and marked.
  const uint64_t batch_rows = std::max<uint64_t>(1, kCopyElements / cols);
  const int n_threads = threads <= 0 ? default_thread_count() : threads;
  std::vector<float> copy;
  std::vector<uint8_t> bytes;
  uint64_t marked = 0;
  const NanFields& f = *nan_fields(t);
  for (uint64_t b0 = 0; b0 < bad_rows.size(); b0 += batch_rows) {
    const uint64_t n = std::min<uint64_t>(batch_rows, bad_rows.size() - b0);
    copy.resize(n * cols);
    bytes.resize(n * row_bytes);
    ThreadPool::global().parallel_for(n, n_threads, [&](size_t i) {
      const float* xr = x + bad_rows[b0 + i] * cols;
      float* c = copy.data() + i * cols;
      // A select, not a branch, so that the loop vectorizes.
      for (uint64_t j = 0; j < cols; ++j) c[j] = (ggml_internal::f32_bits(xr[j]) & kInfBits) == kInfBits ? 0.0f : xr[j];
    });
    ggml_quantize_rows(t, copy.data(), n, cols, bytes.data(), importance_per_col, threads);
    std::vector<uint64_t> marked_in(n, 0);
    ThreadPool::global().parallel_for(n, n_threads, [&](size_t i) {
      const uint64_t r = bad_rows[b0 + i];
      uint8_t* o = out + r * row_bytes;
      std::memcpy(o, bytes.data() + i * row_bytes, row_bytes);
      marked_in[i] = mark_row(f, info, x + r * cols, cols, o);
    });
    for (uint64_t m : marked_in) marked += m;
  }
  return marked;
}

}  // namespace lowbit
