#include "lowbit/io/gguf_value.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

// The value types of the GGUF specification (docs/gguf.md in ggml), as
// (id, name, size in bytes; 0 = variable).
struct SpecRow {
  uint32_t id;
  const char* name;
  size_t size;
};
constexpr SpecRow kSpec[] = {
    {0, "UINT8", 1},   {1, "INT8", 1},    {2, "UINT16", 2},  {3, "INT16", 2},  {4, "UINT32", 4},
    {5, "INT32", 4},   {6, "FLOAT32", 4}, {7, "BOOL", 1},    {8, "STRING", 0}, {9, "ARRAY", 0},
    {10, "UINT64", 8}, {11, "INT64", 8},  {12, "FLOAT64", 8},
};

TEST(GgufValueType, IdsNamesAndSizesFollowTheSpec) {
  for (const SpecRow& row : kSpec) {
    const auto type = gguf_type_from_id(row.id);
    ASSERT_TRUE(type.has_value()) << row.id;
    EXPECT_EQ(static_cast<uint32_t>(*type), row.id);
    EXPECT_STREQ(gguf_type_name(*type), row.name);
    EXPECT_EQ(gguf_fixed_size(*type), row.size) << row.name;
  }
  EXPECT_FALSE(gguf_type_from_id(13).has_value());
  EXPECT_FALSE(gguf_type_from_id(0xffffffffu).has_value());
  EXPECT_STREQ(gguf_type_name(static_cast<GgufType>(13)), "?");
}

template <typename T>
void expect_extremes_round_trip() {
  for (T v : {std::numeric_limits<T>::lowest(), T{0}, T{1}, std::numeric_limits<T>::max()}) {
    const GgufValue g = GgufValue::of(v);
    EXPECT_EQ(g.type(), GgufTypeOf<T>::value);
    EXPECT_EQ(g.as<T>(), v);
    EXPECT_FALSE(g.is_array());
  }
}

TEST(GgufValue, ScalarsRoundTripAtTheirExtremes) {
  expect_extremes_round_trip<uint8_t>();
  expect_extremes_round_trip<int8_t>();
  expect_extremes_round_trip<uint16_t>();
  expect_extremes_round_trip<int16_t>();
  expect_extremes_round_trip<uint32_t>();
  expect_extremes_round_trip<int32_t>();
  expect_extremes_round_trip<uint64_t>();
  expect_extremes_round_trip<int64_t>();
  expect_extremes_round_trip<float>();
  expect_extremes_round_trip<double>();
  EXPECT_TRUE(GgufValue::of(true).as<bool>());
  EXPECT_FALSE(GgufValue::of(false).as<bool>());
  EXPECT_EQ(GgufValue::of("llama").as_string(), "llama");
  EXPECT_EQ(GgufValue::of(std::string("a\0b", 3)).as_string().size(), 3u);
}

TEST(GgufValue, BitsAreTheTwosComplementAndIeeeEncodings) {
  EXPECT_EQ(GgufValue::of(int8_t{-1}).bits(), 0xffu);
  EXPECT_EQ(GgufValue::of(int16_t{-2}).bits(), 0xfffeu);
  EXPECT_EQ(GgufValue::of(int64_t{-1}).bits(), UINT64_MAX);
  EXPECT_EQ(GgufValue::of(1.0f).bits(), 0x3f800000u);  // sign 0, exponent 127, mantissa 0
  EXPECT_EQ(GgufValue::of(-2.0).bits(), 0xc000000000000000u);
  EXPECT_EQ(GgufValue::of(true).bits(), 1u);
}

TEST(GgufValue, NanPayloadsSurvive) {
  // A signaling NaN with a payload: as<float>() must not quiet it.
  const GgufValue f = GgufValue::from_bits(GgufType::kFloat32, 0x7f800001u);
  const float x = f.as<float>();
  uint32_t bits;
  std::memcpy(&bits, &x, 4);
  EXPECT_EQ(bits, 0x7f800001u);
  EXPECT_TRUE(std::isnan(x));
  EXPECT_EQ(GgufValue::from_bits(GgufType::kFloat64, 0xfff0000000000123u).bits(), 0xfff0000000000123u);
}

