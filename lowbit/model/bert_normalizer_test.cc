#include "lowbit/model/bert_normalizer.h"

#include <gtest/gtest.h>

#include <string>

namespace lowbit {
namespace {

const BertNormalizerOptions kAll{};  // what MiniLM's tokenizer.json asks for

TEST(BertNormalizer, StripsAccentsAndLowercases) {
  EXPECT_EQ(bert_normalize("Héllo WÖRLD Ångström", kAll), "hello world angstrom");
  // Precomposed and decomposed forms give the same text.
  EXPECT_EQ(bert_normalize("Cafe\xCC\x81", kAll), "cafe");
  EXPECT_EQ(bert_normalize("naïve façade", kAll), "naive facade");
  // NFD takes İ's dot off before lowercasing; without accent stripping the
  // lowercase of İ is "i" and U+0307.
  EXPECT_EQ(bert_normalize("İ", kAll), "i");
  BertNormalizerOptions no_strip = kAll;
  no_strip.strip_accents = false;
  EXPECT_EQ(bert_normalize("İ", no_strip), "i\xCC\x87");
  EXPECT_EQ(bert_normalize("ΣΑΣ", kAll), "σασ");  // no final-sigma rule
  // Hangul decomposes to jamo (NFD), which are letters and stay.
  EXPECT_EQ(bert_normalize("한", kAll), "\u1112\u1161\u11AB");
  // Only nonspacing marks go: a spacing mark (Mc) stays.
  EXPECT_EQ(bert_normalize("\u0915\u093E", kAll), "\u0915\u093E");
}

TEST(BertNormalizer, SplitsChineseCharacters) {
  EXPECT_EQ(bert_normalize("中文abc", kAll), " 中  文 abc");
  EXPECT_EQ(bert_normalize("\U00020000", kAll), " \U00020000 ");
  // Kana and Hangul are not "Chinese characters".
  EXPECT_EQ(bert_normalize("かな", kAll), "かな");
  EXPECT_TRUE(is_bert_chinese_char(0x4E00));
  EXPECT_TRUE(is_bert_chinese_char(0xF900));
  EXPECT_FALSE(is_bert_chinese_char(0x2B820));  // between BERT's ranges
  EXPECT_FALSE(is_bert_chinese_char(0x3042));
}

TEST(BertNormalizer, CleansText) {
  // Controls and format characters go; \t \n \r and White_Space become ' '.
  EXPECT_EQ(bert_normalize("a\tb\nc\rd\u00A0e\u3000f", kAll), "a b c d e f");
  EXPECT_EQ(bert_normalize(std::string("a\0b\x01" "c\u200Bd\u00ADe\uE000f", 16), kAll), "abcdef");
  EXPECT_EQ(bert_normalize("a\uFFFDb", kAll), "ab");
  // Invalid UTF-8 reads as U+FFFD, which clean_text removes...
  EXPECT_EQ(bert_normalize("a\xFF" "b\xE2\x82", kAll), "ab");
  // ...and keeps without it.
  BertNormalizerOptions keep = kAll;
  keep.clean_text = false;
  EXPECT_EQ(bert_normalize("a\xFF", keep), "a\uFFFD");
  EXPECT_EQ(bert_normalize("a\tb", keep), "a\tb");
}

TEST(BertNormalizer, EachStepCanBeOff) {
  const BertNormalizerOptions none{false, false, false, false};
  EXPECT_EQ(bert_normalize("Héllo 中", none), "Héllo 中");
  BertNormalizerOptions lower_only = none;
  lower_only.lowercase = true;
  EXPECT_EQ(bert_normalize("Héllo", lower_only), "héllo");
  EXPECT_EQ(bert_normalize("", kAll), "");
}

}  // namespace
}  // namespace lowbit
