#include "lowbit/core/error.h"

#include <gtest/gtest.h>

#include <string>

namespace lowbit {
namespace {

TEST(ErrorTest, CarriesKindAndMessage) {
  Error e(ErrorKind::kInput, "bad header in 'x.npy'");
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_STREQ(e.what(), "bad header in 'x.npy'");
}

TEST(ErrorTest, ExitCodeIsTwoOnlyForUsage) {
  EXPECT_EQ(Error(ErrorKind::kUsage, "").exit_code(), 2);
  EXPECT_EQ(Error(ErrorKind::kInput, "").exit_code(), 1);
  EXPECT_EQ(Error(ErrorKind::kIo, "").exit_code(), 1);
  EXPECT_EQ(Error(ErrorKind::kInternal, "").exit_code(), 1);
}

TEST(ErrorTest, IsARuntimeError) {
  try {
    fail_io("disk on fire");
  } catch (const std::runtime_error& e) {
    EXPECT_STREQ(e.what(), "disk on fire");
    return;
  }
  FAIL() << "fail_io did not throw";
}

template <typename Fn>
void expect_throws_kind(Fn fn, ErrorKind kind, const std::string& message) {
  try {
    fn();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind);
    EXPECT_EQ(std::string(e.what()), message);
    return;
  }
  ADD_FAILURE() << "no Error thrown for kind " << error_kind_name(kind);
}

TEST(ErrorTest, HelpersThrowTheirKind) {
  expect_throws_kind([] { fail_usage("u"); }, ErrorKind::kUsage, "u");
  expect_throws_kind([] { fail_input("i"); }, ErrorKind::kInput, "i");
  expect_throws_kind([] { fail_io("o"); }, ErrorKind::kIo, "o");
  expect_throws_kind([] { fail_internal("n"); }, ErrorKind::kInternal, "n");
}

TEST(ErrorTest, KindNames) {
  EXPECT_STREQ(error_kind_name(ErrorKind::kUsage), "usage");
  EXPECT_STREQ(error_kind_name(ErrorKind::kInput), "input");
  EXPECT_STREQ(error_kind_name(ErrorKind::kIo), "io");
  EXPECT_STREQ(error_kind_name(ErrorKind::kInternal), "internal");
}

}  // namespace
}  // namespace lowbit
