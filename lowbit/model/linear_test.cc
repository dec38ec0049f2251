#include "lowbit/model/linear.h"

#include <gtest/gtest.h>

#include <vector>

#include "lowbit/core/error.h"

namespace lowbit {
namespace {

TEST(Linear, ComputesXTimesWTransposedPlusBias) {
  // W = [[1, 2, 3], [-1, 0, 0.5]], b = [0.25, -1].
  const Linear l("blk.0.ffn_up", {1, 2, 3, -1, 0, 0.5f}, 2, 3, {0.25f, -1});
  const std::vector<float> x = {1, 1, 1, 2, 0, -2};
  std::vector<float> y(4);
  l.forward(x.data(), 2, y.data(), 2);
  EXPECT_EQ(y, (std::vector<float>{6.25f, -1.5f, -3.75f, -4.0f}));
}

TEST(Linear, RefusesWeightsOfTheWrongSize) {
  EXPECT_THROW(Linear("w", std::vector<float>(5), 2, 3), Error);
  EXPECT_THROW(Linear("w", std::vector<float>(6), 2, 3, std::vector<float>(3)), Error);
}

}  // namespace
}  // namespace lowbit
