#include "lowbit/calib/activation_recorder.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "lowbit/core/error.h"
#include "lowbit/kernels/matmul.h"
#include "lowbit/model/linear.h"

namespace lowbit {

ActivationRecorder::ActivationRecorder(Filter wanted, Options options)
    : wanted_(std::move(wanted)), options_(options) {}

ActivationRecorder::Filter ActivationRecorder::decoder_blocks() {
  return [](const std::string& name) { return name.rfind("blk.", 0) == 0; };
}

void ActivationRecorder::observe(std::span<const Linear* const> linears, const float* x, int64_t n) {
  if (linears.empty() || n <= 0) return;
  const int64_t cols = linears.front()->in_features();
  bool any = false;
  for (const Linear* l : linears) {
    if (l->in_features() != cols) fail_internal("ActivationRecorder: Linears of one input differ in width");
    any = any || !wanted_ || wanted_(l->name() + ".weight");
  }
  if (!any) return;
  // The call's rows first (shared by every Linear of the input), then into
  // each one's running sums.
  partial_.assign(static_cast<size_t>(cols), 0.0);
  partial_max_.assign(static_cast<size_t>(cols), 0.0f);
  partial_hist_ = AbsHistogram();
  partial_hist_.add(x, n * cols);
  for (int64_t r = 0; r < n; ++r) {
    const float* row = x + r * cols;
    for (int64_t j = 0; j < cols; ++j) {
      const double v = row[j];
      partial_[static_cast<size_t>(j)] += v * v;
      // max is exact and order-free; a NaN compares false and is skipped.
      const float a = std::fabs(row[j]);
      if (a > partial_max_[static_cast<size_t>(j)]) partial_max_[static_cast<size_t>(j)] = a;
    }
  }
  std::shared_ptr<std::vector<double>> gram;  // the input's, once per call
  std::shared_ptr<ColumnHistograms> col_hist;  // likewise
  for (const Linear* l : linears) {
    const std::string name = l->name() + ".weight";
    if (wanted_ && !wanted_(name)) continue;
    ColumnStats& s = stats_[name];
    if (options_.column_percentiles) {
      if (!s.col_hist) {
        if (!col_hist) col_hist = std::make_shared<ColumnHistograms>(cols);
        s.col_hist = col_hist;
      } else if (col_hist && s.col_hist != col_hist) {
        fail_internal("ActivationRecorder: Linears of one input were recorded apart before");
      }
      col_hist = s.col_hist;
    }
    if (options_.gram) {
      if (!s.gram) {
        if (!gram) gram = std::make_shared<std::vector<double>>(static_cast<size_t>(cols * cols), 0.0);
        s.gram = gram;
      } else if (gram && s.gram != gram) {
        fail_internal("ActivationRecorder: Linears of one input were recorded apart before");
      }
      gram = s.gram;
    }
    if (s.sum_sq.empty()) {
      s.sum_sq.assign(static_cast<size_t>(cols), 0.0);
      s.absmax.assign(static_cast<size_t>(cols), 0.0f);
    }
    for (int64_t j = 0; j < cols; ++j) {
      const auto k = static_cast<size_t>(j);
      s.sum_sq[k] += partial_[k];
      s.absmax[k] = std::max(s.absmax[k], partial_max_[k]);
    }
    s.hist.merge(partial_hist_);
    s.rows += n;
  }
  // One product per input, however many Linears share it.
  if (gram) gram_add_upper(x, n, cols, gram->data(), options_.threads);
  if (col_hist) col_hist->add(x, n);
}

const ColumnStats* ActivationRecorder::stats(const std::string& weight_name) const {
  const auto it = stats_.find(weight_name);
  return it == stats_.end() ? nullptr : &it->second;
}

}  // namespace lowbit
