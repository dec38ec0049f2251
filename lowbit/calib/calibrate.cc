#include "lowbit/calib/calibrate.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "lowbit/core/error.h"
#include "lowbit/eval/perplexity.h"
#include "lowbit/model/bert_model.h"
#include "lowbit/model/llama_model.h"

namespace lowbit {

CalibrateResult calibrate(const LlamaModel& model, std::span<const int32_t> tokens, const CalibrateOptions& opt,
                          ActivationRecorder& recorder) {
  const int64_t ctx = opt.ctx;
  if (ctx < 1) fail_usage(fmt::format("a context of {} tokens", ctx));
  if (ctx > model.config().context_length) {
    fail_input(fmt::format("a context of {} tokens is longer than the model's context length {}", ctx,
                           model.config().context_length));
  }
  // Whole chunks only (llama-imatrix's rule too; it also asks for two, but
  // nothing here needs a second).
  const int64_t whole = static_cast<int64_t>(tokens.size()) / ctx;
  const int64_t chunks = opt.max_chunks < 0 ? whole : std::min(opt.max_chunks, whole);
  if (chunks < 1) {
    fail_input(fmt::format("the calibration text has {} tokens: at least one chunk of {} is needed",
                           tokens.size(), ctx));
  }
  KvCache cache = model.new_cache(ctx);
  std::vector<int32_t> input;
  const auto t0 = std::chrono::steady_clock::now();
  CalibrateResult r;
  for (int64_t c = 0; c < chunks; ++c) {
    // No logits: the LM head is not recorded.
    run_chunk(model, tokens.subspan(static_cast<size_t>(c * ctx), static_cast<size_t>(ctx)), opt.bos, cache, input,
              /*logits_from=*/ctx, nullptr, opt.threads, &recorder);
    r.chunks = c + 1;
    r.tokens = r.chunks * ctx;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (opt.on_chunk) opt.on_chunk(r.chunks, chunks, r.seconds);
  }
  return r;
}

CalibrateResult calibrate(const BertModel& model, std::span<const std::vector<int32_t>> sentences,
                          const CalibrateOptions& opt, ActivationRecorder& recorder) {
  if (opt.batch < 1) fail_usage(fmt::format("a batch of {} sentences", opt.batch));
  if (sentences.empty()) fail_input("the calibration text has no sentences");
  const auto n = static_cast<int64_t>(sentences.size());
  const int64_t whole = (n + opt.batch - 1) / opt.batch;
  const int64_t batches = opt.max_chunks < 0 ? whole : std::min(opt.max_chunks, whole);
  std::vector<float> hidden;
  const auto t0 = std::chrono::steady_clock::now();
  CalibrateResult r;
  for (int64_t b = 0; b < batches; ++b) {
    const int64_t first = b * opt.batch, count = std::min(opt.batch, n - first);
    const auto batch = sentences.subspan(static_cast<size_t>(first), static_cast<size_t>(count));
    model.forward(batch, hidden, opt.threads, &recorder);
    for (const auto& s : batch) r.tokens += static_cast<int64_t>(s.size());
    r.chunks = b + 1;
    r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (opt.on_chunk) opt.on_chunk(r.chunks, batches, r.seconds);
  }
  return r;
}

Imatrix to_imatrix(const ActivationRecorder& recorder, std::vector<std::string> datasets, uint32_t chunk_count,
                   uint32_t chunk_size) {
  Imatrix m;
  m.datasets = std::move(datasets);
  m.chunk_count = chunk_count;
  m.chunk_size = chunk_size;
  if (recorder.options().column_percentiles) m.column_percentile_levels = recorder.options().percentile_levels;
  for (const auto& [name, s] : recorder.all()) {
    ImatrixEntry e;
    e.cols = static_cast<int64_t>(s.sum_sq.size());
    e.in_sum2.assign(s.sum_sq.begin(), s.sum_sq.end());
    e.counts = {static_cast<float>(s.rows)};
    e.in_absmax = s.absmax;
    e.in_hist = s.hist.counts();
    if (s.gram) {
      // The upper triangle, mirrored, rounded once to float32.
      const auto c = static_cast<size_t>(e.cols);
      e.in_gram.resize(c * c);
      for (size_t i = 0; i < c; ++i) {
        for (size_t j = i; j < c; ++j) e.in_gram[i * c + j] = e.in_gram[j * c + i] = static_cast<float>((*s.gram)[i * c + j]);
      }
    }
    if (s.col_hist) {
      // Capped at the exact maximum: a bin's upper edge (infinity for the
      // top bin) can lie above every value in it.
      const auto c = static_cast<size_t>(e.cols);
      const std::vector<float>& levels = m.column_percentile_levels;
      e.in_pct.resize(levels.size() * c);
      for (size_t l = 0; l < levels.size(); ++l) {
        for (size_t j = 0; j < c; ++j) {
          e.in_pct[l * c + j] = std::min(s.col_hist->percentile(static_cast<int64_t>(j), levels[l]), s.absmax[j]);
        }
      }
    }
    m.entries.emplace(name, std::move(e));
  }
  return m;
}

}  // namespace lowbit
