// The KL divergence of models to a reference over a text, llama.cpp's way
// (`llama-perplexity --kl-divergence-base` then `--kl-divergence`): the
// text cut into chunks of ctx tokens, BOS first where the model adds BOS,
// the second half of each chunk compared row by row with the reference's
// 16-bit log-probabilities (lowbit/eval/kl_divergence.h).
//
// The reference is a model run here, chunk by chunk next to the others
// (nothing as large as a base file need be held), or a base file written
// by llama.cpp or by lowbit. Rows are compared in parallel and their values
// added in row order: the statistics are the same for every thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "lowbit/eval/kl_divergence.h"

namespace lowbit {

class LlamaModel;

struct KldEvalOptions {
  int64_t ctx = 512;
  int64_t max_chunks = -1;  // < 0: every whole chunk
  int32_t bos = -1;         // the BOS id when the models add BOS, else -1
  int threads = 1;
  // After each chunk: chunks done, chunks in all, seconds so far.
  std::function<void(int64_t done, int64_t chunks, double seconds)> on_chunk;
};

struct KldEvalResult {
  std::vector<KldStats> models;  // one per model, in order
  int64_t chunks = 0, ctx = 0;
  double seconds = 0;
};

// Reference = `base`, run over `tokens`. `save`, if not null, receives the
// base file (the caller commits it). kInput for a ctx beyond a model's
// context, fewer than 2 * ctx tokens, or vocabularies of different sizes.
KldEvalResult kl_divergence(const LlamaModel& base, std::span<const LlamaModel* const> models,
                            std::span<const int32_t> tokens, const KldEvalOptions& opt, KldBaseWriter* save);

// Reference = a base file; its tokens and context are used (opt.ctx is
// ignored), max_chunks still applies. kInput if a model's vocabulary size
// differs from the file's.
KldEvalResult kl_divergence(KldBaseReader& base, std::span<const LlamaModel* const> models, const KldEvalOptions& opt);

}  // namespace lowbit
