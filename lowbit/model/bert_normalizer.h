// BERT's text normalizer, as Hugging Face's `tokenizers` defines it
// (BertNormalizer in a tokenizer.json), in its order:
//   1. clean_text: drop U+0000, U+FFFD and the "other" characters (Cc, Cf,
//      Co; but \t \n \r are kept), and turn every White_Space character
//      (and \t \n \r) into ' ';
//   2. handle_chinese_chars: put a space on each side of every CJK
//      ideograph (the blocks BERT's original code lists);
//   3. strip_accents: canonical decomposition (NFD), then drop the
//      nonspacing marks (Mn);
//   4. lowercase: each character's lowercase, without context (capital
//      sigma is always σ, U+0130 becomes "i̇"), as Rust's char::to_lowercase.
// tokenizer.json's strip_accents may be null: it then follows lowercase,
// as in `tokenizers`.
//
// The input is UTF-8 where each invalid byte reads as U+FFFD, so
// clean_text removes it; without clean_text it stays as U+FFFD.
//
// Unicode data: unicode.h's tables (Python's unicodedata). `tokenizers`
// takes categories and marks from an older Unicode version (the
// unicode_categories crate); the characters where the two differ are
// listed in docs/tokenizers.md.
#pragma once

#include <string>
#include <string_view>

namespace lowbit {

struct BertNormalizerOptions {
  bool clean_text = true;
  bool handle_chinese_chars = true;
  bool strip_accents = true;
  bool lowercase = true;
};

// BERT's "Chinese character" test: the CJK Unified Ideographs blocks and
// their extensions and compatibility forms, not Hangul, kana or CJK
// punctuation.
bool is_bert_chinese_char(char32_t cp) noexcept;

// The normalized text, UTF-8.
std::string bert_normalize(std::string_view text, const BertNormalizerOptions& options);

}  // namespace lowbit
