// Statistics of the inputs of a model's Linears, recorded through the
// runtime's hook (lowbit/model/linear_observer.h) while calibration text
// runs through the model. Only statistics are kept, never activations, so
// memory is bounded by the model's width, not by the text's length.
//
// Per input column the sum of x^2 (llama.cpp's importance matrix,
// imatrix_file.h) and the largest |x|, per tensor a histogram of |x| (the
// static activation scales of static_scale.h), and the number of rows
// (tokens). The Gram matrices GPTQ needs are a further member to come.
//
//   ActivationRecorder rec(ActivationRecorder::decoder_blocks());
//   model.forward(tokens, cache, n, nullptr, threads, &rec);
//   rec.stats("blk.0.attn_q.weight")->sum_sq ...
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "lowbit/calib/abs_histogram.h"
#include "lowbit/model/linear_observer.h"

namespace lowbit {

struct ColumnStats {
  std::vector<double> sum_sq;  // per input column: the sum over rows of x^2 (each product exact in double)
  std::vector<float> absmax;   // per input column: the largest |x| (NaNs skipped)
  AbsHistogram hist;           // every |x| of the input
  int64_t rows = 0;            // rows (tokens) seen
};

class ActivationRecorder : public LinearInputObserver {
 public:
  // Which Linears to record, by weight tensor name ("blk.0.attn_q.weight");
  // an empty predicate records every Linear.
  using Filter = std::function<bool(const std::string& weight_name)>;
  explicit ActivationRecorder(Filter wanted = {});

  // The Linears of the decoder blocks ("blk." names), not the output head:
  // what llama-imatrix records by default.
  static Filter decoder_blocks();

  // Adds x's squares per column, rows in order, to each Linear's sums: the
  // same bits for the same calls in the same order.
  void observe(std::span<const Linear* const> linears, const float* x, int64_t n) override;

  // By weight tensor name ("<Linear name>.weight"), in name order.
  const std::map<std::string, ColumnStats>& all() const noexcept { return stats_; }
  const ColumnStats* stats(const std::string& weight_name) const;

 private:
  Filter wanted_;
  std::map<std::string, ColumnStats> stats_;
  std::vector<double> partial_;  // scratch: one call's sums
  std::vector<float> partial_max_;  // and its largest |x|
  AbsHistogram partial_hist_;       // and its histogram
};

}  // namespace lowbit
