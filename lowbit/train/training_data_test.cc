#include "lowbit/train/training_data.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

class TrainingData : public testing_support::TempDirTest {};

TEST_F(TrainingData, EachFileGivesItsTailToTheHeldOutSplit) {
  const std::string a = path("a.txt"), b = path("b.txt");
  std::ofstream(a) << std::string(100, 'a');
  std::ofstream(b) << std::string(50, 'b');
  const TokenCorpus c = build_token_corpus({a, b}, nullptr, 0.1);
  EXPECT_EQ(c.vocab_size, 256);
  ASSERT_EQ(c.train.size(), 90u + 45u);
  ASSERT_EQ(c.heldout.size(), 10u + 5u);
  EXPECT_EQ(c.train[89], 'a');
  EXPECT_EQ(c.train[90], 'b');
  EXPECT_EQ(c.heldout[9], 'a');
  EXPECT_EQ(c.heldout[10], 'b');
  EXPECT_THROW(build_token_corpus({a}, nullptr, 0.0), Error);
  EXPECT_THROW(build_token_corpus({a}, nullptr, 0.6), Error);
  EXPECT_THROW(build_token_corpus({path("missing")}, nullptr, 0.1), Error);
  std::ofstream(path("tiny")) << "x";
  EXPECT_THROW(build_token_corpus({path("tiny")}, nullptr, 0.1), Error);
}

TEST(TrainingBatch, APureFunctionOfSeedStepAndMicroBatch) {
  std::vector<int32_t> train(1000);
  for (size_t i = 0; i < train.size(); ++i) train[i] = static_cast<int32_t>(i);
  std::vector<int32_t> in1, tg1, in2, tg2;
  training_batch(train, 5, 3, 0, 4, 16, in1, tg1);
  training_batch(train, 5, 3, 0, 4, 16, in2, tg2);
  EXPECT_EQ(in1, in2);
  for (size_t i = 0; i < in1.size(); ++i) EXPECT_EQ(tg1[i], in1[i] + 1);  // targets are the next token
  for (size_t r = 0; r < 4; ++r) {
    for (size_t i = 1; i < 16; ++i) EXPECT_EQ(in1[r * 16 + i], in1[r * 16] + static_cast<int32_t>(i));
  }
  training_batch(train, 5, 4, 0, 4, 16, in2, tg2);
  EXPECT_NE(in1, in2);
  training_batch(train, 5, 3, 1, 4, 16, in2, tg2);
  EXPECT_NE(in1, in2);
  training_batch(train, 6, 3, 0, 4, 16, in2, tg2);
  EXPECT_NE(in1, in2);
  // The last start is n - seq - 1: the window's last target is the last token.
  std::vector<int32_t> small(17);
  for (size_t i = 0; i < small.size(); ++i) small[i] = static_cast<int32_t>(i);
  training_batch(small, 1, 0, 0, 2, 16, in2, tg2);
  EXPECT_EQ(tg2[15], 16);
  EXPECT_THROW(training_batch(small, 1, 0, 0, 1, 17, in2, tg2), Error);
}

TEST(HeldoutBatch, WindowsShareTheirBoundaryTokenAndCoverEveryTargetOnce) {
  std::vector<int32_t> h(35);
  for (size_t i = 0; i < h.size(); ++i) h[i] = static_cast<int32_t>(i);
  EXPECT_EQ(heldout_window_count(h, 8, 100), 4);  // (35 - 1) / 8
  EXPECT_EQ(heldout_window_count(h, 8, 2), 2);
  std::vector<int32_t> in, tg;
  heldout_batch(h, 1, 2, 8, in, tg);
  EXPECT_EQ(in.front(), 8);
  EXPECT_EQ(tg[7], 16);
  EXPECT_EQ(in[8], 16);
  EXPECT_EQ(tg.back(), 24);
}

}  // namespace
}  // namespace lowbit
