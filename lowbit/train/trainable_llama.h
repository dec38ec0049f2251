// The Llama decoder as a differentiable function: the runtime's
// architecture (model/llama_model.h, the same RMSNorm, RoPE, SwiGLU and
// grouped-query attention, the same GGUF tensor names) with every layer's
// activations kept for a backward pass.
//
//   TrainableLlama m(config);
//   m.init(seed);
//   double loss_sum = m.forward(inputs, targets, batch, seq, threads);  // Σ token losses
//   m.backward(1.0f / (batch * seq), threads);                          // grads() += d(scale·Σ)/dθ
//
// Shapes (N = batch·seq tokens, D = dim, F = ffn_dim, H·d = D, KV·d):
//   embedding   [V, D]        x = E[tokens]                 [N, D]
//   per block   xn = rms(x)·w_attn                          [N, D]
//               q = RoPE(xn·Wqᵀ) [N, H·d], k = RoPE(xn·Wkᵀ), v = xn·Wvᵀ [N, KV·d]
//               x += attention(q, k, v)·Woᵀ
//               xn = rms(x)·w_ffn
//               x += (silu(xn·Wgateᵀ) ⊙ xn·Wupᵀ)·Wdownᵀ    [N, F] inside
//   head        logits = rms(x)·w_out · Eᵀ (tied) or ·Woutᵀ  [N, V]
//
// Every step is bit-identical for every thread count (fixed tiles, fixed
// reduction orders), so the loss curve of a run is too.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/model/llama_config.h"
#include "lowbit/model/rope.h"
#include "lowbit/train/linear_grad.h"
#include "lowbit/train/operand_quant.h"
#include "lowbit/train/parameter_set.h"
#include "lowbit/train/precision_recipe.h"
#include "lowbit/train/qat.h"

namespace lowbit {

class TrainableLlama {
 public:
  // ErrorKind::kInput naming the problem for an impossible shape (the
  // config's validate(), plus: GGUF naming and adjacent-pair RoPE, which
  // is what the trainer writes).
  // With `qat` (qat.h), every block Linear's weight is fake-quantized in
  // the forward pass; LSQ+ adds "<linear>.qat_scale" and ".qat_offset"
  // ([out], learned, no weight decay) to the parameters.
  explicit TrainableLlama(LlamaConfig config, QatSpec qat = {});

  const LlamaConfig& config() const noexcept { return config_; }
  const ParameterSet& layout() const noexcept { return layout_; }
  std::vector<float>& params() noexcept { return params_; }
  const std::vector<float>& params() const noexcept { return params_; }
  std::vector<float>& grads() noexcept { return grads_; }
  const std::vector<float>& grads() const noexcept { return grads_; }

  // GPT-2's initialization: matrices N(0, 0.02), the two projections that
  // write into the residual stream (attn_output, ffn_down) N(0, 0.02 /
  // sqrt(2·layers)), norms 1. A pure function of the seed (splitmix64 and
  // Box-Muller, the same on every machine).
  void init(uint64_t seed);

  // Runs batch sequences of seq tokens (inputs and targets [batch·seq],
  // sequence-major) and returns the sum of the token losses (nats).
  // Activations are kept for backward(). ErrorKind::kInput for a token
  // outside the vocabulary, seq > context_length, or a NaN or infinity in
  // a block's output (the message names the block, "blk 3", or "output").
  // `token_loss`, when given, receives each token's loss ([batch·seq]).
  // `update_state` false (an evaluation) leaves the delayed-scaling
  // histories as they were.
  double forward(std::span<const int32_t> inputs, std::span<const int32_t> targets, int64_t batch, int64_t seq,
                 int threads, std::vector<double>* token_loss = nullptr, bool update_state = true);

  // Adds the gradient of loss_scale · (the last forward's loss sum) to
  // grads(). Call after forward(), once.
  void backward(float loss_scale, int threads);

  // The Linears by index: per block attn_q, attn_k, attn_v, attn_output,
  // ffn_gate, ffn_up, ffn_down ("blk.3.ffn_up"), then "output" (the LM
  // head: the embedding matrix when tied). The names precision recipes
  // match.
  std::vector<std::string> linear_names() const { return linear_names(config_); }
  static std::vector<std::string> linear_names(const LlamaConfig& config);
  const QatSpec& qat() const noexcept { return qat_; }
  // The weight the forward pass multiplies for Linear `index` (QAT: the
  // fake-quantized one; else the parameter itself), for export.
  std::vector<float> effective_weight(int64_t index) const;
  // The parameter offset and shape of Linear `index`'s weight.
  int64_t linear_weight(int64_t index, int64_t* rows, int64_t* cols) const;
  // Every Linear's GEMMs round as `recipe` says (null: float32). `seed`
  // and the step (set_step) seed stochastic rounding and the Hadamard
  // transforms.
  void set_precision(std::shared_ptr<const PrecisionRecipe> recipe, uint64_t seed);
  void set_step(int64_t step) noexcept { step_ = step; }
  // Delayed scaling's amax histories, 6 per Linear (linear_grad.h's
  // order): a checkpoint saves them.
  std::vector<AmaxHistory>& amax_histories() noexcept { return histories_; }

 private:
  struct BlockOffsets {
    int64_t attn_norm, q, k, v, o, ffn_norm, gate, up, down;
  };
  struct BlockActs {
    std::vector<float> x_in, xn1, q, k, v, p, att, x_mid, xn2, gate, up, h;
  };
  void size_activations(int64_t batch, int64_t seq);
  void init_weights(uint64_t seed);
  // The rounding context of Linear `index` at this step, or null.
  const LinearQuant* quant(int64_t index);
  // y = x·Wᵀ of Linear `index` (weight at parameter offset w), with QAT
  // and the precision recipe; and its backward (gradients into grads()).
  void lin_forward(int64_t index, const float* x, int64_t n, int64_t in, int64_t w, int64_t out, float* y,
                   int threads);
  void lin_backward(int64_t index, const float* dy, const float* x, int64_t n, int64_t in, int64_t w, int64_t out,
                    float* dx, bool accumulate_dx, int threads);

  LlamaConfig config_;
  ParameterSet layout_;
  std::vector<float> params_, grads_;
  int64_t embedding_ = 0, output_norm_ = 0, output_ = -1;  // output_ < 0: tied
  std::vector<BlockOffsets> blocks_;
  Rope rope_;

  std::shared_ptr<const PrecisionRecipe> precision_;
  uint64_t precision_seed_ = 0;
  int64_t step_ = 0;
  std::vector<const LayerPrecision*> linear_precision_;
  std::vector<AmaxHistory> histories_;
  std::vector<LinearQuant> contexts_;
  std::vector<std::vector<float>> rounded_w_;  // per Linear: the last forward's rounded weight

  QatSpec qat_;
  std::vector<int64_t> qat_scale_, qat_offset_;  // per block Linear (LSQ+)
  std::vector<std::vector<float>> w_hat_;        // per block Linear: the last forward's ŵ

  // The last forward's activations.
  int64_t batch_ = 0, seq_ = 0;
  bool have_forward_ = false;
  std::vector<int32_t> inputs_, targets_;
  std::vector<BlockActs> acts_;
  std::vector<float> x_final_, xn_final_, logits_;
};

}  // namespace lowbit
