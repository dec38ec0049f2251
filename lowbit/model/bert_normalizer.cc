#include "lowbit/model/bert_normalizer.h"

#include "lowbit/model/unicode.h"

namespace lowbit {

bool is_bert_chinese_char(char32_t cp) noexcept {
  // The ranges of BERT's tokenization.py (_is_chinese_char), as Hugging
  // Face's normalizer keeps them: note 0x2B820..0x2B91F is not among them.
  return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
         (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) ||
         (cp >= 0x2B920 && cp <= 0x2CEAF) || (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

std::string bert_normalize(std::string_view text, const BertNormalizerOptions& options) {
  std::u32string chars;
  chars.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const unicode::Utf8Unit u = unicode::decode_utf8(text, pos);
    pos += u.length;
    char32_t cp = u.code_point;  // U+FFFD for an invalid byte
    if (options.clean_text) {
      const bool keep_control = cp == '\t' || cp == '\n' || cp == '\r';
      const unicode::Category c = unicode::category(cp);
      const bool other = c == unicode::Category::Cc || c == unicode::Category::Cf || c == unicode::Category::Co;
      if (cp == 0 || cp == unicode::kReplacementCharacter || (other && !keep_control)) continue;
      if (keep_control || unicode::is_white_space(cp)) cp = ' ';
    }
    if (options.handle_chinese_chars && is_bert_chinese_char(cp)) {
      chars.push_back(' ');
      chars.push_back(cp);
      chars.push_back(' ');
    } else {
      chars.push_back(cp);
    }
  }
  if (options.strip_accents) {
    std::u32string decomposed = unicode::nfd(chars);
    chars.clear();
    for (char32_t cp : decomposed) {
      if (unicode::category(cp) != unicode::Category::Mn) chars.push_back(cp);
    }
  }
  if (options.lowercase) {
    std::u32string lower;
    lower.reserve(chars.size());
    for (char32_t cp : chars) unicode::append_lowercase(lower, cp);
    chars.swap(lower);
  }
  std::string out;
  out.reserve(chars.size());
  for (char32_t cp : chars) unicode::append_utf8(out, cp);
  return out;
}

}  // namespace lowbit
