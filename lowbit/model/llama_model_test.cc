// The Llama decoder on a tiny random model: against a plain double-
// precision reference written here from the definition, bit for bit across
// thread counts, batched prefill against token-by-token decoding, the GGUF
// layout (permuted Q/K, adjacent-pair RoPE) against the Hugging Face one
// (halves), and its errors.
#include "lowbit/model/llama_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"
#include "lowbit/ggml/row_codec.h"
#include "lowbit/io/gguf_writer.h"
#include "lowbit/io/safetensors.h"

namespace lowbit {
namespace {

using Tensors = std::map<std::string, std::vector<float>>;

LlamaConfig tiny_config(LlamaNaming naming) {
  LlamaConfig c;
  c.vocab_size = 40;
  c.dim = 16;
  c.ffn_dim = 24;
  c.layers = 2;
  c.heads = 4;
  c.kv_heads = 2;
  c.head_dim = 4;
  c.rope_dim = 4;
  c.context_length = 64;
  c.rope_theta = 10000.0;
  c.rms_eps = 1e-5f;
  c.naming = naming;
  c.rope_style = naming == LlamaNaming::kGguf ? RopeStyle::kAdjacentPairs : RopeStyle::kHalves;
  c.tied_embeddings = false;
  return c;
}

// Random weights under Hugging Face names (rotate_half layout).
Tensors random_hf_weights(const LlamaConfig& c, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 0.3f);
  Tensors t;
  const auto fill = [&](const std::string& name, int64_t count, float base = 0.0f) {
    std::vector<float> v(static_cast<size_t>(count));
    for (float& x : v) x = base + nd(rng);
    t[name] = std::move(v);
  };
  const LlamaNaming hf = LlamaNaming::kHuggingFace;
  fill(llama_embedding_name(hf), c.vocab_size * c.dim);
  for (int64_t l = 0; l < c.layers; ++l) {
    const auto n = [&](const char* r) { return llama_layer_tensor_name(hf, l, r); };
    fill(n("attn_norm"), c.dim, 1.0f);
    fill(n("attn_q"), c.dim * c.dim);
    fill(n("attn_k"), c.kv_dim() * c.dim);
    fill(n("attn_v"), c.kv_dim() * c.dim);
    fill(n("attn_output"), c.dim * c.dim);
    fill(n("ffn_norm"), c.dim, 1.0f);
    fill(n("ffn_gate"), c.ffn_dim * c.dim);
    fill(n("ffn_up"), c.ffn_dim * c.dim);
    fill(n("ffn_down"), c.dim * c.ffn_dim);
  }
  fill(llama_output_norm_name(hf), c.dim, 1.0f);
  fill(llama_output_name(hf), c.vocab_size * c.dim);
  return t;
}

// convert_hf_to_gguf.py's permutation of Q and K rows: within each head,
// row half*(d/2) + i moves to row 2i + half.
std::vector<float> permute_rows(const std::vector<float>& w, int64_t heads, int64_t head_dim, int64_t in) {
  std::vector<float> out(w.size());
  for (int64_t h = 0; h < heads; ++h) {
    for (int64_t half = 0; half < 2; ++half) {
      for (int64_t i = 0; i < head_dim / 2; ++i) {
        const int64_t src = h * head_dim + half * (head_dim / 2) + i, dst = h * head_dim + 2 * i + half;
        std::memcpy(out.data() + dst * in, w.data() + src * in, static_cast<size_t>(in) * sizeof(float));
      }
    }
  }
  return out;
}

// The same model under GGUF names, Q and K permuted as llama.cpp's converter does.
Tensors to_gguf_names(const LlamaConfig& c, const Tensors& hf) {
  const LlamaNaming H = LlamaNaming::kHuggingFace, G = LlamaNaming::kGguf;
  Tensors g;
  g[llama_embedding_name(G)] = hf.at(llama_embedding_name(H));
  g[llama_output_norm_name(G)] = hf.at(llama_output_norm_name(H));
  g[llama_output_name(G)] = hf.at(llama_output_name(H));
  for (int64_t l = 0; l < c.layers; ++l) {
    for (const char* r : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                          "ffn_down"}) {
      std::vector<float> w = hf.at(llama_layer_tensor_name(H, l, r));
      if (std::string(r) == "attn_q") w = permute_rows(w, c.heads, c.head_dim, c.dim);
      if (std::string(r) == "attn_k") w = permute_rows(w, c.kv_heads, c.head_dim, c.dim);
      g[llama_layer_tensor_name(G, l, r)] = std::move(w);
    }
  }
  return g;
}

