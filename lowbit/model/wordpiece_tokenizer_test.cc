#include "lowbit/model/wordpiece_tokenizer.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

WordPieceConfig config() {
  WordPieceConfig c;
  c.vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "aff", "able", ",",
             "hello", "world", "!", "[", "]", "do", "n", "'", "t", "##n", "extra", "a", "##a", "x", "ß", "##ß"};
  c.normalizer = BertNormalizerOptions{};
  for (int32_t i = 0; i < 5; ++i) c.added_tokens.push_back({c.vocab[static_cast<size_t>(i)], i, true});
  c.added_tokens.push_back({"<new>", 27, false});                         // appended, raw
  c.added_tokens.push_back({"EXTRA!", 28, false, false, false, true});    // appended, normalized
  c.template_prefix = {2};
  c.template_suffix = {3};
  c.pad_id = 0;
  return c;
}

std::vector<std::string> pieces(const Tokenizer& t, const std::vector<int32_t>& ids) {
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(t.piece(id));
  return out;
}

using P = std::vector<std::string>;

TEST(WordPieceTokenizer, GreedyLongestMatchFirst) {
  const WordPieceTokenizer t(config());
  EXPECT_EQ(pieces(t, t.encode("unaffable")), (P{"[CLS]", "un", "##aff", "##able", "[SEP]"}));
  EXPECT_EQ(pieces(t, t.encode("Hello, WORLD!", false)), (P{"hello", ",", "world", "!"}));
  EXPECT_EQ(pieces(t, t.encode("aaa", false)), (P{"a", "##a", "##a"}));
  // A rest that no "##" entry starts makes the whole word unknown.
  EXPECT_EQ(pieces(t, t.encode("unx hello", false)), (P{"[UNK]", "hello"}));
  EXPECT_EQ(t.vocab().type(1), TokenType::kUnknown);
  EXPECT_EQ(t.bos_id(), 2);
  EXPECT_EQ(t.eos_id(), 3);
  EXPECT_EQ(t.pad_id(), 0);
  EXPECT_TRUE(t.adds_bos() && t.adds_eos());
}

TEST(WordPieceTokenizer, LongWordsAreUnknown) {
  WordPieceConfig c = config();
  c.max_input_chars_per_word = 5;
  const WordPieceTokenizer t(c);
  EXPECT_EQ(pieces(t, t.encode("unaffable hello", false)), (P{"[UNK]", "hello"}));
  // Characters, not bytes: five two-byte characters are not too long.
  EXPECT_EQ(pieces(t, t.encode("ßßßßß ßßßßßß", false)), (P{"ß", "##ß", "##ß", "##ß", "##ß", "[UNK]"}));
  c.max_input_chars_per_word = 9;
  const WordPieceTokenizer u(c);
  EXPECT_EQ(pieces(u, u.encode("unaffable", false)), (P{"un", "##aff", "##able"}));
}

TEST(WordPieceTokenizer, AddedTokens) {
  const WordPieceTokenizer t(config());
  // Special tokens in the text only with parse_special (Hugging Face's
  // default; tokenizer.h).
  EXPECT_EQ(pieces(t, t.encode("hello [SEP] world", false)), (P{"hello", "[", "[UNK]", "]", "world"}));
  EXPECT_EQ(pieces(t, t.encode("hello [SEP] world", false, true)), (P{"hello", "[SEP]", "world"}));
  // Matched before normalization: a lowercase name is plain text.
  EXPECT_EQ(pieces(t, t.encode("[sep]", false, true)), (P{"[", "[UNK]", "]"}));
  // A non-special added token is always matched, a normalized one after
  // normalization.
  EXPECT_EQ(pieces(t, t.encode("hello<new>world", false)), (P{"hello", "<new>", "world"}));
  EXPECT_EQ(pieces(t, t.encode("Extra! hello", false)), (P{"EXTRA!", "hello"}));
}

TEST(WordPieceTokenizer, EmptyWhiteSpaceAndInvalidText) {
  const WordPieceTokenizer t(config());
  EXPECT_EQ(pieces(t, t.encode("")), (P{"[CLS]", "[SEP]"}));
  EXPECT_EQ(pieces(t, t.encode("  \t\n ")), (P{"[CLS]", "[SEP]"}));
  EXPECT_TRUE(t.encode("", false).empty());
  // Invalid bytes read as U+FFFD, which clean_text drops.
  EXPECT_EQ(pieces(t, t.encode("hel\xFFlo\xE2\x82", false)), (P{"hello"}));
}

TEST(WordPieceTokenizer, DecodesLikeTheWordPieceDecoder) {
  const WordPieceTokenizer t(config());
  const std::vector<int32_t> ids = t.encode("Hello, world! unaffable don't");
  // cleanup works token by token: " '" stays (only " ' " would go).
  EXPECT_EQ(t.decode(ids, true), "hello, world! unaffable don ' t");
  EXPECT_EQ(t.decode(ids), "[CLS] hello, world! unaffable don ' t [SEP]");
  WordPieceConfig c = config();
  c.decoder_cleanup = false;
  const WordPieceTokenizer raw(c);
  EXPECT_EQ(raw.decode(ids, true), "hello , world ! unaffable don ' t");
  c.wordpiece_decoder = false;
  const WordPieceTokenizer none(c);
  EXPECT_EQ(none.decode(t.encode("unaffable", false)), "un ##aff ##able");
  EXPECT_EQ(catch_error([&] { t.decode(std::vector<int32_t>{99}); }).kind(), ErrorKind::kInput);
}

TEST(WordPieceTokenizer, RefusesInconsistentConfigs) {
  WordPieceConfig c = config();
  c.unk_token = "[NOPE]";
  EXPECT_EQ(catch_error([&] { WordPieceTokenizer{c}; }).kind(), ErrorKind::kInput);
  c = config();
  c.added_tokens.push_back({"other", 5, true});  // id 5 is "un"
  EXPECT_EQ(catch_error([&] { WordPieceTokenizer{c}; }).kind(), ErrorKind::kInput);
  c = config();
  c.added_tokens.push_back({"far", 40, true});  // leaves ids 29..39 empty
  EXPECT_EQ(catch_error([&] { WordPieceTokenizer{c}; }).kind(), ErrorKind::kInput);
  c = config();
  c.template_suffix = {1000};
  EXPECT_EQ(catch_error([&] { WordPieceTokenizer{c}; }).kind(), ErrorKind::kInput);
}

}  // namespace
}  // namespace lowbit
