#include "lowbit/train/trainable_llama.h"

#include <cmath>
#include <numbers>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/model/attention.h"
#include "lowbit/model/rms_norm.h"
#include "lowbit/train/attention_grad.h"
#include "lowbit/train/cross_entropy.h"
#include "lowbit/train/linear_grad.h"
#include "lowbit/train/mix64.h"
#include "lowbit/train/rms_norm_grad.h"
#include "lowbit/train/swiglu_grad.h"

namespace lowbit {

namespace {

constexpr int64_t kChunk = 1 << 14;  // element-wise grain

uint64_t splitmix64(uint64_t& state) { return mix64(state += 0x9E3779B97F4A7C15ull); }

// A uniform double in (0, 1): 53 random bits, never 0.
double uniform_open(uint64_t& state) {
  return (static_cast<double>(splitmix64(state) >> 11) + 0.5) * 0x1.0p-53;
}

void add_into(float* y, const float* x, int64_t n, int threads) {
  parallel_chunks(n, kChunk, threads, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) y[i] += x[i];
  });
}

// The first non-finite value of x[0, n), or -1.
int64_t first_non_finite(const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return i;
  }
  return -1;
}

}  // namespace

TrainableLlama::TrainableLlama(LlamaConfig config, QatSpec qat) : config_(std::move(config)), qat_(qat) {
  if (config_.head_dim == 0 && config_.heads > 0) config_.head_dim = config_.dim / config_.heads;
  if (config_.rope_dim == 0) config_.rope_dim = config_.head_dim;
  config_.naming = LlamaNaming::kGguf;
  config_.rope_style = RopeStyle::kAdjacentPairs;
  config_.validate("the training config");
  if (config_.vocab_size > INT32_MAX) fail_input("the training config: vocab_size must fit in int32");
  const int64_t D = config_.dim, F = config_.ffn_dim, V = config_.vocab_size;
  const int64_t qd = config_.heads * config_.head_dim, kvd = config_.kv_dim();
  embedding_ = layout_.add(llama_embedding_name(LlamaNaming::kGguf), {V, D}, true);
  for (int64_t l = 0; l < config_.layers; ++l) {
    const auto name = [&](const char* role) { return llama_layer_tensor_name(LlamaNaming::kGguf, l, role); };
    BlockOffsets b{};
    b.attn_norm = layout_.add(name("attn_norm"), {D}, false);
    b.q = layout_.add(name("attn_q"), {qd, D}, true);
    b.k = layout_.add(name("attn_k"), {kvd, D}, true);
    b.v = layout_.add(name("attn_v"), {kvd, D}, true);
    b.o = layout_.add(name("attn_output"), {D, qd}, true);
    b.ffn_norm = layout_.add(name("ffn_norm"), {D}, false);
    b.gate = layout_.add(name("ffn_gate"), {F, D}, true);
    b.up = layout_.add(name("ffn_up"), {F, D}, true);
    b.down = layout_.add(name("ffn_down"), {D, F}, true);
    blocks_.push_back(b);
    if (qat_.learned()) {
      // LSQ+'s scale and offset per output channel of each block Linear.
      const std::pair<const char*, int64_t> outs[] = {{"attn_q", qd},    {"attn_k", kvd},   {"attn_v", kvd},
                                                      {"attn_output", D}, {"ffn_gate", F}, {"ffn_up", F},
                                                      {"ffn_down", D}};
      for (const auto& [role, rows] : outs) {
        const std::string base = fmt::format("blk.{}.{}", l, role);
        qat_scale_.push_back(layout_.add(base + ".qat_scale", {rows}, false));
        qat_offset_.push_back(layout_.add(base + ".qat_offset", {rows}, false));
      }
    }
  }
  output_norm_ = layout_.add(llama_output_norm_name(LlamaNaming::kGguf), {D}, false);
  if (!config_.tied_embeddings) output_ = layout_.add(llama_output_name(LlamaNaming::kGguf), {V, D}, true);
  params_.assign(static_cast<size_t>(layout_.size()), 0.0f);
  grads_.assign(static_cast<size_t>(layout_.size()), 0.0f);
  if (qat_.active()) w_hat_.resize(static_cast<size_t>(config_.layers * 7));
  rope_ = Rope(config_.head_dim, config_.rope_dim, config_.rope_theta, RopeStyle::kAdjacentPairs);
}

