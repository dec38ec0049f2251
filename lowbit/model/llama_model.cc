#include "lowbit/model/llama_model.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <map>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/ggml/packed_weight.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/model/attention.h"
#include "lowbit/model/rms_norm.h"

namespace lowbit {

namespace {

// Elements per task of the element-wise steps (residual adds, SwiGLU).
// Elements are independent, so this sets the grain only.
constexpr int64_t kElementsPerTask = 1 << 14;

// A one-token attention over at most this many (keys x query width)
// products runs on the calling thread: waking a worker costs more than the
// work. Attention is bit-identical for every thread count, so this only
// moves time.
constexpr int64_t kSmallAttention = int64_t{1} << 17;

void for_chunks(int64_t count, int threads, const std::function<void(int64_t begin, int64_t end)>& fn) {
  parallel_chunks(count, kElementsPerTask, threads, fn);
}

std::string shape_text(const std::vector<int64_t>& shape) {
  return fmt::format("[{}]", fmt::join(shape, ", "));
}

// The Linear of a checkpoint tensor: its name without ".weight" names the
// layer, as recipes name it.
Linear make_linear(const std::string& tensor_name, std::vector<float> w, int64_t out, int64_t in) {
  std::string name = tensor_name;
  if (name.ends_with(".weight")) name.resize(name.size() - 7);
  return Linear(std::move(name), std::move(w), out, in);
}

}  // namespace

LlamaModel LlamaModel::from_tensors(LlamaConfig config, const TensorSource& source, const std::string& source_name) {
  config.validate(source_name);
  const LlamaNaming nm = config.naming;
  const auto need = [&](const std::string& name, std::vector<int64_t> shape) {
    std::optional<std::vector<float>> t = source(name, shape);
    if (!t) fail_input(fmt::format("{}: the Llama tensor '{}' {} is missing", source_name, name, shape_text(shape)));
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    if (static_cast<int64_t>(t->size()) != numel) {
      fail_internal(fmt::format("{}: tensor '{}' read as {} values, {} expected", source_name, name, t->size(), numel));
    }
    return std::move(*t);
  };
  const int64_t dim = config.dim, kv = config.kv_dim(), ffn = config.ffn_dim, vocab = config.vocab_size;
  const int64_t qdim = config.heads * config.head_dim;

  LlamaModel m;
  m.config_ = config;
  m.rope_ = Rope(config.head_dim, config.rope_dim, config.rope_theta, config.rope_style);
  m.embedding_ = std::make_shared<const std::vector<float>>(need(llama_embedding_name(nm), {vocab, dim}));
  m.layers_.resize(static_cast<size_t>(config.layers));
  for (int64_t l = 0; l < config.layers; ++l) {
    LlamaLayer& L = m.layers_[static_cast<size_t>(l)];
    const auto name = [&](const char* role) { return llama_layer_tensor_name(nm, l, role); };
    const auto linear = [&](const char* role, int64_t out, int64_t in) {
      return make_linear(name(role), need(name(role), {out, in}), out, in);
    };
    L.attn_norm = need(name("attn_norm"), {dim});
    L.q = linear("attn_q", qdim, dim);
    L.k = linear("attn_k", kv, dim);
    L.v = linear("attn_v", kv, dim);
    L.o = linear("attn_output", dim, qdim);
    L.ffn_norm = need(name("ffn_norm"), {dim});
    L.gate = linear("ffn_gate", ffn, dim);
    L.up = linear("ffn_up", ffn, dim);
    L.down = linear("ffn_down", dim, ffn);
  }
  m.output_norm_ = need(llama_output_norm_name(nm), {dim});
  std::optional<std::vector<float>> out;
  if (!config.tied_embeddings) {
    out = source(llama_output_name(nm), {vocab, dim});
    // llama.cpp reads a GGUF llama without output.weight as tied.
    if (!out && nm != LlamaNaming::kGguf) {
      fail_input(fmt::format("{}: the Llama tensor '{}' {} is missing (the config says the embeddings are not tied)",
                             source_name, llama_output_name(nm), shape_text({vocab, dim})));
    }
  }
  if (out) {
    m.lm_head_ = make_linear(llama_output_name(nm), std::move(*out), vocab, dim);
  } else {
    // Tied: the LM head is a Linear of its own over a copy of the
    // embedding matrix, so that a quantization point on the head never
    // changes the embedding lookup (llama.cpp also quantizes them apart
    // when it writes output.weight).
    m.config_.tied_embeddings = true;
    m.lm_head_ = make_linear(llama_output_name(nm), *m.embedding_, vocab, dim);
  }
  return m;
}

LlamaModel LlamaModel::load(const Checkpoint& ck, int threads) {
  LlamaConfig config = llama_config_of(ck);
  std::map<std::string, size_t, std::less<>> index;
  for (size_t i = 0; i < ck.tensors().size(); ++i) index.emplace(ck.tensors()[i].name, i);
  // The logits are as wide as the embedding matrix, which some models pad
  // beyond the tokenizer's vocabulary.
  if (auto it = index.find(llama_embedding_name(config.naming)); it != index.end()) {
    const CheckpointTensor& t = ck.tensors()[it->second];
    if (t.shape.size() == 2) config.vocab_size = static_cast<int64_t>(t.shape[0]);
  }
  const TensorSource source = [&](const std::string& name,
                                  const std::vector<int64_t>& shape) -> std::optional<std::vector<float>> {
    auto it = index.find(name);
    if (it == index.end()) return std::nullopt;
    const CheckpointTensor& t = ck.tensors()[it->second];
    const std::vector<int64_t> have(t.shape.begin(), t.shape.end());
    if (have != shape) {
      fail_input(fmt::format("'{}': tensor '{}' has shape {}, the config makes it {}", ck.path(), name,
                             shape_text(have), shape_text(shape)));
    }
    if (!t.floating) fail_input(fmt::format("'{}': tensor '{}' is {}, not a float type", ck.path(), name, t.dtype));
    std::vector<float> v(static_cast<size_t>(t.numel));
    ck.read_float32(it->second, v.data(), threads);
    ck.release(it->second);
    return v;
  };
  LlamaModel m = from_tensors(std::move(config), source, fmt::format("'{}'", ck.path()));
  if (ck.container() != Container::kGguf) return m;
  // One-token forwards (decode) read the stored blocks where a GEMV kernel
  // exists for their type (linear.h): the same values, fewer bytes.
  const auto pack = [&](Linear& linear, const std::string& tensor) {
    const auto it = index.find(tensor);
    if (it == index.end()) return;
    const std::optional<GgmlTypeInfo> type = ggml_type_by_name(ck.tensors()[it->second].dtype);
    if (!type || !PackedWeight::supports(type->type) || linear.in_features() % kernels::kGemvBlock != 0) return;
    linear.set_packed(std::make_shared<const PackedWeight>(PackedWeight::from_ggml(
        type->type, ck.raw_bytes(it->second), linear.out_features(), linear.in_features())));
    ck.release(it->second);
  };
  for (LlamaLayer& L : m.layers_) {
    for (Linear* linear : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) pack(*linear, linear->name() + ".weight");
  }
  // A tied head is the embedding matrix.
  pack(m.lm_head_, m.config_.tied_embeddings ? llama_embedding_name(m.config_.naming)
                                             : llama_output_name(m.config_.naming));
  return m;
}

LlamaModel LlamaModel::load(const std::string& path, int threads) {
  const Checkpoint ck = Checkpoint::open(path);
  return load(ck, threads);
}

KvCache LlamaModel::new_cache(int64_t capacity) const {
  if (capacity > config_.context_length) {
    fail_input(fmt::format("a context of {} tokens is longer than the model's context length {}", capacity,
                           config_.context_length));
  }
  return KvCache(config_.layers, capacity, config_.kv_dim(), plan_ ? plan_->kv() : std::nullopt);
}

std::vector<const Linear*> LlamaModel::linears() const {
  std::vector<const Linear*> out;
  for (const LlamaLayer& L : layers_) {
    for (const Linear* lin : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) out.push_back(lin);
  }
  out.push_back(&lm_head_);
  return out;
}

LlamaModel LlamaModel::with_weights(const std::function<std::optional<std::vector<float>>(const Linear&)>& fn) const {
  LlamaModel m = *this;
  for (LlamaLayer& L : m.layers_) {
    for (Linear* lin : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) {
      if (std::optional<std::vector<float>> w = fn(*lin)) *lin = lin->with_weight(std::move(*w));
    }
  }
  if (std::optional<std::vector<float>> w = fn(m.lm_head_)) m.lm_head_ = m.lm_head_.with_weight(std::move(*w));
  return m;
}

LlamaModel LlamaModel::with_plan(std::shared_ptr<const QuantPlan> plan) const {
  LlamaModel m = *this;
  m.plan_ = std::move(plan);
  return m;
}

void LlamaModel::forward(std::span<const int32_t> tokens, KvCache& cache, int64_t logits_from, float* logits,
                         int threads, LinearInputObserver* observer) const {
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (logits_from < 0 || logits_from > n) {
    fail_usage(fmt::format("logits from row {} of a batch of {} tokens", logits_from, n));
  }
  if (cache.layers() != config_.layers || cache.kv_dim() != config_.kv_dim()) {
    fail_usage("the KV cache was made for another model");
  }
  if (n == 0) return;
  cache.check_room(n);
  for (int64_t i = 0; i < n; ++i) {
    if (tokens[static_cast<size_t>(i)] < 0 || tokens[static_cast<size_t>(i)] >= config_.vocab_size) {
      fail_input(fmt::format("token id {} is outside the model's vocabulary of {}", tokens[static_cast<size_t>(i)],
                             config_.vocab_size));
    }
  }
  const int64_t dim = config_.dim, kv = config_.kv_dim(), ffn = config_.ffn_dim;
  const int64_t qdim = config_.heads * config_.head_dim;
  const int64_t pos0 = cache.size();
  const auto N = static_cast<size_t>(n);

  // The residual stream and the scratch matrices of one block.
  std::vector<float> x(N * static_cast<size_t>(dim));
  std::vector<float> xn(x.size()), q(N * static_cast<size_t>(qdim)), att(q.size()), proj(x.size());
  std::vector<float> gate(N * static_cast<size_t>(ffn)), up(gate.size());
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(x.data() + i * dim, embedding_->data() + int64_t{tokens[static_cast<size_t>(i)]} * dim,
                static_cast<size_t>(dim) * sizeof(float));
  }
  const AttentionShape shape{config_.heads, config_.kv_heads, config_.head_dim};
  const auto observe = [&](std::initializer_list<const Linear*> linears, const float* in, int64_t rows) {
    if (observer) observer->observe(std::span<const Linear* const>(linears.begin(), linears.size()), in, rows);
  };
  // The plan's quantization points. A Linear input quantized for several
  // Linears that share it (Q/K/V, gate/up) with one setting is quantized
  // once; scratch buffers live for the whole forward.
  const QuantPlan* plan = plan_.get();
  QuantPlan::InputScratch in_q;
  std::vector<float> q_att, k_att, v_att;
  const auto quantized_inputs = [&](std::initializer_list<const Linear*> linears, const float* in, int64_t rows) {
    if (!plan) return std::array<const float*, 3>{in, in, in};
    return plan->inputs(linears, in, rows, {}, in_q, threads);
  };
  const auto attention_operand = [&](int64_t layer, QuantPlan::AttentionPoint point, const float* in, int64_t rows,
                                     int64_t cols, std::vector<float>& buf) -> const float* {
    const ActQuant* a = plan ? plan->attention(layer, point) : nullptr;
    if (!a) return in;
    buf.resize(static_cast<size_t>(rows * cols));
    a->apply(in, rows, cols, buf.data(), threads);
    return buf.data();
  };
  const auto add_into_x = [&](const std::vector<float>& d) {
    for_chunks(n * dim, threads, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) x[static_cast<size_t>(i)] += d[static_cast<size_t>(i)];
    });
  };

  // A forward that fails halfway leaves a quantized cache as it was.
  try {
    for (int64_t l = 0; l < config_.layers; ++l) {
      const LlamaLayer& L = layers_[static_cast<size_t>(l)];
      const KvRows kv_rows = cache.rows(l, threads);
      float* keys = kv_rows.keys;
      float* values = kv_rows.values;
      // Attention. The new keys and values go straight into the cache rows
      // of their positions: the cache's row stride is kv_dim, the Linear's
      // output is dense [n, kv_dim].
      rms_norm(x.data(), n, dim, dim, L.attn_norm.data(), config_.rms_eps, xn.data(), dim, threads);
      observe({&L.q, &L.k, &L.v}, xn.data(), n);
      const std::array<const float*, 3> qkv_in = quantized_inputs({&L.q, &L.k, &L.v}, xn.data(), n);
      if (n == 1) {
        // One token: Q, K and V in one dispatch (the same bits, linear.h).
        const Linear::OneToken qkv[] = {{&L.q, qkv_in[0], q.data()},
                                        {&L.k, qkv_in[1], keys + pos0 * kv},
                                        {&L.v, qkv_in[2], values + pos0 * kv}};
        Linear::forward_one(qkv, threads);
      } else {
        L.q.forward(qkv_in[0], n, q.data(), threads);
        L.k.forward(qkv_in[1], n, keys + pos0 * kv, threads);
        L.v.forward(qkv_in[2], n, values + pos0 * kv, threads);
      }
      rope_.apply(q.data(), n, qdim, config_.heads, pos0, threads);
      rope_.apply(keys + pos0 * kv, n, kv, config_.kv_heads, pos0, threads);
      // The cache keeps the new rows (a quantized cache packs them: from here
      // on keys and values hold what it stores).
      cache.store(l, n, threads);
      // The operands of Q·Kᵀ and P·V as the plan quantizes them.
      const float* q_in = attention_operand(l, QuantPlan::AttentionPoint::kQ, q.data(), n, qdim, q_att);
      const float* k_in = attention_operand(l, QuantPlan::AttentionPoint::kK, keys, pos0 + n, kv, k_att);
      const float* v_in = attention_operand(l, QuantPlan::AttentionPoint::kV, values, pos0 + n, kv, v_att);
      attention(q_in, n, qdim, pos0, k_in, v_in, pos0 + n, kv, shape, /*causal=*/true, att.data(), qdim,
                n == 1 && (pos0 + 1) * qdim <= kSmallAttention ? 1 : threads,
                plan ? plan->attention(l, QuantPlan::AttentionPoint::kP) : nullptr);
      observe({&L.o}, att.data(), n);
      L.o.forward(quantized_inputs({&L.o}, att.data(), n)[0], n, proj.data(), threads);
      add_into_x(proj);
      // SwiGLU feed-forward: silu(gate) * up, then down.
      rms_norm(x.data(), n, dim, dim, L.ffn_norm.data(), config_.rms_eps, xn.data(), dim, threads);
      observe({&L.gate, &L.up}, xn.data(), n);
      const std::array<const float*, 3> gate_up_in = quantized_inputs({&L.gate, &L.up}, xn.data(), n);
      if (n == 1) {
        const Linear::OneToken gate_up[] = {{&L.gate, gate_up_in[0], gate.data()}, {&L.up, gate_up_in[1], up.data()}};
        Linear::forward_one(gate_up, threads);
      } else {
        L.gate.forward(gate_up_in[0], n, gate.data(), threads);
        L.up.forward(gate_up_in[1], n, up.data(), threads);
      }
      for_chunks(n * ffn, threads, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          const float g = gate[static_cast<size_t>(i)];
          const float silu = g / (1.0f + std::exp(-g));
          gate[static_cast<size_t>(i)] = silu * up[static_cast<size_t>(i)];
        }
      });
      observe({&L.down}, gate.data(), n);
      L.down.forward(quantized_inputs({&L.down}, gate.data(), n)[0], n, proj.data(), threads);
      add_into_x(proj);
      // A NaN or infinity would flow silently into every later block and the
      // logits; name the block where it first appears.
      for (size_t i = 0; i < x.size(); ++i) {
        if (!std::isfinite(x[i])) {
          fail_input(fmt::format("the output of blk {} holds {} (token {} of {}, position {}): the weights or the "
                                 "input overflow float32",
                                 l, x[i], i / static_cast<size_t>(dim), n, pos0 + static_cast<int64_t>(i) / dim));
        }
      }
    }
  } catch (...) {
    cache.rollback();
    throw;
  }
  cache.advance(n);
  const int64_t rows = n - logits_from;
  if (rows == 0) return;
  rms_norm(x.data() + logits_from * dim, rows, dim, dim, output_norm_.data(), config_.rms_eps, xn.data(), dim,
           threads);
  observe({&lm_head_}, xn.data(), rows);
  lm_head_.forward(quantized_inputs({&lm_head_}, xn.data(), rows)[0], rows, logits, threads);
}

}  // namespace lowbit
