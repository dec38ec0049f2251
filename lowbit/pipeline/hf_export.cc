#include "lowbit/pipeline/hf_export.h"

#include <filesystem>
#include <map>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/model/bpe_pre_tokenizer.h"
#include "lowbit/model/llama_config.h"
#include "lowbit/model/vocabulary.h"

namespace lowbit {

namespace {

using nlohmann::json;

// GGUF rows of each head (adjacent pairs) back to Hugging Face's halves.
std::vector<float> unpermute_rows(const std::vector<float>& w, int64_t rows, int64_t cols, int64_t head_dim) {
  std::vector<float> out(w.size());
  const int64_t half = head_dim / 2;
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t h = r / head_dim, k = r % head_dim, i = k / 2, j = k % 2;
    const int64_t hf = h * head_dim + j * half + i;
    std::copy(w.begin() + r * cols, w.begin() + (r + 1) * cols, out.begin() + hf * cols);
  }
  return out;
}

json tokenizer_json(const GgufFile& g, const std::string& source) {
  if (!g.find("tokenizer.ggml.model") || g.get_string("tokenizer.ggml.model") != "gpt2") {
    fail_input(fmt::format("'{}': lowbit exports byte-level BPE tokenizers (tokenizer.ggml.model gpt2) only", source));
  }
  const std::string pre = g.find("tokenizer.ggml.pre") ? g.get_string("tokenizer.ggml.pre") : "gpt2";
  const auto kind = find_bpe_pre_tokenizer(pre == "default" ? "gpt-2" : pre);
  if (!kind) fail_input(fmt::format("'{}': no Hugging Face form for the pre-tokenizer '{}'", source, pre));
  const std::vector<std::string>& tokens = g.get_strings("tokenizer.ggml.tokens");
  const std::vector<std::string>& merges = g.get_strings("tokenizer.ggml.merges");
  std::vector<int32_t> types;
  if (g.find("tokenizer.ggml.token_type")) types = g.at("tokenizer.ggml.token_type").to_vector<int32_t>("tokenizer.ggml.token_type");
  json vocab = json::object(), added = json::array();
  for (size_t i = 0; i < tokens.size(); ++i) {
    vocab[tokens[i]] = i;
    const bool control = i < types.size() && (types[i] == static_cast<int32_t>(TokenType::kControl) ||
                                              types[i] == static_cast<int32_t>(TokenType::kUserDefined));
    if (control) {
      added.push_back({{"id", i}, {"content", tokens[i]}, {"single_word", false}, {"lstrip", false},
                       {"rstrip", false}, {"normalized", false}, {"special", true}});
    }
  }
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true},
                           {"use_regex", true}};
  const json pre_tokenizer =
      *kind == BpePreTokenizer::kGpt2
          ? byte_level
          : json{{"type", "Sequence"},
                 {"pretokenizers", json::array({{{"type", "Digits"}, {"individual_digits", true}}, byte_level})}};
  return {{"version", "1.0"},
          {"truncation", nullptr},
          {"padding", nullptr},
          {"added_tokens", added},
          {"normalizer", nullptr},
          {"pre_tokenizer", pre_tokenizer},
          {"post_processor", nullptr},
          {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
          {"model",
           {{"type", "BPE"},
            {"dropout", nullptr},
            {"unk_token", nullptr},
            {"continuing_subword_prefix", nullptr},
            {"end_of_word_suffix", nullptr},
            {"fuse_unk", false},
            {"byte_fallback", false},
            {"ignore_merges", false},
            {"vocab", vocab},
            {"merges", merges}}}};
}

}  // namespace

