#include "lowbit/pipeline/model_study.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <optional>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/eval/kld_eval.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/quantizer.h"

namespace lowbit {

namespace {

bool is_block_linear(const LlamaModel& m, const Linear& lin) { return &lin != &m.lm_head(); }

// Bits per weight over the block Linears. "none": as the model holds
// them, float32 (a GGUF's stored block bits are the reference's, and the
// study compares schemes applied to the same float32 values).
double weight_bits(const LlamaModel& m, const std::optional<Scheme>& scheme) {
  double bits = 0, count = 0;
  for (const Linear* lin : m.linears()) {
    if (!is_block_linear(m, *lin)) continue;
    const double n = static_cast<double>(lin->weight().size());
    count += n;
    if (!scheme) {
      bits += 32.0 * n;
      continue;
    }
    const QuantizedTensor::Bits b =
        scheme_bits(*scheme, {static_cast<uint64_t>(lin->out_features()), static_cast<uint64_t>(lin->in_features())});
    bits += static_cast<double>(b.total());
  }
  return count > 0 ? bits / count : 0;
}

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

}  // namespace

std::vector<size_t> pareto_front(const std::vector<double>& x, const std::vector<double>& y) {
  std::vector<size_t> order(x.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b] || (x[a] == x[b] && y[a] < y[b]); });
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
  if (spec.weights.empty() || spec.acts.empty() || spec.kv.empty()) {
    fail_usage("a model study needs at least one weight, activation and KV setting (\"none\" is one)");
  }
  // Everything is checked before the first forward.
  std::vector<std::optional<Scheme>> weight_schemes;
  for (const std::string& w : spec.weights) {
    if (w == "none") {
      weight_schemes.emplace_back();
      continue;
    }
    Scheme s = parse_scheme(w);
    if (s.outliers.kind != OutlierPolicy::Kind::kNone) {
      fail_usage(fmt::format("weight scheme '{}': the study fake-quantizes weights without outliers", w));
    }
    weight_schemes.push_back(std::move(s));
  }
  const std::vector<const Linear*> linears = model.linears();
  std::vector<std::shared_ptr<const QuantPlan>> plans;
  for (const std::string& a : spec.acts) {
    for (const std::string& k : spec.kv) {
      plans.push_back(std::make_shared<const QuantPlan>(QuantPlan::resolve(
          PlanRules::shorthand(a, k), linears, model.config().layers, model.config().kv_dim(), spec.static_amax)));
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
                                  std::vector<float> w(lin.weight().size());
                                  QuantizeOptions o;
                                  o.threads = spec.threads;
                                  fakequant_tensor(TensorView(lin.weight().data(),
                                                              {static_cast<uint64_t>(lin.out_features()),
                                                               static_cast<uint64_t>(lin.in_features())}),
                                                   w.data(), *ws, o);
                                  return w;
                                });
    const double wbits = weight_bits(model, ws);
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

}  // namespace lowbit
