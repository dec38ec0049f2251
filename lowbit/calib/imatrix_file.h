// llama.cpp's importance matrix file (GGUF, `general.type = imatrix`):
// what `llama-imatrix -o F.gguf` writes and `llama-quantize --imatrix F`
// reads, and what `lowbit calibrate` writes.
//
//   metadata  general.type          "imatrix"
//             imatrix.datasets      [string]  the calibration texts
//             imatrix.chunk_count   u32       chunks of text run
//             imatrix.chunk_size    u32       tokens per chunk (the context)
//   tensors   <weight>.in_sum2      F32 [n_mat, cols]  sum over tokens of x^2 per input column
//             <weight>.counts       F32 [n_mat, 1]     tokens counted
//             <weight>.in_absmax    F32 [n_mat, cols]  lowbit's: the largest |x| per column
//                                                      (optional; llama.cpp skips it)
//             <weight>.in_hist      F64 [1, 4080]      lowbit's: the histogram of |x|
//                                                      (abs_histogram.h; optional)
//             <weight>.in_gram      F32 [cols, cols]   lowbit's: X^T X of the input, summed
//                                                      in float64, stored symmetric (optional,
//                                                      calibrate --gram; GPTQ's Hessian)
//             <weight>.in_pct       F32 [levels, cols] lowbit's: per column, the |x| at each
//                                                      level of lowbit.column_percentiles
//                                                      (optional, calibrate --col-percentiles)
//   metadata  lowbit.column_percentiles  [f32]  the levels (percent) of in_pct's rows
//
// per weight (by its GGUF name, "blk.0.attn_q.weight"), in name order; n_mat
// is 1 except for stacked expert matrices. The importance of column j is
// in_sum2[j] / counts. llama.cpp's reader skips tensors with other
// suffixes, so lowbit's further statistics can share the file.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/calib/abs_histogram.h"

namespace lowbit {

class GgufFile;

struct ImatrixEntry {
  int64_t cols = 0;
  std::vector<float> in_sum2;    // [n_mat * cols]
  std::vector<float> counts;     // [n_mat]
  std::vector<float> in_absmax;  // [n_mat * cols], or empty (files by llama-imatrix have none)
  std::vector<uint64_t> in_hist;  // AbsHistogram::kBins counts, or empty
  std::vector<float> in_gram;     // [cols * cols] symmetric, or empty
  std::vector<float> in_pct;      // [levels * cols]: Imatrix::column_percentile_levels, or empty
};

struct Imatrix {
  std::map<std::string, ImatrixEntry> entries;
  std::vector<std::string> datasets;
  uint32_t chunk_count = 0, chunk_size = 0;
  std::vector<float> column_percentile_levels;  // the rows of every in_pct (percent)

  // The mean of x^2 per column of `weight` (one matrix), or empty when the
  // file has no entry for it. ErrorKind::kInput when the entry is not one
  // matrix of `cols` columns, or has no tokens.
  std::vector<float> importance(const std::string& weight, int64_t cols, const std::string& file_for_errors) const;
  // The largest |x| seen at the input of `weight` (the maximum of its
  // in_absmax), for static activation scales; nullopt without an entry.
  // kInput when the entry is not one matrix of `cols` columns (a file made
  // for another model) or has no in_absmax (llama-imatrix writes none).
  std::optional<float> input_absmax(const std::string& weight, int64_t cols, const std::string& file_for_errors) const;
  // The histogram of |x| at the input of `weight`, or nullopt when the
  // file has none for it.
  std::optional<AbsHistogram> input_histogram(const std::string& weight) const;
  // Per column of `weight`'s input, the |x| below which `level` percent of
  // the values lie, or nullopt when the file has no such row for it.
  std::optional<std::vector<float>> column_percentile(const std::string& weight, float level) const;
};

// ErrorKind::kInput for a file that is not a GGUF imatrix (naming what is
// wrong: another GGUF type, a sums tensor without counts, a non-F32 or
// non-finite entry, llama.cpp's legacy .dat format).
Imatrix read_imatrix(const std::string& path);
// The same from a GGUF file already open (the fuzz target's entry point).
Imatrix read_imatrix(const GgufFile& f);
// Whether the file at `path` starts as a GGUF file does (its magic).
bool looks_like_gguf(const std::string& path);
// Written atomically (nothing at `path` until the whole file is there).
void write_imatrix(const Imatrix& m, const std::string& path);

}  // namespace lowbit
