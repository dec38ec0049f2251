// `lowbit quantize --eval`: the model-level quality of each output against
// its input, the columns the comparison table and the JSON report gain.
//
// Language models (Llama): perplexity, mean KL divergence and top-1
// agreement of the output against the input on the first chunks of the
// `kjv` corpus, llama.cpp's way (lowbit/eval/kld_eval.h). Embedding models
// (BERT sentence-transformers): mean and worst cosine of the output's
// sentence embeddings to the input's, and paraphrase recall@1 (each WEB
// verse retrieving its KJV verse) for both, on the first verse pairs of
// `kjv-web` (lowbit/eval/embedding_eval.h). docs/evaluation.md lists the
// settings.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace lowbit {
class Checkpoint;
}

namespace lowbit::cli {

struct QuantizeEvalSettings {
  int64_t ctx = 512, chunks = 8;  // language models: 8 x 512 tokens of kjv (2,040 scored)
  int64_t pairs = 500;            // embedding models: 500 KJV/WEB verse pairs (1,000 sentences)
};

struct ModelQuality {
  std::string kind;  // "language" or "embedding"
  // Language models.
  double ppl = 0, ppl_base = 0, kld_mean = 0, same_top = 0;
  int64_t tokens = 0;
  // Embedding models.
  double cosine_mean = 0, cosine_worst = 0, recall_at_1 = 0, recall_at_1_base = 0;
  int64_t sentences = 0;
  double seconds = 0;

  nlohmann::ordered_json to_json() const;
};

class QuantizeEvaluator {
 public:
  // Decides the kind from the input; kUsage, before any work, for a model
  // lowbit does not run or an output it could not load back (`gguf_output`:
  // whether the outputs are GGUF files), kInput for missing corpora.
  QuantizeEvaluator(const std::string& in_path, const Checkpoint& in, bool gguf_output,
                    const QuantizeEvalSettings& settings, int threads);
  ~QuantizeEvaluator();

  const std::string& kind() const noexcept;
  // The quality of the output at `out_path` (a GGUF file or a
  // compressed-tensors directory). The input's own part (its embeddings)
  // is computed once, at the first call.
  ModelQuality evaluate(const std::string& out_path);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace lowbit::cli
