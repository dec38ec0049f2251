#include "lowbit/model/bert_config.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"
#include "lowbit/core/text.h"

namespace lowbit {

namespace {

namespace fs = std::filesystem;
using Json = nlohmann::json;

Json parse_json(std::string_view text, const std::string& name) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) fail_input(fmt::format("{}: not valid JSON", name));
  if (!j.is_object()) fail_input(fmt::format("{}: expected a JSON object", name));
  return j;
}

Json read_json(const fs::path& path) {
  const std::vector<std::byte> bytes = read_file(path.string());
  return parse_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                    fmt::format("'{}'", path.string()));
}

// A positive whole number under `key` (JSON may write 384 as 384.0: not
// accepted, as no writer of these files does that).
int64_t positive(const Json& j, const char* key, const std::string& name, bool required = true,
                 int64_t fallback = 0) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) {
    if (!required) return fallback;
    fail_input(fmt::format("{}: missing \"{}\"", name, key));
  }
  if (!it->is_number_integer()) fail_input(fmt::format("{}: \"{}\" is not a whole number", name, key));
  const int64_t v = it->get<int64_t>();
  // 2^31 bounds every size so that products of two sizes fit in int64.
  if (v <= 0 || v > (int64_t{1} << 31)) fail_input(fmt::format("{}: \"{}\" = {} is out of range", name, key, v));
  return v;
}

std::string string_or(const Json& j, const char* key, const std::string& name, const std::string& fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_string()) fail_input(fmt::format("{}: \"{}\" is not a string", name, key));
  return it->get<std::string>();
}

bool bool_or(const Json& j, const char* key, const std::string& name, bool fallback) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) fail_input(fmt::format("{}: \"{}\" is not true or false", name, key));
  return it->get<bool>();
}

}  // namespace

BertConfig parse_bert_config(std::string_view json_text, const std::string& name) {
  const Json j = parse_json(json_text, name);
  // model_type is what transformers dispatches on; a config without it is
  // not something transformers would load as BERT either.
  const std::string type = string_or(j, "model_type", name, "");
  if (type != "bert") {
    std::string arch;
    if (j.contains("architectures") && j["architectures"].is_array() && !j["architectures"].empty() &&
        j["architectures"][0].is_string()) {
      arch = fmt::format(" (architecture {})", quote_untrusted(j["architectures"][0].get<std::string>()));
    }
    fail_input(fmt::format("{}: model_type {}{} is not a BERT encoder; lowbit runs model_type 'bert' here",
                           name, type.empty() ? std::string("missing") : quote_untrusted(type), arch));
  }
  BertConfig c;
  c.vocab_size = positive(j, "vocab_size", name);
  c.hidden_size = positive(j, "hidden_size", name);
  c.num_layers = positive(j, "num_hidden_layers", name);
  c.num_heads = positive(j, "num_attention_heads", name);
  c.intermediate_size = positive(j, "intermediate_size", name);
  c.max_position_embeddings = positive(j, "max_position_embeddings", name);
  // transformers' BertConfig defaults: type_vocab_size 2, layer_norm_eps
  // 1e-12, hidden_act "gelu", position_embedding_type "absolute".
  c.type_vocab_size = positive(j, "type_vocab_size", name, false, 2);
  if (j.contains("layer_norm_eps") && !j["layer_norm_eps"].is_null()) {
    const Json& e = j["layer_norm_eps"];
    if (!e.is_number() || !(e.get<double>() >= 0) || !std::isfinite(e.get<double>())) {
      fail_input(fmt::format("{}: \"layer_norm_eps\" is not a finite number >= 0", name));
    }
    c.layer_norm_eps = e.get<double>();
  }
  // transformers' "gelu" is the exact erf form; the tanh approximation is
  // "gelu_new"/"gelu_pytorch_tanh", refused rather than run as the other.
  const std::string act = string_or(j, "hidden_act", name, "gelu");
  if (act != "gelu") {
    fail_input(fmt::format("{}: hidden_act {} is not supported (lowbit runs \"gelu\", the exact erf form)", name,
                           quote_untrusted(act)));
  }
  const std::string pos = string_or(j, "position_embedding_type", name, "absolute");
  if (pos != "absolute") {
    fail_input(fmt::format("{}: position_embedding_type {} is not supported (lowbit runs \"absolute\")", name,
                           quote_untrusted(pos)));
  }
  if (c.hidden_size % c.num_heads != 0) {
    fail_input(fmt::format("{}: hidden_size {} is not a multiple of num_attention_heads {}", name, c.hidden_size,
                           c.num_heads));
  }
  return c;
}

BertConfig load_bert_config(const std::string& dir) {
  const fs::path path = fs::path(dir) / "config.json";
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    fail_input(fmt::format("'{}' has no config.json: a BERT model directory needs one", dir));
  }
  const std::vector<std::byte> bytes = read_file(path.string());
  return parse_bert_config(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()),
                           fmt::format("'{}'", path.string()));
}

