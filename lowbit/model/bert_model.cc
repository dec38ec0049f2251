#include "lowbit/model/bert_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <map>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "lowbit/core/error.h"
#include "lowbit/core/text.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/model/attention.h"
#include "lowbit/model/layer_norm.h"
#include "lowbit/model/pooling.h"

namespace lowbit {

namespace {

// Elements per task of the element-wise steps (residual adds, GELU). Each
// element is independent, so the split changes no result.
constexpr int64_t kElementsPerTask = 1 << 15;

template <typename Fn>
void for_elements(int64_t n, int threads, Fn fn) {
  const int64_t tasks = (n + kElementsPerTask - 1) / kElementsPerTask;
  ThreadPool::global().parallel_for(static_cast<size_t>(tasks), threads, [&](size_t t) {
    const int64_t i0 = static_cast<int64_t>(t) * kElementsPerTask, i1 = std::min(n, i0 + kElementsPerTask);
    fn(i0, i1);
  });
}

// transformers' "gelu": x * 0.5 * (1 + erf(x / sqrt(2))), in float as
// torch computes it (glibc's erff is correctly rounded to within an ulp).
inline float gelu_erf(float x) { return x * 0.5f * (1.0f + std::erf(x * 0.70710678118654752440f)); }

void check_finite(const float* h, int64_t n, int threads, const std::string& where) {
  const int64_t tasks = (n + kElementsPerTask - 1) / kElementsPerTask;
  std::vector<int64_t> first_bad(static_cast<size_t>(tasks), -1);
  ThreadPool::global().parallel_for(static_cast<size_t>(tasks), threads, [&](size_t t) {
    const int64_t i0 = static_cast<int64_t>(t) * kElementsPerTask, i1 = std::min(n, i0 + kElementsPerTask);
    for (int64_t i = i0; i < i1; ++i) {
      if (!std::isfinite(h[i])) {
        first_bad[t] = i;
        return;
      }
    }
  });
  for (int64_t i : first_bad) {
    if (i >= 0) {
      fail_input(fmt::format("{} produced a non-finite value ({}): the weights or the input overflow float32",
                             where, h[i]));
    }
  }
}

}  // namespace

BertModel::BertModel(BertConfig config, const TensorSource& source, const std::string& prefix)
    : config_(config) {
  const BertConfig& c = config_;
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  const auto vec = [&](const std::string& name, std::vector<int64_t> shape) { return source(prefix + name, shape); };
  const auto linear = [&](const std::string& name, int64_t out, int64_t in) {
    // The weight first (argument order is unspecified), so that a shape
    // error names the weight, whose shape says the most.
    std::vector<float> weight = vec(name + ".weight", {out, in});
    return Linear(prefix + name, std::move(weight), out, in, vec(name + ".bias", {out}));
  };
  word_ = std::make_shared<const std::vector<float>>(vec("embeddings.word_embeddings.weight", {c.vocab_size, H}));
  position_ = vec("embeddings.position_embeddings.weight", {c.max_position_embeddings, H});
  token_type_ = vec("embeddings.token_type_embeddings.weight", {c.type_vocab_size, H});
  emb_ln_gamma_ = vec("embeddings.LayerNorm.weight", {H});
  emb_ln_beta_ = vec("embeddings.LayerNorm.bias", {H});
  layers_.reserve(static_cast<size_t>(c.num_layers));
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = fmt::format("encoder.layer.{}.", l);
    Layer L;
    L.query = linear(p + "attention.self.query", H, H);
    L.key = linear(p + "attention.self.key", H, H);
    L.value = linear(p + "attention.self.value", H, H);
    L.attn_out = linear(p + "attention.output.dense", H, H);
    L.ln1_gamma = vec(p + "attention.output.LayerNorm.weight", {H});
    L.ln1_beta = vec(p + "attention.output.LayerNorm.bias", {H});
    L.intermediate = linear(p + "intermediate.dense", I, H);
    L.output = linear(p + "output.dense", H, I);
    L.ln2_gamma = vec(p + "output.LayerNorm.weight", {H});
    L.ln2_beta = vec(p + "output.LayerNorm.bias", {H});
    layers_.push_back(std::move(L));
  }
}

