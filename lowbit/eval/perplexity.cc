#include "lowbit/eval/perplexity.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/model/llama_model.h"

namespace lowbit {

double NllStats::perplexity() const noexcept { return std::exp(mean()); }

double NllStats::perplexity_error() const noexcept {
  if (count < 2) return 0.0;
  const double m = mean();
  const double var = sum_sq / static_cast<double>(count) - m * m;
  return var > 0 ? std::sqrt(var / static_cast<double>(count - 1)) * perplexity() : 0.0;
}

double negative_log_likelihood(const float* logits, int64_t vocab, int32_t target) {
  float max = logits[0];
  for (int64_t i = 1; i < vocab; ++i) max = std::max(max, logits[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - static_cast<double>(max));
  return -(static_cast<double>(logits[target]) - static_cast<double>(max) - std::log(sum));
}

int64_t count_chunks(int64_t n_tokens, int64_t ctx, int64_t max_chunks) {
  if (ctx < 4) fail_usage(fmt::format("a context of {} tokens leaves nothing to score; use at least 4", ctx));
  if (n_tokens < 2 * ctx) {
    fail_input(fmt::format("you need at least {} tokens to evaluate with a context of {}; the text tokenizes to "
                           "only {} tokens",
                           2 * ctx, ctx, n_tokens));
  }
  return max_chunks < 0 ? n_tokens / ctx : std::min(max_chunks, n_tokens / ctx);
}

void run_chunk(const LlamaModel& model, std::span<const int32_t> chunk, int32_t bos, KvCache& cache,
               std::vector<int32_t>& input, int64_t logits_from, std::vector<float>* logits, int threads,
               LinearInputObserver* observer) {
  const auto ctx = static_cast<int64_t>(chunk.size());
  input.assign(chunk.begin(), chunk.end());
  if (bos >= 0) input[0] = bos;
  cache.clear();
  float* out = nullptr;
  if (logits_from < ctx) {
    logits->resize(static_cast<size_t>((ctx - logits_from) * model.config().vocab_size));
    out = logits->data();
  }
  model.forward(input, cache, logits_from, out, threads, observer);
}

void chunk_logits(const LlamaModel& model, std::span<const int32_t> chunk, int32_t bos, KvCache& cache,
                  std::vector<int32_t>& input, std::vector<float>& logits, int threads) {
  run_chunk(model, chunk, bos, cache, input, static_cast<int64_t>(chunk.size()) / 2, &logits, threads);
}

PerplexityResult perplexity(const LlamaModel& model, std::span<const int32_t> tokens, const PerplexityOptions& opt) {
  const int64_t ctx = opt.ctx;
  if (ctx > model.config().context_length) {
    fail_input(fmt::format("a context of {} tokens is longer than the model's context length {}", ctx,
                           model.config().context_length));
  }
  const auto n_tokens = static_cast<int64_t>(tokens.size());
  const int64_t chunks = count_chunks(n_tokens, ctx, opt.max_chunks);
  const int64_t first = ctx / 2;
  const int64_t scored = ctx - first - 1;  // the last position predicts nothing inside the chunk
  const int64_t vocab = model.config().vocab_size;

  PerplexityResult res;
  res.text_tokens = n_tokens;
  KvCache cache = model.new_cache(ctx);
  std::vector<float> logits;
  std::vector<int32_t> input;
  std::vector<double> nll(static_cast<size_t>(scored));
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < chunks; ++c) {
    const auto chunk = tokens.subspan(static_cast<size_t>(c * ctx), static_cast<size_t>(ctx));
    chunk_logits(model, chunk, opt.bos, cache, input, logits, opt.threads);
    // One row per task; the sums run in row order afterwards.
    ThreadPool::global().parallel_for(static_cast<size_t>(scored), opt.threads, [&](size_t r) {
      nll[r] = negative_log_likelihood(logits.data() + r * static_cast<size_t>(vocab), vocab,
                                       chunk[static_cast<size_t>(first) + r + 1]);
    });
    for (double v : nll) res.nll.add(v);
    if (opt.on_logits) opt.on_logits(c, logits.data(), scored, vocab);
    if (opt.on_chunk) {
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      opt.on_chunk(PerplexityProgress{c + 1, chunks, res.nll, s});
    }
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  res.chunks = chunks;
  res.evaluated_tokens = chunks * ctx;
  res.ppl = res.nll.perplexity();
  res.ppl_error = res.nll.perplexity_error();
  return res;
}

}  // namespace lowbit
