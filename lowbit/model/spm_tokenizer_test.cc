#include "lowbit/model/spm_tokenizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

// <unk> <s> </s>, the 256 byte tokens, then scored pieces.
SpmTokenizer make(bool space_prefix = true, bool with_bytes = true, bool add_bos = true) {
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  std::vector<float> scores = {0, 0, 0};
  if (with_bytes) {
    for (unsigned b = 0; b < 256; ++b) {
      pieces.push_back(byte_piece_name(static_cast<uint8_t>(b)));
      types.push_back(6);
      scores.push_back(0);
    }
  }
  const std::vector<std::pair<std::string, float>> scored = {
      {"▁", -1},  {"h", -5},    {"e", -5},     {"l", -5},    {"o", -5},  {"▁h", -2}, {"he", -1.5},
      {"ll", -1}, {"llo", -1.2}, {"▁he", -3},  {"a", -5},    {"aa", -4}, {"w", -5},  {"▁w", -2}};
  for (const auto& [p, s] : scored) {
    pieces.push_back(p);
    types.push_back(1);
    scores.push_back(s);
  }
  pieces.push_back("<tool>");
  types.push_back(4);
  scores.push_back(0);
  SpecialTokenIds sp;
  sp.unk = 0, sp.bos = 1, sp.eos = 2, sp.add_bos = add_bos;
  return SpmTokenizer(Vocabulary(pieces, types), scores, sp, space_prefix);
}

std::vector<std::string> pieces(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.piece(id));
  return out;
}

using P = std::vector<std::string>;

TEST(SpmTokenizer, MergesTheHighestScoreFirst) {
  const SpmTokenizer t = make();
  // ll (-1), then llo (-1.2), he (-1.5); ▁h (-2) is then stale; ▁he (-3).
  EXPECT_EQ(pieces(t, t.encode("hello")), (P{"<s>", "▁he", "llo"}));
  EXPECT_EQ(pieces(t, t.encode("hello", false)), (P{"▁he", "llo"}));
  // Equal scores: the leftmost pair.
  EXPECT_EQ(pieces(t, t.encode("aaa", false)), (P{"▁", "aa", "a"}));
  // Spaces are ▁ and join the following piece.
  EXPECT_EQ(pieces(t, t.encode("he  w", false)), (P{"▁he", "▁", "▁w"}));
}

TEST(SpmTokenizer, SpacePrefixIsOptional) {
  const SpmTokenizer t = make(false);
  EXPECT_EQ(pieces(t, t.encode("hello", false)), (P{"he", "llo"}));
  EXPECT_EQ(t.decode(t.encode(" hello", false)), " hello");
}

TEST(SpmTokenizer, ByteFallback) {
  const SpmTokenizer t = make();
  EXPECT_EQ(pieces(t, t.encode("中", false)), (P{"▁", "<0xE4>", "<0xB8>", "<0xAD>"}));
  // An invalid byte is a symbol of its own and falls back to its byte.
  EXPECT_EQ(pieces(t, t.encode("a\xFF" "a", false)), (P{"▁", "a", "<0xFF>", "a"}));
  EXPECT_EQ(pieces(t, t.encode("\n", false)), (P{"▁", "<0x0A>"}));
  // Without byte tokens: the unknown token, one per byte.
  const SpmTokenizer nb = make(true, false);
  EXPECT_EQ(pieces(nb, nb.encode("中", false)), (P{"▁", "<unk>", "<unk>", "<unk>"}));
}

TEST(SpmTokenizer, RoundTrips) {
  const SpmTokenizer t = make();
  for (const std::string s : {"hello", "hello world", "  two  spaces ", "中文 \xFF\xE2\x82", "a\nb\tc", ""}) {
    EXPECT_EQ(t.decode(t.encode(s), true), s) << s;
    EXPECT_EQ(t.decode(t.encode(s, false)), s) << s;
  }
  // Without skip_special the BOS renders, and the prefix space goes with it.
  EXPECT_EQ(t.decode(t.encode("hello")), "<s> hello");
}

TEST(SpmTokenizer, SpecialTokens) {
  const SpmTokenizer t = make();
  // Control tokens only with parse_special; each text fragment after one
  // gets the space prefix again.
  EXPECT_EQ(pieces(t, t.encode("he<s>he", false, true)), (P{"▁he", "<s>", "▁he"}));
  EXPECT_EQ(pieces(t, t.encode("he<tool>he", false)), (P{"▁he", "<tool>", "▁he"}));
  const std::vector<int32_t> plain = t.encode("<s>", false);
  EXPECT_EQ(std::count(plain.begin(), plain.end(), 1), 0);
  EXPECT_EQ(t.encode("", true), (std::vector<int32_t>{1}));
  EXPECT_TRUE(t.encode("", false).empty());
}

TEST(SpmTokenizer, RefusesBadScores) {
  std::vector<std::string> pieces = {"a", "b"};
  EXPECT_EQ(catch_error([&] { SpmTokenizer(Vocabulary(pieces, {}), {0.0f}, {}, true); }).kind(), ErrorKind::kInput);
  EXPECT_EQ(catch_error([&] { SpmTokenizer(Vocabulary(pieces, {}), {0.0f, NAN}, {}, true); }).kind(),
            ErrorKind::kInput);
  const SpmTokenizer t = make();
  EXPECT_NE(t.describe().find("spm"), std::string::npos);
}

}  // namespace
}  // namespace lowbit