void TrainableLlama::init(uint64_t seed) {
  init_weights(seed);
  if (!qat_.learned()) return;
  for (int64_t i = 0; i < config_.layers * 7; ++i) {
    int64_t rows = 0, cols = 0;
    const int64_t w = linear_weight(i, &rows, &cols);
    lsq_init(params_.data() + w, rows, cols, qat_.bits, params_.data() + qat_scale_[static_cast<size_t>(i)],
             params_.data() + qat_offset_[static_cast<size_t>(i)]);
  }
}

void TrainableLlama::init_weights(uint64_t seed) {
  const double residual_std = 0.02 / std::sqrt(2.0 * static_cast<double>(config_.layers));
  for (size_t t = 0; t < layout_.tensors().size(); ++t) {
    const ParamTensor& p = layout_.tensors()[t];
    float* w = params_.data() + p.offset;
    if (p.shape.size() == 1) {
      std::fill(w, w + p.size, 1.0f);  // norms; LSQ+'s parameters are set by init()
      continue;
    }
    const bool residual = p.name.ends_with("attn_output.weight") || p.name.ends_with("ffn_down.weight");
    const double sd = residual ? residual_std : 0.02;
    // Each tensor its own stream, so adding a tensor does not move the
    // others' values.
    uint64_t state = seed ^ (0xD1B54A32D192ED03ull * (t + 1));
    for (int64_t i = 0; i < p.size; i += 2) {
      const double r = std::sqrt(-2.0 * std::log(uniform_open(state)));
      const double a = 2.0 * std::numbers::pi * uniform_open(state);
      w[i] = static_cast<float>(sd * r * std::cos(a));
      if (i + 1 < p.size) w[i + 1] = static_cast<float>(sd * r * std::sin(a));
    }
  }
}

std::vector<std::string> TrainableLlama::linear_names(const LlamaConfig& config) {
  static constexpr const char* kRoles[] = {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up",
                                           "ffn_down"};
  std::vector<std::string> names;
  for (int64_t l = 0; l < config.layers; ++l) {
    for (const char* r : kRoles) names.push_back(fmt::format("blk.{}.{}", l, r));
  }
  names.emplace_back("output");
  return names;
}

void TrainableLlama::set_precision(std::shared_ptr<const PrecisionRecipe> recipe, uint64_t seed) {
  precision_ = std::move(recipe);
  precision_seed_ = seed;
  linear_precision_.clear();
  const std::vector<std::string> names = linear_names();
  histories_.assign(names.size() * 6, AmaxHistory{});
  contexts_.assign(names.size(), LinearQuant{});
  rounded_w_.assign(names.size(), {});
  if (!precision_) return;
  for (const std::string& n : names) linear_precision_.push_back(&precision_->for_linear(n));
}

int64_t TrainableLlama::linear_weight(int64_t index, int64_t* rows, int64_t* cols) const {
  const int64_t D = config_.dim, F = config_.ffn_dim;
  const int64_t qd = config_.heads * config_.head_dim, kvd = config_.kv_dim();
  if (index == config_.layers * 7) {
    *rows = config_.vocab_size;
    *cols = D;
    return output_ < 0 ? embedding_ : output_;
  }
  const BlockOffsets& o = blocks_[static_cast<size_t>(index / 7)];
  const int64_t offsets[] = {o.q, o.k, o.v, o.o, o.gate, o.up, o.down};
  const int64_t r[] = {qd, kvd, kvd, D, F, F, D};
  const int64_t c[] = {D, D, D, qd, D, D, F};
  *rows = r[index % 7];
  *cols = c[index % 7];
  return offsets[index % 7];
}

