#include "lowbit/model/spm_tokenizer.h"

#include <fmt/format.h>

#include <cmath>
#include <queue>

#include "lowbit/core/error.h"
#include "lowbit/model/unicode.h"

namespace lowbit {

namespace {

constexpr std::string_view kSpaceMark = "\xE2\x96\x81";  // U+2581 '▁'

}  // namespace

SpmTokenizer::SpmTokenizer(Vocabulary vocab, std::vector<float> scores, SpecialTokenIds special,
                           bool add_space_prefix)
    : Tokenizer(std::move(vocab), special), scores_(std::move(scores)), add_space_prefix_(add_space_prefix) {
  if (scores_.size() != static_cast<size_t>(vocab_.size())) {
    fail_input(fmt::format("the vocabulary has {} tokens but {} scores", vocab_.size(), scores_.size()));
  }
  for (size_t i = 0; i < scores_.size(); ++i) {
    // A NaN would break the ordering of merges.
    if (std::isnan(scores_[i])) fail_input(fmt::format("token {} has a NaN score", i));
  }
  for (unsigned b = 0; b < 256; ++b) {
    std::optional<int32_t> id = vocab_.find(byte_piece_name(static_cast<uint8_t>(b)));
    if (!id) id = vocab_.find(std::string(1, static_cast<char>(b)));
    byte_token_[b] = id.value_or(-1);
  }
  for (int32_t id = 0; id < vocab_.size(); ++id) {
    const TokenType t = vocab_.type(id);
    if (t == TokenType::kUserDefined) always_special_.push_back({vocab_.piece(id), id});
    if (t == TokenType::kUserDefined || t == TokenType::kControl || t == TokenType::kUnknown) {
      all_special_.push_back({vocab_.piece(id), id});
    }
  }
}

std::string SpmTokenizer::describe() const {
  return fmt::format("spm (SentencePiece-style, space prefix {}), {} tokens", add_space_prefix_ ? "on" : "off",
                     vocab_.size());
}

void SpmTokenizer::encode_fragment(std::string_view text, std::vector<int32_t>& out) const {
  // Symbols are byte ranges of `text`, linked in a list; a merge grows the
  // left one and empties the right one.
  struct Symbol {
    size_t begin, length;
    int32_t prev, next;
  };
  std::vector<Symbol> sym;
  for (size_t pos = 0; pos < text.size();) {
    const size_t len = unicode::decode_utf8(text, pos).length;
    const auto i = static_cast<int32_t>(sym.size());
    sym.push_back({pos, len, i - 1, pos + len < text.size() ? i + 1 : -1});
    pos += len;
  }
  if (sym.empty()) return;
  struct Bigram {
    float score;
    int32_t left, right;
    size_t length;
    // The heap's top is the highest score, then the leftmost.
    bool operator<(const Bigram& o) const { return score != o.score ? score < o.score : left > o.left; }
  };
  std::priority_queue<Bigram> heap;
  const auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const size_t length = sym[left].length + sym[right].length;
    const std::optional<int32_t> id = vocab_.find(text.substr(sym[left].begin, length));
    if (id) heap.push({scores_[static_cast<size_t>(*id)], left, right, length});
  };
  for (size_t i = 0; i + 1 < sym.size(); ++i) consider(static_cast<int32_t>(i), static_cast<int32_t>(i) + 1);
  while (!heap.empty()) {
    const Bigram b = heap.top();
    heap.pop();
    Symbol& l = sym[b.left];
    Symbol& r = sym[b.right];
    // Stale if either side merged since: lengths only grow, and an
    // absorbed symbol has length 0, so equal lengths mean both are as
    // they were and still adjacent.
    if (l.length == 0 || r.length == 0 || l.length + r.length != b.length) continue;
    l.length += r.length;
    r.length = 0;
    l.next = r.next;
    if (r.next >= 0) sym[r.next].prev = b.left;
    consider(l.prev, b.left);
    consider(b.left, l.next);
  }
  for (int32_t i = 0; i >= 0; i = sym[i].next) {
    const std::string_view s = text.substr(sym[i].begin, sym[i].length);
    if (const std::optional<int32_t> id = vocab_.find(s)) {
      out.push_back(*id);
      continue;
    }
    for (char c : s) {
      const int32_t byte = byte_token_[static_cast<uint8_t>(c)];
      if (byte >= 0) {
        out.push_back(byte);
      } else if (special_.unk >= 0) {
        out.push_back(special_.unk);
      } else {
        fail_input(fmt::format("byte 0x{:02X} has no token and the vocabulary has no unknown token",
                               static_cast<uint8_t>(c)));
      }
    }
  }
}

std::vector<int32_t> SpmTokenizer::encode(std::string_view text, bool add_special, bool parse_special) const {
  std::vector<int32_t> out;
  if (add_special && special_.add_bos) out.push_back(special_.bos);
  bool after_special = true;  // the start of the text counts as one
  std::string escaped;
  for (const TextFragment& f : split_longest_first(text, parse_special ? all_special_ : always_special_)) {
    if (f.is_token()) {
      out.push_back(f.token);
      after_special = true;
      continue;
    }
    escaped.clear();
    if (add_space_prefix_ && after_special) escaped += kSpaceMark;
    for (char c : text.substr(f.begin, f.end - f.begin)) {
      if (c == ' ') {
        escaped += kSpaceMark;
      } else {
        escaped.push_back(c);
      }
    }
    encode_fragment(escaped, out);
    after_special = false;
  }
  if (add_special && special_.add_eos) out.push_back(special_.eos);
  return out;
}

std::string SpmTokenizer::decode(std::span<const int32_t> ids, bool skip_special) const {
  std::string out;
  bool strip_space = add_space_prefix_;
  for (int32_t id : ids) {
    const std::string& piece = vocab_.piece(id);
    const size_t before = out.size();
    if (!append_special_piece(out, vocab_.type(id), piece, skip_special)) {
      for (size_t pos = 0; pos < piece.size();) {
        if (piece.compare(pos, kSpaceMark.size(), kSpaceMark) == 0) {
          out.push_back(' ');
          pos += kSpaceMark.size();
        } else {
          out.push_back(piece[pos++]);
        }
      }
    }
    if (out.size() > before && strip_space) {
      if (out[before] == ' ') out.erase(before, 1);
      strip_space = false;
    }
  }
  return out;
}

}  // namespace lowbit
