#include "lowbit/model/llama_config.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/text.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/io/gguf_reader.h"

namespace lowbit {

namespace {

// What the message for a foreign model lists: the architectures lowbit's
// runtime has.
constexpr const char* kRunnable = "lowbit runs llama (eval, generate) and bert (embed)";

// A whole-number metadata value of any integer type: writers differ
// (llama.cpp writes UINT32, other converters INT32 or UINT64).
int64_t gguf_int(const GgufFile& f, const std::string& key) {
  const GgufValue& v = f.at(key);
  switch (v.type()) {
    case GgufType::kUint8: return v.as<uint8_t>();
    case GgufType::kInt8: return v.as<int8_t>();
    case GgufType::kUint16: return v.as<uint16_t>();
    case GgufType::kInt16: return v.as<int16_t>();
    case GgufType::kUint32: return v.as<uint32_t>();
    case GgufType::kInt32: return v.as<int32_t>();
    case GgufType::kInt64: return v.as<int64_t>();
    case GgufType::kUint64: {
      const uint64_t u = v.as<uint64_t>();
      if (u > static_cast<uint64_t>(INT64_MAX)) fail_input(fmt::format("GGUF file '{}': {} is too large", f.path(), key));
      return static_cast<int64_t>(u);
    }
    default:
      fail_input(fmt::format("GGUF file '{}': {} is {}, not an integer", f.path(), key, gguf_type_name(v.type())));
  }
}

double gguf_real(const GgufFile& f, const std::string& key) {
  const GgufValue& v = f.at(key);
  if (v.type() == GgufType::kFloat32) return v.as<float>();
  if (v.type() == GgufType::kFloat64) return v.as<double>();
  return static_cast<double>(gguf_int(f, key));
}

}  // namespace

void LlamaConfig::validate(const std::string& source) const {
  const auto positive = [&](int64_t v, const char* what) {
    if (v <= 0) fail_input(fmt::format("{}: {} is {}; it must be positive", source, what, v));
  };
  positive(vocab_size, "the vocabulary size");
  positive(dim, "the embedding length");
  positive(ffn_dim, "the feed-forward length");
  positive(layers, "the block count");
  positive(heads, "the head count");
  positive(kv_heads, "the key/value head count");
  positive(head_dim, "the head dimension");
  positive(context_length, "the context length");
  if (heads % kv_heads != 0) {
    fail_input(fmt::format("{}: {} heads are not a multiple of {} key/value heads", source, heads, kv_heads));
  }
  if (heads * head_dim != dim) {
    fail_input(fmt::format("{}: {} heads of {} do not make the embedding length {}", source, heads, head_dim, dim));
  }
  if (rope_dim <= 0 || rope_dim > head_dim || rope_dim % 2 != 0) {
    fail_input(fmt::format("{}: rope dimension {} must be even and within the head dimension {}", source, rope_dim,
                           head_dim));
  }
  if (!(rope_theta > 0) || !std::isfinite(rope_theta)) {
    fail_input(fmt::format("{}: rope frequency base {} must be positive", source, rope_theta));
  }
  if (!(rms_eps >= 0) || !std::isfinite(rms_eps)) {
    fail_input(fmt::format("{}: RMS norm epsilon {} must be finite and not negative", source, rms_eps));
  }
  // Sizes that keep every buffer's element count far from overflow.
  constexpr int64_t kMax = int64_t{1} << 24;
  for (int64_t v : {vocab_size, dim, ffn_dim, layers, heads, context_length}) {
    if (v > kMax) fail_input(fmt::format("{}: a dimension of {} is beyond what lowbit runs", source, v));
  }
}

std::string llama_embedding_name(LlamaNaming naming) {
  return naming == LlamaNaming::kGguf ? "token_embd.weight" : "model.embed_tokens.weight";
}
std::string llama_output_norm_name(LlamaNaming naming) {
  return naming == LlamaNaming::kGguf ? "output_norm.weight" : "model.norm.weight";
}
std::string llama_output_name(LlamaNaming naming) {
  return naming == LlamaNaming::kGguf ? "output.weight" : "lm_head.weight";
}

namespace {
struct RolePair {
  std::string_view gguf, hf;
};
constexpr RolePair kHfRoles[] = {
    {"attn_norm", "input_layernorm"},     {"attn_q", "self_attn.q_proj"},
    {"attn_k", "self_attn.k_proj"},       {"attn_v", "self_attn.v_proj"},
    {"attn_output", "self_attn.o_proj"},  {"ffn_norm", "post_attention_layernorm"},
    {"ffn_gate", "mlp.gate_proj"},        {"ffn_up", "mlp.up_proj"},
    {"ffn_down", "mlp.down_proj"},
};
}  // namespace

std::string llama_layer_tensor_name(LlamaNaming naming, int64_t layer, std::string_view role) {
  if (naming == LlamaNaming::kGguf) return fmt::format("blk.{}.{}.weight", layer, role);
  for (const RolePair& p : kHfRoles) {
    if (p.gguf == role) return fmt::format("model.layers.{}.{}.weight", layer, p.hf);
  }
  fail_internal(fmt::format("no Llama tensor role '{}'", role));
}

std::string llama_gguf_layer_name(std::string_view hf_name) {
  constexpr std::string_view kPrefix = "model.layers.", kSuffix = ".weight";
  if (!hf_name.starts_with(kPrefix) || !hf_name.ends_with(kSuffix)) return {};
  std::string_view rest = hf_name.substr(kPrefix.size(), hf_name.size() - kPrefix.size() - kSuffix.size());
  const size_t dot = rest.find('.');
  if (dot == 0 || dot == std::string_view::npos || dot > 9) return {};
  const std::string_view layer = rest.substr(0, dot), role = rest.substr(dot + 1);
  for (char c : layer) {
    if (c < '0' || c > '9') return {};
  }
  for (const RolePair& p : kHfRoles) {
    if (p.hf == role) return fmt::format("blk.{}.{}.weight", layer, p.gguf);
  }
  return {};
}

LlamaConfig llama_config_from_gguf(const GgufFile& f) {
  const GgufValue* arch_value = f.find("general.architecture");
  if (arch_value == nullptr) {
    fail_input(fmt::format("GGUF file '{}' has no general.architecture; {}", f.path(), kRunnable));
  }
  const std::string& arch = f.get_string("general.architecture");
  if (arch != "llama") {
    fail_input(fmt::format("GGUF file '{}' holds a {} model, not llama; {}", f.path(), quote_untrusted(arch),
                           kRunnable));
  }
  LlamaConfig c;
  c.naming = LlamaNaming::kGguf;
  c.rope_style = RopeStyle::kAdjacentPairs;  // convert_hf_to_gguf permuted Q and K for it
  c.layers = gguf_int(f, "llama.block_count");
  c.dim = gguf_int(f, "llama.embedding_length");
  c.ffn_dim = gguf_int(f, "llama.feed_forward_length");
  c.heads = gguf_int(f, "llama.attention.head_count");
  c.kv_heads = f.find("llama.attention.head_count_kv") ? gguf_int(f, "llama.attention.head_count_kv") : c.heads;
  c.context_length = gguf_int(f, "llama.context_length");
  c.rope_theta = f.find("llama.rope.freq_base") ? gguf_real(f, "llama.rope.freq_base") : 10000.0;
  c.rms_eps = static_cast<float>(gguf_real(f, "llama.attention.layer_norm_rms_epsilon"));
  c.head_dim = c.heads > 0 ? c.dim / c.heads : 0;
  if (f.find("llama.attention.key_length")) c.head_dim = gguf_int(f, "llama.attention.key_length");
  c.rope_dim = f.find("llama.rope.dimension_count") ? gguf_int(f, "llama.rope.dimension_count") : c.head_dim;
  // The logits are as wide as the embedding matrix (which some models pad
  // beyond the tokenizer's list); the metadata is the fallback.
  if (const GgufTensorInfo* e = f.find_tensor("token_embd.weight"); e != nullptr && e->ne.size() == 2) {
    c.vocab_size = static_cast<int64_t>(e->ne[1]);
  } else if (f.find("tokenizer.ggml.tokens")) {
    c.vocab_size = static_cast<int64_t>(f.at("tokenizer.ggml.tokens").size());
  } else if (f.find("llama.vocab_size")) {
    c.vocab_size = gguf_int(f, "llama.vocab_size");
  }
  // Scaled RoPE (linear, YaRN, Llama 3's frequency factors) changes every
  // rotation; running the model without it would give plausible but wrong
  // numbers, so it is refused until lowbit implements it.
  if (const GgufValue* s = f.find("llama.rope.scaling.type");
      s != nullptr && s->type() == GgufType::kString && s->as_string() != "none") {
    fail_input(fmt::format("GGUF file '{}': RoPE scaling {} is not supported (lowbit runs plain RoPE)", f.path(),
                           quote_untrusted(s->as_string())));
  }
  if (f.find_tensor("rope_freqs.weight") != nullptr) {
    fail_input(fmt::format("GGUF file '{}': RoPE frequency factors (rope_freqs.weight) are not supported", f.path()));
  }
  c.validate(fmt::format("GGUF file '{}'", f.path()));
  return c;
}

LlamaConfig llama_config_from_hf_json(std::string_view json_text, const std::string& name) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const nlohmann::json::exception& e) {
    fail_input(fmt::format("'{}' is not valid JSON: {}", name, e.what()));
  }
  if (!j.is_object()) fail_input(fmt::format("'{}' is not a JSON object", name));
  std::string model_type = j.value("model_type", std::string());
  std::string arch_list;
  bool causal_llama = false;
  if (j.contains("architectures") && j["architectures"].is_array()) {
    for (const auto& a : j["architectures"]) {
      if (!a.is_string()) continue;
      arch_list += (arch_list.empty() ? "" : ", ") + a.get<std::string>();
      causal_llama = causal_llama || a.get<std::string>() == "LlamaForCausalLM";
    }
  }
  if (model_type != "llama" && !causal_llama) {
    fail_input(fmt::format("'{}' describes a {} model{}, not llama; {}", name,
                           quote_untrusted(model_type.empty() ? "(unnamed)" : model_type),
                           arch_list.empty() ? "" : fmt::format(" ({})", arch_list), kRunnable));
  }
  const auto get_int = [&](const char* key) -> int64_t {
    if (!j.contains(key) || !j[key].is_number_integer()) {
      fail_input(fmt::format("'{}' has no whole-number \"{}\"", name, key));
    }
    return j[key].get<int64_t>();
  };
  const auto get_real = [&](const char* key, double fallback) -> double {
    if (!j.contains(key) || j[key].is_null()) return fallback;
    if (!j[key].is_number()) fail_input(fmt::format("'{}': \"{}\" is not a number", name, key));
    return j[key].get<double>();
  };
  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    fail_input(fmt::format("'{}': rope_scaling {} is not supported (lowbit runs plain RoPE)", name,
                           j["rope_scaling"].dump()));
  }
  LlamaConfig c;
  c.naming = LlamaNaming::kHuggingFace;
  c.rope_style = RopeStyle::kHalves;
  c.vocab_size = get_int("vocab_size");
  c.dim = get_int("hidden_size");
  c.ffn_dim = get_int("intermediate_size");
  c.layers = get_int("num_hidden_layers");
  c.heads = get_int("num_attention_heads");
  c.kv_heads = j.contains("num_key_value_heads") && !j["num_key_value_heads"].is_null()
                   ? get_int("num_key_value_heads")
                   : c.heads;
  c.head_dim = j.contains("head_dim") && !j["head_dim"].is_null() ? get_int("head_dim")
               : c.heads > 0                                     ? c.dim / c.heads
                                                                 : 0;
  c.rope_dim = c.head_dim;
  c.context_length = get_int("max_position_embeddings");
  c.rope_theta = get_real("rope_theta", 10000.0);
  c.rms_eps = static_cast<float>(get_real("rms_norm_eps", 1e-6));
  if (j.contains("tie_word_embeddings") && !j["tie_word_embeddings"].is_boolean()) {
    fail_input(fmt::format("'{}': \"tie_word_embeddings\" is not true or false", name));
  }
  // Hugging Face's default for tie_word_embeddings is true.
  c.tied_embeddings = j.value("tie_word_embeddings", true);
  if (j.value("attention_bias", false) || j.value("mlp_bias", false)) {
    fail_input(fmt::format("'{}': attention_bias/mlp_bias are not supported", name));
  }
  c.validate(fmt::format("'{}'", name));
  return c;
}

LlamaConfig llama_config_of(const Checkpoint& checkpoint) {
  if (const GgufFile* g = checkpoint.gguf()) {
    LlamaConfig c = llama_config_from_gguf(*g);
    c.tied_embeddings = g->find_tensor(llama_output_name(LlamaNaming::kGguf)) == nullptr;
    return c;
  }
  const std::filesystem::path cfg = std::filesystem::path(checkpoint.directory()) / "config.json";
  if (!std::filesystem::is_regular_file(cfg)) {
    fail_input(fmt::format("'{}' has no config.json beside its weights: lowbit cannot tell its architecture",
                           checkpoint.path()));
  }
  const std::vector<std::byte> bytes = read_file(cfg.string());
  return llama_config_from_hf_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                                   cfg.string());
}

}  // namespace lowbit
