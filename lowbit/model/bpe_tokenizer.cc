#include "lowbit/model/bpe_tokenizer.h"

#include <fmt/format.h>

#include <queue>

#include "lowbit/core/error.h"
#include "lowbit/core/text.h"
#include "lowbit/model/byte_level.h"
#include "lowbit/model/unicode.h"

namespace lowbit {

BpeTokenizer::BpeTokenizer(Vocabulary vocab, std::span<const std::string> merges, SpecialTokenIds special,
                           BpePreTokenizer pre_tokenizer, std::string pre_tokenizer_name)
    : Tokenizer(std::move(vocab), special),
      pre_tokenizer_(pre_tokenizer),
      pre_tokenizer_name_(std::move(pre_tokenizer_name)) {
  for (unsigned b = 0; b < 256; ++b) {
    std::string ch;
    unicode::append_utf8(ch, byte_level_char(static_cast<uint8_t>(b)));
    const std::optional<int32_t> id = vocab_.find(ch);
    byte_token_[b] = id.value_or(-1);
    if (id) continue;
    // No token for this byte (SmolLM2 has none for 21 bytes). llama.cpp
    // then looks up each byte of the character's UTF-8 form alone, and
    // drops what it does not find; so does lowbit.
    for (char c : ch) {
      if (const std::optional<int32_t> single = vocab_.find(std::string(1, c))) byte_fallback_[b].push_back(*single);
    }
    ++bytes_without_token_;
  }
  merges_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) {
    const std::string& m = merges[i];
    // "left right"; the separator is the first space after the first
    // character, as llama.cpp reads it (byte-level pieces hold no space).
    const size_t space = m.size() > 1 ? m.find(' ', 1) : std::string::npos;
    if (space == std::string::npos) {
      fail_input(fmt::format("BPE merge #{} {} is not two tokens separated by a space", i, quote_untrusted(m)));
    }
    const std::string_view left(m.data(), space), right(m.data() + space + 1, m.size() - space - 1);
    const std::optional<int32_t> l = vocab_.find(left), r = vocab_.find(right),
                                 result = vocab_.find(std::string(left) + std::string(right));
    if (!l || !r || !result) {
      const std::string_view missing = !l ? left : !r ? right : std::string_view(m);
      fail_input(fmt::format("BPE merge #{} {}: {} is not a token of the vocabulary", i, quote_untrusted(m),
                             !l || !r ? quote_untrusted(missing) : "the merged pair"));
    }
    // A pair listed twice keeps its first (best) rank, as in llama.cpp.
    merges_.try_emplace(pair_key(*l, *r), Merge{static_cast<int32_t>(i), *result});
  }
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    const TokenType t = vocab_.type(id);
    if (t == TokenType::kUserDefined) always_special_.push_back({vocab_.piece(id), id});
    if (t == TokenType::kUserDefined || t == TokenType::kControl || t == TokenType::kUnknown) {
      all_special_.push_back({vocab_.piece(id), id});
    }
  }
}

std::string BpeTokenizer::describe() const {
  return fmt::format("bpe (byte-level, pre-tokenizer {}), {} tokens, {} merges, {} bytes without a token",
                     pre_tokenizer_name_, vocab_.size(), merges_.size(), bytes_without_token_);
}

void BpeTokenizer::encode_word(std::string_view word, std::vector<int32_t>& out) const {
  const size_t n = word.size();
  if (n == 1) {
    append_byte(static_cast<uint8_t>(word[0]), out);
    return;
  }
  // A doubly linked list of symbols, one per byte at first; a merge keeps
  // the left symbol and unlinks the right one.
  std::vector<int32_t> id(n), prev(n), next(n);
  for (size_t i = 0; i < n; ++i) {
    id[i] = byte_token_[static_cast<uint8_t>(word[i])];
    prev[i] = static_cast<int32_t>(i) - 1;
    next[i] = i + 1 < n ? static_cast<int32_t>(i) + 1 : -1;
  }
  struct Candidate {
    int32_t rank, left, right, left_id, right_id, result;
    // The heap's top is the lowest rank, then the leftmost.
    bool operator<(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate> heap;
  const auto consider = [&](int32_t left, int32_t right) {
    // A byte without a token (id -1) merges with nothing.
    if (left < 0 || right < 0 || id[left] < 0 || id[right] < 0) return;
    const auto it = merges_.find(pair_key(id[left], id[right]));
    if (it != merges_.end()) heap.push({it->second.rank, left, right, id[left], id[right], it->second.result});
  };
  for (size_t i = 0; i + 1 < n; ++i) consider(static_cast<int32_t>(i), static_cast<int32_t>(i) + 1);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    // Stale if either side merged since: a symbol's id changes when it
    // absorbs its right neighbour, and an absorbed symbol is unlinked.
    if (id[c.left] != c.left_id || id[c.right] != c.right_id || next[c.left] != c.right) continue;
    id[c.left] = c.result;
    id[c.right] = -1;
    next[c.left] = next[c.right];
    if (next[c.right] >= 0) prev[next[c.right]] = c.left;
    consider(prev[c.left], c.left);
    consider(c.left, next[c.left]);
  }
  for (int32_t i = 0; i >= 0; i = next[i]) {
    if (id[i] >= 0) {
      out.push_back(id[i]);
    } else {
      append_byte(static_cast<uint8_t>(word[static_cast<size_t>(i)]), out);
    }
  }
}

void BpeTokenizer::append_byte(uint8_t byte, std::vector<int32_t>& out) const {
  if (byte_token_[byte] >= 0) {
    out.push_back(byte_token_[byte]);
  } else {
    out.insert(out.end(), byte_fallback_[byte].begin(), byte_fallback_[byte].end());
  }
}

void BpeTokenizer::encode_fragment(std::string_view text, std::vector<int32_t>& out,
                                   std::unordered_map<std::string_view, std::vector<int32_t>>& cache) const {
  std::vector<size_t> ends;
  split_bpe_words(text, pre_tokenizer_, ends);
  size_t begin = 0;
  for (size_t end : ends) {
    const std::string_view word = text.substr(begin, end - begin);
    begin = end;
    if (word.size() == 1) {
      append_byte(static_cast<uint8_t>(word[0]), out);
      continue;
    }
    auto [it, inserted] = cache.try_emplace(word);
    if (inserted) encode_word(word, it->second);
    out.insert(out.end(), it->second.begin(), it->second.end());
  }
}

std::vector<int32_t> BpeTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 2);
  if (add_special && special_.add_bos) out.push_back(special_.bos);
  // Keys are views into `text`, which outlives the cache.
  std::unordered_map<std::string_view, std::vector<int32_t>> cache;
  for (const TextFragment& f : split_longest_first(text, parse_special ? all_special_ : always_special_)) {
    if (f.is_token()) {
      out.push_back(f.token);
    } else {
      encode_fragment(text.substr(f.begin, f.end - f.begin), out, cache);
    }
  }
  if (add_special && special_.add_eos) out.push_back(special_.eos);
  return out;
}

std::string BpeTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  for (int32_t id : ids) {
    const std::string& piece = vocab_.piece(id);
    if (!append_special_piece(out, vocab_.type(id), piece, skip_special)) byte_level_decode_append(out, piece);
  }
  return out;
}

}  // namespace lowbit
