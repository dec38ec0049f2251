#include "lowbit/model/bpe_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lowbit/core/test_support.h"
#include "lowbit/model/byte_level.h"
#include "lowbit/model/unicode.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

// The 256 byte characters (ids 0..255, in byte order), then `extra`.
struct Fixture {
  std::vector<std::string> pieces;
  std::vector<int32_t> types;
  Fixture(const std::vector<std::pair<std::string, TokenType>>& extra) {
    for (unsigned b = 0; b < 256; ++b) {
      std::string s;
      unicode::append_utf8(s, byte_level_char(static_cast<uint8_t>(b)));
      pieces.push_back(s);
      types.push_back(1);
    }
    for (const auto& [p, t] : extra) {
      pieces.push_back(p);
      types.push_back(static_cast<int32_t>(t));
    }
  }
};

constexpr auto N = TokenType::kNormal;

BpeTokenizer make(const std::vector<std::string>& merges, SpecialTokenIds special = {},
                  BpePreTokenizer pre = BpePreTokenizer::kDigitsThenGpt2) {
  Fixture f({{"he", N}, {"ll", N}, {"hell", N}, {"hello", N}, {"Ġw", N}, {"or", N}, {"Ġwor", N}, {"aa", N},
             {"ab", N}, {"bc", N}, {"<|end|>", TokenType::kControl}, {"<tool>", TokenType::kUserDefined},
             {"<s>", TokenType::kControl}});
  return BpeTokenizer(Vocabulary(f.pieces, f.types), merges, special, pre, "test");
}

const std::vector<std::string> kMerges = {"h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "a a", "b c", "a b"};

std::vector<std::string> pieces(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.piece(id));
  return out;
}

using P = std::vector<std::string>;

TEST(BpeTokenizer, MergesByRank) {
  const BpeTokenizer t = make(kMerges);
  EXPECT_EQ(pieces(t, t.encode("hello world")), (P{"hello", "Ġwor", "l", "d"}));
  // "b c" outranks "a b", wherever it stands.
  EXPECT_EQ(pieces(t, t.encode("abc")), (P{"a", "bc"}));
  EXPECT_EQ(pieces(t, t.encode("ab")), (P{"ab"}));
  // Equal ranks: leftmost first.
  EXPECT_EQ(pieces(t, t.encode("aaa")), (P{"aa", "a"}));
  EXPECT_EQ(pieces(t, t.encode("aaaa")), (P{"aa", "aa"}));
  // Words never merge across their boundary; repeated words give the same
  // tokens (the per-call cache).
  EXPECT_EQ(pieces(t, t.encode("he he he")), (P{"he", "Ġ", "he", "Ġ", "he"}));
  EXPECT_EQ(t.merge_count(), 10);
}

TEST(BpeTokenizer, EmptyAndWhiteSpaceOnlyTexts) {
  const BpeTokenizer t = make(kMerges);
  EXPECT_TRUE(t.encode("").empty());
  EXPECT_EQ(pieces(t, t.encode("   ")), (P{"Ġ", "Ġ", "Ġ"}));
  EXPECT_EQ(t.decode(t.encode("   ")), "   ");
  EXPECT_EQ(pieces(t, t.encode("\n")), (P{"Ċ"}));
}

TEST(BpeTokenizer, EveryByteStringRoundTrips) {
  const BpeTokenizer t = make(kMerges);
  std::string all;
  for (unsigned b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string texts[] = {all, "hello \xFF\xFEworld\xE2\x82", "\xC0\x80\xED\xA0\x80", "héllo wörld 中文 😀",
                               "a\r\n\tb  c\n\n"};
  for (const std::string& s : texts) {
    EXPECT_EQ(t.decode(t.encode(s)), s);
    EXPECT_EQ(t.decode(t.encode(s, true, true)), s);
  }
  // An invalid byte is its byte's token, not U+FFFD's three bytes.
  EXPECT_EQ(t.encode("\xFF"), (std::vector<int32_t>{0xFF}));
}

TEST(BpeTokenizer, SpecialTokens) {
  const BpeTokenizer t = make(kMerges);
  const int32_t end = *t.vocab().find("<|end|>"), tool = *t.vocab().find("<tool>");
  // Control tokens are text unless parse_special; user-defined ones are
  // always tokens.
  const std::vector<int32_t> plain = t.encode("he<|end|>he");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), end), 0);
  EXPECT_EQ(pieces(t, t.encode("he<|end|>he", true, true)), (P{"he", "<|end|>", "he"}));
  EXPECT_EQ(pieces(t, t.encode("he<tool>he")), (P{"he", "<tool>", "he"}));
  EXPECT_EQ(t.encode("<tool>")[0], tool);
  // A special token cuts the text: no word spans it.
  EXPECT_EQ(pieces(t, t.encode("hel<tool>lo")), (P{"he", "l", "<tool>", "l", "o"}));
  // decode renders control tokens unless skip_special.
  EXPECT_EQ(t.decode(t.encode("a<|end|>b", true, true)), "a<|end|>b");
  EXPECT_EQ(t.decode(t.encode("a<|end|>b", true, true), true), "ab");
  EXPECT_EQ(t.decode(t.encode("a<tool>b"), true), "a<tool>b");
}

