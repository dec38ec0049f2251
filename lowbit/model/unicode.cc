#include "lowbit/model/unicode.h"

#include <algorithm>
#include <array>

#include "lowbit/model/unicode_tables.h"

namespace lowbit::unicode {

namespace ut = unicode_tables;

namespace {

// Latin-1 answers without a search: almost every character of real text.
struct Latin1Table {
  std::array<Category, 256> category{};
  Latin1Table() {
    size_t run = 0;
    for (char32_t cp = 0; cp < 256; ++cp) {
      while (run + 1 < ut::kCategoryRunCount && ut::kCategoryRuns[run + 1].first <= cp) ++run;
      category[cp] = static_cast<Category>(ut::kCategoryRuns[run].category);
    }
  }
};

const Latin1Table& latin1() {
  static const Latin1Table table;
  return table;
}

// Hangul syllable decomposition (the Unicode standard, section 3.12).
constexpr char32_t kSBase = 0xAC00, kLBase = 0x1100, kVBase = 0x1161, kTBase = 0x11A7;
constexpr char32_t kVCount = 21, kTCount = 28, kNCount = kVCount * kTCount, kSCount = 19 * kNCount;

void append_decomposition(std::u32string& out, char32_t cp) {
  if (cp >= kSBase && cp < kSBase + kSCount) {
    const char32_t s = cp - kSBase;
    out.push_back(kLBase + s / kNCount);
    out.push_back(kVBase + (s % kNCount) / kTCount);
    if (s % kTCount != 0) out.push_back(kTBase + s % kTCount);
    return;
  }
  const auto* end = ut::kDecompositions + ut::kDecompositionCount;
  const auto* it = std::lower_bound(ut::kDecompositions, end, cp,
                                    [](const ut::DecompositionEntry& e, char32_t c) { return e.code_point < c; });
  if (it == end || it->code_point != cp) {
    out.push_back(cp);
    return;
  }
  out.append(ut::kDecompositionData + it->start, it->length);
}

}  // namespace

const char* unicode_version() noexcept { return ut::kUnicodeVersion; }

Category category(char32_t cp) noexcept {
  if (cp < 256) return latin1().category[cp];
  if (cp > kMaxCodePoint) return Category::Cn;
  // The last run whose first code point is <= cp.
  const auto* end = ut::kCategoryRuns + ut::kCategoryRunCount;
  const auto* it = std::upper_bound(ut::kCategoryRuns, end, cp,
                                    [](char32_t c, const ut::CategoryRun& r) { return c < r.first; });
  return static_cast<Category>((it - 1)->category);
}

const char* category_name(Category c) noexcept {
  static constexpr const char* kNames[] = {"Cn", "Lu", "Ll", "Lt", "Lm", "Lo", "Mn", "Mc", "Me", "Nd",
                                           "Nl", "No", "Pc", "Pd", "Ps", "Pe", "Pi", "Pf", "Po", "Sm",
                                           "Sc", "Sk", "So", "Zs", "Zl", "Zp", "Cc", "Cf", "Cs", "Co"};
  const auto i = static_cast<size_t>(c);
  return i < std::size(kNames) ? kNames[i] : "??";
}

bool is_white_space(char32_t cp) noexcept {
  return std::binary_search(ut::kWhiteSpace, ut::kWhiteSpace + ut::kWhiteSpaceCount, cp);
}

Utf8Unit decode_utf8(std::string_view text, size_t pos) noexcept {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(text[i]); };
  const uint8_t b0 = byte(pos);
  if (b0 < 0x80) return {b0, 1, true};
  constexpr Utf8Unit kInvalid{kReplacementCharacter, 1, false};
  // Table 3-7 of the Unicode standard: the lead byte fixes the length and
  // the range of the second byte (which excludes overlong forms,
  // surrogates and code points above U+10FFFF); later bytes are 80..BF.
  size_t n;
  uint8_t lo = 0x80, hi = 0xBF;
  char32_t cp;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    n = 2, cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    n = 3, cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F;
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    n = 4, cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;
  } else {
    return kInvalid;
  }
  if (pos + n > text.size()) return kInvalid;
  for (size_t i = 1; i < n; ++i) {
    const uint8_t b = byte(pos + i);
    if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) return kInvalid;
    cp = (cp << 6) | (b & 0x3F);
  }
  return {cp, static_cast<uint8_t>(n), true};
}

bool is_valid_utf8(std::string_view text) noexcept {
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Unit u = decode_utf8(text, pos);
    if (!u.valid) return false;
    pos += u.length;
  }
  return true;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) cp = kReplacementCharacter;
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

std::string replace_invalid_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const Utf8Unit u = decode_utf8(text, pos);
    if (u.valid) {
      out.append(text.substr(pos, u.length));
    } else {
      append_utf8(out, kReplacementCharacter);
    }
    pos += u.length;
  }
  return out;
}

void append_lowercase(std::u32string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
    return;
  }
  const auto* end = ut::kLowercase + ut::kLowercaseCount;
  const auto* it = std::lower_bound(ut::kLowercase, end, cp,
                                    [](const ut::LowercaseEntry& e, char32_t c) { return e.code_point < c; });
  if (it == end || it->code_point != cp) {
    out.push_back(cp);
    return;
  }
  for (char32_t c : it->lower) {
    if (c != 0) out.push_back(c);
  }
}

uint8_t combining_class(char32_t cp) noexcept {
  if (cp < 0x300) return 0;
  const auto* end = ut::kCombiningRuns + ut::kCombiningRunCount;
  const auto* it = std::upper_bound(ut::kCombiningRuns, end, cp,
                                    [](char32_t c, const ut::CombiningRun& r) { return c < r.first; });
  if (it == ut::kCombiningRuns) return 0;
  --it;
  return cp <= it->last ? it->combining_class : 0;
}

std::u32string nfd(std::u32string_view text) {
  std::u32string out;
  out.reserve(text.size());
  for (char32_t cp : text) append_decomposition(out, cp);
  // Canonical ordering: within each run of non-starters, a stable sort by
  // combining class (what the standard's pairwise exchange produces).
  for (size_t i = 0; i < out.size();) {
    if (combining_class(out[i]) == 0) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < out.size() && combining_class(out[j]) != 0) ++j;
    if (j - i > 1) {
      std::stable_sort(out.begin() + static_cast<ptrdiff_t>(i), out.begin() + static_cast<ptrdiff_t>(j),
                       [](char32_t a, char32_t b) { return combining_class(a) < combining_class(b); });
    }
    i = j;
  }
  return out;
}

}  // namespace lowbit::unicode
