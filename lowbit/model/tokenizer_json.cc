// load_tokenizer_json (tokenizer.h): a Hugging Face tokenizer.json whose
// model is
//  - WordPiece, with the parts BERT-family files use: a BertNormalizer (or
//    none), a BertPreTokenizer (or none), TemplateProcessing or
//    BertProcessing (or none), a WordPiece decoder (or none), and added
//    tokens;
//  - or byte-level BPE, as GPT-2, SmolLM and lowbit's own export write it:
//    no normalizer, a ByteLevel pre-tokenizer (GPT-2's expression), alone
//    or after Digits with individual digits (SmolLM's), a ByteLevel decoder
//    (or none), merges as "a b" strings or [a, b] pairs, and added tokens
//    (the special ones become control tokens).
// Anything else is refused by name rather than half-applied.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/text.h"
#include "lowbit/model/bpe_tokenizer.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/model/vocabulary.h"
#include "lowbit/model/wordpiece_tokenizer.h"

namespace lowbit {

namespace {

using Json = nlohmann::json;

class Reader {
 public:
  explicit Reader(std::string name) : name_(std::move(name)) {}

  [[noreturn]] void fail(const std::string& what) const {
    fail_input(fmt::format("tokenizer.json '{}': {}", name_, what));
  }
  const Json& member(const Json& obj, const char* key, const std::string& path) const {
    if (!obj.is_object() || !obj.contains(key)) fail(fmt::format("{} has no \"{}\"", path, key));
    return obj.at(key);
  }
  std::string string(const Json& v, const std::string& path) const {
    if (!v.is_string()) fail(fmt::format("{} is not a string", path));
    return v.get<std::string>();
  }
  bool boolean(const Json& obj, const char* key, bool fallback, const std::string& path) const {
    if (!obj.contains(key) || obj.at(key).is_null()) return fallback;
    if (!obj.at(key).is_boolean()) fail(fmt::format("{}.{} is not true or false", path, key));
    return obj.at(key).get<bool>();
  }
  int64_t integer(const Json& v, const std::string& path) const {
    if (!v.is_number_integer()) fail(fmt::format("{} is not an integer", path));
    return v.get<int64_t>();
  }
  int32_t id(const Json& v, const std::string& path) const {
    const int64_t i = integer(v, path);
    if (i < 0 || i > INT32_MAX) fail(fmt::format("{} = {} is not a token id", path, i));
    return static_cast<int32_t>(i);
  }
  std::string type_of(const Json& obj, const std::string& path) const {
    return string(member(obj, "type", path), path + ".type");
  }
  // model.vocab's pieces by id. The ids must number the entries 0..n-1: a
  // hole would be a token without text.
  std::vector<std::string> dense_vocab(const Json& vocab) const {
    if (!vocab.is_object() || vocab.empty()) fail("model.vocab is not a non-empty object of token: id");
    std::vector<std::string> pieces(vocab.size());
    std::vector<bool> seen(vocab.size(), false);
    for (const auto& [piece, idv] : vocab.items()) {
      const int32_t i = id(idv, "model.vocab[" + quote_untrusted(piece) + "]");
      if (static_cast<size_t>(i) >= vocab.size() || seen[static_cast<size_t>(i)]) {
        fail(fmt::format("model.vocab ids are not 0..{} each once (id {} of {})", vocab.size() - 1, i,
                         quote_untrusted(piece)));
      }
      seen[static_cast<size_t>(i)] = true;
      pieces[static_cast<size_t>(i)] = piece;
    }
    return pieces;
  }

