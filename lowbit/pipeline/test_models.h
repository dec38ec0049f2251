// Small in-memory checkpoints for the pipeline's tests (never part of the
// library): safetensors bytes built here, read through
// Checkpoint::from_memory, so a test needs no file and no real model.
#pragma once

#include <cstdint>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "lowbit/core/tensor.h"
#include "lowbit/core/test_support.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/io/safetensors.h"

namespace lowbit::test_models {

struct Tensor {
  std::string name;
  std::vector<uint64_t> shape;
  std::vector<float> values;  // stored as F32
};

// The bytes of a safetensors file holding `tensors` (F32) in order.
inline std::vector<std::byte> safetensors_bytes(const std::vector<Tensor>& tensors,
                                                const std::map<std::string, std::string>& metadata = {}) {
  nlohmann::ordered_json header;
  if (!metadata.empty()) header["__metadata__"] = metadata;
  uint64_t offset = 0;
  for (const Tensor& t : tensors) {
    const uint64_t nbytes = t.values.size() * sizeof(float);
    header[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
  }
  std::string h = header.dump();
  while (h.size() % 8) h.push_back(' ');  // the data starts 8-byte aligned
  std::vector<std::byte> out(8 + h.size() + offset);
  const uint64_t hlen = h.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<std::byte>(hlen >> (8 * i));  // little-endian
  std::memcpy(out.data() + 8, h.data(), h.size());
  size_t at = 8 + h.size();
  for (const Tensor& t : tensors) {
    std::memcpy(out.data() + at, t.values.data(), t.values.size() * sizeof(float));
    at += t.values.size() * sizeof(float);
  }
  return out;
}

inline Checkpoint checkpoint(const std::vector<Tensor>& tensors, const std::map<std::string, std::string>& metadata = {}) {
  return Checkpoint::from_memory(SafetensorsFile::from_memory(safetensors_bytes(tensors, metadata), "toy.safetensors"));
}

inline std::vector<float> normal(size_t n, uint32_t seed, float sigma = 1.0f) {
  return testing_support::normal_values(n, seed, sigma);
}

// A two-block Llama in Hugging Face names: embeddings, per block the four
// attention projections (q/k/v share a fused layer in vLLM), the three MLP
// projections and two norms, a final norm and an LM head. dim columns,
// ffn MLP width; every 2-D weight has whole 256-column blocks.
inline std::vector<Tensor> toy_llama(uint64_t dim = 256, uint64_t ffn = 512, uint64_t vocab = 64, uint32_t seed = 1) {
  std::vector<Tensor> t;
  auto add = [&](std::string name, std::vector<uint64_t> shape) {
    uint64_t n = 1;
    for (uint64_t s : shape) n *= s;
    t.push_back({std::move(name), shape, normal(n, seed++, 0.05f)});
  };
  add("model.embed_tokens.weight", {vocab, dim});
  for (int b = 0; b < 2; ++b) {
    const std::string p = "model.layers." + std::to_string(b) + ".";
    add(p + "input_layernorm.weight", {dim});
    for (const char* n : {"q_proj", "k_proj", "v_proj", "o_proj"}) add(p + "self_attn." + n + ".weight", {dim, dim});
    add(p + "post_attention_layernorm.weight", {dim});
    add(p + "mlp.gate_proj.weight", {ffn, dim});
    add(p + "mlp.up_proj.weight", {ffn, dim});
    add(p + "mlp.down_proj.weight", {dim, ffn});
  }
  add("model.norm.weight", {dim});
  add("lm_head.weight", {vocab, dim});
  return t;
}

}  // namespace lowbit::test_models
