#include "lowbit/core/checked_math.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

namespace lowbit {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

TEST(CheckedMathTest, MulInRange) {
  uint64_t out = 0;
  EXPECT_TRUE(checked_mul(0, kMax, &out));
  EXPECT_EQ(out, 0u);
  EXPECT_TRUE(checked_mul(1, kMax, &out));
  EXPECT_EQ(out, kMax);
  EXPECT_TRUE(checked_mul(uint64_t{1} << 32, (uint64_t{1} << 32) - 1, &out));
  EXPECT_EQ(out, (uint64_t{1} << 63) * 2 - (uint64_t{1} << 32));
}

TEST(CheckedMathTest, MulOverflow) {
  uint64_t out = 0;
  EXPECT_FALSE(checked_mul(uint64_t{1} << 32, uint64_t{1} << 32, &out));
  EXPECT_FALSE(checked_mul(kMax, 2, &out));
  EXPECT_FALSE(checked_mul(uint64_t{1} << 40, uint64_t{1} << 40, &out));
}

TEST(CheckedMathTest, AddInRangeAndOverflow) {
  uint64_t out = 0;
  EXPECT_TRUE(checked_add(kMax - 1, 1, &out));
  EXPECT_EQ(out, kMax);
  EXPECT_FALSE(checked_add(kMax, 1, &out));
  EXPECT_FALSE(checked_add(kMax / 2 + 1, kMax / 2 + 1, &out));
}

TEST(CheckedMathTest, OrFailReturnsValue) {
  EXPECT_EQ(mul_or_fail(6, 7, "x"), 42u);
  EXPECT_EQ(add_or_fail(40, 2, "x"), 42u);
}

TEST(CheckedMathTest, MulOrFailThrowsInputNamingWhat) {
  try {
    mul_or_fail(uint64_t{1} << 40, uint64_t{1} << 40, "tensor 'w' element count");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    const std::string msg = e.what();
    EXPECT_NE(msg.find("tensor 'w' element count"), std::string::npos) << msg;
    EXPECT_NE(msg.find("1099511627776"), std::string::npos) << msg;
  }
}

TEST(CheckedMathTest, AddOrFailThrowsInputNamingWhat) {
  try {
    add_or_fail(kMax, 1, "data offset");
    FAIL() << "no throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("data offset"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowbit
