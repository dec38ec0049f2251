// `lowbit study model`: every combination of a weight scheme, an
// activation setting and a KV-cache setting on a real language model,
// measured by the model's own quality against the unquantized model.
//
// For each combination the model's decoder-block Linears take the weight
// scheme (fake-quantized through the format engine, the scheme's own scale
// rule; the embeddings and the LM head stay as stored, as quantize's
// default policy keeps them), a QuantPlan takes the activation and KV
// settings (PlanRules::shorthand), and the KL divergence to the model as
// loaded is measured llama.cpp's way (eval/kld_eval.h). All combinations
// run chunk by chunk next to one reference run; copies share every weight
// they do not change, so memory grows by one float32 copy of the block
// weights per weight scheme.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/eval/kl_divergence.h"
#include "lowbit/model/quant_plan.h"

namespace lowbit {

class BertModel;
class LlamaModel;
struct SentencePipeline;

struct ModelStudySpec {
  std::vector<std::string> weights;  // "none" (as stored) or a scheme
  std::vector<std::string> acts;     // "none", a scheme, or "<scheme>@static"
  std::vector<std::string> kv;       // "none" or a KV spec (kv_quant.h)
  std::string attn = "none";         // every attention point (Q, K, P, V), all combinations
  int64_t ctx = 512;
  int64_t max_chunks = -1;
  int32_t bos = -1;
  int threads = 1;
  // For "@static" settings (null: refused).
  QuantPlan::StaticAmax static_amax;
  std::function<void(int64_t done, int64_t chunks, double seconds)> on_chunk;
};

struct ModelStudyRow {
  std::string weights, acts, kv;
  double bits_per_weight = 0;     // block Linears, codes + scales as stored
  double bits_per_act = 0;        // Linear inputs (32 where unquantized)
  double kv_bytes_per_token = 0;  // after a chunk of ctx positions
  KldSummary quality;             // language models
  // Embedding models: the cosine of each sentence's embedding with the
  // model's own as loaded (mean, worst), and paraphrase retrieval.
  double cosine_mean = 0, cosine_min = 0, recall_at_1 = 0, mrr = 0;
};

struct ModelStudyResult {
  std::vector<ModelStudyRow> rows;  // weights-major, then acts, then kv
  int64_t chunks = 0, ctx = 0;
  double seconds = 0;
};

// Every setting is parsed and resolved against the model before any
// forward runs: kUsage naming the bad one.
ModelStudyResult study_model(const LlamaModel& model, std::span<const int32_t> tokens, const ModelStudySpec& spec);

// The same for a BERT embedding model: each combination embeds `queries`
// and `candidates` (token ids, already truncated as the pipeline does) in
// batches of `batch`; fidelity is the cosine with the model's own
// embeddings over all sentences, retrieval ranks each query's candidate
// (row i matches row i) among all candidates. KV settings must be "none".
// `on_chunk` is called after each combination (done, combinations).
ModelStudyResult study_encoder(const BertModel& model, const SentencePipeline& pipeline,
                               std::span<const std::vector<int32_t>> queries,
                               std::span<const std::vector<int32_t>> candidates, size_t batch,
                               const ModelStudySpec& spec);

// The indices of rows on the Pareto front of (x, y), both smaller-is-better:
// no other row is at most as large in both and smaller in one. Sorted by x.
std::vector<size_t> pareto_front(const std::vector<double>& x, const std::vector<double>& y);

}  // namespace lowbit
