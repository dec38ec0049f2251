#include "lowbit/pipeline/gguf_architecture.h"

#include <algorithm>
#include <climits>
#include <filesystem>
#include <string_view>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/file_io.h"

namespace lowbit {
namespace {

// gguf-py's TokenType (gguf-py/gguf/constants.py), which llama.cpp reads as
// llama_token_type.
constexpr int32_t kTokenNormal = 1;
constexpr int32_t kTokenControl = 3;
constexpr int32_t kTokenUserDefined = 4;

// llama.cpp's enum llama_pooling_type (gguf-py PoolingType).
constexpr uint32_t kPoolingMean = 1;
constexpr uint32_t kPoolingCls = 2;

// The phantom-space vocabulary llama.cpp's WPM tokenizer matches against:
// a word-initial piece gets U+2581 in front ("the" -> "▁the"), a "##"
// continuation loses its prefix ("##ing" -> "ing"), control tokens stay as
// they are (BertModel.set_vocab in llama.cpp's conversion/bert.py).
std::string phantom(const std::string& piece, int32_t type, const std::string& continuation) {
  if (type == kTokenControl) return piece;
  if (!continuation.empty() && piece.starts_with(continuation)) return piece.substr(continuation.size());
  return "\xE2\x96\x81" + piece;
}

std::string string_entry(const nlohmann::json& tc, const char* key) {
  if (!tc.is_object() || !tc.contains(key)) return "";
  const auto& v = tc.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string()) return v.at("content").get<std::string>();
  return "";
}

int32_t id_entry(const nlohmann::json& cfg, const char* key) {
  if (!cfg.is_object() || !cfg.contains(key) || !cfg.at(key).is_number_integer()) return -1;
  const int64_t v = cfg.at(key).get<int64_t>();
  return v >= 0 && v <= INT32_MAX ? static_cast<int32_t>(v) : -1;
}

nlohmann::json read_json(const std::filesystem::path& path) {
  const std::vector<std::byte> bytes = read_file(path.string());
  try {
    return nlohmann::json::parse(reinterpret_cast<const char*>(bytes.data()),
                                 reinterpret_cast<const char*>(bytes.data()) + bytes.size());
  } catch (const nlohmann::json::exception& e) {
    fail_input(fmt::format("{}: not valid JSON: {}", path.filename().string(), e.what()));
  }
}

std::string read_text(const std::filesystem::path& path) {
  const std::vector<std::byte> bytes = read_file(path.string());
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

}  // namespace

std::string bert_gguf_tensor_name(const std::string& hf) {
  std::string name = hf;
  // Checkpoints saved from BertForMaskedLM and friends prefix the encoder;
  // old TensorFlow ports call LayerNorm's parameters gamma and beta.
  if (name.starts_with("bert.")) name = name.substr(5);
  if (name.ends_with(".gamma")) name = name.substr(0, name.size() - 6) + ".weight";
  if (name.ends_with(".beta")) name = name.substr(0, name.size() - 5) + ".bias";
  // An embedding model needs none of these: position_ids is a constant
  // arange buffer, the pooler and the pre-training heads sit after the
  // encoder (sentence-transformers pools the token states itself).
  if (name == "embeddings.position_ids" || name.starts_with("pooler.") || name.starts_with("cls.")) return "";

  std::string_view rest = name;
  std::string_view suffix;
  if (rest.ends_with(".weight")) {
    suffix = ".weight";
  } else if (rest.ends_with(".bias")) {
    suffix = ".bias";
  } else {
    fail_input(fmt::format("tensor '{}' has no place in llama.cpp's BERT layout", hf));
  }
  rest.remove_suffix(suffix.size());

  static const std::pair<std::string_view, std::string_view> kGlobal[] = {
      {"embeddings.word_embeddings", "token_embd"},
      {"embeddings.position_embeddings", "position_embd"},
      {"embeddings.token_type_embeddings", "token_types"},
      {"embeddings.LayerNorm", "token_embd_norm"},
  };
  for (const auto& [from, to] : kGlobal) {
    if (rest == from) return std::string(to) + std::string(suffix);
  }
  static const std::pair<std::string_view, std::string_view> kBlock[] = {
      {"attention.self.query", "attn_q"},
      {"attention.self.key", "attn_k"},
      {"attention.self.value", "attn_v"},
      {"attention.output.dense", "attn_output"},
      {"attention.output.LayerNorm", "attn_output_norm"},
      {"intermediate.dense", "ffn_up"},
      {"output.dense", "ffn_down"},
      {"output.LayerNorm", "layer_output_norm"},
  };
  constexpr std::string_view kLayer = "encoder.layer.";
  if (rest.starts_with(kLayer)) {
    rest.remove_prefix(kLayer.size());
    const size_t dot = rest.find('.');
    const std::string_view index = rest.substr(0, dot);
    if (dot != std::string_view::npos && !index.empty() && index.size() < 6 &&
        index.find_first_not_of("0123456789") == std::string_view::npos) {
      const std::string_view part = rest.substr(dot + 1);
      for (const auto& [from, to] : kBlock) {
        if (part == from) return fmt::format("blk.{}.{}{}", index, to, suffix);
      }
    }
  }
  fail_input(fmt::format("tensor '{}' has no place in llama.cpp's BERT layout", hf));
}

GgufArchitecture bert_gguf_architecture(const BertConfig& config, const SentencePipeline& pipeline,
                                        const WordPieceConfig& tok, const SpecialTokenNames& names) {
  GgufArchitecture a;
  a.name = "bert";
  a.tensor_name = bert_gguf_tensor_name;
  auto& m = a.metadata;
  const auto add = [&](std::string key, GgufValue v) { m.push_back({std::move(key), std::move(v)}); };
  const auto u32 = [](int64_t v) { return GgufValue::of(static_cast<uint32_t>(v)); };

  add("general.architecture", GgufValue::of("bert"));
  add("bert.block_count", u32(config.num_layers));
  add("bert.context_length", u32(config.max_position_embeddings));
  add("bert.embedding_length", u32(config.hidden_size));
  add("bert.feed_forward_length", u32(config.intermediate_size));
  add("bert.attention.head_count", u32(config.num_heads));
  add("bert.attention.layer_norm_epsilon", GgufValue::of(static_cast<float>(config.layer_norm_eps)));
  add("bert.attention.causal", GgufValue::of(false));
  // llama.cpp knows mean, CLS and last-token pooling; the converter takes
  // the pooling module's first of them. Without modules.json the converter
  // writes no pooling type, but lowbit embeds with mean pooling then
  // (bert_config.h), and the file says so, so that llama.cpp embeds alike.
  const PoolingModes& p = pipeline.pooling;
  if (p.count() != 1 || p.max || p.mean_sqrt_len) {
    fail_input(fmt::format("pooling '{}' has no llama.cpp pooling type (llama.cpp pools by mean, cls or last token)",
                           p.describe()));
  }
  add("bert.pooling_type", GgufValue::of(p.mean ? kPoolingMean : kPoolingCls));

  // The vocabulary: the model's entries, then added tokens at their ids;
  // ids the files leave empty are "[PAD<i>]" UNUSED in the converter, which
  // a WordPiece vocabulary with its added tokens inside never has.
  const int64_t n = std::max<int64_t>(config.vocab_size, static_cast<int64_t>(tok.vocab.size()));
  std::vector<std::string> pieces(static_cast<size_t>(n));
  std::vector<int32_t> types(static_cast<size_t>(n), kTokenNormal);
  std::vector<bool> filled(static_cast<size_t>(n), false);
  for (size_t i = 0; i < tok.vocab.size(); ++i) {
    pieces[i] = tok.vocab[i];
    filled[i] = !tok.vocab[i].empty();
  }
  for (const WordPieceAddedToken& t : tok.added_tokens) {
    if (t.id < 0 || t.id >= n) fail_input(fmt::format("added token '{}' has id {} outside the vocabulary", t.content, t.id));
    pieces[t.id] = t.content;
    filled[t.id] = true;
    types[t.id] = t.special ? kTokenControl : kTokenUserDefined;
  }
  for (int64_t i = 0; i < n; ++i) {
    if (!filled[i]) {
      pieces[i] = fmt::format("[PAD{}]", i);
      types[i] = 5;  // UNUSED
    }
    pieces[i] = phantom(pieces[i], types[i], types[i] == kTokenUserDefined ? "" : tok.continuing_subword_prefix);
  }

  add("tokenizer.ggml.token_type_count", u32(config.type_vocab_size));
  add("tokenizer.ggml.model", GgufValue::of("bert"));
  // The converter names the pre-tokenizer by a hash of its test string's
  // tokens ("jina-v2-en" for the uncased BERT vocabulary); llama.cpp reads
  // the name for BPE vocabularies only, so "default" loses nothing.
  add("tokenizer.ggml.pre", GgufValue::of("default"));
  add("tokenizer.ggml.tokens", GgufValue::array(std::move(pieces)));
  add("tokenizer.ggml.token_type", GgufValue::array(types));

  // Special ids as gguf-py's SpecialVocab finds them: tokenizer_config.json's
  // names (bos falls back to cls, eos to sep) looked up among the added
  // tokens, then config.json's *_token_id for the types still missing.
  const auto added_id = [&](const std::string& content) -> int32_t {
    if (content.empty()) return -1;
    for (const WordPieceAddedToken& t : tok.added_tokens) {
      if (t.content == content) return t.id;
    }
    return -1;
  };
  const std::string bos = names.bos.empty() ? names.cls : names.bos;
  const std::string eos = names.eos.empty() ? names.sep : names.eos;
  int32_t bos_id = added_id(bos), eos_id = added_id(eos);
  int32_t pad_id = added_id(names.pad);
  if (bos_id < 0) bos_id = names.config_bos_id;
  if (eos_id < 0) eos_id = names.config_eos_id;
  // With no names at all, gguf-py takes the template's first and last
  // special tokens for BOS and EOS.
  if (bos_id < 0 && !tok.template_prefix.empty()) bos_id = tok.template_prefix.front();
  if (eos_id < 0 && !tok.template_suffix.empty()) eos_id = tok.template_suffix.back();
  if (pad_id < 0) pad_id = names.config_pad_id;
  const int32_t unk_id = added_id(names.unk), sep_id = added_id(names.sep), cls_id = added_id(names.cls),
                mask_id = added_id(names.mask);
  const auto add_id = [&](const char* key, int32_t id) {
    if (id >= 0 && id < n) add(key, u32(id));
  };
  add_id("tokenizer.ggml.bos_token_id", bos_id);
  add_id("tokenizer.ggml.eos_token_id", eos_id);
  add_id("tokenizer.ggml.unknown_token_id", unk_id);
  add_id("tokenizer.ggml.seperator_token_id", sep_id);  // sic: llama.cpp's key
  add_id("tokenizer.ggml.padding_token_id", pad_id);
  add_id("tokenizer.ggml.cls_token_id", cls_id);
  add_id("tokenizer.ggml.mask_token_id", mask_id);
  // The post-processor's one-sequence template: [CLS] $A [SEP] adds BOS
  // (the cls token) and EOS (the sep token). llama.cpp's WPM tokenizer adds
  // exactly these for add_special.
  if (!tok.template_prefix.empty() || !tok.template_suffix.empty()) {
    const bool add_bos = !tok.template_prefix.empty() &&
                         (tok.template_prefix.front() == bos_id || tok.template_prefix.front() == cls_id);
    const bool add_eos = !tok.template_suffix.empty() && tok.template_suffix.back() == eos_id;
    add("tokenizer.ggml.add_bos_token", GgufValue::of(add_bos));
    add("tokenizer.ggml.add_eos_token", GgufValue::of(add_eos));
    // The pair template [CLS] A [SEP] B [SEP] ends in a special token, for
    // which gguf-py writes add_sep false (llama.cpp's WPM default is true).
    add("tokenizer.ggml.add_sep_token", GgufValue::of(false));
  }
  if (tok.normalizer) {
    add("tokenizer.ggml.normalizer.lowercase", GgufValue::of(tok.normalizer->lowercase));
    // llama.cpp's default is lowercase's value, as `tokenizers`' for null;
    // written only when it differs, which is when the file set it.
    if (tok.normalizer->strip_accents != tok.normalizer->lowercase) {
      add("tokenizer.ggml.normalizer.strip_accents", GgufValue::of(tok.normalizer->strip_accents));
    }
  }
  return a;
}

std::optional<GgufArchitecture> detect_gguf_architecture(const std::string& dir) {
  if (dir.empty()) return std::nullopt;
  const std::filesystem::path d(dir);
  const std::filesystem::path cfg_path = d / "config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(cfg_path, ec)) return std::nullopt;
  const nlohmann::json cfg = read_json(cfg_path);
  if (!cfg.is_object() || !cfg.contains("model_type") || cfg.at("model_type") != "bert") return std::nullopt;

  const BertConfig config = load_bert_config(dir);
  const SentencePipeline pipeline = load_sentence_pipeline(dir, config);
  const std::filesystem::path tok_path = d / "tokenizer.json";
  if (!std::filesystem::is_regular_file(tok_path, ec)) {
    fail_input("a BERT model's GGUF needs its tokenizer.json beside config.json, which is missing");
  }
  const WordPieceConfig tok = parse_wordpiece_config(read_text(tok_path), "tokenizer.json");
  SpecialTokenNames names;
  const std::filesystem::path tc_path = d / "tokenizer_config.json";
  if (std::filesystem::is_regular_file(tc_path, ec)) {
    const nlohmann::json tc = read_json(tc_path);
    names.bos = string_entry(tc, "bos_token");
    names.eos = string_entry(tc, "eos_token");
    names.unk = string_entry(tc, "unk_token");
    names.sep = string_entry(tc, "sep_token");
    names.pad = string_entry(tc, "pad_token");
    names.cls = string_entry(tc, "cls_token");
    names.mask = string_entry(tc, "mask_token");
  } else {
    // Without tokenizer_config.json the converter has no names: only the
    // WordPiece model's unknown token is known.
    names.unk = tok.unk_token;
  }
  names.config_pad_id = id_entry(cfg, "pad_token_id");
  names.config_bos_id = id_entry(cfg, "bos_token_id");
  names.config_eos_id = id_entry(cfg, "eos_token_id");
  return bert_gguf_architecture(config, pipeline, tok, names);
}

}  // namespace lowbit