SentencePipeline load_sentence_pipeline(const std::string& dir, const BertConfig& config) {
  SentencePipeline p;
  std::error_code ec;
  // max_seq_length: sentence-transformers passes it as the tokenizer's
  // max_length on every call, which overrides the truncation stored in
  // tokenizer.json (128 for all-MiniLM-L6-v2, against 256 here).
  p.max_seq_length = config.max_position_embeddings;
  const fs::path sbert = fs::path(dir) / "sentence_bert_config.json";
  if (fs::is_regular_file(sbert, ec)) {
    const Json j = read_json(sbert);
    p.max_seq_length = positive(j, "max_seq_length", fmt::format("'{}'", sbert.string()), false,
                                config.max_position_embeddings);
  }
  p.max_seq_length = std::min(p.max_seq_length, config.max_position_embeddings);
  if (p.max_seq_length < 2) {
    fail_input(fmt::format("'{}': a max_seq_length of {} leaves no room for [CLS] and [SEP]", dir,
                           p.max_seq_length));
  }

  const fs::path modules_path = fs::path(dir) / "modules.json";
  if (!fs::is_regular_file(modules_path, ec)) return p;  // mean pooling, no normalization
  p.from_modules_json = true;
  const std::string mname = fmt::format("'{}'", modules_path.string());
  const std::vector<std::byte> bytes = read_file(modules_path.string());
  const Json modules = Json::parse(bytes.begin(), bytes.end(), nullptr, false);
  if (modules.is_discarded() || !modules.is_array()) fail_input(fmt::format("{}: expected a JSON array", mname));
  bool seen_transformer = false, seen_pooling = false;
  for (const Json& m : modules) {
    if (!m.is_object()) fail_input(fmt::format("{}: a module is not a JSON object", mname));
    const std::string type = string_or(m, "type", mname, "");
    const std::string path = string_or(m, "path", mname, "");
    // The module kinds lowbit runs, each once, in the only order that
    // makes sense for them; anything else (Dense, LayerNorm, a custom
    // module) would change the embedding, so it is refused by name.
    if (type == "sentence_transformers.models.Transformer") {
      if (seen_transformer || seen_pooling || p.normalize) {
        fail_input(fmt::format("{}: the Transformer module must come first, once", mname));
      }
      seen_transformer = true;
    } else if (type == "sentence_transformers.models.Pooling") {
      if (!seen_transformer || seen_pooling || p.normalize) {
        fail_input(fmt::format("{}: the Pooling module must follow the Transformer, once", mname));
      }
      seen_pooling = true;
      const fs::path cfg_path = fs::path(dir) / path / "config.json";
      if (path.empty() || path.find("..") != std::string::npos || !fs::is_regular_file(cfg_path, ec)) {
        fail_input(fmt::format("{}: the Pooling module's config {} is missing", mname,
                               quote_untrusted(cfg_path.string())));
      }
      const Json pc = read_json(cfg_path);
      const std::string pname = fmt::format("'{}'", cfg_path.string());
      const int64_t dim = positive(pc, "word_embedding_dimension", pname, false, config.hidden_size);
      if (dim != config.hidden_size) {
        fail_input(fmt::format("{}: word_embedding_dimension {} differs from the model's hidden_size {}", pname,
                               dim, config.hidden_size));
      }
      for (const char* unsupported : {"pooling_mode_weightedmean_tokens", "pooling_mode_lasttoken"}) {
        if (bool_or(pc, unsupported, pname, false)) {
          fail_input(fmt::format("{}: \"{}\" is not supported (lowbit pools with cls, max, mean and "
                                 "mean_sqrt_len)",
                                 pname, unsupported));
        }
      }
      // sentence-transformers' Pooling defaults: mean on, the others off.
      p.pooling.cls = bool_or(pc, "pooling_mode_cls_token", pname, false);
      p.pooling.max = bool_or(pc, "pooling_mode_max_tokens", pname, false);
      p.pooling.mean = bool_or(pc, "pooling_mode_mean_tokens", pname, true);
      p.pooling.mean_sqrt_len = bool_or(pc, "pooling_mode_mean_sqrt_len_tokens", pname, false);
      // A "pooling_mode" string, where given, replaces the flags, as in
      // sentence-transformers.
      const std::string mode = string_or(pc, "pooling_mode", pname, "");
      if (!mode.empty()) {
        p.pooling = PoolingModes{false, false, false, false};
        if (mode == "cls") {
          p.pooling.cls = true;
        } else if (mode == "max") {
          p.pooling.max = true;
        } else if (mode == "mean") {
          p.pooling.mean = true;
        } else if (mode == "mean_sqrt_len_tokens") {
          p.pooling.mean_sqrt_len = true;
        } else {
          fail_input(fmt::format("{}: pooling_mode {} is not supported (cls, max, mean, mean_sqrt_len_tokens)",
                                 pname, quote_untrusted(mode)));
        }
      }
      if (p.pooling.count() == 0) fail_input(fmt::format("{}: no pooling mode is enabled", pname));
    } else if (type == "sentence_transformers.models.Normalize") {
      if (!seen_pooling || p.normalize) {
        fail_input(fmt::format("{}: the Normalize module must follow the Pooling module, once", mname));
      }
      p.normalize = true;
    } else {
      fail_input(fmt::format("{}: module type {} is not supported (lowbit runs Transformer, Pooling, Normalize)",
                             mname, quote_untrusted(type)));
    }
  }
  if (!seen_transformer || !seen_pooling) {
    fail_input(fmt::format("{}: a sentence-transformers pipeline needs a Transformer and a Pooling module", mname));
  }
  return p;
}

std::vector<int32_t> truncate_tokens(std::span<const int32_t> ids, int64_t max_len) {
  if (max_len < 2) fail_internal("truncate_tokens: max_len < 2");
  if (static_cast<int64_t>(ids.size()) <= max_len) return {ids.begin(), ids.end()};
  // The tokenizer truncates the text's tokens to max_len - 2 and then adds
  // [CLS] and [SEP]: the same as keeping the head and the final [SEP].
  std::vector<int32_t> out(ids.begin(), ids.begin() + (max_len - 1));
  out.push_back(ids.back());
  return out;
}

}  // namespace lowbit
