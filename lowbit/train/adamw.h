// AdamW (Loshchilov and Hutter 2019) over the flat parameter buffer, with
// PyTorch's semantics so that hyperparameters carry over:
//   m = β1·m + (1 − β1)·g,   v = β2·v + (1 − β2)·g²
//   θ = θ·(1 − lr·λ)   (tensors marked decay only: matrices, not norms)
//   θ = θ − lr · (m / (1 − β1^t)) / (sqrt(v / (1 − β2^t)) + ε)
// The moments are float32, updated element by element, so the result is
// the same for every thread count.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/train/parameter_set.h"

namespace lowbit {

struct AdamWOptions {
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8, weight_decay = 0.1;
};

class AdamW {
 public:
  AdamW(const ParameterSet& layout, AdamWOptions options);

  // One update of `params` by `grads` (both laid out as `layout`) at
  // learning rate lr; steps() counts them (t above is steps() after it).
  void step(std::vector<float>& params, const std::vector<float>& grads, double lr, int threads);

  int64_t steps() const noexcept { return t_; }
  std::vector<float>& m() noexcept { return m_; }
  std::vector<float>& v() noexcept { return v_; }
  const std::vector<float>& m() const noexcept { return m_; }
  const std::vector<float>& v() const noexcept { return v_; }
  // For resuming: the count of updates the moments hold.
  void set_steps(int64_t t) noexcept { t_ = t; }

 private:
  const ParameterSet* layout_;
  AdamWOptions opt_;
  std::vector<float> m_, v_;
  int64_t t_ = 0;
};

// The L2 norm of grads over the tensors of `layout` (padding excluded),
// summed in double over fixed chunks combined in order: the same bits for
// every thread count.
double gradient_norm(const ParameterSet& layout, const std::vector<float>& grads, int threads);

// The first tensor of `layout` whose gradient holds a NaN or infinity, or
// null.
const ParamTensor* first_non_finite_gradient(const ParameterSet& layout, const std::vector<float>& grads);

}  // namespace lowbit