TEST(GgufValue, FromBitsChecksItsArguments) {
  for (GgufType t : {GgufType::kString, GgufType::kArray, static_cast<GgufType>(99)}) {
    EXPECT_EQ(catch_error([&] { GgufValue::from_bits(t, 0); }).kind(), ErrorKind::kUsage);
  }
  EXPECT_EQ(catch_error([] { GgufValue::from_bits(GgufType::kUint8, 256); }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(catch_error([] { GgufValue::from_bits(GgufType::kBool, 2); }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(GgufValue::from_bits(GgufType::kUint32, 0xffffffffu).as<uint32_t>(), 0xffffffffu);
}

TEST(GgufValue, TypeMismatchesNameBothTypes) {
  const GgufValue u32 = GgufValue::of(uint32_t{32});
  Error e = catch_error([&] { u32.as<int32_t>("metadata key 'x'"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_STREQ(e.what(), "metadata key 'x' is UINT32, not INT32");
  e = catch_error([&] { u32.as_string(); });
  EXPECT_STREQ(e.what(), "GGUF value is UINT32, not STRING");
  e = catch_error([&] { u32.to_vector<uint32_t>(); });
  EXPECT_STREQ(e.what(), "GGUF value is UINT32, not ARRAY of UINT32");
  e = catch_error([&] { u32.size(); });
  EXPECT_STREQ(e.what(), "GGUF value is UINT32, not an ARRAY");

  const GgufValue floats = GgufValue::array(std::vector<float>{1, 2});
  e = catch_error([&] { floats.to_vector<double>("k"); });
  EXPECT_STREQ(e.what(), "k is ARRAY of FLOAT32, not ARRAY of FLOAT64");
  e = catch_error([&] { floats.strings(); });
  EXPECT_STREQ(e.what(), "GGUF value is ARRAY of FLOAT32, not ARRAY of STRING");
  e = catch_error([&] { floats.bits(); });
  EXPECT_STREQ(e.what(), "GGUF value is ARRAY of FLOAT32, not a fixed-size scalar");
  e = catch_error([&] { GgufValue::array(std::vector<std::string>{"a"}).raw_elements(); });
  EXPECT_STREQ(e.what(), "GGUF value is ARRAY of STRING, not an array of fixed-size elements");
}

TEST(GgufValue, Arrays) {
  const std::vector<int16_t> i16 = {std::numeric_limits<int16_t>::min(), -1, 0, 7};
  const GgufValue a = GgufValue::array(i16);
  EXPECT_TRUE(a.is_array());
  EXPECT_EQ(a.element_type(), GgufType::kInt16);
  EXPECT_EQ(a.size(), 4u);
  EXPECT_EQ(a.to_vector<int16_t>(), i16);
  EXPECT_EQ(a.raw_elements().size(), 8u);
  EXPECT_EQ(a.element_bits(0), 0x8000u);
  EXPECT_EQ(a.element_bits(1), 0xffffu);
  EXPECT_EQ(catch_error([&] { a.element_bits(4); }).kind(), ErrorKind::kUsage);

  const std::vector<bool> flags = {true, false, true};
  const GgufValue b = GgufValue::array(flags);
  EXPECT_EQ(b.element_type(), GgufType::kBool);
  EXPECT_EQ(b.to_vector<bool>(), flags);
  EXPECT_EQ(b.raw_elements()[0], std::byte{1});

  const GgufValue s = GgufValue::array(std::vector<std::string>{"", "x", std::string(1, '\0')});
  EXPECT_EQ(s.size(), 3u);
  EXPECT_EQ(s.strings()[2], std::string(1, '\0'));

  const GgufValue empty = GgufValue::empty_array(GgufType::kFloat64);
  EXPECT_EQ(empty.size(), 0u);
  EXPECT_EQ(empty.element_type(), GgufType::kFloat64);
  EXPECT_TRUE(empty.to_vector<double>().empty());
  EXPECT_EQ(GgufValue::empty_array(GgufType::kString).size(), 0u);
  EXPECT_EQ(catch_error([] { GgufValue::empty_array(static_cast<GgufType>(13)); }).kind(), ErrorKind::kUsage);
}

TEST(GgufValue, ArraysOfArraysMayMixElementTypes) {
  const GgufValue nested = GgufValue::array(std::vector<GgufValue>{
      GgufValue::array(std::vector<uint8_t>{1, 2}), GgufValue::array(std::vector<std::string>{"a"}),
      GgufValue::empty_array(GgufType::kArray)});
  EXPECT_EQ(nested.element_type(), GgufType::kArray);
  ASSERT_EQ(nested.size(), 3u);
  EXPECT_EQ(nested.arrays()[0].to_vector<uint8_t>(), (std::vector<uint8_t>{1, 2}));
  EXPECT_EQ(nested.arrays()[1].strings(), std::vector<std::string>{"a"});
  EXPECT_EQ(nested.arrays()[2].element_type(), GgufType::kArray);
  const Error e = catch_error([] { GgufValue::array(std::vector<GgufValue>{GgufValue::of(uint8_t{1})}); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(e.what()).find("element 0 of an array of arrays is a UINT8"), std::string::npos);
}

TEST(GgufValue, ArrayFromRawChecksItsBytes) {
  const std::vector<std::byte> three(3);
  EXPECT_EQ(catch_error([&] { GgufValue::array_from_raw(GgufType::kUint16, three); }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(catch_error([&] { GgufValue::array_from_raw(GgufType::kString, three); }).kind(), ErrorKind::kUsage);
  const Error e = catch_error([] {
    GgufValue::array_from_raw(GgufType::kBool, {std::byte{0}, std::byte{1}, std::byte{2}});
  });
  EXPECT_NE(std::string(e.what()).find("BOOL element 2 is 2, not 0 or 1"), std::string::npos);
  const GgufValue u16 = GgufValue::array_from_raw(GgufType::kUint16, {std::byte{0x34}, std::byte{0x12}});
  EXPECT_EQ(u16.to_vector<uint16_t>(), std::vector<uint16_t>{0x1234});  // little-endian
}

TEST(GgufValue, EqualityIsBitwise) {
  const GgufValue nan = GgufValue::from_bits(GgufType::kFloat32, 0x7fc00001u);
  EXPECT_EQ(nan, nan);
  EXPECT_NE(nan, GgufValue::from_bits(GgufType::kFloat32, 0x7fc00002u));
  EXPECT_NE(GgufValue::of(0.0f), GgufValue::of(-0.0f));
  EXPECT_NE(GgufValue::of(uint32_t{1}), GgufValue::of(int32_t{1}));
  EXPECT_NE(GgufValue::empty_array(GgufType::kUint8), GgufValue::empty_array(GgufType::kInt8));
  EXPECT_EQ(GgufValue::array(std::vector<std::string>{"a"}), GgufValue::array(std::vector<std::string>{"a"}));
}

}  // namespace
}  // namespace lowbit
