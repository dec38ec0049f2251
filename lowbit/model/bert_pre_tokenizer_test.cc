#include "lowbit/model/bert_pre_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lowbit {
namespace {

std::vector<std::string> words(std::string_view text) {
  std::vector<std::string_view> w;
  split_bert_words(text, w);
  return {w.begin(), w.end()};
}

using W = std::vector<std::string>;

TEST(BertPreTokenizer, SplitsOnWhiteSpaceAndIsolatesPunctuation) {
  EXPECT_EQ(words("Hello, world!"), (W{"Hello", ",", "world", "!"}));
  EXPECT_EQ(words("  a\t\nb  "), (W{"a", "b"}));
  EXPECT_EQ(words("don't"), (W{"don", "'", "t"}));
  EXPECT_EQ(words("x+y=$5"), (W{"x", "+", "y", "=", "$", "5"}));  // ASCII symbols count
  EXPECT_EQ(words("a…b«c»"), (W{"a", "…", "b", "«", "c", "»"}));  // Unicode P*
  EXPECT_EQ(words("a€b"), (W{"a€b"}));                             // Sc is not punctuation
  EXPECT_EQ(words("((x))"), (W{"(", "(", "x", ")", ")"}));
  EXPECT_EQ(words(""), W{});
  EXPECT_EQ(words("   "), W{});
  EXPECT_EQ(words("a\xFF" "b"), (W{"a\xFF" "b"}));
}

TEST(BertPreTokenizer, Punctuation) {
  for (char32_t c : {U'!', U'/', U'@', U'[', U'`', U'{', U'~', U'_', U'-', U'¿', U'、'}) {
    EXPECT_TRUE(is_bert_punctuation(c)) << std::hex << static_cast<uint32_t>(c);
  }
  for (char32_t c : {U'a', U'0', U' ', U'€', U'©'}) EXPECT_FALSE(is_bert_punctuation(c));
}

}  // namespace
}  // namespace lowbit