LlamaModel model_from(const LlamaConfig& c, const Tensors& t) {
  return LlamaModel::from_tensors(
      c,
      [&](const std::string& name, const std::vector<int64_t>&) -> std::optional<std::vector<float>> {
        auto it = t.find(name);
        if (it == t.end()) return std::nullopt;
        return it->second;
      },
      "tiny");
}

// ---------------------------------------------------------------- reference
// The decoder written out from its definition in double, one position at a
// time, Hugging Face layout (rotate_half), full attention recomputed.
std::vector<std::vector<double>> reference_logits(const LlamaConfig& c, const Tensors& t,
                                                  const std::vector<int32_t>& tokens) {
  const LlamaNaming H = LlamaNaming::kHuggingFace;
  const int64_t n = static_cast<int64_t>(tokens.size()), D = c.dim, hd = c.head_dim, kv = c.kv_dim();
  using Mat = std::vector<std::vector<double>>;
  const auto matvec = [](const std::vector<float>& w, const std::vector<double>& x, int64_t out) {
    std::vector<double> y(static_cast<size_t>(out), 0.0);
    const size_t in = x.size();
    for (int64_t o = 0; o < out; ++o) {
      for (size_t i = 0; i < in; ++i) y[static_cast<size_t>(o)] += w[static_cast<size_t>(o) * in + i] * x[i];
    }
    return y;
  };
  const auto rms = [&](const std::vector<double>& x, const std::vector<float>& w) {
    double s = 0;
    for (double v : x) s += v * v;
    const double scale = 1.0 / std::sqrt(s / static_cast<double>(x.size()) + c.rms_eps);
    std::vector<double> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = x[i] * scale * w[i];
    return y;
  };
  const auto rope = [&](std::vector<double>& v, int64_t heads, int64_t pos) {
    for (int64_t h = 0; h < heads; ++h) {
      for (int64_t i = 0; i < hd / 2; ++i) {
        const double a = static_cast<double>(pos) * std::pow(c.rope_theta, -2.0 * static_cast<double>(i) / hd);
        double& x0 = v[static_cast<size_t>(h * hd + i)];
        double& x1 = v[static_cast<size_t>(h * hd + i + hd / 2)];
        const double r0 = x0 * std::cos(a) - x1 * std::sin(a), r1 = x0 * std::sin(a) + x1 * std::cos(a);
        x0 = r0;
        x1 = r1;
      }
    }
  };
  Mat x(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) {
    const float* e = t.at(llama_embedding_name(H)).data() + tokens[static_cast<size_t>(p)] * D;
    x[static_cast<size_t>(p)].assign(e, e + D);
  }
  for (int64_t l = 0; l < c.layers; ++l) {
    const auto w = [&](const char* r) -> const std::vector<float>& { return t.at(llama_layer_tensor_name(H, l, r)); };
    Mat q(static_cast<size_t>(n)), k(static_cast<size_t>(n)), v(static_cast<size_t>(n));
    for (int64_t p = 0; p < n; ++p) {
      const std::vector<double> xn = rms(x[static_cast<size_t>(p)], w("attn_norm"));
      q[static_cast<size_t>(p)] = matvec(w("attn_q"), xn, D);
      k[static_cast<size_t>(p)] = matvec(w("attn_k"), xn, kv);
      v[static_cast<size_t>(p)] = matvec(w("attn_v"), xn, kv);
      rope(q[static_cast<size_t>(p)], c.heads, p);
      rope(k[static_cast<size_t>(p)], c.kv_heads, p);
    }
    for (int64_t p = 0; p < n; ++p) {
      std::vector<double> att(static_cast<size_t>(D), 0.0);
      for (int64_t h = 0; h < c.heads; ++h) {
        const int64_t g = h / (c.heads / c.kv_heads);
        std::vector<double> s(static_cast<size_t>(p + 1));
        double mx = -1e300;
        for (int64_t j = 0; j <= p; ++j) {
          double d = 0;
          for (int64_t i = 0; i < hd; ++i) {
            d += q[static_cast<size_t>(p)][static_cast<size_t>(h * hd + i)] *
                 k[static_cast<size_t>(j)][static_cast<size_t>(g * hd + i)];
          }
          s[static_cast<size_t>(j)] = d / std::sqrt(static_cast<double>(hd));
          mx = std::max(mx, s[static_cast<size_t>(j)]);
        }
        double sum = 0;
        for (double& e : s) sum += (e = std::exp(e - mx));
        for (int64_t j = 0; j <= p; ++j) {
          for (int64_t i = 0; i < hd; ++i) {
            att[static_cast<size_t>(h * hd + i)] +=
                s[static_cast<size_t>(j)] / sum * v[static_cast<size_t>(j)][static_cast<size_t>(g * hd + i)];
          }
        }
      }
      const std::vector<double> o = matvec(w("attn_output"), att, D);
      for (int64_t i = 0; i < D; ++i) x[static_cast<size_t>(p)][static_cast<size_t>(i)] += o[static_cast<size_t>(i)];
      const std::vector<double> xn = rms(x[static_cast<size_t>(p)], w("ffn_norm"));
      std::vector<double> gt = matvec(w("ffn_gate"), xn, c.ffn_dim);
      const std::vector<double> up = matvec(w("ffn_up"), xn, c.ffn_dim);
      for (size_t i = 0; i < gt.size(); ++i) gt[i] = gt[i] / (1.0 + std::exp(-gt[i])) * up[i];
      const std::vector<double> dn = matvec(w("ffn_down"), gt, D);
      for (int64_t i = 0; i < D; ++i) x[static_cast<size_t>(p)][static_cast<size_t>(i)] += dn[static_cast<size_t>(i)];
    }
  }
  Mat logits(static_cast<size_t>(n));
  for (int64_t p = 0; p < n; ++p) {
    logits[static_cast<size_t>(p)] =
        matvec(t.at(llama_output_name(H)), rms(x[static_cast<size_t>(p)], t.at(llama_output_norm_name(H))), c.vocab_size);
  }
  return logits;
}

