#include "lowbit/pipeline/model_study.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <memory>
#include <numeric>
#include <optional>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/eval/embedding_eval.h"
#include "lowbit/eval/kld_eval.h"
#include "lowbit/model/bert_model.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/quantizer.h"

namespace lowbit {

namespace {

bool is_block_linear(const LlamaModel& m, const Linear& lin) { return &lin != &m.lm_head(); }

// What a chunk of ctx positions leaves in the cache: the bits depend on
// the spec and the positions, not on the values.
double kv_bytes_per_token(const LlamaModel& m, int64_t ctx, int threads) {
  KvCache cache = m.new_cache(ctx);
  for (int64_t l = 0; l < cache.layers(); ++l) {
    cache.rows(l, threads);
    cache.store(l, ctx, threads);
  }
  cache.advance(ctx);
  return cache.bytes_per_token();
}

std::vector<std::optional<Scheme>> parse_weight_schemes(const std::vector<std::string>& weights) {
  std::vector<std::optional<Scheme>> out;
  for (const std::string& w : weights) {
    if (w == "none") {
      out.emplace_back();
      continue;
    }
    Scheme s = parse_scheme(w);
    if (s.outliers.kind != OutlierPolicy::Kind::kNone) {
      fail_usage(fmt::format("weight scheme '{}': the study fake-quantizes weights without outliers", w));
    }
    out.push_back(std::move(s));
  }
  return out;
}

void check_spec(const ModelStudySpec& spec) {
  if (spec.weights.empty() || spec.acts.empty() || spec.kv.empty()) {
    fail_usage("a model study needs at least one weight, activation and KV setting (\"none\" is one)");
  }
}

// A Linear's weight through a scheme (fake-quantized: the values the
// scheme stores).
std::vector<float> fakequant_weight(const Linear& lin, const Scheme& scheme, int threads) {
  std::vector<float> w(lin.weight().size());
  QuantizeOptions o;
  o.threads = threads;
  fakequant_tensor(TensorView(lin.weight().data(), {static_cast<uint64_t>(lin.out_features()),
                                                    static_cast<uint64_t>(lin.in_features())}),
                   w.data(), scheme, o);
  return w;
}

// Bits per weight of a scheme over these Linears, codes and scales as
// stored; "none" is 32: the float32 values the model holds, which every
// scheme of the study starts from (a GGUF's own block bits are the
// reference's, not a setting of the study).
double weight_bits(const std::vector<const Linear*>& linears, const std::optional<Scheme>& scheme) {
  double bits = 0, count = 0;
  for (const Linear* lin : linears) {
    const double n = static_cast<double>(lin->weight().size());
    count += n;
    bits += !scheme ? 32.0 * n
                    : static_cast<double>(scheme_bits(*scheme, {static_cast<uint64_t>(lin->out_features()),
                                                                static_cast<uint64_t>(lin->in_features())})
                                              .total());
  }
  return count > 0 ? bits / count : 0;
}

// The embeddings of `sentences` in batches, [n, dim].
std::vector<float> embed_all(const BertModel& m, const SentencePipeline& p, std::span<const std::vector<int32_t>> s,
                             size_t batch, int threads) {
  std::vector<float> out;
  for (size_t b0 = 0; b0 < s.size(); b0 += batch) {
    const std::vector<float> e = m.embed(s.subspan(b0, std::min(batch, s.size() - b0)), p, threads);
    out.insert(out.end(), e.begin(), e.end());
  }
  return out;
}

}  // namespace

std::vector<size_t> pareto_front(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return x[a] < x[b] || (x[a] == x[b] && y[a] < y[b]); });
  std::vector<size_t> front;
  double best = INFINITY;
  for (size_t i : order) {
    if (!std::isfinite(x[i]) || !std::isfinite(y[i])) continue;
    if (y[i] < best) {
      front.push_back(i);
      best = y[i];
    }
  }
  return front;
}

