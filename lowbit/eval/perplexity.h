// Perplexity of a causal language model over a text, by llama.cpp's
// convention (its tools/perplexity, the default mode), so that numbers
// compare with llama-perplexity's:
//
//   - the text is tokenized whole (the caller does it, with the model's
//     add_special, as llama.cpp's common_tokenize(..., true));
//   - it is cut into floor(tokens / ctx) chunks of ctx tokens (at most
//     max_chunks), the rest dropped; each chunk runs from an empty KV
//     cache;
//   - if the model adds BOS, a chunk's first token is replaced by BOS;
//   - of each chunk, only the second half is scored: the logits of
//     positions first = ctx/2 .. ctx-2 predict tokens first+1 .. ctx-1, so
//     every scored token has at least ctx/2 tokens of context;
//   - ppl = exp(mean NLL) over all scored tokens, and its uncertainty
//     ppl * sqrt((mean(NLL^2) - mean(NLL)^2) / (count - 1)).
// The log-softmax is computed in double (llama.cpp sums exp in double
// too), each row on its own, and the rows summed in order: the result is
// the same for every thread count.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

namespace lowbit {

class LlamaModel;
class KvCache;
class LinearInputObserver;

// Sums of negative log-likelihoods: a small mergeable statistic.
struct NllStats {
  double sum = 0, sum_sq = 0;
  int64_t count = 0;

  void add(double nll) noexcept {
    sum += nll;
    sum_sq += nll * nll;
    ++count;
  }
  void merge(const NllStats& o) noexcept {
    sum += o.sum;
    sum_sq += o.sum_sq;
    count += o.count;
  }
  double mean() const noexcept { return count ? sum / static_cast<double>(count) : 0.0; }
  double perplexity() const noexcept;
  // llama.cpp's uncertainty of the perplexity (0 when it cannot be had).
  double perplexity_error() const noexcept;
};

// -log softmax(logits)[target], in double: the maximum subtracted, exp
// summed in index order.
double negative_log_likelihood(const float* logits, int64_t vocab, int32_t target);

struct PerplexityProgress {
  int64_t chunk = 0;   // 1-based
  int64_t chunks = 0;  // in all
  NllStats so_far;
  double seconds = 0;  // since the start of the evaluation
};

struct PerplexityOptions {
  int64_t ctx = 512;
  int64_t max_chunks = -1;  // < 0: every whole chunk
  int32_t bos = -1;         // the BOS id when the model adds BOS, else -1
  int threads = 1;
  // Called after each chunk (for a progress line).
  std::function<void(const PerplexityProgress&)> on_chunk;
  // Called after each chunk with the scored logits, rows first .. ctx-2
  // ([ctx - 1 - ctx/2, vocab]), for a dump or a KL-divergence reference.
  std::function<void(int64_t chunk, const float* logits, int64_t rows, int64_t vocab)> on_logits;
};

struct PerplexityResult {
  NllStats nll;
  double ppl = 0, ppl_error = 0;
  int64_t chunks = 0;
  int64_t text_tokens = 0;       // the whole text
  int64_t evaluated_tokens = 0;  // chunks * ctx: what the model ran over
  double seconds = 0;            // the forward passes and scoring, not loading
};

// llama.cpp's chunking, shared by perplexity and KL divergence: the number
// of chunks of ctx tokens in a text of n_tokens (all whole ones, at most
// max_chunks when that is >= 0). ErrorKind::kUsage for ctx < 4 (nothing
// would be scored), kInput for fewer than 2 * ctx tokens (llama.cpp's rule
// and message).
int64_t count_chunks(int64_t n_tokens, int64_t ctx, int64_t max_chunks);

// One chunk through `model` from an empty `cache`, its first token replaced
// by `bos` when bos >= 0 (llama.cpp's chunking, shared by perplexity, KL
// divergence and calibration): `logits` receives the rows of positions
// logits_from .. ctx-1 (none when logits_from == ctx, then `logits` may be
// null), `observer` sees every Linear's input. `input` is scratch.
void run_chunk(const LlamaModel& model, std::span<const int32_t> chunk, int32_t bos, KvCache& cache,
               std::vector<int32_t>& input, int64_t logits_from, std::vector<float>* logits, int threads,
               LinearInputObserver* observer = nullptr);
// run_chunk with the logits of positions ctx/2 .. ctx-1 ([ctx - ctx/2, vocab]).
void chunk_logits(const LlamaModel& model, std::span<const int32_t> chunk, int32_t bos, KvCache& cache,
                  std::vector<int32_t>& input, std::vector<float>& logits, int threads);

// ErrorKind::kUsage for ctx < 4 (nothing would be scored); kInput for a
// ctx beyond the model's context length, or a text of fewer than 2 * ctx
// tokens (llama.cpp's rule and message).
PerplexityResult perplexity(const LlamaModel& model, std::span<const int32_t> tokens, const PerplexityOptions& opt);

}  // namespace lowbit