std::vector<int32_t> some_tokens(int64_t n, int64_t vocab) {
  std::vector<int32_t> ids(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) ids[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + 3) % vocab);
  return ids;
}

std::vector<float> prefill(const LlamaModel& m, const std::vector<int32_t>& ids, int threads) {
  KvCache cache = m.new_cache(m.config().context_length);
  std::vector<float> logits(ids.size() * static_cast<size_t>(m.config().vocab_size));
  m.forward(ids, cache, 0, logits.data(), threads);
  EXPECT_EQ(cache.size(), static_cast<int64_t>(ids.size()));
  return logits;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
  return d;
}

TEST(LlamaModelTest, MatchesDoubleReference) {
  const LlamaConfig c = tiny_config(LlamaNaming::kHuggingFace);
  const Tensors t = random_hf_weights(c, 1);
  const LlamaModel m = model_from(c, t);
  const std::vector<int32_t> ids = some_tokens(37, c.vocab_size);
  const std::vector<float> got = prefill(m, ids, 1);
  const auto want = reference_logits(c, t, ids);
  for (size_t p = 0; p < ids.size(); ++p) {
    for (int64_t j = 0; j < c.vocab_size; ++j) {
      const double w = want[p][static_cast<size_t>(j)];
      ASSERT_NEAR(got[p * static_cast<size_t>(c.vocab_size) + static_cast<size_t>(j)], w, 1e-4 * (1 + std::abs(w)))
          << "position " << p << " token " << j;
    }
  }
}

TEST(LlamaModelTest, GgufLayoutWithAdjacentPairsEqualsHuggingFaceWithHalves) {
  const LlamaConfig hc = tiny_config(LlamaNaming::kHuggingFace), gc = tiny_config(LlamaNaming::kGguf);
  const Tensors hf = random_hf_weights(hc, 2);
  const std::vector<int32_t> ids = some_tokens(20, hc.vocab_size);
  const std::vector<float> a = prefill(model_from(hc, hf), ids, 1);
  const std::vector<float> b = prefill(model_from(gc, to_gguf_names(hc, hf)), ids, 1);
  EXPECT_LT(max_abs_diff(a, b), 1e-4);
  // The wrong convention is far off: the test can tell them apart.
  LlamaConfig wrong = gc;
  wrong.rope_style = RopeStyle::kHalves;
  EXPECT_GT(max_abs_diff(a, prefill(model_from(wrong, to_gguf_names(hc, hf)), ids, 1)), 1e-2);
}

