// The Llama decoder: token embeddings, `layers` blocks of
//   x += Wo · attention(RoPE(Wq · rms(x)), RoPE(Wk · rms(x)), Wv · rms(x))
//   x += Wdown · (silu(Wgate · rms(x)) * (Wup · rms(x)))
// a final RMSNorm and the LM head (its own matrix, or the embedding matrix
// when they are tied).
//
//   LlamaModel model = LlamaModel::load("smol.gguf", threads);
//   KvCache cache = model.new_cache(512);
//   std::vector<float> logits(model.config().vocab_size);
//   model.forward(prompt_ids, cache, prompt_ids.size() - 1, logits.data(), threads);  // prefill
//   model.forward({&next, 1}, cache, 0, logits.data(), threads);                        // one more token
//
// Weights are dequantized to float32 at load (any GGUF block type, any
// safetensors dtype) and every projection is a Linear (linear.h), where
// later issues put quantization points. A forward pass over n tokens
// works on [n, dim] matrices at once (batched prefill); the KV cache lets
// the next call continue where the last stopped. Logits are bit-identical
// for every thread count: each step partitions its work into fixed tasks.
// A forward over the same tokens split differently (one call of n, or n
// calls of 1) agrees to float rounding, not bit for bit: BLAS tiles differ,
// and a GGUF model's Q8_0/Q4_0/Q4_1 Linears run one-token calls through the
// GEMV over their stored blocks (linear.h), which sums in its own order.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/model/kv_cache.h"
#include "lowbit/model/linear.h"
#include "lowbit/model/linear_observer.h"
#include "lowbit/model/llama_config.h"
#include "lowbit/model/quant_plan.h"
#include "lowbit/model/rope.h"

namespace lowbit {

class Checkpoint;

struct LlamaLayer {
  std::vector<float> attn_norm, ffn_norm;  // [dim]
  Linear q, k, v, o;                       // attn_q [dim, dim], attn_k/v [kv_dim, dim], attn_output [dim, dim]
  Linear gate, up, down;                   // ffn_gate/up [ffn_dim, dim], ffn_down [dim, ffn_dim]
};

class LlamaModel {
 public:
  // A tensor by its checkpoint name as float32 in row-major order, or
  // nullopt when the checkpoint has none by that name. `shape` is what the
  // model expects (row-major); the source checks it.
  using TensorSource =
      std::function<std::optional<std::vector<float>>(const std::string& name, const std::vector<int64_t>& shape)>;

  // The model at `path`: a GGUF file or a Hugging Face directory (config.json
  // + safetensors), opened through Checkpoint. ErrorKind::kInput naming the
  // architecture for anything that is not a Llama decoder, and naming the
  // tensor for a missing one or a wrong shape.
  static LlamaModel load(const std::string& path, int threads);
  static LlamaModel load(const Checkpoint& checkpoint, int threads);
  // A model from tensors given by name (the names of config.naming). The
  // output matrix is read unless config.tied_embeddings; for GGUF naming a
  // missing output.weight also means tied, as llama.cpp reads it.
  // `source_name` names the model in messages.
  static LlamaModel from_tensors(LlamaConfig config, const TensorSource& source, const std::string& source_name);

  const LlamaConfig& config() const noexcept { return config_; }
  const std::vector<LlamaLayer>& layers() const noexcept { return layers_; }
  const Linear& lm_head() const noexcept { return lm_head_; }

  // Every Linear, block by block (Q, K, V, output, gate, up, down), then
  // the LM head: the points a QuantPlan resolves against.
  std::vector<const Linear*> linears() const;

  // A copy of this model (sharing every weight it does not replace) whose
  // Linears, the LM head included, take new float32 weights: fn(linear)
  // returns the new weight, or nullopt to keep it. Packed forms of
  // replaced weights drop; the plan is kept.
  LlamaModel with_weights(const std::function<std::optional<std::vector<float>>(const Linear&)>& fn) const;

  // The plan the forward applies (activations, attention, KV cache), or
  // null. A copy with a plan shares the weights (see with_weights()).
  LlamaModel with_plan(std::shared_ptr<const QuantPlan> plan) const;
  const QuantPlan* plan() const noexcept { return plan_.get(); }

  // A KV cache for up to `capacity` positions (at most the model's
  // context length: kInput otherwise), stored as the plan's KV spec says.
  KvCache new_cache(int64_t capacity) const;

  // Runs `tokens` at positions cache.size() .. cache.size() + n - 1, adds
  // their keys and values to the cache, and writes the logits of rows
  // logits_from .. n-1 to `logits` ([n - logits_from, vocab_size], row-
  // major; nothing when logits_from == n). ErrorKind::kInput for a token
  // outside the vocabulary, a full cache, or a NaN or infinity in a
  // block's output (the message names the block, "blk 7"); the cache is
  // unchanged then.
  // `observer`, when given, sees every Linear's input (linear_observer.h).
  void forward(std::span<const int32_t> tokens, KvCache& cache, int64_t logits_from, float* logits, int threads,
               LinearInputObserver* observer = nullptr) const;

 private:
  LlamaConfig config_;
  std::shared_ptr<const std::vector<float>> embedding_;  // [vocab, dim], shared by copies
  std::vector<LlamaLayer> layers_;
  std::vector<float> output_norm_;  // [dim]
  Linear lm_head_;                  // [vocab, dim]
  Rope rope_;
  std::shared_ptr<const QuantPlan> plan_;
};

}  // namespace lowbit
