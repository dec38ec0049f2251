#include "lowbit/model/bpe_pre_tokenizer.h"

#include <array>
#include <utility>

#include "lowbit/model/unicode.h"

namespace lowbit {

namespace {

// llama.cpp's names for each expression (src/llama-vocab.cpp, b10605).
constexpr std::pair<const char*, BpePreTokenizer> kNames[] = {
    {"gpt-2", BpePreTokenizer::kGpt2},           {"phi-2", BpePreTokenizer::kGpt2},
    {"jina-es", BpePreTokenizer::kGpt2},         {"jina-de", BpePreTokenizer::kGpt2},
    {"gigachat", BpePreTokenizer::kGpt2},        {"jina-v2-es", BpePreTokenizer::kGpt2},
    {"jina-v2-de", BpePreTokenizer::kGpt2},      {"mpt", BpePreTokenizer::kGpt2},
    {"olmo", BpePreTokenizer::kGpt2},            {"smollm", BpePreTokenizer::kDigitsThenGpt2},
    {"starcoder", BpePreTokenizer::kDigitsThenGpt2}, {"refact", BpePreTokenizer::kDigitsThenGpt2},
    {"command-r", BpePreTokenizer::kDigitsThenGpt2}, {"codeshell", BpePreTokenizer::kDigitsThenGpt2},
    {"exaone", BpePreTokenizer::kDigitsThenGpt2},    {"minerva-7b", BpePreTokenizer::kDigitsThenGpt2},
};

enum class CharClass : uint8_t { kLetter, kNumber, kSpace, kOther };

struct Unit {
  char32_t cp;  // U+FFFD for an invalid byte
  uint8_t length;
  CharClass cls;
};

CharClass classify(char32_t cp) {
  if (unicode::is_white_space(cp)) return CharClass::kSpace;
  const unicode::Category c = unicode::category(cp);
  if (unicode::is_letter(c)) return CharClass::kLetter;
  if (unicode::is_number(c)) return CharClass::kNumber;
  return CharClass::kOther;
}

struct AsciiClasses {
  std::array<CharClass, 128> cls{};
  AsciiClasses() {
    for (char32_t c = 0; c < 128; ++c) cls[c] = classify(c);
  }
};

Unit unit_at(std::string_view text, size_t pos) {
  static const AsciiClasses ascii;
  const auto b = static_cast<uint8_t>(text[pos]);
  if (b < 0x80) return {b, 1, ascii.cls[b]};
  const unicode::Utf8Unit u = unicode::decode_utf8(text, pos);
  // An invalid byte is read as U+FFFD, a symbol: kOther.
  return {u.code_point, u.length, u.valid ? classify(u.code_point) : CharClass::kOther};
}

// The gpt2 expression over text[begin, end); `end` is the end of the
// input for the lookahead and the quantifiers.
void split_gpt2(std::string_view text, size_t begin, size_t end, std::vector<size_t>& word_ends) {
  size_t pos = begin;
  while (pos < end) {
    const Unit u = unit_at(text, pos);
    // 's|'t|'re|'ve|'m|'ll|'d (lowercase only: the expression has no (?i)).
    if (u.cp == '\'' && pos + 1 < end) {
      const char32_t c1 = unit_at(text, pos + 1).cp;
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') {
        word_ends.push_back(pos += 2);
        continue;
      }
      if ((c1 == 'r' || c1 == 'v' || c1 == 'l') && pos + 2 < end) {
        const char32_t c2 = unit_at(text, pos + 2).cp;
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) {
          word_ends.push_back(pos += 3);
          continue;
        }
      }
    }
    // ' ?\p{L}+', ' ?\p{N}+', ' ?[^\s\p{L}\p{N}]+': an optional U+0020,
    // then a run of one class. A space at the end of the input, or before
    // white space, is left to the white-space branches.
    size_t run = pos;
    bool have_class = true;
    CharClass cls = u.cls;
    if (u.cp == ' ') {
      run = pos + 1;
      if (run < end) {
        cls = unit_at(text, run).cls;
      } else {
        have_class = false;
      }
    }
    if (have_class && cls != CharClass::kSpace) {
      while (run < end) {
        const Unit v = unit_at(text, run);
        if (v.cls != cls) break;
        run += v.length;
      }
      word_ends.push_back(pos = run);
      continue;
    }
    // '\s+(?!\S)': a run of white space not followed by a non-space, i.e.
    // all of it at the end of the input, or all but its last character
    // (which then starts the next word, e.g. " word"). Else '\s+'.
    size_t last = pos, stop = pos, count = 0;
    while (stop < end) {
      const Unit v = unit_at(text, stop);
      if (v.cls != CharClass::kSpace) break;
      last = stop;
      stop += v.length;
      ++count;
    }
    pos = (count > 1 && stop < end) ? last : stop;
    word_ends.push_back(pos);
  }
}

}  // namespace

std::optional<BpePreTokenizer> find_bpe_pre_tokenizer(std::string_view name) {
  for (const auto& [n, kind] : kNames) {
    if (name == n) return kind;
  }
  return std::nullopt;
}

std::string supported_bpe_pre_tokenizers() {
  std::string out;
  for (const auto& [n, kind] : kNames) {
    if (!out.empty()) out += ", ";
    out += n;
  }
  return out;
}

void split_bpe_words(std::string_view text, BpePreTokenizer kind, std::vector<size_t>& word_ends) {
  if (kind == BpePreTokenizer::kGpt2) {
    split_gpt2(text, 0, text.size(), word_ends);
    return;
  }
  // \p{N} isolated: each number character is a word, and the text between
  // them is split by gpt2 with the digit as a hard end (so "a 1" is "a",
  // " ", "1", not "a", " 1").
  size_t segment = 0;
  for (size_t pos = 0; pos < text.size();) {
    const Unit u = unit_at(text, pos);
    if (u.cls == CharClass::kNumber) {
      split_gpt2(text, segment, pos, word_ends);
      word_ends.push_back(pos += u.length);
      segment = pos;
    } else {
      pos += u.length;
    }
  }
  split_gpt2(text, segment, text.size(), word_ends);
}

}  // namespace lowbit
