#include "lowbit/model/bpe_pre_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lowbit {
namespace {

std::vector<std::string> words(std::string_view text, BpePreTokenizer kind) {
  std::vector<size_t> ends;
  split_bpe_words(text, kind, ends);
  std::vector<std::string> out;
  size_t begin = 0;
  for (size_t end : ends) {
    EXPECT_GT(end, begin) << "empty word";
    out.emplace_back(text.substr(begin, end - begin));
    begin = end;
  }
  EXPECT_EQ(begin, text.size()) << "the words do not cover the text";
  return out;
}

using W = std::vector<std::string>;
constexpr auto kGpt2 = BpePreTokenizer::kGpt2;
constexpr auto kDigits = BpePreTokenizer::kDigitsThenGpt2;

TEST(BpePreTokenizer, Names) {
  EXPECT_EQ(find_bpe_pre_tokenizer("smollm"), kDigits);
  EXPECT_EQ(find_bpe_pre_tokenizer("gpt-2"), kGpt2);
  EXPECT_FALSE(find_bpe_pre_tokenizer("llama3").has_value());
  EXPECT_NE(supported_bpe_pre_tokenizers().find("smollm"), std::string::npos);
}

TEST(BpePreTokenizer, LettersNumbersAndOthersTakeOneLeadingSpace) {
  EXPECT_EQ(words("Hello world", kGpt2), (W{"Hello", " world"}));
  EXPECT_EQ(words("x 123 !!? y", kGpt2), (W{"x", " 123", " !!?", " y"}));
  EXPECT_EQ(words("naïve café", kGpt2), (W{"naïve", " café"}));
  // A combining mark is not a letter: it ends the letter run.
  EXPECT_EQ(words("cafe\xCC\x81s", kGpt2), (W{"cafe", "\xCC\x81", "s"}));
  EXPECT_EQ(words("中文 字", kGpt2), (W{"中文", " 字"}));
  // Only U+0020 is the optional prefix; a tab stands alone.
  EXPECT_EQ(words("a\tb", kGpt2), (W{"a", "\t", "b"}));
}

TEST(BpePreTokenizer, Contractions) {
  EXPECT_EQ(words("I'm we're they've it's", kGpt2), (W{"I", "'m", " we", "'re", " they", "'ve", " it", "'s"}));
  EXPECT_EQ(words("'sam", kGpt2), (W{"'s", "am"}));
  // Lowercase only, and "'" alone otherwise.
  EXPECT_EQ(words("IT'S", kGpt2), (W{"IT", "'", "S"}));
  EXPECT_EQ(words("a'", kGpt2), (W{"a", "'"}));
  EXPECT_EQ(words("'l", kGpt2), (W{"'", "l"}));
}

TEST(BpePreTokenizer, WhiteSpaceRunsLeaveTheirLastSpaceToTheNextWord) {
  EXPECT_EQ(words("a   b", kGpt2), (W{"a", "  ", " b"}));
  EXPECT_EQ(words("a\n\nb", kGpt2), (W{"a", "\n", "\n", "b"}));
  EXPECT_EQ(words("a \nb", kGpt2), (W{"a", " ", "\n", "b"}));
  EXPECT_EQ(words("a  ", kGpt2), (W{"a", "  "}));  // at the end: all of it
  EXPECT_EQ(words("   ", kGpt2), (W{"   "}));
  EXPECT_EQ(words(" ", kGpt2), (W{" "}));
  EXPECT_EQ(words("", kGpt2), W{});
  // U+3000 is white space, but not the optional prefix.
  EXPECT_EQ(words("a\xE3\x80\x80" "b", kGpt2), (W{"a", "\xE3\x80\x80", "b"}));
}

TEST(BpePreTokenizer, DigitsAreIsolatedFirst) {
  EXPECT_EQ(words("in 2024, v1.2", kDigits), (W{"in", " ", "2", "0", "2", "4", ",", " v", "1", ".", "2"}));
  EXPECT_EQ(words("a   1", kDigits), (W{"a", "   ", "1"}));  // the digit ends the run: no lookahead past it
  EXPECT_EQ(words("x²³", kDigits), (W{"x", "²", "³"}));   // No is \p{N}
  EXPECT_EQ(words("12 ab", kGpt2), (W{"12", " ab"}));
}

TEST(BpePreTokenizer, InvalidBytesAreSymbols) {
  // Each invalid byte is one character of U+FFFD's class, [^\s\p{L}\p{N}].
  EXPECT_EQ(words("ab\xFF\xFE" "cd", kGpt2), (W{"ab", "\xFF\xFE", "cd"}));
  EXPECT_EQ(words("a \x80!", kGpt2), (W{"a", " \x80!"}));
  EXPECT_EQ(words("\xE2\x82", kGpt2), (W{"\xE2\x82"}));
  EXPECT_EQ(words("x\xC3", kDigits), (W{"x", "\xC3"}));
}

}  // namespace
}  // namespace lowbit
