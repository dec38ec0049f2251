// The packed layouts, byte by byte.
#include "lowbit/format/packing.h"

#include <gtest/gtest.h>

#include <random>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/format/registry.h"

namespace lowbit {
namespace {

TEST(Packing, LayoutsAreLittleEndian) {
  const uint8_t c4[] = {0x1, 0x2, 0x3};
  uint8_t o4[2];
  pack_codes(parse_format("int4"), c4, 3, o4);
  EXPECT_EQ(o4[0], 0x21);  // low nibble first
  EXPECT_EQ(o4[1], 0x03);
  const uint8_t c6[] = {0x3F, 0x00, 0x3F, 0x01};
  uint8_t o6[3];
  pack_codes(parse_format("float6_e2m3fn"), c6, 4, o6);
  EXPECT_EQ(o6[0], 0x3F);  // code0 = bits 0..5
  EXPECT_EQ(o6[1], 0xF0);  // code2 starts at bit 12
  EXPECT_EQ(o6[2], 0x07);  // code2's top two bits, then code3 = 1 at bit 18
  const uint8_t c2[] = {1, 2, 3, 0};
  uint8_t o2[1];
  pack_codes(parse_format("int2"), c2, 4, o2);
  EXPECT_EQ(o2[0], 0x39);
  const uint8_t c1[] = {1, 0, 0, 0, 0, 0, 0, 1};
  uint8_t o1[1];
  pack_codes(parse_format("binary"), c1, 8, o1);
  EXPECT_EQ(o1[0], 0x81);
  // Ternary: codes are two's complement (-1 = 3); digits are value + 1.
  const uint8_t ct[] = {3, 0, 1, 1, 3};  // -1, 0, 1, 1, -1 -> digits 0,1,2,2,0
  uint8_t ot[1];
  pack_codes(parse_format("ternary"), ct, 5, ot);
  EXPECT_EQ(ot[0], 0 + 1 * 3 + 2 * 9 + 2 * 27 + 0 * 81);
  uint8_t bad = 250;
  uint8_t back[5];
  EXPECT_THROW(unpack_codes(parse_format("ternary"), &bad, 5, back), Error);
}

TEST(Packing, UnpackInvertsPackForEveryWidth) {
  std::mt19937 rng(9);
  for (const char* name : {"binary", "int2", "int3", "int4", "int5", "float6_e2m3fn", "int7", "ternary"}) {
    const Format f = parse_format(name);
    ASSERT_TRUE(has_packed_layout(f));
    for (uint64_t n : {1, 2, 3, 5, 7, 8, 9, 40, 41, 1000}) {
      std::vector<uint8_t> codes(n);
      for (auto& c : codes) {
        c = static_cast<uint8_t>(rng() & ((1u << f.bits) - 1));
        if (f.ternary && c == 2) c = 0;  // not a ternary code
      }
      std::vector<uint8_t> packed(packed_bytes(f, n)), back(n);
      pack_codes(f, codes.data(), n, packed.data());
      unpack_codes(f, packed.data(), n, back.data());
      EXPECT_EQ(back, codes) << name << " n=" << n;
      if (!f.ternary) {
        EXPECT_EQ(packed.size(), (n * f.bits + 7) / 8) << name;
      }
    }
  }
  EXPECT_EQ(pack_group(parse_format("int4")), 2);
  EXPECT_EQ(pack_group(parse_format("float6_e2m3fn")), 4);
  EXPECT_EQ(pack_group(parse_format("int3")), 8);
  EXPECT_EQ(pack_group(parse_format("ternary")), 5);
}

}  // namespace
}  // namespace lowbit