BertModel BertModel::load(const Checkpoint& checkpoint, const BertConfig& config, int threads) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < checkpoint.tensors().size(); ++i) index[checkpoint.tensors()[i].name] = i;
  // BertModel saves its tensors bare; BertForMaskedLM and the other heads
  // nest the same encoder under "bert.".
  std::string prefix;
  if (!index.count("embeddings.word_embeddings.weight") && index.count("bert.embeddings.word_embeddings.weight")) {
    prefix = "bert.";
  }
  const TensorSource source = [&](const std::string& name, const std::vector<int64_t>& shape) {
    const auto it = index.find(name);
    if (it == index.end()) {
      fail_input(fmt::format("'{}' has no tensor {}: not a BERT checkpoint, or a different layout",
                             checkpoint.path(), quote_untrusted(name)));
    }
    const CheckpointTensor& t = checkpoint.tensors()[it->second];
    const bool same = t.shape.size() == shape.size() &&
                      std::equal(shape.begin(), shape.end(), t.shape.begin(),
                                 [](int64_t a, uint64_t b) { return static_cast<uint64_t>(a) == b; });
    if (!same) {
      std::vector<uint64_t> want(shape.begin(), shape.end());
      fail_input(fmt::format("'{}': tensor {} has shape [{}], the config says [{}]", checkpoint.path(),
                             quote_untrusted(name), fmt::join(t.shape, ", "), fmt::join(want, ", ")));
    }
    if (!t.floating) {
      fail_input(fmt::format("'{}': tensor {} has dtype {}, not a floating type", checkpoint.path(),
                             quote_untrusted(name), t.dtype));
    }
    std::vector<float> out(t.numel);
    checkpoint.read_float32(it->second, out.data(), threads);
    checkpoint.release(it->second);
    return out;
  };
  return BertModel(config, source, prefix);
}

std::vector<const Linear*> BertModel::linears() const {
  std::vector<const Linear*> out;
  for (const Layer& L : layers_) {
    for (const Linear* p : {&L.query, &L.key, &L.value, &L.attn_out, &L.intermediate, &L.output}) out.push_back(p);
  }
  return out;
}

BertModel BertModel::with_weights(
    const std::function<std::optional<std::vector<float>>(const Linear&)>& fn) const {
  BertModel m = *this;
  for (Layer& L : m.layers_) {
    for (Linear* p : {&L.query, &L.key, &L.value, &L.attn_out, &L.intermediate, &L.output}) {
      if (std::optional<std::vector<float>> w = fn(*p)) *p = p->with_weight(std::move(*w));
    }
  }
  return m;
}

BertModel BertModel::with_plan(std::shared_ptr<const QuantPlan> plan) const {
  if (plan && plan->kv()) fail_usage("an encoder has no KV cache: the plan's KV setting must be none");
  BertModel m = *this;
  m.plan_ = std::move(plan);
  return m;
}

void BertModel::embed_tokens(std::span<const std::vector<int32_t>> sentences, float* h, int threads) const {
  const int64_t H = config_.hidden_size;
  // Row offset of each sentence, so that sentences fill their rows in
  // parallel without depending on each other.
  std::vector<int64_t> row0(sentences.size() + 1, 0);
  for (size_t s = 0; s < sentences.size(); ++s) row0[s + 1] = row0[s] + static_cast<int64_t>(sentences[s].size());
  ThreadPool::global().parallel_for(sentences.size(), threads, [&](size_t s) {
    const std::vector<int32_t>& ids = sentences[s];
    for (size_t t = 0; t < ids.size(); ++t) {
      const float* w = word_->data() + static_cast<int64_t>(ids[t]) * H;
      const float* p = position_.data() + static_cast<int64_t>(t) * H;
      const float* tt = token_type_.data();  // token_type_ids are all 0: one segment
      float* y = h + (row0[s] + static_cast<int64_t>(t)) * H;
      // transformers' order: (word + token_type) + position, in float.
      for (int64_t j = 0; j < H; ++j) y[j] = (w[j] + tt[j]) + p[j];
    }
  });
}