 private:
  std::string name_;
};

void read_model(const Reader& r, const Json& model, WordPieceConfig& c) {
  const std::string type = model.contains("type") ? r.type_of(model, "model") : "";
  if (type != "WordPiece") {
    r.fail(fmt::format("model type '{}' is not supported (lowbit reads WordPiece and byte-level BPE from "
                       "tokenizer.json; SentencePiece vocabularies from GGUF files)",
                       type));
  }
  c.unk_token = r.string(r.member(model, "unk_token", "model"), "model.unk_token");
  if (model.contains("continuing_subword_prefix")) {
    c.continuing_subword_prefix = r.string(model.at("continuing_subword_prefix"), "model.continuing_subword_prefix");
  }
  if (model.contains("max_input_chars_per_word")) {
    const int64_t m = r.integer(model.at("max_input_chars_per_word"), "model.max_input_chars_per_word");
    if (m < 0) r.fail("model.max_input_chars_per_word is negative");
    c.max_input_chars_per_word = static_cast<size_t>(m);
  }
  c.vocab = r.dense_vocab(r.member(model, "vocab", "model"));
}

void read_normalizer(const Reader& r, const Json& n, WordPieceConfig& c) {
  if (n.is_null()) return;
  const std::string type = r.type_of(n, "normalizer");
  if (type != "BertNormalizer") r.fail(fmt::format("normalizer type '{}' is not supported (only BertNormalizer)", type));
  BertNormalizerOptions o;
  o.clean_text = r.boolean(n, "clean_text", true, "normalizer");
  o.handle_chinese_chars = r.boolean(n, "handle_chinese_chars", true, "normalizer");
  o.lowercase = r.boolean(n, "lowercase", true, "normalizer");
  // null: follow lowercase, as `tokenizers` does.
  o.strip_accents = r.boolean(n, "strip_accents", o.lowercase, "normalizer");
  c.normalizer = o;
}

void read_pre_tokenizer(const Reader& r, const Json& p, WordPieceConfig& c) {
  if (p.is_null()) {
    c.bert_pre_tokenizer = false;
    return;
  }
  const std::string type = r.type_of(p, "pre_tokenizer");
  if (type != "BertPreTokenizer") {
    r.fail(fmt::format("pre_tokenizer type '{}' is not supported (only BertPreTokenizer)", type));
  }
}

void read_added_tokens(const Reader& r, const Json& list, WordPieceConfig& c) {
  if (list.is_null()) return;
  if (!list.is_array()) r.fail("added_tokens is not a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const Json& t = list[i];
    const std::string path = fmt::format("added_tokens[{}]", i);
    WordPieceAddedToken a;
    a.id = r.id(r.member(t, "id", path), path + ".id");
    a.content = r.string(r.member(t, "content", path), path + ".content");
    a.special = r.boolean(t, "special", false, path);
    a.lstrip = r.boolean(t, "lstrip", false, path);
    a.rstrip = r.boolean(t, "rstrip", false, path);
    a.normalized = r.boolean(t, "normalized", !a.special, path);
    if (r.boolean(t, "single_word", false, path)) r.fail(path + ".single_word is true, which lowbit does not support");
    if (a.content.empty()) r.fail(path + ".content is empty");
    c.added_tokens.push_back(std::move(a));
  }
}

// The ids of a template's special token, from the processor's
// "special_tokens" table.
std::vector<int32_t> template_ids(const Reader& r, const Json& processor, const std::string& name) {
  const Json& table = r.member(processor, "special_tokens", "post_processor");
  const std::string path = "post_processor.special_tokens[" + quote_untrusted(name) + "]";
  if (!table.is_object() || !table.contains(name)) r.fail(path + " is missing");
  const Json& ids = r.member(table.at(name), "ids", path);
  if (!ids.is_array()) r.fail(path + ".ids is not a list");
  std::vector<int32_t> out;
  for (const Json& id : ids) out.push_back(r.id(id, path + ".ids[]"));
  return out;
}

void read_post_processor(const Reader& r, const Json& p, WordPieceConfig& c) {
  if (p.is_null()) return;
  const std::string type = r.type_of(p, "post_processor");
  if (type == "BertProcessing") {
    // {"cls": ["[CLS]", 101], "sep": ["[SEP]", 102]}
    for (const char* key : {"cls", "sep"}) {
      const Json& pair = r.member(p, key, "post_processor");
      if (!pair.is_array() || pair.size() != 2) r.fail(fmt::format("post_processor.{} is not [token, id]", key));
      (std::string_view(key) == "cls" ? c.template_prefix : c.template_suffix)
          .push_back(r.id(pair[1], fmt::format("post_processor.{}[1]", key)));
    }
    return;
  }
  if (type != "TemplateProcessing") {
    r.fail(fmt::format("post_processor type '{}' is not supported (TemplateProcessing, BertProcessing)", type));
  }
  const Json& single = r.member(p, "single", "post_processor");
  if (!single.is_array()) r.fail("post_processor.single is not a list");
  bool seen_sequence = false;
  for (const Json& item : single) {
    if (item.contains("Sequence")) {
      if (seen_sequence) r.fail("post_processor.single holds the sequence twice");
      seen_sequence = true;
    } else if (item.contains("SpecialToken")) {
      const std::string name = r.string(r.member(item.at("SpecialToken"), "id", "post_processor.single[]"),
                                        "post_processor.single[].SpecialToken.id");
      std::vector<int32_t> ids = template_ids(r, p, name);
      auto& dst = seen_sequence ? c.template_suffix : c.template_prefix;
      dst.insert(dst.end(), ids.begin(), ids.end());
    } else {
      r.fail("post_processor.single holds an item that is neither Sequence nor SpecialToken");
    }
  }
  if (!seen_sequence) r.fail("post_processor.single has no Sequence");
}

void read_decoder(const Reader& r, const Json& d, WordPieceConfig& c) {
  if (d.is_null()) {
    c.wordpiece_decoder = false;
    return;
  }
  const std::string type = r.type_of(d, "decoder");
  if (type != "WordPiece") r.fail(fmt::format("decoder type '{}' is not supported (only WordPiece)", type));
  if (d.contains("prefix")) c.decoder_prefix = r.string(d.at("prefix"), "decoder.prefix");
  c.decoder_cleanup = r.boolean(d, "cleanup", true, "decoder");
}

}  // namespace

WordPieceConfig parse_wordpiece_config(std::string_view json_text, const std::string& name) {
  const Reader r(name);
  Json j;
  try {
    j = Json::parse(json_text);
  } catch (const Json::exception& e) {
    r.fail(fmt::format("not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) r.fail("not a JSON object");
  WordPieceConfig c;
  read_model(r, r.member(j, "model", "the file"), c);
  const Json null;
  read_normalizer(r, j.contains("normalizer") ? j.at("normalizer") : null, c);
  read_pre_tokenizer(r, j.contains("pre_tokenizer") ? j.at("pre_tokenizer") : null, c);
  read_added_tokens(r, j.contains("added_tokens") ? j.at("added_tokens") : null, c);
  read_post_processor(r, j.contains("post_processor") ? j.at("post_processor") : null, c);
  read_decoder(r, j.contains("decoder") ? j.at("decoder") : null, c);
  if (j.contains("padding") && j.at("padding").is_object() && j.at("padding").contains("pad_id")) {
    c.pad_id = r.id(j.at("padding").at("pad_id"), "padding.pad_id");
  }
  return c;
}

namespace {

bool is_byte_level(const Reader& r, const Json& p, const std::string& path) {
  if (r.type_of(p, path) != "ByteLevel") return false;
  if (r.boolean(p, "add_prefix_space", false, path)) r.fail(path + ".add_prefix_space true is not supported");
  if (!r.boolean(p, "use_regex", true, path)) r.fail(path + ".use_regex false is not supported");
  return true;
}

std::unique_ptr<Tokenizer> load_bpe_json(const Reader& r, const Json& j) {
  const Json& model = r.member(j, "model", "the file");
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix", "dropout"}) {
    if (model.contains(key) && !model.at(key).is_null()) r.fail(fmt::format("model.{} is not supported", key));
  }
  if (r.boolean(model, "byte_fallback", false, "model")) r.fail("model.byte_fallback is not supported");
  if (j.contains("normalizer") && !j.at("normalizer").is_null()) r.fail("a BPE normalizer is not supported");
  // The pre-tokenizer, as one of lowbit's two expressions.
  const Json& pre = r.member(j, "pre_tokenizer", "the file");
  BpePreTokenizer kind = BpePreTokenizer::kGpt2;
  std::string pre_name = "gpt-2";
  if (pre.is_object() && r.type_of(pre, "pre_tokenizer") == "Sequence") {
    const Json& list = r.member(pre, "pretokenizers", "pre_tokenizer");
    if (!list.is_array() || list.size() != 2 || r.type_of(list[0], "pre_tokenizer[0]") != "Digits" ||
        !r.boolean(list[0], "individual_digits", false, "pre_tokenizer[0]") ||
        !is_byte_level(r, list[1], "pre_tokenizer[1]")) {
      r.fail("pre_tokenizer: only ByteLevel, or Digits (individual) then ByteLevel, are supported");
    }
    kind = BpePreTokenizer::kDigitsThenGpt2;
    pre_name = "smollm";
  } else if (!pre.is_object() || !is_byte_level(r, pre, "pre_tokenizer")) {
    r.fail("pre_tokenizer: only ByteLevel, or Digits (individual) then ByteLevel, are supported");
  }
  if (j.contains("decoder") && !j.at("decoder").is_null() && r.type_of(j.at("decoder"), "decoder") != "ByteLevel") {
    r.fail("decoder: only ByteLevel is supported with a BPE model");
  }
  // Vocabulary: model.vocab, then added tokens beyond it.
  std::vector<std::string> pieces = r.dense_vocab(r.member(model, "vocab", "model"));
  std::vector<int32_t> types(pieces.size(), static_cast<int32_t>(TokenType::kNormal));
  SpecialTokenIds special;
  if (j.contains("added_tokens") && !j.at("added_tokens").is_null()) {
    const Json& added = j.at("added_tokens");
    if (!added.is_array()) r.fail("added_tokens is not a list");
    for (const Json& t : added) {
      const int32_t id = r.id(r.member(t, "id", "added_tokens[]"), "added_tokens[].id");
      const std::string content = r.string(r.member(t, "content", "added_tokens[]"), "added_tokens[].content");
      if (static_cast<size_t>(id) > pieces.size()) r.fail(fmt::format("added token id {} leaves a hole", id));
      if (static_cast<size_t>(id) == pieces.size()) {
        pieces.push_back(content);
        types.push_back(0);
      } else if (pieces[static_cast<size_t>(id)] != content) {
        r.fail(fmt::format("added token {} is {} but the vocabulary has {}", id, quote_untrusted(content),
                           quote_untrusted(pieces[static_cast<size_t>(id)])));
      }
      const bool is_special = r.boolean(t, "special", false, "added_tokens[]");
      types[static_cast<size_t>(id)] =
          static_cast<int32_t>(is_special ? TokenType::kControl : TokenType::kUserDefined);
      if (is_special && content == "<|endoftext|>") special.bos = special.eos = id;
    }
  }
  const Json& merges = r.member(model, "merges", "model");
  if (!merges.is_array()) r.fail("model.merges is not a list");
  std::vector<std::string> merge_text;
  merge_text.reserve(merges.size());
  for (const Json& m : merges) {
    if (m.is_string()) {
      merge_text.push_back(m.get<std::string>());
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      merge_text.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
    } else {
      r.fail("model.merges holds an entry that is neither \"a b\" nor [a, b]");
    }
  }
  return std::make_unique<BpeTokenizer>(Vocabulary(std::move(pieces), std::move(types)), merge_text, special, kind,
                                        pre_name);
}

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer_json(std::string_view json_text, const std::string& name) {
  {
    // Byte-level BPE files are told by their model type.
    const Json j = Json::parse(json_text, nullptr, false);
    if (!j.is_discarded() && j.is_object() && j.contains("model") && j.at("model").is_object() &&
        j.at("model").contains("type") && j.at("model").at("type") == "BPE") {
      const Reader r(name);
      try {
        return load_bpe_json(r, j);
      } catch (const Error& e) {
        if (std::string_view(e.what()).starts_with("tokenizer.json")) throw;
        r.fail(e.what());
      }
    }
  }
  WordPieceConfig c = parse_wordpiece_config(json_text, name);
  try {
    return std::make_unique<WordPieceTokenizer>(std::move(c));
  } catch (const Error& e) {
    Reader(name).fail(e.what());
  }
}

}  // namespace lowbit
