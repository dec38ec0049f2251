#include "lowbit/train/training_data.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

class TrainingData : public testing_support::TempDirTest {};

TEST_F(TrainingData, EachFileGivesItsTailFromALineStartToTheHeldOutSplit) {
  const std::string a = path("a.txt"), b = path("b.txt");
  std::string lines;
  for (int i = 0; i < 10; ++i) lines += "line " + std::to_string(i) + "\n";  // 7 bytes each
  std::ofstream(a) << lines;
  std::ofstream(b) << std::string(50, 'b');  // no line breaks: cut at the byte
  const TextSplit s = split_text_files({a, b}, 0.25);
  ASSERT_EQ(s.train.size(), 2u);
  // 70 bytes, 0.75 of them is 52, inside line 7: the cut moves to line 8.
  EXPECT_EQ(s.train[0], lines.substr(0, 56));
  EXPECT_EQ(s.heldout[0], "line 8\nline 9\n");
  EXPECT_EQ(s.train[1].size(), 37u);
  EXPECT_EQ(s.heldout[1].size(), 13u);
  EXPECT_THROW(split_text_files({a}, 0.0), Error);
  EXPECT_THROW(split_text_files({a}, 0.6), Error);
  EXPECT_THROW(split_text_files({path("missing")}, 0.1), Error);
  std::ofstream(path("tiny")) << "x";
  EXPECT_THROW(split_text_files({path("tiny")}, 0.1), Error);
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
