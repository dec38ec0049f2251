// A linear layer, y = x·Wᵀ + b, with W stored [out, in] as checkpoints
// store it.
//
// Every projection of the runtime (Q, K, V, output, MLP, the LM head) is a
// Linear, so that the quantization points of the next phase (the weight as
// stored or requantized, the input activations) have one place to live.
//
// A Linear may also hold its weight in GGUF block form (PackedWeight, the
// same values as the float32 weight): a one-token forward (decode) then
// reads the blocks, 4 to 7 times fewer bytes, through the GEMV kernel; a
// batch of tokens still multiplies the float32 weight with BLAS. The two
// paths sum in different orders, so a token's outputs may differ in the
// last bits between them (docs/runtime.md).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "lowbit/ggml/packed_weight.h"

namespace lowbit {

class Linear {
 public:
  Linear() = default;
  // weight holds out*in floats, bias is empty or holds out floats. `name`
  // (the checkpoint's tensor name without ".weight") names the layer in
  // messages and in recipes.
  Linear(std::string name, std::vector<float> weight, int64_t out, int64_t in, std::vector<float> bias = {});

  // y[n, out] = x[n, in]·Wᵀ + b; bit-identical for every thread count
  // (and, for n = 1 through a packed weight, every SIMD target).
  void forward(const float* x, int64_t n, float* y, int threads) const;

  // One token through several Linears (a block's Q, K, V; its gate and
  // up): y_i = x_i·W_iᵀ + b_i, the same bits as forward(x_i, 1, y_i) gives
  // for each. When every one holds a packed weight their GEMVs run as one
  // parallel_for (PackedWeight::multiply_all), otherwise one by one.
  struct OneToken {
    const Linear* linear;
    const float* x;
    float* y;
  };
  static void forward_one(std::span<const OneToken> jobs, int threads);

  // Keeps `packed` (the same matrix in block form, shared, immutable) for
  // one-token forwards. ErrorKind::kInternal when its shape is not [out, in].
  // Whoever changes the float32 weight must drop it (set_packed(nullptr)).
  void set_packed(std::shared_ptr<const PackedWeight> packed);
  const PackedWeight* packed() const noexcept { return packed_.get(); }

  int64_t in_features() const noexcept { return in_; }
  int64_t out_features() const noexcept { return out_; }
  const std::string& name() const noexcept { return name_; }
  const std::vector<float>& weight() const noexcept { return *weight_; }
  // A copy of this layer with another float32 weight of the same shape
  // (a weight quantization of a study): the packed form is dropped, the
  // bias kept. kInternal for a wrong size.
  Linear with_weight(std::vector<float> weight) const;
  const std::vector<float>& bias() const noexcept { return bias_; }

 private:
  std::string name_;
  // Shared and immutable: copies of a model (one per quantization plan of
  // a study) share their weights.
  std::shared_ptr<const std::vector<float>> weight_ = std::make_shared<const std::vector<float>>();
  std::vector<float> bias_;
  std::shared_ptr<const PackedWeight> packed_;
  int64_t out_ = 0, in_ = 0;
};

}  // namespace lowbit
