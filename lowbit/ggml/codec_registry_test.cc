#include "lowbit/ggml/codec_registry.h"

#include <gtest/gtest.h>

#include <algorithm>

#include "lowbit/core/test_support.h"
#include "lowbit/ggml/tensor_codec.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

TEST(CodecRegistry, SchemesAndLlamaLayoutsByOneName) {
  const auto mx = parse_codec("mxfp4");
  EXPECT_TRUE(mx->generic());
  EXPECT_EQ(mx->spec(), parse_scheme("mxfp4").spec());
  const auto q8 = parse_codec("q8_0");
  EXPECT_FALSE(q8->generic());
  EXPECT_EQ(q8->spec(), "q8_0");
  EXPECT_EQ(q8.get(), &ggml_tensor_codec(GgmlType::kQ8_0));  // the static codec itself
  EXPECT_EQ(parse_codec("q4_0")->spec(), "q4_0");
  // Round trips, as the fuzzer checks.
  for (const char* s : {"q8_0", "q4_0", "nvfp4", "int4/g128/asym"}) EXPECT_EQ(parse_codec(parse_codec(s)->spec())->spec(), parse_codec(s)->spec());
}

TEST(CodecRegistry, LayoutsTakeNoOptions) {
  for (const char* s : {"q4_0/g64", "q8_0/scale=mse"}) {
    const Error e = catch_error([&] { parse_codec(s); });
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("fixed llama.cpp layout and takes no options"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("invalid scheme '"), std::string::npos) << e.what();
  }
  EXPECT_EQ(catch_error([] { parse_codec("Q8_0"); }).kind(), ErrorKind::kUsage);  // exact names, as before
}

TEST(CodecRegistry, PresetsListSchemesThenLayouts) {
  std::vector<std::string> names;
  for (const SchemePreset& p : codec_presets()) names.push_back(p.name);
  EXPECT_EQ(names.size(), scheme_presets().size() + 2);
  EXPECT_EQ(names[names.size() - 2], "q8_0");
  EXPECT_EQ(names.back(), "q4_0");
}

// The describing schemes: the component sizes and bits of the layouts.
TEST(CodecRegistry, LayoutsDescribeTheirComponents) {
  // Q8_0: 32 int8 codes (-127..127) with an fp16 scale; ggml rounds half
  // away from zero (roundf).
  const Scheme& q8 = ggml_tensor_codec(GgmlType::kQ8_0).scheme();
  EXPECT_EQ(q8.element.bits, 8);
  EXPECT_EQ(q8.element.max_finite(), 127.0);
  EXPECT_EQ(q8.gran.kind, Granularity::Kind::kGroup);
  EXPECT_EQ(q8.gran.group, 32u);
  EXPECT_EQ(q8.scale_format.name, "float16");
  EXPECT_EQ(q8.round.mode, Rounding::kNearestAway);
  // Q4_0: 32 4-bit codes, fp16 scale.
  const Scheme& q4 = ggml_tensor_codec(GgmlType::kQ4_0).scheme();
  EXPECT_EQ(q4.element.bits, 4);
  EXPECT_EQ(q4.gran.group, 32u);
  EXPECT_EQ(q4.scale_format.name, "float16");
  EXPECT_EQ(catch_error([] { ggml_tensor_codec(GgmlType::kQ4_K); }).kind(), ErrorKind::kUsage);
}

}  // namespace
}  // namespace lowbit
