// The clipping searches (scale=mse and scale=wmse): per block, the clip
// factor whose rounded scale gives the least (weighted) squared error, over
// a coarse grid and then golden-section refinement, or over exponents for
// power-of-two scales.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "lowbit/quant/quantize_internal.h"

namespace lowbit::quant_detail {

void search_scales(const Plan& P, Blocks& B, const std::vector<uint64_t>& blocks, const ErrorEval& eval) {
  const size_t n = blocks.size();
  // Indexed like B; only this set's entries are touched.
  thread_local std::vector<BlockScale> trial;
  thread_local std::vector<double> err;
  trial.resize(B.size());
  err.resize(B.size());
  std::vector<float> best_alpha(n, 1.0f), alpha(n);
  std::vector<double> best_err(n, std::numeric_limits<double>::infinity());
  const auto try_alpha = [&](const std::vector<float>& a) {
    set_params(P, B, blocks, a.data(), trial.data(), nullptr, nullptr);
    for (uint64_t b : blocks) err[b] = 0.0;
    eval(trial.data(), err.data());
    std::vector<double> out(n);
    for (size_t i = 0; i < n; ++i) {
      const double e = err[blocks[i]];
      out[i] = e;
      if (e < best_err[i]) {
        best_err[i] = e;
        best_alpha[i] = a[i];
      }
    }
    return out;
  };
  if (P.sc.is_power_of_two_format()) {
    // Power-of-two scales: the ceil rule's exponent and the three below it.
    for (int k = 0; k <= 3; ++k) {
      std::fill(alpha.begin(), alpha.end(), std::ldexp(1.0f, -k));
      try_alpha(alpha);
    }
  } else {
    // A coarse grid of clip factors, then golden-section refinement around
    // the best, per block.
    for (int k = 0; k <= kMseGridSteps; ++k) {
      std::fill(alpha.begin(), alpha.end(), 1.0f - static_cast<float>(k) * kMseGridStep);
      try_alpha(alpha);
    }
    const float phi = kernels::kMsePhi;
    std::vector<float> lo(n), hi(n), x1(n), x2(n);
    for (size_t i = 0; i < n; ++i) {
      lo[i] = std::max(best_alpha[i] - kMseGridStep, 0.01f);
      hi[i] = std::min(best_alpha[i] + kMseGridStep, 1.0f);
      x1[i] = hi[i] - phi * (hi[i] - lo[i]);
      x2[i] = lo[i] + phi * (hi[i] - lo[i]);
    }
    std::vector<double> f1 = try_alpha(x1), f2 = try_alpha(x2);
    for (int it = 0; it < kMseRefineSteps; ++it) {
      std::vector<float> next(n);
      std::vector<bool> left(n);
      for (size_t i = 0; i < n; ++i) {
        left[i] = f1[i] <= f2[i];
        if (left[i]) {
          hi[i] = x2[i];
          x2[i] = x1[i];
          f2[i] = f1[i];
          x1[i] = hi[i] - phi * (hi[i] - lo[i]);
          next[i] = x1[i];
        } else {
          lo[i] = x1[i];
          x1[i] = x2[i];
          f1[i] = f2[i];
          x2[i] = lo[i] + phi * (hi[i] - lo[i]);
          next[i] = x2[i];
        }
      }
      const std::vector<double> f = try_alpha(next);
      for (size_t i = 0; i < n; ++i) (left[i] ? f1[i] : f2[i]) = f[i];
    }
  }
  set_params(P, B, blocks, best_alpha.data(), B.params.data(), B.scale_codes.data(), B.zero_codes.data());
}

}  // namespace lowbit::quant_detail