TEST(BpeTokenizer, BosAndEosWhereTheFileAsks) {
  const int32_t s = 256 + 12;  // "<s>"
  SpecialTokenIds sp;
  sp.bos = s, sp.eos = s, sp.add_bos = true, sp.add_eos = true;
  const BpeTokenizer t = make(kMerges, sp);
  EXPECT_EQ(pieces(t, t.encode("he")), (P{"<s>", "he", "<s>"}));
  EXPECT_EQ(pieces(t, t.encode("he", false)), (P{"he"}));
  EXPECT_EQ(pieces(t, t.encode("")), (P{"<s>", "<s>"}));
  EXPECT_EQ(t.decode(t.encode("he"), true), "he");
}

TEST(BpeTokenizer, Gpt2PreTokenizerKeepsNumbersTogether) {
  const BpeTokenizer digits = make(kMerges), gpt2 = make(kMerges, {}, BpePreTokenizer::kGpt2);
  EXPECT_EQ(pieces(digits, digits.encode(" 12")), (P{"Ġ", "1", "2"}));
  EXPECT_EQ(pieces(gpt2, gpt2.encode(" 12")), (P{"Ġ", "1", "2"}));  // one word, but no merges
  EXPECT_NE(gpt2.describe().find("bpe"), std::string::npos);
}

TEST(BpeTokenizer, DecodesByteAndUnusedTokens) {
  Fixture f({{"<0x41>", TokenType::kByte}, {"junk", TokenType::kUnused}, {"<0xZZ>", TokenType::kByte}});
  const BpeTokenizer t(Vocabulary(f.pieces, f.types), {}, {}, BpePreTokenizer::kGpt2, "gpt-2");
  EXPECT_EQ(t.decode(std::vector<int32_t>{256, 257, 258}), "A<0xZZ>");
  EXPECT_EQ(catch_error([&] { t.decode(std::vector<int32_t>{259}); }).kind(), ErrorKind::kInput);
  EXPECT_EQ(catch_error([&] { t.decode(std::vector<int32_t>{-1}); }).kind(), ErrorKind::kInput);
}

TEST(BpeTokenizer, MissingBytesAndBadMerges) {
  Fixture f({{"ab", N}});
  // A byte without a token is dropped, as llama.cpp drops it.
  std::vector<std::string> no_z = f.pieces;
  no_z['z'] = "zz";
  const BpeTokenizer t(Vocabulary(no_z, {}), {}, {}, BpePreTokenizer::kGpt2, "x");
  EXPECT_EQ(t.decode(t.encode("fizz buzz")), "fi bu");
  EXPECT_NE(t.describe().find("1 bytes without a token"), std::string::npos);
  const Error e2 = catch_error([&] { BpeTokenizer(Vocabulary(f.pieces, {}), std::vector<std::string>{"a q"}, {}, BpePreTokenizer::kGpt2, "x"); });
  EXPECT_NE(std::string(e2.what()).find("merged pair"), std::string::npos) << e2.what();
  const Error e3 = catch_error([&] { BpeTokenizer(Vocabulary(f.pieces, {}), std::vector<std::string>{"ab"}, {}, BpePreTokenizer::kGpt2, "x"); });
  EXPECT_NE(std::string(e3.what()).find("separated by a space"), std::string::npos) << e3.what();
  EXPECT_EQ(e3.kind(), ErrorKind::kInput);
  SpecialTokenIds bad;
  bad.bos = 9999;
  EXPECT_EQ(catch_error([&] { BpeTokenizer(Vocabulary(f.pieces, {}), {}, bad, BpePreTokenizer::kGpt2, "x"); }).kind(),
            ErrorKind::kInput);
}

}  // namespace
}  // namespace lowbit
