// The registry of named formats and the spec-string parser.
#include "lowbit/format/registry.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <set>

#include "lowbit/core/error.h"

namespace lowbit {
namespace {

ErrorKind kind_of_failure(const std::string& spec, std::string* message = nullptr) {
  try {
    parse_format(spec);
  } catch (const Error& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "'" << spec << "' parsed";
  return ErrorKind::kInternal;
}

TEST(Registry, EveryPresetParsesByNameAndAliasAndNamesAreUnique) {
  std::set<std::string> seen;
  for (const Format& f : preset_formats()) {
    EXPECT_TRUE(seen.insert(f.name).second) << f.name;
    EXPECT_EQ(parse_format(f.name).key(), f.key());
    for (const auto& a : f.aliases) {
      EXPECT_TRUE(seen.insert(a).second) << a;
      EXPECT_EQ(parse_format(a).name, f.name);
    }
  }
  for (const char* required : {"float8_e4m3fn", "e4m3fn", "float8_e5m2", "e5m2", "float8_e4m3fnuz", "float8_e5m2fnuz",
                               "float8_e4m3b11fnuz", "float8_e3m4", "float8_e4m3", "float6_e2m3fn", "float6_e3m2fn",
                               "float4_e2m1fn", "e2m1", "float16", "fp16", "bfloat16", "bf16", "tfloat32", "float32",
                               "float8_e8m0fnu", "ue4m3", "ue5m3", "int2", "int16", "uint2", "uint16", "ternary",
                               "binary", "nf4", "iq4_nl", "hifloat8", "posit8_0", "posit8_1", "posit8_2", "posit16_1",
                               "posit16_2"}) {
    EXPECT_TRUE(seen.count(required)) << required;
  }
}

TEST(Registry, ParametricFloats) {
  const Format a = parse_format("fp:e2m5:specials=finite");
  EXPECT_EQ(a.bits, 8);
  EXPECT_EQ(a.bias, 1);  // default 2^(e-1) - 1
  EXPECT_EQ(a.specials, Specials::kFinite);
  const Format b = parse_format("fp:e3m2:bias=5");
  EXPECT_EQ(b.bias, 5);
  EXPECT_EQ(b.specials, Specials::kIeee);  // default
  EXPECT_EQ(b.bits, 6);
  // fp:e4m3:bias=7:specials=fn is float8_e4m3fn in everything but name.
  const Format c = parse_format("fp:e4m3:bias=7:specials=fn");
  EXPECT_EQ(c.max_finite(), 448.0);
}

TEST(Registry, ParametricIntegersPositsCodebooks) {
  EXPECT_EQ(parse_format("int:8:narrow").lowest_finite(), -127.0);
  EXPECT_EQ(parse_format("int:3:unsigned").max_finite(), 7.0);
  EXPECT_EQ(parse_format("posit:12:1").bits, 12);
  const Format cb = parse_format("codebook:-1,-0.5,0,0.5,1");
  EXPECT_EQ(cb.bits, 3);
  EXPECT_EQ(cb.table->size(), 5u);
  // From a file: commas or whitespace.
  const std::string path = ::testing::TempDir() + "lowbit_codebook.txt";
  std::ofstream(path) << "-2 -1\n0, 1\n2\n";
  const Format fc = parse_format("codebook:@" + path);
  EXPECT_EQ(fc.table->size(), 5u);
  EXPECT_EQ(fc.max_finite(), 2.0);
  std::remove(path.c_str());
  // 256 values fit 8 bits.
  std::string many = "codebook:";
  for (int i = 0; i < 256; ++i) {
    if (i) many += ",";
    many += std::to_string(i);
  }
  EXPECT_EQ(parse_format(many).bits, 8);
}

TEST(Registry, MalformedSpecsAreUsageErrorsThatListTheForms) {
  std::string msg;
  EXPECT_EQ(kind_of_failure("float9_e9m9", &msg), ErrorKind::kUsage);
  EXPECT_NE(msg.find("fp:eXmY"), std::string::npos) << msg;
  EXPECT_NE(msg.find("int:B"), std::string::npos) << msg;
  EXPECT_NE(msg.find("posit:N:ES"), std::string::npos) << msg;
  EXPECT_NE(msg.find("codebook:"), std::string::npos) << msg;
  for (const char* bad : {"", "fp:", "fp:e4", "fp:x4m3", "fp:e0m3", "fp:e9m3", "fp:e4m24", "fp:e4m3:bias=x",
                          "fp:e4m3:specials=odd", "fp:e4m3:wat", "fp:e1m2:specials=ieee", "fp:e8m23:bias=300", "fp:e4m3:bias=43153", "fp:e4m3:bias=-43153",
                          "int:", "int:1", "int:17", "int:4:unsigned:narrow", "int:4:wide", "posit:8", "posit:2:0",
                          "posit:17:1", "posit:16:4", "codebook:", "codebook:1", "codebook:1,1", "codebook:1,nan",
                          "codebook:1,x", "codebook:@/no/such/file"}) {
    EXPECT_EQ(kind_of_failure(bad), ErrorKind::kUsage) << bad;
  }
  std::string too_many = "codebook:";
  for (int i = 0; i < 257; ++i) {
    if (i) too_many += ",";
    too_many += std::to_string(i);
  }
  EXPECT_EQ(kind_of_failure(too_many), ErrorKind::kUsage);
}

}  // namespace
}  // namespace lowbit
