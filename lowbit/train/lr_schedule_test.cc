#include "lowbit/train/lr_schedule.h"

#include <gtest/gtest.h>

namespace lowbit {
namespace {

TEST(LrSchedule, WarmupThenCosineToTheFloor) {
  const LrSchedule s{1.0, 0.1, 4, 14};
  EXPECT_DOUBLE_EQ(s.at(0), 0.25);
  EXPECT_DOUBLE_EQ(s.at(3), 1.0);
  EXPECT_DOUBLE_EQ(s.at(4), 1.0);   // the cosine starts at the peak
  EXPECT_DOUBLE_EQ(s.at(13), 0.1);  // and ends at min_lr on the last step
  EXPECT_NEAR(s.at(8) + s.at(9), 1.1, 1e-12 + 0.2);  // about halfway down in the middle
  for (int64_t i = 4; i < 13; ++i) EXPECT_GT(s.at(i), s.at(i + 1)) << i;
  // No warm-up, one step.
  EXPECT_DOUBLE_EQ((LrSchedule{2.0, 0.5, 0, 1}.at(0)), 2.0);
}

}  // namespace
}  // namespace lowbit
