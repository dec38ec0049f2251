// Bit-exact conformance with ml_dtypes' casts (../shared/conformance): every
// covered format, both overflow policies, one million inputs each. The only
// deliberate difference (NaN into formats without NaN) is pinned below.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "lowbit/format/codec.h"
#include "lowbit/format/registry.h"

namespace lowbit {
namespace {

const std::string kDir = std::string(LOWBIT_SHARED_DIR) + "/conformance/ml_dtypes/";

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::vector<float> inputs() {
  const auto raw = read_bytes(kDir + "inputs.f32.bin");
  std::vector<float> x(raw.size() / 4);
  std::memcpy(x.data(), raw.data(), raw.size());
  return x;
}

std::vector<uint32_t> expected_codes(const std::string& file, int width) {
  const auto raw = read_bytes(kDir + file);
  std::vector<uint32_t> c(raw.size() / width);
  for (size_t i = 0; i < c.size(); ++i) {
    c[i] = width == 1 ? raw[i] : (raw[2 * i] | (raw[2 * i + 1] << 8));
  }
  return c;
}

struct Case {
  const char* ml_name;  // file prefix
  const char* our_name;
  int width;
  bool has_sat_file;
};

const Case kCases[] = {
    {"float8_e3m4", "float8_e3m4", 1, true},
    {"float8_e4m3", "float8_e4m3", 1, true},
    {"float8_e4m3fn", "float8_e4m3fn", 1, true},
    {"float8_e4m3fnuz", "float8_e4m3fnuz", 1, true},
    {"float8_e4m3b11fnuz", "float8_e4m3b11fnuz", 1, true},
    {"float8_e5m2", "float8_e5m2", 1, true},
    {"float8_e5m2fnuz", "float8_e5m2fnuz", 1, true},
    {"float6_e2m3fn", "float6_e2m3fn", 1, false},
    {"float6_e3m2fn", "float6_e3m2fn", 1, false},
    {"float4_e2m1fn", "float4_e2m1fn", 1, false},
    {"bfloat16", "bfloat16", 2, false},
    {"float16_eigen", "float16", 2, false},
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.our_name; }

class Conformance : public ::testing::TestWithParam<Case> {};

void check(const Case& c, Overflow ov, const std::string& file, bool derive_saturate = false) {
  const auto x = inputs();
  ASSERT_EQ(x.size(), 1000000u) << "conformance inputs missing at " << kDir;
  auto want = expected_codes(file, c.width);
  ASSERT_EQ(want.size(), x.size()) << file;
  const Codec codec(parse_format(c.our_name));
  if (derive_saturate) {
    // No saturating file for bf16/fp16: derive it from the default cast by
    // the definition the other .sat files follow (finite inputs that became
    // inf clamp to +-max; infinite inputs stay inf).
    for (size_t i = 0; i < x.size(); ++i) {
      if (std::isfinite(x[i]) && std::isinf(codec.decode(want[i]))) {
        want[i] = x[i] > 0 ? codec.max_code() : codec.lowest_code();
      }
    }
  }
  RoundOptions opt;
  opt.overflow = ov;
  const bool no_nan = !codec.format().has_nan();
  size_t mismatches = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    const uint32_t got = codec.encode(x[i], opt, i);
    if (std::isnan(x[i]) && no_nan) {
      // Deliberate difference: lowbit maps every NaN to +0 in formats
      // without NaN; ml_dtypes gives a signed zero.
      EXPECT_EQ(got, 0u);
      EXPECT_EQ(codec.decode(want[i]), 0.0) << "ml_dtypes gave a nonzero code for NaN";
      continue;
    }
    if (got != want[i] && ++mismatches <= 10) {
      ADD_FAILURE() << c.our_name << " " << overflow_name(ov) << " input[" << i
                    << "]=" << std::hexfloat << x[i] << std::defaultfloat << " got 0x" << std::hex
                    << got << " want 0x" << want[i];
    }
  }
  EXPECT_EQ(mismatches, 0u);
}

TEST_P(Conformance, IeeeOverflowMatchesDefaultCast) {
  const Case& c = GetParam();
  // fp6/fp4 have neither inf nor NaN, so ml_dtypes' default cast saturates.
  check(c, Overflow::kIeee, std::string(c.ml_name) + (c.width == 1 ? ".rne.u8.bin" : ".rne.u16.bin"));
}

TEST_P(Conformance, SaturateMatchesSaturatingCast) {
  const Case& c = GetParam();
  if (c.width == 2) {
    check(c, Overflow::kSaturate, std::string(c.ml_name) + ".rne.u16.bin", /*derive_saturate=*/true);
    return;
  }
  check(c, Overflow::kSaturate, std::string(c.ml_name) + (c.has_sat_file ? ".sat.u8.bin" : ".rne.u8.bin"));
}

TEST_P(Conformance, DecodeMatchesTable) {
  const Case& c = GetParam();
  std::ifstream in(kDir + "tables/" + c.ml_name + ".csv");
  ASSERT_TRUE(in) << c.ml_name;
  const Codec codec(parse_format(c.our_name));
  std::string line;
  std::getline(in, line);  // header
  int rows = 0;
  while (std::getline(in, line)) {
    // code,hex,binary,value,hexfloat,class
    std::vector<std::string> f;
    size_t s = 0;
    for (size_t p; (p = line.find(',', s)) != std::string::npos; s = p + 1) f.push_back(line.substr(s, p - s));
    f.push_back(line.substr(s));
    ASSERT_GE(f.size(), 6u);
    const uint32_t code = static_cast<uint32_t>(std::stoul(f[0]));
    const double got = codec.decode(code);
    const std::string& cls = f[5];
    if (cls == "nan") {
      EXPECT_TRUE(std::isnan(got)) << code;
      EXPECT_EQ(std::signbit(got), f[3][0] == '-') << "NaN sign of code " << code;
    } else {
      const double want = std::strtod(f[4].c_str(), nullptr);
      EXPECT_EQ(got, want) << c.our_name << " code " << code;
      EXPECT_EQ(std::signbit(got), std::signbit(want)) << c.our_name << " code " << code;
    }
    ++rows;
  }
  EXPECT_EQ(rows, 1 << (c.width == 1 ? codec.format().bits : 16));
}

INSTANTIATE_TEST_SUITE_P(MlDtypes, Conformance, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.ml_name); });

TEST(ConformancePinned, NanIntoFp4IsPositiveZeroUnlikeMlDtypes) {
  // ml_dtypes casts +NaN to float4_e2m1fn as 0x8 (-0); lowbit gives +0.
  const Codec codec(parse_format("float4_e2m1fn"));
  EXPECT_EQ(codec.encode(std::nan(""), {}), 0u);
  EXPECT_EQ(codec.encode(-std::nan(""), {}), 0u);
  const auto want = expected_codes("float4_e2m1fn.rne.u8.bin", 1);
  const auto x = inputs();
  // Without the reference files, a failure that says so, not a read past
  // an empty vector.
  ASSERT_GT(x.size(), 4u) << "conformance inputs missing at " << kDir;
  ASSERT_GT(want.size(), 4u) << "conformance codes missing at " << kDir;
  ASSERT_TRUE(std::isnan(x[4]) && !std::signbit(x[4]));
  EXPECT_EQ(want[4], 0x8u) << "the reference changed: update docs/formats.md";
}

}  // namespace
}  // namespace lowbit