std::vector<float> TrainableLlama::effective_weight(int64_t index) const {
  int64_t rows = 0, cols = 0;
  const float* w = params_.data() + linear_weight(index, &rows, &cols);
  std::vector<float> out(static_cast<size_t>(rows * cols));
  if (!qat_.active() || index == config_.layers * 7) {
    std::copy(w, w + rows * cols, out.data());
  } else if (qat_.kind == QatSpec::Kind::kTernary) {
    ternary_forward(w, rows * cols, out.data());
  } else {
    lsq_forward(w, rows, cols, params_.data() + qat_scale_[static_cast<size_t>(index)],
                params_.data() + qat_offset_[static_cast<size_t>(index)], qat_.bits, out.data(), 1);
  }
  return out;
}

void TrainableLlama::lin_forward(int64_t index, const float* x, int64_t n, int64_t in, int64_t w, int64_t out,
                                 float* y, int threads) {
  const float* weight = params_.data() + w;
  const float* input = x;
  std::vector<float> x_hat;
  if (qat_.active() && index < config_.layers * 7) {
    std::vector<float>& wh = w_hat_[static_cast<size_t>(index)];
    wh.resize(static_cast<size_t>(out * in));
    if (qat_.kind == QatSpec::Kind::kTernary) {
      ternary_forward(weight, out * in, wh.data());
      x_hat.resize(static_cast<size_t>(n * in));
      absmax_int8_rows(x, n, in, x_hat.data(), threads);
      input = x_hat.data();
    } else {
      lsq_forward(weight, out, in, params_.data() + qat_scale_[static_cast<size_t>(index)],
                  params_.data() + qat_offset_[static_cast<size_t>(index)], qat_.bits, wh.data(), threads);
    }
    weight = wh.data();
  }
  linear_forward(input, n, in, weight, out, y, threads, quant(index));
}

void TrainableLlama::lin_backward(int64_t index, const float* dy, const float* x, int64_t n, int64_t in, int64_t w,
                                  int64_t out, float* dx, bool accumulate_dx, int threads) {
  float* grad = grads_.data() + w;
  if (!qat_.active() || index == config_.layers * 7) {
    linear_backward(dy, x, n, in, params_.data() + w, out, dx, accumulate_dx, grad, threads, quant(index));
    return;
  }
  // The product used ŵ (and, for ternary, x̂): the backward pass does too,
  // and the gradient reaches w straight through (LSQ+: through its clip).
  const std::vector<float>& wh = w_hat_[static_cast<size_t>(index)];
  if (qat_.kind == QatSpec::Kind::kTernary) {
    std::vector<float> x_hat(static_cast<size_t>(n * in));
    absmax_int8_rows(x, n, in, x_hat.data(), threads);
    linear_backward(dy, x_hat.data(), n, in, wh.data(), out, dx, accumulate_dx, grad, threads, quant(index));
    return;
  }
  std::vector<float> dw_hat(static_cast<size_t>(out * in), 0.0f);
  linear_backward(dy, x, n, in, wh.data(), out, dx, accumulate_dx, dw_hat.data(), threads, quant(index));
  const auto si = static_cast<size_t>(index);
  lsq_backward(params_.data() + w, out, in, params_.data() + qat_scale_[si], params_.data() + qat_offset_[si],
               qat_.bits, dw_hat.data(), grad, grads_.data() + qat_scale_[si], grads_.data() + qat_offset_[si],
               threads);
}

