#include "lowbit/model/unicode.h"

#include <gtest/gtest.h>

#include <string>

namespace lowbit::unicode {
namespace {

TEST(Unicode, VersionIsNamed) { EXPECT_STREQ(unicode_version(), "14.0.0"); }

TEST(Unicode, DecodesValidUtf8) {
  const std::string s = "a\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";  // a é € 😀
  size_t pos = 0;
  const char32_t expected[] = {'a', 0xE9, 0x20AC, 0x1F600};
  const uint8_t lengths[] = {1, 2, 3, 4};
  for (int i = 0; i < 4; ++i) {
    const Utf8Unit u = decode_utf8(s, pos);
    EXPECT_TRUE(u.valid);
    EXPECT_EQ(u.code_point, expected[i]);
    EXPECT_EQ(u.length, lengths[i]);
    pos += u.length;
  }
  EXPECT_TRUE(is_valid_utf8(s));
}

TEST(Unicode, EveryInvalidByteIsOneUnit) {
  // Stray continuation, overlong forms, a surrogate, above U+10FFFF, bytes
  // that never occur, and sequences cut short (inside and at the end).
  const std::string cases[] = {"\x80", "\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xED\xA0\x80", "\xF4\x90\x80\x80",
                               "\xF5\x80\x80\x80", "\xFE", "\xFF", "\xE2\x82", "\xE2\x82" "a", "\xF0\x9F\x98"};
  for (const std::string& s : cases) {
    const Utf8Unit u = decode_utf8(s, 0);
    EXPECT_FALSE(u.valid) << s;
    EXPECT_EQ(u.length, 1) << s;
    EXPECT_EQ(u.code_point, kReplacementCharacter);
    EXPECT_FALSE(is_valid_utf8(s));
  }
  // The boundaries just inside the valid ranges.
  EXPECT_TRUE(is_valid_utf8("\xC2\x80\xE0\xA0\x80\xED\x9F\xBF\xEE\x80\x80\xF0\x90\x80\x80\xF4\x8F\xBF\xBF"));
  EXPECT_EQ(replace_invalid_utf8("a\xE2\x82" "b\xFF"), "a\xEF\xBF\xBD\xEF\xBF\xBD" "b\xEF\xBF\xBD");
}

TEST(Unicode, AppendUtf8RoundTripsEveryScalarValue) {
  for (char32_t cp = 0; cp <= kMaxCodePoint; cp += (cp < 0x3000 ? 1 : 97)) {
    if (cp >= 0xD800 && cp <= 0xDFFF) continue;
    std::string s;
    append_utf8(s, cp);
    const Utf8Unit u = decode_utf8(s, 0);
    ASSERT_TRUE(u.valid) << std::hex << static_cast<uint32_t>(cp);
    ASSERT_EQ(u.code_point, cp);
    ASSERT_EQ(u.length, s.size());
  }
  std::string s;
  append_utf8(s, 0xD800);
  EXPECT_EQ(s, "\xEF\xBF\xBD");
}

TEST(Unicode, Categories) {
  EXPECT_EQ(category('A'), Category::Lu);
  EXPECT_EQ(category('z'), Category::Ll);
  EXPECT_EQ(category('7'), Category::Nd);
  EXPECT_EQ(category(0x00B2), Category::No);   // superscript two
  EXPECT_EQ(category(0x2167), Category::Nl);   // Roman numeral eight
  EXPECT_EQ(category(0x4E2D), Category::Lo);   // CJK
  EXPECT_EQ(category(0x0301), Category::Mn);   // combining acute
  EXPECT_EQ(category(0x1F600), Category::So);  // emoji
  EXPECT_EQ(category(0x00AD), Category::Cf);   // soft hyphen
  EXPECT_EQ(category(0xE000), Category::Co);
  EXPECT_EQ(category(0x0378), Category::Cn);   // unassigned
  EXPECT_EQ(category(0x110000), Category::Cn);
  EXPECT_EQ(category('_'), Category::Pc);
  EXPECT_EQ(category('$'), Category::Sc);
  EXPECT_STREQ(category_name(Category::Pd), "Pd");
  EXPECT_TRUE(is_letter(0x01C5));  // Lt
  EXPECT_TRUE(is_number(0x0663));  // Arabic-Indic three
}

TEST(Unicode, WhiteSpaceIsThePropListSet) {
  for (char32_t cp : {0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20, 0x85, 0xA0, 0x1680, 0x2000, 0x200A, 0x2028, 0x2029, 0x202F,
                      0x205F, 0x3000}) {
    EXPECT_TRUE(is_white_space(cp)) << std::hex << static_cast<uint32_t>(cp);
  }
  // Python's str.isspace() says yes to these; White_Space does not.
  for (char32_t cp : {0x1C, 0x1D, 0x1E, 0x1F, 0x180E, 0x200B, 0xFEFF}) EXPECT_FALSE(is_white_space(cp)) << std::hex << static_cast<uint32_t>(cp);
}

TEST(Unicode, LowercaseWithoutContext) {
  std::u32string out;
  for (char32_t cp : {U'A', U'É', U'Σ', U'İ', U'ǅ', U'x', U'中'}) append_lowercase(out, cp);
  EXPECT_EQ(out, std::u32string(U"aéσi\u0307ǆx中"));
}

TEST(Unicode, NfdDecomposesAndReorders) {
  EXPECT_EQ(nfd(U"é"), std::u32string(U"e\u0301"));
  EXPECT_EQ(nfd(U"\u1E69"), std::u32string(U"s\u0323\u0307"));  // full, recursive
  EXPECT_EQ(nfd(U"한"), std::u32string(U"\u1112\u1161\u11AB"));   // Hangul LVT
  EXPECT_EQ(nfd(U"하"), std::u32string(U"\u1112\u1161"));         // Hangul LV
  // Canonical ordering: dot below (220) before acute (230).
  EXPECT_EQ(nfd(U"a\u0301\u0323"), std::u32string(U"a\u0323\u0301"));
  EXPECT_EQ(nfd(U"abc"), std::u32string(U"abc"));
  EXPECT_EQ(combining_class(0x0301), 230);
  EXPECT_EQ(combining_class('a'), 0);
}

}  // namespace
}  // namespace lowbit::unicode
