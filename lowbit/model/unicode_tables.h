// The Unicode data of lowbit's tokenizers, generated from Python's
// unicodedata by scripts/gen_unicode_tables.py into unicode_tables.cc.
// Only lowbit/model/unicode.cc reads these arrays; everything else asks
// unicode.h.
#pragma once

#include <cstddef>
#include <cstdint>

namespace lowbit::unicode_tables {

struct CategoryRun {
  char32_t first;
  uint8_t category;  // lowbit::unicode::Category
};
struct LowercaseEntry {
  char32_t code_point;
  char32_t lower[3];  // zero-padded
};
struct DecompositionEntry {
  char32_t code_point;
  uint16_t start;  // in kDecompositionData
  uint8_t length;
};
struct CombiningRun {
  char32_t first, last;
  uint8_t combining_class;
};

extern const char kUnicodeVersion[];
extern const CategoryRun kCategoryRuns[];
extern const size_t kCategoryRunCount;
extern const char32_t kWhiteSpace[];
extern const size_t kWhiteSpaceCount;
extern const LowercaseEntry kLowercase[];
extern const size_t kLowercaseCount;
extern const DecompositionEntry kDecompositions[];
extern const size_t kDecompositionCount;
extern const char32_t kDecompositionData[];
extern const size_t kDecompositionDataCount;
extern const CombiningRun kCombiningRuns[];
extern const size_t kCombiningRunCount;

}  // namespace lowbit::unicode_tables