void export_llama_hf(const std::string& gguf_path, const std::string& out_dir, int threads) {
  const Checkpoint ck = Checkpoint::open(gguf_path);
  const GgufFile* g = ck.gguf();
  if (!g) fail_input(fmt::format("'{}' is not a GGUF file", gguf_path));
  const LlamaConfig c = llama_config_of(ck);
  if (c.rope_dim != c.head_dim) {
    fail_input(fmt::format("'{}': a partial RoPE ({} of {} dimensions) has no Hugging Face Llama form", gguf_path,
                           c.rope_dim, c.head_dim));
  }
  const json tok = tokenizer_json(*g, gguf_path);
  const auto token_id = [&](const char* key) -> json {
    return g->find(key) ? json(g->get_u32(key)) : json(nullptr);
  };

  // Every tensor: its Hugging Face name, float32, Q and K rows reordered.
  std::map<std::string, std::string> rename = {{llama_embedding_name(LlamaNaming::kGguf), llama_embedding_name(LlamaNaming::kHuggingFace)},
                                               {llama_output_norm_name(LlamaNaming::kGguf), llama_output_norm_name(LlamaNaming::kHuggingFace)},
                                               {llama_output_name(LlamaNaming::kGguf), llama_output_name(LlamaNaming::kHuggingFace)}};
  for (int64_t l = 0; l < c.layers; ++l) {
    for (const char* role : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate",
                             "ffn_up", "ffn_down"}) {
      rename[llama_layer_tensor_name(LlamaNaming::kGguf, l, role)] = llama_layer_tensor_name(LlamaNaming::kHuggingFace, l, role);
    }
  }
  std::vector<std::vector<float>> data;
  std::vector<TensorToWrite> tensors;
  bool tied = true;
  for (size_t i = 0; i < ck.tensors().size(); ++i) {
    const CheckpointTensor& t = ck.tensors()[i];
    const auto it = rename.find(t.name);
    if (it == rename.end()) {
      fail_input(fmt::format("'{}': tensor '{}' is not part of a Llama decoder", gguf_path, t.name));
    }
    if (t.name == llama_output_name(LlamaNaming::kGguf)) tied = false;
    std::vector<float> v(static_cast<size_t>(t.numel));
    ck.read_float32(i, v.data(), threads);
    const bool q = t.name.ends_with("attn_q.weight"), k = t.name.ends_with("attn_k.weight");
    if ((q || k) && t.shape.size() == 2) {
      v = unpermute_rows(v, static_cast<int64_t>(t.shape[0]), static_cast<int64_t>(t.shape[1]), c.head_dim);
    }
    data.push_back(std::move(v));
    tensors.push_back({it->second, DType::kF32, t.shape, nullptr});
  }
  for (size_t i = 0; i < tensors.size(); ++i) tensors[i].data = data[i].data();
  const json config = {{"architectures", {"LlamaForCausalLM"}},
                       {"model_type", "llama"},
                       {"vocab_size", c.vocab_size},
                       {"hidden_size", c.dim},
                       {"intermediate_size", c.ffn_dim},
                       {"num_hidden_layers", c.layers},
                       {"num_attention_heads", c.heads},
                       {"num_key_value_heads", c.kv_heads},
                       {"head_dim", c.head_dim},
                       {"max_position_embeddings", c.context_length},
                       {"rms_norm_eps", c.rms_eps},
                       {"rope_theta", c.rope_theta},
                       {"tie_word_embeddings", tied},
                       {"hidden_act", "silu"},
                       {"attention_bias", false},
                       {"mlp_bias", false},
                       {"bos_token_id", token_id("tokenizer.ggml.bos_token_id")},
                       {"eos_token_id", token_id("tokenizer.ggml.eos_token_id")},
                       {"torch_dtype", "float32"}};
  const std::filesystem::path dir(out_dir);
  write_safetensors((dir / "model.safetensors").string(), {{"format", "pt"}}, tensors);
  const std::string config_text = config.dump(2) + "\n", tok_text = tok.dump() + "\n";
  write_file_atomic((dir / "config.json").string(), config_text.data(), config_text.size());
  write_file_atomic((dir / "tokenizer.json").string(), tok_text.data(), tok_text.size());
}

}  // namespace lowbit
