#include "lowbit/model/vocabulary.h"

#include <gtest/gtest.h>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

TEST(Vocabulary, LooksUpBothWays) {
  const Vocabulary v({"a", "b", "<s>", "a"}, {1, 1, 3, 1});
  EXPECT_EQ(v.size(), 4);
  EXPECT_EQ(v.piece(1), "b");
  EXPECT_EQ(v.type(2), TokenType::kControl);
  EXPECT_EQ(v.find("b"), 1);
  EXPECT_EQ(v.find("a"), 3);  // the last of two equal pieces, as llama.cpp
  EXPECT_FALSE(v.find("c").has_value());
  EXPECT_EQ(catch_error([&] { v.piece(4); }).kind(), ErrorKind::kInput);
  EXPECT_EQ(catch_error([&] { v.type(-1); }).kind(), ErrorKind::kInput);
}

TEST(Vocabulary, TypesDefaultToNormalAndUnknownValuesToUndefined) {
  const Vocabulary v({"x", "y"}, {});
  EXPECT_EQ(v.type(0), TokenType::kNormal);
  const Vocabulary w({"x", "y"}, {6, 42});
  EXPECT_EQ(w.type(0), TokenType::kByte);
  EXPECT_EQ(w.type(1), TokenType::kUndefined);
  EXPECT_STREQ(token_type_name(TokenType::kUserDefined), "user_defined");
}

TEST(Vocabulary, RefusesMalformedInput) {
  EXPECT_EQ(catch_error([] { Vocabulary({}, {}); }).kind(), ErrorKind::kInput);
  EXPECT_EQ(catch_error([] { Vocabulary({"a"}, {1, 1}); }).kind(), ErrorKind::kInput);
}

TEST(Vocabulary, BytePieces) {
  EXPECT_EQ(byte_piece_name(0x0A), "<0x0A>");
  EXPECT_EQ(byte_piece_value("<0x0A>"), 0x0A);
  EXPECT_EQ(byte_piece_value("<0xff>"), 0xFF);
  EXPECT_FALSE(byte_piece_value("<0xG0>").has_value());
  EXPECT_FALSE(byte_piece_value("<0x0A").has_value());
  EXPECT_FALSE(byte_piece_value("0x0A").has_value());
}

}  // namespace
}  // namespace lowbit
