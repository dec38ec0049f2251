#include "lowbit/model/wordpiece_tokenizer.h"

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/text.h"
#include "lowbit/model/bert_pre_tokenizer.h"
#include "lowbit/model/unicode.h"

namespace lowbit {

namespace {

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

// `tokenizers`' decoders::wordpiece::cleanup, in its order.
void cleanup(std::string& token) {
  static constexpr std::pair<std::string_view, std::string_view> kRules[] = {
      {" .", "."},   {" ?", "?"},     {" !", "!"},           {" ,", ","},     {" ' ", "'"},   {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"},
  };
  for (const auto& [from, to] : kRules) replace_all(token, from, to);
}

}  // namespace

WordPieceTokenizer::Parts WordPieceTokenizer::prepare(WordPieceConfig config) {
  std::vector<std::string> pieces = config.vocab;
  std::vector<int32_t> types(pieces.size(), static_cast<int32_t>(TokenType::kNormal));
  for (const WordPieceAddedToken& t : config.added_tokens) {
    if (t.id < 0) fail_input(fmt::format("added token {} has a negative id", quote_untrusted(t.content)));
    const auto id = static_cast<size_t>(t.id);
    if (id >= pieces.size()) {
      pieces.resize(id + 1);
      types.resize(id + 1, static_cast<int32_t>(TokenType::kUndefined));
    } else if (id < config.vocab.size() && pieces[id] != t.content) {
      fail_input(fmt::format("added token {} has id {}, which is the vocabulary's {}", quote_untrusted(t.content),
                             t.id, quote_untrusted(pieces[id])));
    }
    pieces[id] = t.content;
    types[id] = static_cast<int32_t>(t.special ? TokenType::kControl : TokenType::kUserDefined);
  }
  for (size_t i = config.vocab.size(); i < pieces.size(); ++i) {
    if (types[i] == static_cast<int32_t>(TokenType::kUndefined)) {
      fail_input(fmt::format("token id {} is neither in the vocabulary nor an added token", i));
    }
  }
  SpecialTokenIds special;
  int32_t unk = -1;
  for (size_t i = 0; i < config.vocab.size(); ++i) {
    if (config.vocab[i] == config.unk_token) unk = static_cast<int32_t>(i);
  }
  if (unk < 0) fail_input(fmt::format("the unknown token {} is not in the vocabulary", quote_untrusted(config.unk_token)));
  special.unk = unk;
  types[static_cast<size_t>(unk)] = static_cast<int32_t>(TokenType::kUnknown);
  if (!config.template_prefix.empty()) special.bos = config.template_prefix.front(), special.add_bos = true;
  if (!config.template_suffix.empty()) special.eos = config.template_suffix.back(), special.add_eos = true;
  special.pad = config.pad_id;
  Vocabulary vocab(std::move(pieces), std::move(types));
  for (int32_t id : config.template_prefix) vocab.check(id);
  for (int32_t id : config.template_suffix) vocab.check(id);
  return {std::move(config), std::move(vocab), special};
}

WordPieceTokenizer::WordPieceTokenizer(WordPieceConfig config) : WordPieceTokenizer(prepare(std::move(config))) {}

WordPieceTokenizer::WordPieceTokenizer(Parts parts)
    : Tokenizer(std::move(parts.vocab), parts.special), config_(std::move(parts.config)) {
  model_ids_.reserve(config_.vocab.size());
  for (size_t i = 0; i < config_.vocab.size(); ++i) model_ids_.emplace(config_.vocab[i], static_cast<int32_t>(i));
  for (const WordPieceAddedToken& t : config_.added_tokens) {
    if (t.special) special_ids_.insert(t.id);
    SpecialPattern p{t.content, t.id, t.lstrip, t.rstrip};
    if (t.normalized && config_.normalizer) p.text = bert_normalize(t.content, *config_.normalizer);
    auto& all = t.normalized ? normalized_all_ : raw_all_;
    auto& plain = t.normalized ? normalized_plain_ : raw_plain_;
    all.push_back(p);
    if (!t.special) plain.push_back(p);
  }
}

std::string WordPieceTokenizer::describe() const {
  std::string norm = "none";
  if (config_.normalizer) {
    const BertNormalizerOptions& o = *config_.normalizer;
    norm = fmt::format("bert (clean_text {}, chinese_chars {}, strip_accents {}, lowercase {})", o.clean_text,
                       o.handle_chinese_chars, o.strip_accents, o.lowercase);
  }
  return fmt::format("wordpiece (normalizer {}, pre-tokenizer {}), {} tokens", norm,
                     config_.bert_pre_tokenizer ? "bert" : "none", vocab_.size());
}

void WordPieceTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  // Character boundaries: the search shortens a candidate one character at
  // a time (an invalid byte is a character of its own).
  std::vector<size_t> bounds;
  for (size_t pos = 0; pos < word.size(); pos += unicode::decode_utf8(word, pos).length) bounds.push_back(pos);
  bounds.push_back(word.size());
  const size_t chars = bounds.size() - 1;
  if (chars > config_.max_input_chars_per_word) {
    out.push_back(special_.unk);
    return;
  }
  const size_t first = out.size();
  std::string candidate;
  for (size_t start = 0; start < chars;) {
    size_t end = chars;
    int32_t found = -1;
    for (; end > start; --end) {
      candidate.assign(start > 0 ? config_.continuing_subword_prefix : "");
      candidate.append(word.substr(bounds[start], bounds[end] - bounds[start]));
      const auto it = model_ids_.find(candidate);
      if (it != model_ids_.end()) {
        found = it->second;
        break;
      }
    }
    if (found < 0) {
      out.resize(first);
      out.push_back(special_.unk);
      return;
    }
    out.push_back(found);
    start = end;
  }
}

void WordPieceTokenizer::encode_normalized(std::string_view text, bool parse_special, std::vector<int32_t>& out,
                                           std::unordered_map<std::string, std::vector<int32_t>>& cache) const {
  std::vector<std::string_view> words;
  for (const TextFragment& f : split_leftmost_longest(text, parse_special ? normalized_all_ : normalized_plain_)) {
    if (f.is_token()) {
      out.push_back(f.token);
      continue;
    }
    const std::string_view part = text.substr(f.begin, f.end - f.begin);
    words.clear();
    if (config_.bert_pre_tokenizer) {
      split_bert_words(part, words);
    } else {
      words.push_back(part);
    }
    for (std::string_view w : words) {
      auto [it, inserted] = cache.try_emplace(std::string(w));
      if (inserted) encode_word(w, it->second);
      out.insert(out.end(), it->second.begin(), it->second.end());
    }
  }
}

std::vector<int32_t> WordPieceTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special) out = config_.template_prefix;
  std::unordered_map<std::string, std::vector<int32_t>> cache;
  for (const TextFragment& f : split_leftmost_longest(text, parse_special ? raw_all_ : raw_plain_)) {
    if (f.is_token()) {
      out.push_back(f.token);
      continue;
    }
    const std::string_view raw = text.substr(f.begin, f.end - f.begin);
    if (config_.normalizer) {
      encode_normalized(bert_normalize(raw, *config_.normalizer), parse_special, out, cache);
    } else {
      encode_normalized(raw, parse_special, out, cache);
    }
  }
  if (add_special) out.insert(out.end(), config_.template_suffix.begin(), config_.template_suffix.end());
  return out;
}

std::string WordPieceTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out, token;
  bool first = true;
  for (int32_t id : ids) {
    const std::string& piece = vocab_.piece(id);
    if (skip_special && special_ids_.count(id)) continue;
    if (!config_.wordpiece_decoder) {
      if (!first) out += ' ';
      out += piece;
      first = false;
      continue;
    }
    if (first) {
      token = piece;
    } else if (piece.starts_with(config_.decoder_prefix)) {
      token.assign(piece, config_.decoder_prefix.size());
    } else {
      token.assign(1, ' ');
      token += piece;
    }
    if (config_.decoder_cleanup) cleanup(token);
    out += token;
    first = false;
  }
  return out;
}

}  // namespace lowbit