ModelStudyResult study_model(const LlamaModel& model, std::span<const int32_t> tokens, const ModelStudySpec& spec) {
  check_spec(spec);
  // Everything is checked before the first forward.
  const std::vector<std::optional<Scheme>> weight_schemes = parse_weight_schemes(spec.weights);
  const std::vector<const Linear*> linears = model.linears();
  std::vector<std::shared_ptr<const QuantPlan>> plans;
  for (const std::string& a : spec.acts) {
    for (const std::string& k : spec.kv) {
      plans.push_back(std::make_shared<const QuantPlan>(QuantPlan::resolve(
          PlanRules::shorthand(a, k, spec.attn), linears, model.config().layers, model.config().kv_dim(), spec.static_amax)));
    }
  }

  ModelStudyResult res;
  std::vector<LlamaModel> variants;
  variants.reserve(weight_schemes.size() * plans.size());
  for (size_t wi = 0; wi < weight_schemes.size(); ++wi) {
    const std::optional<Scheme>& ws = weight_schemes[wi];
    LlamaModel weighted = !ws ? model
                              : model.with_weights([&](const Linear& lin) -> std::optional<std::vector<float>> {
                                  if (!is_block_linear(model, lin)) return std::nullopt;
                                  return fakequant_weight(lin, *ws, spec.threads);
                                });
    std::vector<const Linear*> blocks = linears;
    blocks.pop_back();  // the LM head, kept as stored
    const double wbits = weight_bits(blocks, ws);
    size_t pi = 0;
    for (const std::string& a : spec.acts) {
      for (const std::string& k : spec.kv) {
        const std::shared_ptr<const QuantPlan>& plan = plans[pi++];
        variants.push_back(weighted.with_plan(plan));
        ModelStudyRow row;
        row.weights = spec.weights[wi];
        row.acts = a;
        row.kv = k;
        row.bits_per_weight = wbits;
        row.bits_per_act = plan->input_bits(linears);
        row.kv_bytes_per_token = kv_bytes_per_token(variants.back(), spec.ctx, spec.threads);
        res.rows.push_back(std::move(row));
      }
    }
  }
  std::vector<const LlamaModel*> ptrs;
  for (const LlamaModel& v : variants) ptrs.push_back(&v);
  KldEvalOptions opt;
  opt.ctx = spec.ctx;
  opt.max_chunks = spec.max_chunks;
  opt.bos = spec.bos;
  opt.threads = spec.threads;
  opt.on_chunk = spec.on_chunk;
  const KldEvalResult r = kl_divergence(model, ptrs, tokens, opt, nullptr);
  for (size_t i = 0; i < res.rows.size(); ++i) res.rows[i].quality = summarize(r.models[i]);
  res.chunks = r.chunks;
  res.ctx = r.ctx;
  res.seconds = r.seconds;
  return res;
}


ModelStudyResult study_encoder(const BertModel& model, const SentencePipeline& pipeline,
                               std::span<const std::vector<int32_t>> queries,
                               std::span<const std::vector<int32_t>> candidates, size_t batch,
                               const ModelStudySpec& spec) {
  check_spec(spec);
  if (queries.size() != candidates.size() || queries.empty()) {
    fail_usage("an embedding study needs as many queries as candidates, at least one");
  }
  if (batch == 0) fail_usage("an embedding study needs a positive batch size");
  for (const std::string& k : spec.kv) {
    if (k != "none") fail_usage(fmt::format("--kv {}: an encoder has no KV cache (give none)", k));
  }
  const std::vector<std::optional<Scheme>> weight_schemes = parse_weight_schemes(spec.weights);
  const std::vector<const Linear*> linears = model.linears();
  const int64_t layers = static_cast<int64_t>(linears.size() / 6);
  std::vector<std::shared_ptr<const QuantPlan>> plans;
  for (const std::string& a : spec.acts) {
    plans.push_back(std::make_shared<const QuantPlan>(
        QuantPlan::resolve(PlanRules::shorthand(a, "none", spec.attn), linears, layers, 0, spec.static_amax)));
  }
  const auto t0 = std::chrono::steady_clock::now();
  const auto embed_both = [&](const BertModel& m) {
    std::vector<float> e = embed_all(m, pipeline, candidates, batch, spec.threads);
    const std::vector<float> q = embed_all(m, pipeline, queries, batch, spec.threads);
    e.insert(e.end(), q.begin(), q.end());
    return e;  // [candidates; queries]
  };
  const std::vector<float> base = embed_both(model);
  const int64_t n = static_cast<int64_t>(queries.size());
  const int64_t dim = static_cast<int64_t>(base.size()) / (2 * n);
  ModelStudyResult res;
  const int64_t combos = static_cast<int64_t>(weight_schemes.size() * plans.size());
  for (size_t wi = 0; wi < weight_schemes.size(); ++wi) {
    const std::optional<Scheme>& ws = weight_schemes[wi];
    const BertModel weighted =
        !ws ? model : model.with_weights([&](const Linear& lin) { return std::optional(fakequant_weight(lin, *ws, spec.threads)); });
    for (size_t ai = 0; ai < plans.size(); ++ai) {
      const std::vector<float> e = embed_both(weighted.with_plan(plans[ai]));
      ModelStudyRow row;
      row.weights = spec.weights[wi];
      row.acts = spec.acts[ai];
      row.kv = "none";
      row.bits_per_weight = weight_bits(linears, ws);
      row.bits_per_act = plans[ai]->input_bits(linears);
      const CosineStats c = row_cosines(e.data(), base.data(), 2 * n, dim);
      row.cosine_mean = c.mean();
      row.cosine_min = c.min;
      const RetrievalStats r = retrieval_stats(retrieval_ranks(e.data() + n * dim, e.data(), n, dim, spec.threads));
      row.recall_at_1 = r.recall_at_1;
      row.mrr = r.mrr;
      res.rows.push_back(std::move(row));
      if (spec.on_chunk) {
        spec.on_chunk(static_cast<int64_t>(res.rows.size()), combos,
                      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
      }
    }
  }
  res.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return res;
}

}  // namespace lowbit