const LinearQuant* TrainableLlama::quant(int64_t index) {
  if (!precision_) return nullptr;
  LinearQuant& q = contexts_[static_cast<size_t>(index)];
  q.precision = linear_precision_[static_cast<size_t>(index)];
  q.seed = mix64(precision_seed_ ^ (0x9E3779B97F4A7C15ull * static_cast<uint64_t>(step_ + 1)) ^
                 (0xC2B2AE3D27D4EB4Full * static_cast<uint64_t>(index + 1)));
  q.histories = histories_.data() + index * 6;
  q.rounded_weight = &rounded_w_[static_cast<size_t>(index)];
  return &q;
}

void TrainableLlama::size_activations(int64_t batch, int64_t seq) {
  const int64_t N = batch * seq, D = config_.dim, F = config_.ffn_dim;
  const int64_t qd = config_.heads * config_.head_dim, kvd = config_.kv_dim();
  const auto sz = [](int64_t n) { return static_cast<size_t>(n); };
  acts_.resize(static_cast<size_t>(config_.layers));
  for (BlockActs& a : acts_) {
    a.x_in.resize(sz(N * D));
    a.xn1.resize(sz(N * D));
    a.q.resize(sz(N * qd));
    a.k.resize(sz(N * kvd));
    a.v.resize(sz(N * kvd));
    a.p.resize(sz(batch * config_.heads * seq * seq));
    a.att.resize(sz(N * qd));
    a.x_mid.resize(sz(N * D));
    a.xn2.resize(sz(N * D));
    a.gate.resize(sz(N * F));
    a.up.resize(sz(N * F));
    a.h.resize(sz(N * F));
  }
  x_final_.resize(sz(N * D));
  xn_final_.resize(sz(N * D));
  logits_.resize(sz(N * config_.vocab_size));
}

