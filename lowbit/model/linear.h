// A linear layer, y = x·Wᵀ + b, with W stored [out, in] as checkpoints
// store it.
//
// Every projection of the runtime (Q, K, V, output, MLP, the LM head) is a
// Linear, so that the quantization points of the next phase (the weight as
// stored or requantized, the input activations) have one place to live.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

class Linear {
 public:
  Linear() = default;
  // weight holds out*in floats, bias is empty or holds out floats. `name`
  // (the checkpoint's tensor name without ".weight") names the layer in
  // messages and in recipes.
  Linear(std::string name, std::vector<float> weight, int64_t out, int64_t in, std::vector<float> bias = {});

  // y[n, out] = x[n, in]·Wᵀ + b; bit-identical for every thread count.
  void forward(const float* x, int64_t n, float* y, int threads) const;

  int64_t in_features() const noexcept { return in_; }
  int64_t out_features() const noexcept { return out_; }
  const std::string& name() const noexcept { return name_; }
  const std::vector<float>& weight() const noexcept { return weight_; }
  const std::vector<float>& bias() const noexcept { return bias_; }

 private:
  std::string name_;
  std::vector<float> weight_;
  std::vector<float> bias_;
  int64_t out_ = 0, in_ = 0;
};

}  // namespace lowbit
