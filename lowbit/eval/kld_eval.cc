#include "lowbit/eval/kld_eval.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <functional>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/model/llama_model.h"

namespace lowbit {
namespace {

void check_vocab(const LlamaModel& m, int64_t vocab, const char* what) {
  if (m.config().vocab_size != vocab) {
    fail_input(fmt::format("the models' vocabularies differ: a model has {} tokens, the {} {}", m.config().vocab_size,
                           what, vocab));
  }
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

// The loop both references share: per chunk, the reference's rows (from
// `base_rows`, called once per chunk in order), then every model's
// comparison with them.
KldEvalResult compare_chunks(std::span<const LlamaModel* const> models, std::span<const int32_t> tokens,
                             int64_t chunks, int64_t ctx, int64_t vocab, const KldEvalOptions& opt,
                             const std::function<const uint16_t*(int64_t c, std::span<const int32_t> chunk)>& base_rows) {
  for (const LlamaModel* m : models) check_vocab(*m, vocab, "reference has");
  KldEvalResult res;
  res.models.resize(models.size());
  res.chunks = chunks;
  res.ctx = ctx;
  std::vector<KvCache> caches;
  for (const LlamaModel* m : models) caches.push_back(m->new_cache(ctx));  // refuses a ctx beyond the model's
  std::vector<int32_t> input;
  std::vector<float> logits;
  const auto t0 = std::chrono::steady_clock::now();
  for (int64_t c = 0; c < chunks; ++c) {
    const auto chunk = tokens.subspan(static_cast<size_t>(c * ctx), static_cast<size_t>(ctx));
    const uint16_t* rows = base_rows(c, chunk);
    for (size_t i = 0; i < models.size(); ++i) {
      chunk_logits(*models[i], chunk, opt.bos, caches[i], input, logits, opt.threads);
      compare_chunk(logits, vocab, rows, chunk, opt.threads, res.models[i]);
    }
    if (opt.on_chunk) opt.on_chunk(c + 1, chunks, seconds_since(t0));
  }
  res.seconds = seconds_since(t0);
  return res;
}

}  // namespace

KldEvalResult kl_divergence(const LlamaModel& base, std::span<const LlamaModel* const> models,
                            std::span<const int32_t> tokens, const KldEvalOptions& opt, KldBaseWriter* save) {
  const int64_t ctx = opt.ctx, vocab = base.config().vocab_size;
  const int64_t chunks = count_chunks(static_cast<int64_t>(tokens.size()), ctx, opt.max_chunks);
  const int64_t first = ctx / 2, rows = ctx - 1 - first, nv = kld_row_size(vocab);
  KvCache cache = base.new_cache(ctx);
  std::vector<int32_t> input;
  std::vector<float> logits;
  std::vector<uint16_t> base_rows(static_cast<size_t>(rows * nv));
  return compare_chunks(models, tokens, chunks, ctx, vocab, opt, [&](int64_t, std::span<const int32_t> chunk) {
    chunk_logits(base, chunk, opt.bos, cache, input, logits, opt.threads);
    ThreadPool::global().parallel_for(static_cast<size_t>(rows), opt.threads, [&](size_t r) {
      encode_log_probs(logits.data() + r * static_cast<size_t>(vocab), vocab,
                       chunk[static_cast<size_t>(first) + r + 1], base_rows.data() + r * nv);
    });
    if (save) save->write_chunk(base_rows);
    return base_rows.data();
  });
}

KldEvalResult kl_divergence(KldBaseReader& base, std::span<const LlamaModel* const> models, const KldEvalOptions& opt) {
  const int64_t chunks = opt.max_chunks < 0 ? base.n_chunk() : std::min(opt.max_chunks, base.n_chunk());
  std::vector<uint16_t> base_rows;
  return compare_chunks(models, base.tokens(), chunks, base.n_ctx(), base.n_vocab(), opt,
                        [&](int64_t, std::span<const int32_t>) {
                          base.read_chunk(base_rows);
                          return base_rows.data();
                        });
}

}  // namespace lowbit