TEST(LlamaModelTest, LogitsBitIdenticalAcrossThreadCounts) {
  LlamaConfig c = tiny_config(LlamaNaming::kHuggingFace);
  c.context_length = 600;
  const Tensors t = random_hf_weights(c, 3);
  const LlamaModel m = model_from(c, t);
  // Long enough for several matmul and attention tiles.
  const std::vector<int32_t> ids = some_tokens(300, c.vocab_size);
  const std::vector<float> one = prefill(m, ids, 1);
  for (int threads : {2, 3, 8}) {
    const std::vector<float> other = prefill(m, ids, threads);
    ASSERT_EQ(std::memcmp(one.data(), other.data(), one.size() * sizeof(float)), 0) << threads << " threads";
  }
}

TEST(LlamaModelTest, DecodeThroughCacheAgreesWithPrefill) {
  const LlamaConfig c = tiny_config(LlamaNaming::kGguf);
  const LlamaModel m = model_from(c, to_gguf_names(c, random_hf_weights(c, 4)));
  const std::vector<int32_t> ids = some_tokens(24, c.vocab_size);
  const std::vector<float> all = prefill(m, ids, 2);
  // The first 10 in one batch, then one at a time.
  KvCache cache = m.new_cache(32);
  const auto V = static_cast<size_t>(c.vocab_size);
  std::vector<float> got(ids.size() * V);
  m.forward(std::span(ids).first(10), cache, 0, got.data(), 2);
  for (size_t p = 10; p < ids.size(); ++p) m.forward(std::span(ids).subspan(p, 1), cache, 0, got.data() + p * V, 2);
  EXPECT_EQ(cache.size(), 24);
  EXPECT_LT(max_abs_diff(all, got), 1e-4);
  // Only the asked rows: logits_from.
  KvCache c2 = m.new_cache(32);
  std::vector<float> last(V);
  m.forward(ids, c2, static_cast<int64_t>(ids.size()) - 1, last.data(), 1);
  EXPECT_LT(max_abs_diff(std::vector<float>(all.end() - static_cast<ptrdiff_t>(V), all.end()), last), 1e-5);
}

TEST(LlamaModelTest, NonFiniteBlockOutputNamesTheBlock) {
  const LlamaConfig c = tiny_config(LlamaNaming::kHuggingFace);
  Tensors t = random_hf_weights(c, 5);
  t[llama_layer_tensor_name(LlamaNaming::kHuggingFace, 1, "ffn_down")][3] = INFINITY;
  const LlamaModel m = model_from(c, t);
  KvCache cache = m.new_cache(8);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size) * 4);
  try {
    m.forward(some_tokens(4, c.vocab_size), cache, 0, logits.data(), 1);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("blk 1"), std::string::npos) << e.what();
  }
  EXPECT_EQ(cache.size(), 0);  // nothing half-added
}

