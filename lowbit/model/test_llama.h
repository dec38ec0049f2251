// A tiny random Llama for tests (never part of the library): GGUF naming,
// tied embeddings, norms near 1 and weights N(0, 0.5), from `seed`.
#pragma once

#include <random>
#include <string>
#include <vector>

#include "lowbit/model/llama_model.h"

namespace lowbit::test_llama {

inline LlamaConfig tiny_config() {
  LlamaConfig c;
  c.vocab_size = 30;
  c.dim = 8;
  c.ffn_dim = 12;
  c.layers = 2;
  c.heads = 2;
  c.kv_heads = 1;
  c.head_dim = 4;
  c.rope_dim = 4;
  c.context_length = 32;
  c.naming = LlamaNaming::kGguf;
  c.tied_embeddings = true;
  return c;
}

// A model of config `c` with weights N(0, sd) and norms near 1.
inline LlamaModel random_model(const LlamaConfig& c, uint32_t seed, float sd) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, sd);
  return LlamaModel::from_tensors(
      c,
      [&](const std::string& name, const std::vector<int64_t>& shape) -> std::optional<std::vector<float>> {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        std::vector<float> v(static_cast<size_t>(n));
        for (float& x : v) x = (name.find("norm") != std::string::npos ? 1.0f : 0.0f) + nd(rng);
        return v;
      },
      "tiny");
}

inline LlamaModel tiny_model(uint32_t seed = 11) { return random_model(tiny_config(), seed, 0.5f); }

// n token ids uniform in [0, vocab), from `seed`.
inline std::vector<int32_t> random_tokens(int64_t n, int64_t vocab, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_int_distribution<int32_t> d(0, static_cast<int32_t>(vocab - 1));
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t& v : t) v = d(g);
  return t;
}

}  // namespace lowbit::test_llama
