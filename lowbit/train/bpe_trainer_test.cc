#include "lowbit/train/bpe_trainer.h"

#include <gtest/gtest.h>

#include "lowbit/core/error.h"
#include "lowbit/model/bpe_tokenizer.h"
#include "lowbit/model/byte_level.h"

#include <map>

namespace lowbit {
namespace {

// The textbook algorithm, written again the slow way: recount every pair
// of every word occurrence before each merge, merge the most frequent
// (ties: lowest ids), left to right in each word.
std::vector<std::string> naive_merges(const std::vector<std::string_view>& texts, int vocab, int64_t min_count) {
  std::vector<std::vector<std::string>> words;  // byte-level pieces
  for (std::string_view text : texts) {
    std::vector<size_t> ends;
    split_bpe_words(text, BpePreTokenizer::kDigitsThenGpt2, ends);
    size_t b = 0;
    for (size_t e : ends) {
      std::vector<std::string> w;
      for (size_t i = b; i < e; ++i) w.push_back(byte_level_encode(text.substr(i, 1)));
      words.push_back(w);
      b = e;
    }
  }
  std::map<std::string, int32_t> id;
  for (int c = 0; c < 256; ++c) id[byte_level_encode(std::string(1, static_cast<char>(c)))] = c;
  int32_t next = 256;
  std::vector<std::string> merges;
  while (next < vocab - 1) {
    std::map<std::pair<int32_t, int32_t>, int64_t> count;
    for (const auto& w : words) {
      for (size_t i = 0; i + 1 < w.size(); ++i) ++count[{id[w[i]], id[w[i + 1]]}];
    }
    std::pair<int32_t, int32_t> best{-1, -1};
    int64_t best_count = 0;
    for (const auto& [p, c] : count) {
      if (c > best_count) best = p, best_count = c;  // the map's order: lowest ids win ties
    }
    if (best_count < min_count) break;
    std::string l, r;
    for (const auto& [s, i] : id) {
      if (i == best.first) l = s;
      if (i == best.second) r = s;
    }
    merges.push_back(l + " " + r);
    if (!id.contains(l + r)) id[l + r] = next++;
    for (auto& w : words) {
      std::vector<std::string> out;
      for (size_t i = 0; i < w.size(); ++i) {
        if (i + 1 < w.size() && w[i] == l && w[i + 1] == r) {
          out.push_back(l + r);
          ++i;
        } else {
          out.push_back(w[i]);
        }
      }
      w = out;
    }
  }
  return merges;
}

TEST(BpeTrainer, NoMergesIsTheByteLevelTokenizer) {
  const TrainedBpe t = train_bpe({}, {257, "smollm", 2});
  ASSERT_EQ(t.pieces.size(), 257u);
  EXPECT_TRUE(t.merges.empty());
  EXPECT_EQ(t.eos, 256);
  EXPECT_EQ(t.pieces[' '], "Ġ");
  const auto tok = t.tokenizer();
  const std::string text = "Hi 42\n\xff";
  const std::vector<int32_t> ids = tok->encode(text, false);
  ASSERT_EQ(ids.size(), text.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids[i], static_cast<uint8_t>(text[i]));
}

TEST(BpeTrainer, MergesTheMostFrequentPairFirstAndRoundTrips) {
  const std::string text =
      "the cat and the hat and the bat sat on the mat; the end. 1234 digits stay apart, 5678 and 90.\n";
  std::vector<std::string_view> texts(20, text);
  const TrainedBpe t = train_bpe(texts, {300, "smollm", 2});
  ASSERT_FALSE(t.merges.empty());
  EXPECT_EQ(t.merges, naive_merges(texts, 300, 2));
  EXPECT_EQ(t.pieces.size(), t.types.size());
  EXPECT_LE(t.pieces.size(), 300u);
  const auto tok = t.tokenizer();
  const std::vector<int32_t> ids = tok->encode(text, false);
  EXPECT_LT(ids.size(), text.size() / 2);  // the trained text compresses
  EXPECT_EQ(tok->decode(ids), text);
  // Digits are words of their own under "smollm": no merge joins two.
  for (const std::string& m : t.merges) {
    const bool digit_pair = m.size() == 3 && isdigit(static_cast<unsigned char>(m[0])) &&
                            isdigit(static_cast<unsigned char>(m[2]));
    EXPECT_FALSE(digit_pair) << m;
  }
  // A pure function of the text.
  const TrainedBpe again = train_bpe(texts, {300, "smollm", 2});
  EXPECT_EQ(again.merges, t.merges);
  EXPECT_EQ(again.pieces, t.pieces);
}

TEST(BpeTrainer, StopsWhenPairsAreRareAndRefusesBadOptions) {
  const std::vector<std::string_view> texts = {"abcdefgh"};
  const TrainedBpe t = train_bpe(texts, {1000, "gpt-2", 2});
  EXPECT_TRUE(t.merges.empty());  // every pair occurs once
  const TrainedBpe t1 = train_bpe(texts, {1000, "gpt-2", 1});
  EXPECT_EQ(t1.merges.size(), 7u);  // down to one token
  EXPECT_EQ(t1.tokenizer()->encode("abcdefgh", false).size(), 1u);
  EXPECT_THROW(train_bpe(texts, {256, "smollm", 2}), Error);
  EXPECT_THROW(train_bpe(texts, {300, "no-such", 2}), Error);
}

// "ab"+"c" and "a"+"bc" spell the same token: the second merge reuses it,
// and the tokenizer accepts the vocabulary.
TEST(BpeTrainer, TwoMergesSpellingOneStringShareItsToken) {
  std::vector<std::string_view> texts;
  for (int i = 0; i < 5; ++i) texts.push_back("ab ab ab abc");
  for (int i = 0; i < 4; ++i) texts.push_back("bc bc bc bc abc");
  const TrainedBpe t = train_bpe(texts, {400, "gpt-2", 1});
  int abc = 0;
  for (const std::string& p : t.pieces) abc += p == "abc";
  EXPECT_LE(abc, 1);
  EXPECT_NO_THROW(t.tokenizer());
}

}  // namespace
}  // namespace lowbit
