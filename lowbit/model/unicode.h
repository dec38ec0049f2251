// The Unicode facts lowbit's tokenizers ask about: strict UTF-8 decoding,
// General_Category, White_Space, lowercase and canonical decomposition
// (NFD). The data comes from scripts/gen_unicode_tables.py (Python's
// unicodedata; unicode_version() names the version).
//
// Invalid UTF-8 is part of the contract, not an accident: decode_utf8()
// follows RFC 3629 strictly (no overlong forms, no surrogates, nothing
// above U+10FFFF) and reports each byte that does not begin a valid
// sequence as an invalid unit of length 1, so that a caller can keep the
// byte (byte-level BPE) or read it as U+FFFD (the pre-tokenizers' class of
// an invalid byte; WordPiece's text). docs/tokenizers.md has the rules.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit::unicode {

inline constexpr char32_t kReplacementCharacter = 0xFFFD;
inline constexpr char32_t kMaxCodePoint = 0x10FFFF;

// General_Category values; Cn for unassigned code points.
enum class Category : uint8_t {
  Cn, Lu, Ll, Lt, Lm, Lo, Mn, Mc, Me, Nd, Nl, No, Pc, Pd, Ps, Pe,
  Pi, Pf, Po, Sm, Sc, Sk, So, Zs, Zl, Zp, Cc, Cf, Cs, Co,
};

// The Unicode version of the tables ("14.0.0").
const char* unicode_version() noexcept;

Category category(char32_t cp) noexcept;
// The two-letter name ("Lu").
const char* category_name(Category c) noexcept;

inline bool is_letter(Category c) noexcept { return c >= Category::Lu && c <= Category::Lo; }
inline bool is_mark(Category c) noexcept { return c >= Category::Mn && c <= Category::Me; }
inline bool is_number(Category c) noexcept { return c >= Category::Nd && c <= Category::No; }
inline bool is_punctuation(Category c) noexcept { return c >= Category::Pc && c <= Category::Po; }
inline bool is_letter(char32_t cp) noexcept { return is_letter(category(cp)); }
inline bool is_number(char32_t cp) noexcept { return is_number(category(cp)); }
// The White_Space property (PropList.txt): what regular expressions' \s
// means in Unicode mode.
bool is_white_space(char32_t cp) noexcept;

// One decoded unit of a UTF-8 string: a code point and its byte length,
// or (valid == false) one byte that begins no valid sequence; then
// `code_point` is U+FFFD and `length` 1.
struct Utf8Unit {
  char32_t code_point;
  uint8_t length;
  bool valid;
};

// The unit starting at text[pos] (pos < text.size()).
Utf8Unit decode_utf8(std::string_view text, size_t pos) noexcept;
// Whether every byte of `text` belongs to a valid sequence.
bool is_valid_utf8(std::string_view text) noexcept;
// Appends the UTF-8 form of a scalar value (cp <= U+10FFFF, not a
// surrogate; anything else appends U+FFFD).
void append_utf8(std::string& out, char32_t cp);
// `text` with every invalid byte replaced by U+FFFD (one per byte).
std::string replace_invalid_utf8(std::string_view text);

// Appends the lowercase of one code point, without context: one code
// point, or more for a few (U+0130 gives "i\u0307").
void append_lowercase(std::u32string& out, char32_t cp);

// Canonical_Combining_Class (0 for starters).
uint8_t combining_class(char32_t cp) noexcept;
// The canonical decomposition of a whole string (Unicode's NFD: full
// decomposition, Hangul by arithmetic, then canonical reordering of each
// run of non-starters).
std::u32string nfd(std::u32string_view text);

}  // namespace lowbit::unicode