double TrainableLlama::forward(std::span<const int32_t> inputs, std::span<const int32_t> targets, int64_t batch,
                               int64_t seq, int threads, std::vector<double>* token_loss, bool update_state) {
  // An evaluation must not move delayed scaling's history: restore it.
  struct Restore {
    std::vector<AmaxHistory>* target;
    std::vector<AmaxHistory> saved;
    ~Restore() {
      if (target) *target = std::move(saved);
    }
  } restore{update_state ? nullptr : &histories_, update_state ? std::vector<AmaxHistory>{} : histories_};
  const int64_t N = batch * seq, D = config_.dim, F = config_.ffn_dim, V = config_.vocab_size;
  const int64_t qd = config_.heads * config_.head_dim, kvd = config_.kv_dim();
  if (batch <= 0 || seq <= 0) fail_internal("TrainableLlama::forward: empty batch");
  if (seq > config_.context_length) {
    fail_input(fmt::format("a training sequence of {} tokens is longer than the model's context of {}", seq,
                           config_.context_length));
  }
  if (static_cast<int64_t>(inputs.size()) != N || static_cast<int64_t>(targets.size()) != N) {
    fail_internal("TrainableLlama::forward: token count is not batch * seq");
  }
  for (int64_t i = 0; i < N; ++i) {
    for (int32_t t : {inputs[static_cast<size_t>(i)], targets[static_cast<size_t>(i)]}) {
      if (t < 0 || t >= V) fail_input(fmt::format("token id {} is outside the vocabulary of {}", t, V));
    }
  }
  have_forward_ = false;
  batch_ = batch;
  seq_ = seq;
  inputs_.assign(inputs.begin(), inputs.end());
  targets_.assign(targets.begin(), targets.end());
  size_activations(batch, seq);
  const float* P = params_.data();
  const AttentionShape shape{config_.heads, config_.kv_heads, config_.head_dim};

  // x = E[tokens]
  std::vector<float> x(static_cast<size_t>(N * D)), proj(static_cast<size_t>(N * D));
  parallel_chunks(N, 64, threads, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* row = P + embedding_ + static_cast<int64_t>(inputs_[static_cast<size_t>(r)]) * D;
      std::copy(row, row + D, x.data() + r * D);
    }
  });
  // A NaN or infinity would flow into every later block and the loss;
  // name the block where it first appears.
  const auto check = [&](const std::vector<float>& v, int64_t width, const std::string& where) {
    const int64_t bad = first_non_finite(v.data(), static_cast<int64_t>(v.size()));
    if (bad >= 0) {
      fail_input(fmt::format("the output of {} holds {} (position {} of sequence {})", where,
                             v[static_cast<size_t>(bad)], bad / width % seq, bad / width / seq));
    }
  };
  for (int64_t l = 0; l < config_.layers; ++l) {
    const BlockOffsets& o = blocks_[static_cast<size_t>(l)];
    BlockActs& a = acts_[static_cast<size_t>(l)];
    a.x_in = x;
    rms_norm(x.data(), N, D, D, P + o.attn_norm, config_.rms_eps, a.xn1.data(), D, threads);
    lin_forward(l * 7 + 0, a.xn1.data(), N, D, o.q, qd, a.q.data(), threads);
    lin_forward(l * 7 + 1, a.xn1.data(), N, D, o.k, kvd, a.k.data(), threads);
    lin_forward(l * 7 + 2, a.xn1.data(), N, D, o.v, kvd, a.v.data(), threads);
    for (int64_t b = 0; b < batch; ++b) {
      rope_.apply(a.q.data() + b * seq * qd, seq, qd, config_.heads, 0, threads);
      rope_.apply(a.k.data() + b * seq * kvd, seq, kvd, config_.kv_heads, 0, threads);
    }
    attention_forward(a.q.data(), a.k.data(), a.v.data(), batch, seq, shape, a.p.data(), a.att.data(), threads);
    lin_forward(l * 7 + 3, a.att.data(), N, qd, o.o, D, proj.data(), threads);
    add_into(x.data(), proj.data(), N * D, threads);
    a.x_mid = x;
    rms_norm(x.data(), N, D, D, P + o.ffn_norm, config_.rms_eps, a.xn2.data(), D, threads);
    lin_forward(l * 7 + 4, a.xn2.data(), N, D, o.gate, F, a.gate.data(), threads);
    lin_forward(l * 7 + 5, a.xn2.data(), N, D, o.up, F, a.up.data(), threads);
    swiglu_forward(a.gate.data(), a.up.data(), N * F, a.h.data(), threads);
    lin_forward(l * 7 + 6, a.h.data(), N, F, o.down, D, proj.data(), threads);
    add_into(x.data(), proj.data(), N * D, threads);
    check(x, D, fmt::format("blk {}", l));
  }
  x_final_ = x;
  rms_norm(x.data(), N, D, D, P + output_norm_, config_.rms_eps, xn_final_.data(), D, threads);
  lin_forward(config_.layers * 7, xn_final_.data(), N, D, (output_ < 0 ? embedding_ : output_), V, logits_.data(), threads);
  check(logits_, V, "output");
  // The logits become d(Σ loss)/d(logits) in place; backward() scales them.
  std::vector<double> loss(static_cast<size_t>(N));
  cross_entropy(logits_.data(), N, V, targets_.data(), 1.0, loss.data(), threads);
  double sum = 0.0;
  for (double v : loss) sum += v;
  if (token_loss) *token_loss = std::move(loss);
  have_forward_ = true;
  return sum;
}

