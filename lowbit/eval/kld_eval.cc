#include "lowbit/eval/kld_eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/model/llama_model.h"

namespace lowbit {
namespace {

void check_vocab(const LlamaModel& m, int64_t vocab, const char* what) {
  if (m.config().vocab_size != vocab) {
    fail_input(fmt::format("the models' vocabularies differ: {} has {} tokens, the {} {}", "a model",
                           m.config().vocab_size, what, vocab));
  }
}

// One chunk through a model: the logits of positions ctx/2 .. ctx-1.
void chunk_logits(const LlamaModel& m, std::span<const int32_t> chunk, int32_t bos, std::vector<int32_t>& input,
                  std::vector<float>& logits, int threads) {
  const auto ctx = static_cast<int64_t>(chunk.size());
  input.assign(chunk.begin(), chunk.end());
  if (bos >= 0) input[0] = bos;
  KvCache cache = m.new_cache(ctx);
  logits.resize(static_cast<size_t>((ctx - ctx / 2) * m.config().vocab_size));
  m.forward(input, cache, ctx / 2, logits.data(), threads);
}

// Compares every scored row of one chunk and adds the rows in order.
void compare_chunk(const std::vector<float>& logits, int64_t vocab, const uint16_t* base_rows,
                   std::span<const int32_t> chunk, int threads, KldStats& stats) {
  const auto ctx = static_cast<int64_t>(chunk.size());
  const int64_t first = ctx / 2, rows = ctx - 1 - first, nv = kld_row_size(vocab);
  std::vector<TokenKld> per_row(static_cast<size_t>(rows));
  ThreadPool::global().parallel_for(static_cast<size_t>(rows), threads, [&](size_t r) {
    per_row[r] = compare_log_probs(logits.data() + r * static_cast<size_t>(vocab), vocab, base_rows + r * nv,
                                   chunk[static_cast<size_t>(first) + r + 1]);
  });
  for (const TokenKld& t : per_row) stats.add(t);
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

KldEvalResult kl_divergence(const LlamaModel& base, std::span<const LlamaModel* const> models,
                            std::span<const int32_t> tokens, const KldEvalOptions& opt, KldBaseWriter* save) {
  const int64_t ctx = opt.ctx;
  if (ctx < 4) fail_usage(fmt::format("a context of {} tokens scores nothing: give at least 4", ctx));
  const int64_t vocab = base.config().vocab_size;
  for (const LlamaModel* m : models) check_vocab(*m, vocab, "reference has");
  for (const LlamaModel* m : models) (void)m->new_cache(ctx);  // refuses a ctx beyond the model's
  (void)base.new_cache(ctx);
  const auto n_tokens = static_cast<int64_t>(tokens.size());
  if (n_tokens < 2 * ctx) {
    fail_input(fmt::format("you need at least {} tokens to evaluate with a context of {}; the text tokenizes to "
                           "only {} tokens",
                           2 * ctx, ctx, n_tokens));
  }
  const int64_t chunks = opt.max_chunks < 0 ? n_tokens / ctx : std::min(opt.max_chunks, n_tokens / ctx);
  const int64_t first = ctx / 2, rows = ctx - 1 - first, nv = kld_row_size(vocab);

  KldEvalResult res;
  res.models.resize(models.size());
  res.chunks = chunks;
  res.ctx = ctx;
  std::vector<int32_t> input;
  std::vector<float> logits;
  std::vector<uint16_t> base_rows(static_cast<size_t>(rows * nv));
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < chunks; ++c) {
    const auto chunk = tokens.subspan(static_cast<size_t>(c * ctx), static_cast<size_t>(ctx));
    chunk_logits(base, chunk, opt.bos, input, logits, opt.threads);
    ThreadPool::global().parallel_for(static_cast<size_t>(rows), opt.threads, [&](size_t r) {
      encode_log_probs(logits.data() + r * static_cast<size_t>(vocab), vocab,
                       chunk[static_cast<size_t>(first) + r + 1], base_rows.data() + r * nv);
    });
    if (save) save->write_chunk(base_rows);
    for (size_t i = 0; i < models.size(); ++i) {
      chunk_logits(*models[i], chunk, opt.bos, input, logits, opt.threads);
      compare_chunk(logits, vocab, base_rows.data(), chunk, opt.threads, res.models[i]);
    }
    if (opt.on_chunk) opt.on_chunk(c + 1, chunks, seconds_since(t0));
  }
  res.seconds = seconds_since(t0);
  return res;
}

KldEvalResult kl_divergence(KldBaseReader& base, std::span<const LlamaModel* const> models, const KldEvalOptions& opt) {
  const int64_t ctx = base.n_ctx(), vocab = base.n_vocab();
  for (const LlamaModel* m : models) {
    check_vocab(*m, vocab, "base file has");
    (void)m->new_cache(ctx);
  }
  const int64_t chunks = opt.max_chunks < 0 ? base.n_chunk() : std::min(opt.max_chunks, base.n_chunk());
  KldEvalResult res;
  res.models.resize(models.size());
  res.chunks = chunks;
  res.ctx = ctx;
  std::vector<int32_t> input;
  std::vector<float> logits;
  std::vector<uint16_t> base_rows;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < chunks; ++c) {
    const auto chunk = std::span<const int32_t>(base.tokens()).subspan(static_cast<size_t>(c * ctx),
                                                                       static_cast<size_t>(ctx));
    base.read_chunk(base_rows);
    for (size_t i = 0; i < models.size(); ++i) {
      chunk_logits(*models[i], chunk, opt.bos, input, logits, opt.threads);
      compare_chunk(logits, vocab, base_rows.data(), chunk, opt.threads, res.models[i]);
    }
    if (opt.on_chunk) opt.on_chunk(c + 1, chunks, seconds_since(t0));
  }
  res.seconds = seconds_since(t0);
  return res;
}

}  // namespace lowbit
