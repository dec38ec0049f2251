#include "lowbit/model/special_tokens.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace lowbit {
namespace {

// "text|<id>|text" rendering of a split.
std::string render(std::string_view text, const std::vector<TextFragment>& fs) {
  std::string out;
  for (const TextFragment& f : fs) {
    if (!out.empty()) out += "|";
    if (f.is_token()) {
      out += '<';
      out += std::to_string(f.token);
      out += '>';
    } else {
      out += text.substr(f.begin, f.end - f.begin);
    }
  }
  return out;
}

TEST(SpecialTokens, LongestFirstCutsEveryOccurrence) {
  const std::vector<SpecialPattern> p = {{"<s>", 1}, {"<s>x", 2}, {"</s>", 3}};
  const std::string text = "a<s>xb<s></s>c";
  EXPECT_EQ(render(text, split_longest_first(text, p)), "a|<2>|b|<1>|<3>|c");
  EXPECT_EQ(render("", split_longest_first("", p)), "");
  EXPECT_EQ(render("plain", split_longest_first("plain", p)), "plain");
  EXPECT_EQ(render("<s>", split_longest_first("<s>", p)), "<1>");
}

TEST(SpecialTokens, TheTwoRulesDifferOnOverlaps) {
  // "ab" and "bcd" overlap in "abcd": llama.cpp's rule takes the longer one
  // wherever it is; Hugging Face's takes the leftmost.
  const std::vector<SpecialPattern> p = {{"ab", 1}, {"bcd", 2}};
  EXPECT_EQ(render("abcd", split_longest_first("abcd", p)), "a|<2>");
  EXPECT_EQ(render("abcd", split_leftmost_longest("abcd", p)), "<1>|cd");
  // Equal lengths: the lower id first.
  const std::vector<SpecialPattern> q = {{"bc", 5}, {"ab", 4}};
  EXPECT_EQ(render("abc", split_longest_first("abc", q)), "<4>|c");
}

TEST(SpecialTokens, LeftmostLongest) {
  const std::vector<SpecialPattern> p = {{"[SEP]", 102}, {"[S", 7}, {"[MASK]", 103}};
  const std::string text = "x [SEP][S][MASK]y";
  EXPECT_EQ(render(text, split_leftmost_longest(text, p)), "x |<102>|<7>|]|<103>|y");
}

TEST(SpecialTokens, StripSwallowsWhiteSpace) {
  std::vector<SpecialPattern> p = {{"<m>", 9, true, true}};
  const std::string text = "a \t<m>\u3000 b";
  EXPECT_EQ(render(text, split_leftmost_longest(text, p)), "a|<9>|b");
  p[0].lstrip = false;
  EXPECT_EQ(render(text, split_leftmost_longest(text, p)), "a \t|<9>|b");
  // Stripping stops at the previous token.
  p = {{"<m>", 9, true, false}, {"<n>", 8}};
  const std::string two = "<n>  <m>";
  EXPECT_EQ(render(two, split_leftmost_longest(two, p)), "<8>|<9>");
}

}  // namespace
}  // namespace lowbit