void TrainableLlama::backward(float loss_scale, int threads) {
  if (!have_forward_) fail_internal("TrainableLlama::backward without a forward");
  have_forward_ = false;
  const int64_t batch = batch_, seq = seq_;
  const int64_t N = batch * seq, D = config_.dim, F = config_.ffn_dim, V = config_.vocab_size;
  const int64_t qd = config_.heads * config_.head_dim, kvd = config_.kv_dim();
  const float* P = params_.data();
  float* G = grads_.data();
  const AttentionShape shape{config_.heads, config_.kv_heads, config_.head_dim};

  float* dz = logits_.data();
  if (loss_scale != 1.0f) {
    parallel_chunks(N * V, kChunk, threads, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) dz[i] *= loss_scale;
    });
  }
  const int64_t head = output_ < 0 ? embedding_ : output_;
  std::vector<float> dxn(static_cast<size_t>(N * D)), dx(static_cast<size_t>(N * D), 0.0f);
  lin_backward(config_.layers * 7, dz, xn_final_.data(), N, D, head, V, dxn.data(), false, threads);
  rms_norm_backward(x_final_.data(), P + output_norm_, config_.rms_eps, dxn.data(), N, D, dx.data(), G + output_norm_,
                    threads);
  std::vector<float> dh(static_cast<size_t>(N * F)), dgate(static_cast<size_t>(N * F)), dup(static_cast<size_t>(N * F));
  std::vector<float> datt(static_cast<size_t>(N * qd)), dq(static_cast<size_t>(N * qd));
  std::vector<float> dk(static_cast<size_t>(N * kvd)), dv(static_cast<size_t>(N * kvd));
  for (int64_t l = config_.layers - 1; l >= 0; --l) {
    const BlockOffsets& o = blocks_[static_cast<size_t>(l)];
    const BlockActs& a = acts_[static_cast<size_t>(l)];
    // x_out = x_mid + down(h): dx flows to x_mid unchanged, and into down.
    lin_backward(l * 7 + 6, dx.data(), a.h.data(), N, F, o.down, D, dh.data(), false, threads);
    swiglu_backward(a.gate.data(), a.up.data(), dh.data(), N * F, dgate.data(), dup.data(), threads);
    lin_backward(l * 7 + 4, dgate.data(), a.xn2.data(), N, D, o.gate, F, dxn.data(), false, threads);
    lin_backward(l * 7 + 5, dup.data(), a.xn2.data(), N, D, o.up, F, dxn.data(), true, threads);
    rms_norm_backward(a.x_mid.data(), P + o.ffn_norm, config_.rms_eps, dxn.data(), N, D, dx.data(), G + o.ffn_norm,
                      threads);
    // x_mid = x_in + o(attention): the same for the attention half.
    lin_backward(l * 7 + 3, dx.data(), a.att.data(), N, qd, o.o, D, datt.data(), false, threads);
    attention_backward(a.q.data(), a.k.data(), a.v.data(), a.p.data(), datt.data(), batch, seq, shape, dq.data(),
                       dk.data(), dv.data(), threads);
    for (int64_t b = 0; b < batch; ++b) {
      rope_.apply_inverse(dq.data() + b * seq * qd, seq, qd, config_.heads, 0, threads);
      rope_.apply_inverse(dk.data() + b * seq * kvd, seq, kvd, config_.kv_heads, 0, threads);
    }
    lin_backward(l * 7 + 0, dq.data(), a.xn1.data(), N, D, o.q, qd, dxn.data(), false, threads);
    lin_backward(l * 7 + 1, dk.data(), a.xn1.data(), N, D, o.k, kvd, dxn.data(), true, threads);
    lin_backward(l * 7 + 2, dv.data(), a.xn1.data(), N, D, o.v, kvd, dxn.data(), true, threads);
    rms_norm_backward(a.x_in.data(), P + o.attn_norm, config_.rms_eps, dxn.data(), N, D, dx.data(), G + o.attn_norm,
                      threads);
  }
  // dE[token] += dx[row]: each task owns a range of vocabulary rows and
  // adds its tokens' rows in token order, so the sums are the same for
  // every thread count.
  constexpr int64_t kVocabRowsPerTask = 256;
  parallel_chunks(V, kVocabRowsPerTask, threads, [&](int64_t b, int64_t e) {
    for (int64_t r = 0; r < N; ++r) {
      const int64_t t = inputs_[static_cast<size_t>(r)];
      if (t < b || t >= e) continue;
      float* g = G + embedding_ + t * D;
      const float* d = dx.data() + r * D;
      for (int64_t i = 0; i < D; ++i) g[i] += d[i];
    }
  });
}

}  // namespace lowbit
