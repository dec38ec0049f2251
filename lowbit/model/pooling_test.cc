#include "lowbit/model/pooling.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace lowbit {
namespace {

// Three tokens of width 2, in a row stride of 3 (the third column is not
// part of the states and must be ignored).
const std::vector<float> kHidden = {1, -2, 99, 3, 4, 99, -1, 1, 99};

TEST(Pooling, MeanCountsEveryToken) {
  std::vector<float> out(2);
  pool_tokens(kHidden.data(), 3, 2, 3, PoolingModes{}, out.data());
  EXPECT_FLOAT_EQ(out[0], 1.0f);
  EXPECT_FLOAT_EQ(out[1], 1.0f);
}

TEST(Pooling, ModesConcatenateInSentenceTransformersOrder) {
  PoolingModes m;
  m.cls = m.max = m.mean = m.mean_sqrt_len = true;
  EXPECT_EQ(m.count(), 4);
  EXPECT_EQ(std::string(m.describe()), "cls+max+mean+mean_sqrt_len");
  std::vector<float> out(8);
  pool_tokens(kHidden.data(), 3, 2, 3, m, out.data());
  const float s3 = static_cast<float>(3.0 / std::sqrt(3.0));
  EXPECT_EQ(out, (std::vector<float>{1, -2, 3, 4, 1, 1, s3, s3}));
}

TEST(Pooling, OneTokenIsItself) {
  PoolingModes m;
  m.mean = false;
  m.max = true;
  std::vector<float> out(2);
  pool_tokens(kHidden.data(), 1, 2, 3, m, out.data());
  EXPECT_EQ(out, (std::vector<float>{1, -2}));
}

TEST(Pooling, NormalizeGivesUnitLengthAndKeepsZero) {
  std::vector<float> v = {3, 4};
  l2_normalize(v.data(), 2);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
  std::vector<float> z = {0, 0, 0};
  l2_normalize(z.data(), 3);
  EXPECT_EQ(z, (std::vector<float>{0, 0, 0}));
}

}  // namespace
}  // namespace lowbit
