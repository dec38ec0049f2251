// The BERT encoder (Hugging Face BertModel) and the sentence embeddings of
// a sentence-transformers model built on it (all-MiniLM-L6-v2).
//
//   BertConfig cfg = load_bert_config(dir);
//   BertModel model = BertModel::load(Checkpoint::open(dir), cfg);
//   std::vector<float> e = model.embed(token_batches, pipeline, threads);
//
// Forward: word + token_type(0) + position embeddings, LayerNorm; per layer
// Q, K, V (Linear with bias), bidirectional attention, output dense,
// residual + LayerNorm, intermediate dense + GELU (erf), output dense,
// residual + LayerNorm. A batch is its sentences' token rows concatenated:
// the Linears run over all of them at once, attention runs per sentence at
// the sentence's own length, so no padding or mask exists.
//
// Determinism: every step has a fixed reduction order (matmul_nt's fixed
// tiles, layer_norm's per-row double sums, attention's fixed tiles,
// pool_tokens), so the embeddings are bit-identical for every thread count.
// A non-finite value in a layer's output is ErrorKind::kInput naming the
// layer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/model/bert_config.h"
#include "lowbit/model/linear.h"
#include "lowbit/model/linear_observer.h"
#include "lowbit/model/quant_plan.h"

namespace lowbit {

class Checkpoint;

class BertModel {
 public:
  // The weights by checkpoint name ("encoder.layer.0.attention.self.query.
  // weight"), as float32 of exactly `shape` (row-major); the source throws
  // ErrorKind::kInput naming the tensor when it is missing or shaped
  // otherwise.
  using TensorSource = std::function<std::vector<float>(const std::string& name, const std::vector<int64_t>& shape)>;

  // Builds the model from `source`; `prefix` is prepended to every name
  // ("bert." for checkpoints saved from BertFor... heads).
  BertModel(BertConfig config, const TensorSource& source, const std::string& prefix = "");

  // The weights of a checkpoint, with or without the "bert." prefix;
  // ErrorKind::kInput naming a missing or misshapen tensor.
  static BertModel load(const Checkpoint& checkpoint, const BertConfig& config, int threads = 1);

  const BertConfig& config() const noexcept { return config_; }

  // The last layer's token states of a batch: hidden gets sum(len) rows of
  // hidden_size floats, the sentences' rows one after another. Each
  // sentence is token ids ([CLS] ... [SEP]) of 1 to max_position_embeddings
  // tokens; ids outside the vocabulary are ErrorKind::kInput. `observer`,
  // when given, sees every Linear's input for the whole batch (all
  // sentences' rows), before the plan quantizes it (linear_observer.h).
  void forward(std::span<const std::vector<int32_t>> sentences, std::vector<float>& hidden, int threads,
               LinearInputObserver* observer = nullptr) const;

  // One embedding per sentence, [sentences.size(), pooled dim] row-major:
  // forward, then the pipeline's pooling and normalization. Sentences
  // longer than pipeline.max_seq_length are refused (ErrorKind::kUsage):
  // truncation belongs to the caller (truncate_tokens), where it is seen.
  std::vector<float> embed(std::span<const std::vector<int32_t>> sentences, const SentencePipeline& pipeline,
                           int threads) const;

  // The embedding width of a pipeline: pooling modes times hidden_size.
  int64_t embedding_dim(const SentencePipeline& pipeline) const noexcept {
    return pipeline.pooling.count() * config_.hidden_size;
  }

  // Every projection, in execution order (the quantization points).
  std::vector<const Linear*> linears() const;

  // A copy sharing every weight it does not replace: fn(linear) returns a
  // new float32 weight or nullopt (llama_model.h's with_weights).
  BertModel with_weights(const std::function<std::optional<std::vector<float>>(const Linear&)>& fn) const;
  // A copy whose forward applies `plan` (Linear inputs and attention
  // points; an encoder has no KV cache, so a plan with one is kUsage).
  // Every point quantizes each sentence's rows on their own, so a
  // sentence's embedding never depends on the rest of its batch.
  BertModel with_plan(std::shared_ptr<const QuantPlan> plan) const;
  const QuantPlan* plan() const noexcept { return plan_.get(); }

 private:
  struct Layer {
    Linear query, key, value, attn_out, intermediate, output;
    std::vector<float> ln1_gamma, ln1_beta, ln2_gamma, ln2_beta;
  };

  void embed_tokens(std::span<const std::vector<int32_t>> sentences, float* h, int threads) const;

  BertConfig config_;
  std::shared_ptr<const std::vector<float>> word_;  // shared by copies
  std::vector<float> position_, token_type_, emb_ln_gamma_, emb_ln_beta_;
  std::vector<Layer> layers_;
  std::shared_ptr<const QuantPlan> plan_;
};

}  // namespace lowbit
