// Statistics of the inputs of a model's Linears, recorded through the
// runtime's hook (lowbit/model/linear_observer.h) while calibration text
// runs through the model. Only statistics are kept, never activations, so
// memory is bounded by the model's width, not by the text's length.
//
// Per input column the sum of x^2 (llama.cpp's importance matrix,
// imatrix_file.h) and the largest |x|, per tensor a histogram of |x| (the
// static activation scales of static_scale.h), the number of rows
// (tokens), and on request the Gram matrix X^T X of the input in float64
// (GPTQ's Hessian; cols^2 doubles per input, shared by the Linears that
// share the input) and per-column histograms for per-column percentiles.
//
//   ActivationRecorder rec(ActivationRecorder::decoder_blocks());
//   model.forward(tokens, cache, n, nullptr, threads, &rec);
//   rec.stats("blk.0.attn_q.weight")->sum_sq ...
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/calib/abs_histogram.h"
#include "lowbit/calib/column_histograms.h"
#include "lowbit/model/linear_observer.h"

namespace lowbit {

struct ColumnStats {
  std::vector<double> sum_sq;  // per input column: the sum over rows of x^2 (each product exact in double)
  std::vector<float> absmax;   // per input column: the largest |x| (NaNs skipped)
  AbsHistogram hist;           // every |x| of the input
  int64_t rows = 0;            // rows (tokens) seen
  // Options::gram: [cols, cols] row-major, the upper triangle (i <= j)
  // holding sum over rows of x_i x_j (kernels/matmul.h gram_add_upper);
  // one matrix for all Linears of an input.
  std::shared_ptr<std::vector<double>> gram;
  // Options::column_percentiles: a coarse histogram of |x| per column
  // (column_histograms.h), one for all Linears of an input.
  std::shared_ptr<ColumnHistograms> col_hist;
};

class ActivationRecorder : public LinearInputObserver {
 public:
  // Which Linears to record, by weight tensor name ("blk.0.attn_q.weight");
  // an empty predicate records every Linear.
  using Filter = std::function<bool(const std::string& weight_name)>;
  struct Options {
    bool gram = false;  // also accumulate X^T X
    int threads = 1;    // for the Gram products (the same bits at any count)
    // Also keep per-column histograms, and write these percentiles of each
    // column (to_imatrix).
    bool column_percentiles = false;
    std::vector<float> percentile_levels = {99.0f, 99.9f, 99.99f, 99.999f};
  };
  explicit ActivationRecorder(Filter wanted = {}) : ActivationRecorder(std::move(wanted), Options{}) {}
  ActivationRecorder(Filter wanted, Options options);

  // The Linears of the decoder blocks ("blk." names), not the output head:
  // what llama-imatrix records by default.
  static Filter decoder_blocks();

  // Adds x's squares per column, rows in order, to each Linear's sums: the
  // same bits for the same calls in the same order.
  void observe(std::span<const Linear* const> linears, const float* x, int64_t n) override;

  // By weight tensor name ("<Linear name>.weight"), in name order.
  const std::map<std::string, ColumnStats>& all() const noexcept { return stats_; }
  const ColumnStats* stats(const std::string& weight_name) const;
  const Options& options() const noexcept { return options_; }

 private:
  Filter wanted_;
  Options options_;
  std::map<std::string, ColumnStats> stats_;
  std::vector<double> partial_;  // scratch: one call's sums
  std::vector<float> partial_max_;  // and its largest |x|
  AbsHistogram partial_hist_;       // and its histogram
};

}  // namespace lowbit
