#include "lowbit/model/byte_level.h"

#include <gtest/gtest.h>

#include <set>
#include <string>

namespace lowbit {
namespace {

TEST(ByteLevel, GptTwosTable) {
  EXPECT_EQ(byte_level_char(' '), U'Ġ');
  EXPECT_EQ(byte_level_char('\n'), U'Ċ');
  EXPECT_EQ(byte_level_char('\t'), U'ĉ');
  EXPECT_EQ(byte_level_char(0), 0x100u);
  EXPECT_EQ(byte_level_char('a'), U'a');
  EXPECT_EQ(byte_level_char(0xAD), 0x143u);  // the last of the 68 remapped bytes
  EXPECT_EQ(byte_level_char(0xFF), 0xFFu);
  std::set<char32_t> seen;
  for (unsigned b = 0; b < 256; ++b) {
    const char32_t c = byte_level_char(static_cast<uint8_t>(b));
    EXPECT_TRUE(seen.insert(c).second);
    EXPECT_EQ(byte_level_byte(c), b);
  }
  EXPECT_FALSE(byte_level_byte(0x144).has_value());
  EXPECT_FALSE(byte_level_byte(U' ').has_value());
}

TEST(ByteLevel, EncodeDecodeEveryByte) {
  std::string all;
  for (unsigned b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  const std::string encoded = byte_level_encode(all);
  std::string back;
  byte_level_decode_append(back, encoded);
  EXPECT_EQ(back, all);
  EXPECT_EQ(byte_level_encode("a b\n"), "aĠbĊ");
  // Characters that stand for no byte pass through.
  back.clear();
  byte_level_decode_append(back, "x€");
  EXPECT_EQ(back, "x€");
}

}  // namespace
}  // namespace lowbit