void BertModel::forward(std::span<const std::vector<int32_t>> sentences, std::vector<float>& hidden, int threads,
                        LinearInputObserver* observer) const {
  const BertConfig& c = config_;
  const int64_t H = c.hidden_size, I = c.intermediate_size;
  int64_t T = 0;
  for (size_t s = 0; s < sentences.size(); ++s) {
    const auto& ids = sentences[s];
    if (ids.empty()) fail_usage(fmt::format("sentence {} of the batch has no tokens", s));
    if (static_cast<int64_t>(ids.size()) > c.max_position_embeddings) {
      fail_usage(fmt::format("sentence {} of the batch has {} tokens; the model has {} positions", s, ids.size(),
                             c.max_position_embeddings));
    }
    for (int32_t id : ids) {
      if (id < 0 || id >= c.vocab_size) {
        fail_input(fmt::format("token id {} is outside the model's vocabulary of {}", id, c.vocab_size));
      }
    }
    T += static_cast<int64_t>(ids.size());
  }
  hidden.assign(static_cast<size_t>(T * H), 0.0f);
  if (T == 0) return;
  std::vector<int64_t> row0(sentences.size() + 1, 0);
  for (size_t s = 0; s < sentences.size(); ++s) row0[s + 1] = row0[s] + static_cast<int64_t>(sentences[s].size());

  float* h = hidden.data();
  embed_tokens(sentences, h, threads);
  layer_norm(h, T, H, H, emb_ln_gamma_.data(), emb_ln_beta_.data(), c.layer_norm_eps, h, H, threads);
  check_finite(h, T * H, threads, "the embeddings");

  std::vector<float> q(static_cast<size_t>(T * H)), k(q.size()), v(q.size()), ctx(q.size()), tmp(q.size());
  std::vector<float> inter(static_cast<size_t>(T * I));
  const AttentionShape shape{c.num_heads, c.num_heads, c.head_dim()};
  // With several sentences the pool runs whole sentences (each attention
  // call on one thread); a lone sentence uses the threads inside attention.
  // attention() is bit-identical for any thread count, so either way the
  // result is the same.
  const int inner_threads = sentences.size() > 1 ? 1 : threads;
  // The plan's points, each sentence's rows quantized on their own.
  const QuantPlan* plan = plan_.get();
  QuantPlan::InputScratch in_q;
  std::vector<float> q_att, k_att, v_att;
  const auto inputs = [&](std::initializer_list<const Linear*> linears, const float* x) {
    if (observer) observer->observe(std::span<const Linear* const>(linears.begin(), linears.size()), x, T);
    if (!plan) return std::array<const float*, 3>{x, x, x};
    return plan->inputs(linears, x, T, row0, in_q, threads);
  };
  const auto operand = [&](size_t layer, QuantPlan::AttentionPoint point, const float* x, std::vector<float>& buf) {
    const ActQuant* a = plan ? plan->attention(static_cast<int64_t>(layer), point) : nullptr;
    if (!a) return x;
    buf.resize(static_cast<size_t>(T * H));
    for (size_t s = 0; s < sentences.size(); ++s) {
      a->apply(x + row0[s] * H, row0[s + 1] - row0[s], H, buf.data() + row0[s] * H, threads);
    }
    return static_cast<const float*>(buf.data());
  };
  for (size_t l = 0; l < layers_.size(); ++l) {
    const Layer& L = layers_[l];
    const std::array<const float*, 3> qkv_in = inputs({&L.query, &L.key, &L.value}, h);
    L.query.forward(qkv_in[0], T, q.data(), threads);
    L.key.forward(qkv_in[1], T, k.data(), threads);
    L.value.forward(qkv_in[2], T, v.data(), threads);
    const float* qa = operand(l, QuantPlan::AttentionPoint::kQ, q.data(), q_att);
    const float* ka = operand(l, QuantPlan::AttentionPoint::kK, k.data(), k_att);
    const float* va = operand(l, QuantPlan::AttentionPoint::kV, v.data(), v_att);
    const ActQuant* p_quant = plan ? plan->attention(static_cast<int64_t>(l), QuantPlan::AttentionPoint::kP) : nullptr;
    ThreadPool::global().parallel_for(sentences.size(), sentences.size() > 1 ? threads : 1, [&](size_t s) {
      const int64_t r = row0[s], n = row0[s + 1] - row0[s];
      attention(qa + r * H, n, H, 0, ka + r * H, va + r * H, n, H, shape, /*causal=*/false, ctx.data() + r * H, H,
                inner_threads, p_quant);
    });
    L.attn_out.forward(inputs({&L.attn_out}, ctx.data())[0], T, tmp.data(), threads);
    for_elements(T * H, threads, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) tmp[i] += h[i];
    });
    layer_norm(tmp.data(), T, H, H, L.ln1_gamma.data(), L.ln1_beta.data(), c.layer_norm_eps, h, H, threads);

    L.intermediate.forward(inputs({&L.intermediate}, h)[0], T, inter.data(), threads);
    for_elements(T * I, threads, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) inter[i] = gelu_erf(inter[i]);
    });
    L.output.forward(inputs({&L.output}, inter.data())[0], T, tmp.data(), threads);
    for_elements(T * H, threads, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) tmp[i] += h[i];
    });
    layer_norm(tmp.data(), T, H, H, L.ln2_gamma.data(), L.ln2_beta.data(), c.layer_norm_eps, h, H, threads);
    // Checked once per layer, on its output: a NaN born anywhere inside
    // (an overflowing product, inf - inf in the softmax) reaches it.
    check_finite(h, T * H, threads, fmt::format("encoder layer {}", l));
  }
}

std::vector<float> BertModel::embed(std::span<const std::vector<int32_t>> sentences, const SentencePipeline& pipeline,
                                    int threads) const {
  for (size_t s = 0; s < sentences.size(); ++s) {
    if (static_cast<int64_t>(sentences[s].size()) > pipeline.max_seq_length) {
      fail_usage(fmt::format("sentence {} of the batch has {} tokens, above max_seq_length {} (truncate first)", s,
                             sentences[s].size(), pipeline.max_seq_length));
    }
  }
  std::vector<float> hidden;
  forward(sentences, hidden, threads);
  const int64_t H = config_.hidden_size, D = embedding_dim(pipeline);
  std::vector<float> out(sentences.size() * static_cast<size_t>(D));
  std::vector<int64_t> row0(sentences.size() + 1, 0);
  for (size_t s = 0; s < sentences.size(); ++s) row0[s + 1] = row0[s] + static_cast<int64_t>(sentences[s].size());
  ThreadPool::global().parallel_for(sentences.size(), threads, [&](size_t s) {
    float* e = out.data() + static_cast<int64_t>(s) * D;
    pool_tokens(hidden.data() + row0[s] * H, row0[s + 1] - row0[s], H, H, pipeline.pooling, e);
    if (pipeline.normalize) l2_normalize(e, D);
  });
  return out;
}

}  // namespace lowbit
