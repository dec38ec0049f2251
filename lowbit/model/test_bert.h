// A tiny random BERT encoder for tests (never part of the library):
// Hugging Face naming, LayerNorm gains near 1, other weights N(0, 0.3),
// each tensor seeded by its name.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "lowbit/model/bert_model.h"

namespace lowbit::test_bert {

inline BertConfig tiny_config() {
  BertConfig c;
  c.vocab_size = 50;
  c.hidden_size = 16;
  c.num_layers = 2;
  c.num_heads = 4;
  c.intermediate_size = 40;
  c.max_position_embeddings = 300;
  c.type_vocab_size = 2;
  c.layer_norm_eps = 1e-12;
  return c;
}

// Random weights by name, generated once so that the model and the
// reference read the same values.
struct RandomWeights {
  std::map<std::string, std::vector<float>> tensors;
  std::map<std::string, std::vector<int64_t>> shapes;

  BertModel::TensorSource source() {
    return [this](const std::string& name, const std::vector<int64_t>& shape) {
      auto it = tensors.find(name);
      if (it == tensors.end()) {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        std::mt19937 rng(static_cast<uint32_t>(std::hash<std::string>{}(name)));
        const bool ln_gamma = name.find("LayerNorm.weight") != std::string::npos;
        std::normal_distribution<float> nd(ln_gamma ? 1.0f : 0.0f, ln_gamma ? 0.1f : 0.3f);
        std::vector<float> v(static_cast<size_t>(n));
        for (float& x : v) x = nd(rng);
        it = tensors.emplace(name, std::move(v)).first;
        shapes[name] = shape;
      }
      return it->second;
    };
  }
  const std::vector<float>& at(const std::string& name) const { return tensors.at(name); }
};

inline BertModel tiny_model(RandomWeights& w) { return BertModel(tiny_config(), w.source()); }

}  // namespace lowbit::test_bert