TEST(LlamaModelTest, BadTokensFullCacheAndMissingTensors) {
  const LlamaConfig c = tiny_config(LlamaNaming::kHuggingFace);
  Tensors t = random_hf_weights(c, 6);
  const LlamaModel m = model_from(c, t);
  KvCache cache = m.new_cache(4);
  std::vector<float> logits(static_cast<size_t>(c.vocab_size) * 8);
  const std::vector<int32_t> bad{1, 40};
  EXPECT_THROW(m.forward(bad, cache, 0, logits.data(), 1), Error);
  EXPECT_THROW(m.forward(some_tokens(5, c.vocab_size), cache, 0, logits.data(), 1), Error);
  EXPECT_THROW(m.new_cache(65), Error);
  t.erase(llama_layer_tensor_name(LlamaNaming::kHuggingFace, 1, "attn_v"));
  try {
    model_from(c, t);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("model.layers.1.self_attn.v_proj.weight"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------- files

class LlamaFileTest : public testing_support::TempDirTest {};

void write_gguf(const std::string& path, const LlamaConfig& c, const Tensors& g, bool tied) {
  GgufWriter w(path);
  w.add_metadata("general.architecture", GgufValue::of("llama"));
  w.add_metadata("llama.block_count", GgufValue::of(static_cast<uint32_t>(c.layers)));
  w.add_metadata("llama.context_length", GgufValue::of(static_cast<uint32_t>(c.context_length)));
  w.add_metadata("llama.embedding_length", GgufValue::of(static_cast<uint32_t>(c.dim)));
  w.add_metadata("llama.feed_forward_length", GgufValue::of(static_cast<uint32_t>(c.ffn_dim)));
  w.add_metadata("llama.attention.head_count", GgufValue::of(static_cast<uint32_t>(c.heads)));
  w.add_metadata("llama.attention.head_count_kv", GgufValue::of(static_cast<uint32_t>(c.kv_heads)));
  w.add_metadata("llama.rope.freq_base", GgufValue::of(static_cast<float>(c.rope_theta)));
  w.add_metadata("llama.attention.layer_norm_rms_epsilon", GgufValue::of(c.rms_eps));
  w.add_metadata("llama.rope.dimension_count", GgufValue::of(static_cast<uint32_t>(c.rope_dim)));
  std::vector<std::pair<std::string, const std::vector<float>*>> order;
  for (const auto& [name, v] : g) {
    if (tied && name == "output.weight") continue;
    order.emplace_back(name, &v);
  }
  for (const auto& [name, v] : order) {
    std::vector<uint64_t> ne;
    if (name.find("norm") != std::string::npos) {
      ne = {v->size()};
    } else {
      const uint64_t in = name.find("ffn_down") != std::string::npos ? static_cast<uint64_t>(c.ffn_dim)
                                                                     : static_cast<uint64_t>(c.dim);
      ne = {in, v->size() / in};
    }
    w.declare_tensor(name, ne, GgmlType::kF32);
  }
  w.begin();
  for (size_t i = 0; i < order.size(); ++i) w.write_tensor_data(i, order[i].second->data(), order[i].second->size() * 4);
  w.commit();
}

TEST_F(LlamaFileTest, GgufFileAndHuggingFaceDirectoryGiveTheSameLogits) {
  const LlamaConfig hc = tiny_config(LlamaNaming::kHuggingFace);
  Tensors hf = random_hf_weights(hc, 7);
  hf[llama_output_name(LlamaNaming::kHuggingFace)] = hf.at(llama_embedding_name(LlamaNaming::kHuggingFace));
  write_gguf(path("m.gguf"), hc, to_gguf_names(hc, hf), /*tied=*/true);
  std::filesystem::create_directory(path("hf"));
  {
    std::ofstream(path("hf/config.json")) << R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
      "vocab_size": 40, "hidden_size": 16, "intermediate_size": 24, "num_hidden_layers": 2,
      "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 64,
      "rope_theta": 10000.0, "rms_norm_eps": 1e-05, "tie_word_embeddings": true})";
    SafetensorsWriter w(path("hf/model.safetensors"));
    for (const auto& [name, v] : hf) {
      if (name == "lm_head.weight") continue;
      const uint64_t rows = name.find("norm") != std::string::npos ? 0 : v.size() / (name.find("down") != std::string::npos ? 24 : 16);
      w.declare(name, DType::kF32, rows ? std::vector<uint64_t>{rows, v.size() / rows} : std::vector<uint64_t>{v.size()});
    }
    w.begin();
    for (const auto& [name, v] : hf) {
      if (name != "lm_head.weight") w.write_tensor_data(name, v.data(), v.size() * 4);
    }
    w.commit();
  }
  const LlamaModel g = LlamaModel::load(path("m.gguf"), 1);
  const LlamaModel h = LlamaModel::load(path("hf"), 1);
  EXPECT_TRUE(g.config().tied_embeddings);
  EXPECT_TRUE(h.config().tied_embeddings);
  EXPECT_EQ(g.config().rope_style, RopeStyle::kAdjacentPairs);
  EXPECT_EQ(h.config().rope_style, RopeStyle::kHalves);
  const std::vector<int32_t> ids = some_tokens(16, 40);
  EXPECT_LT(max_abs_diff(prefill(g, ids, 2), prefill(h, ids, 2)), 1e-4);
}

// A model whose every in-feature count is a whole number of 32-element
// blocks, written as llama.cpp stores SmolLM2: Q4_1 blocks, a tied Q8_0
// embedding. Its Linears then keep the blocks for one-token forwards.
TEST_F(LlamaFileTest, QuantizedGgufDecodesThroughPackedWeights) {
  LlamaConfig c = tiny_config(LlamaNaming::kGguf);
  c.dim = 64;
  c.ffn_dim = 96;
  c.head_dim = 16;
  c.rope_dim = 16;
  c.tied_embeddings = true;
  const Tensors g = to_gguf_names(c, random_hf_weights(c, 11));
  {
    GgufWriter w(path("q.gguf"));
    w.add_metadata("general.architecture", GgufValue::of("llama"));
    w.add_metadata("llama.block_count", GgufValue::of(static_cast<uint32_t>(c.layers)));
    w.add_metadata("llama.context_length", GgufValue::of(static_cast<uint32_t>(c.context_length)));
    w.add_metadata("llama.embedding_length", GgufValue::of(static_cast<uint32_t>(c.dim)));
    w.add_metadata("llama.feed_forward_length", GgufValue::of(static_cast<uint32_t>(c.ffn_dim)));
    w.add_metadata("llama.attention.head_count", GgufValue::of(static_cast<uint32_t>(c.heads)));
    w.add_metadata("llama.attention.head_count_kv", GgufValue::of(static_cast<uint32_t>(c.kv_heads)));
    w.add_metadata("llama.rope.freq_base", GgufValue::of(static_cast<float>(c.rope_theta)));
    w.add_metadata("llama.attention.layer_norm_rms_epsilon", GgufValue::of(c.rms_eps));
    w.add_metadata("llama.rope.dimension_count", GgufValue::of(static_cast<uint32_t>(c.rope_dim)));
    std::vector<std::pair<std::string, std::vector<uint8_t>>> data;
    for (const auto& [name, v] : g) {
      if (name == "output.weight") continue;
      if (name.find("norm") != std::string::npos) {
        w.declare_tensor(name, {v.size()}, GgmlType::kF32);
        data.emplace_back(name, std::vector<uint8_t>(reinterpret_cast<const uint8_t*>(v.data()),
                                                     reinterpret_cast<const uint8_t*>(v.data() + v.size())));
        continue;
      }
      const uint64_t in = name.find("ffn_down") != std::string::npos ? c.ffn_dim : c.dim, rows = v.size() / in;
      const GgmlType t = name == "token_embd.weight" ? GgmlType::kQ8_0 : GgmlType::kQ4_1;
      std::vector<uint8_t> bytes(ggml_row_bytes(t, in, name) * rows);
      ggml_quantize_rows(t, v.data(), rows, in, bytes.data(), nullptr, 1);
      w.declare_tensor(name, {in, rows}, t);
      data.emplace_back(name, std::move(bytes));
    }
    w.begin();
    for (const auto& [name, bytes] : data) w.write_tensor_data(name, bytes.data(), bytes.size());
    w.commit();
  }
  const LlamaModel m = LlamaModel::load(path("q.gguf"), 1);
  ASSERT_NE(m.lm_head().packed(), nullptr);
  EXPECT_EQ(m.lm_head().packed()->type(), GgmlType::kQ8_0);
  for (const LlamaLayer& L : m.layers()) {
    for (const Linear* l : {&L.q, &L.k, &L.v, &L.o, &L.gate, &L.up, &L.down}) {
      ASSERT_NE(l->packed(), nullptr) << l->name();
      EXPECT_EQ(l->packed()->type(), GgmlType::kQ4_1);
      // The blocks hold exactly the float32 weight.
      std::vector<float> row(static_cast<size_t>(l->in_features()));
      for (int64_t r = 0; r < l->out_features(); ++r) {
        l->packed()->dequantize_row(r, row.data());
        ASSERT_EQ(std::memcmp(row.data(), l->weight().data() + r * l->in_features(), row.size() * sizeof(float)), 0)
            << l->name() << " row " << r;
      }
    }
  }
  // Decoding one token at a time (the GEMV) agrees with the batched prefill
  // (BLAS) to float rounding, and is the same bits at every thread count.
  const std::vector<int32_t> ids = some_tokens(20, c.vocab_size);
  const std::vector<float> all = prefill(m, ids, 2);
  const auto V = static_cast<size_t>(c.vocab_size);
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    KvCache cache = m.new_cache(32);
    std::vector<float> got(ids.size() * V);
    m.forward(std::span(ids).first(8), cache, 0, got.data(), threads);
    for (size_t p = 8; p < ids.size(); ++p) {
      m.forward(std::span(ids).subspan(p, 1), cache, 0, got.data() + p * V, threads);
    }
    EXPECT_LT(max_abs_diff(all, got), 1e-4);
    if (first.empty()) {
      first = got;
    } else {
      EXPECT_EQ(std::memcmp(first.data(), got.data(), got.size() * sizeof(float)), 0) << threads << " threads";
    }
  }
}

}  // namespace
}  // namespace lowbit
