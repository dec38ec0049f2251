// Properties of the scalar model that hold for every format: exhaustive
// decode/encode round trips, agreement of the arithmetic models with a
// brute-force table oracle, and the defining properties of each rounding mode.
#include "lowbit/format/codec.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "lowbit/format/registry.h"

namespace lowbit {
namespace {

constexpr Rounding kDeterministic[] = {Rounding::kNearestEven, Rounding::kNearestAway,
                                       Rounding::kTowardZero,  Rounding::kUp,
                                       Rounding::kDown,        Rounding::kOdd};

std::vector<Format> formats_under_test() {
  std::vector<Format> v;
  for (const Format& f : preset_formats()) {
    if (f.bits <= 16) v.push_back(f);
  }
  for (const char* s : {"fp:e2m5:specials=finite", "fp:e3m2:bias=5", "fp:e5m0:specials=ieee",
                        "fp:e4m3:specials=fnuz", "int:8:narrow", "int:5:unsigned", "posit:12:1",
                        "codebook:-3,-1,0.5,2,7", "codebook:0.25,-2,1,-0.5"}) {
    v.push_back(parse_format(s));
  }
  return v;
}

// Inputs that exercise every format: values near each representable value,
// midpoints, random magnitudes across the whole float32 range, specials.
std::vector<double> probe_inputs(const Codec& c, size_t random_count, uint32_t seed) {
  std::vector<double> x;
  std::vector<double> vals;
  const uint32_t n = c.format().bits <= 16 ? c.format().num_codes() : 0;
  for (uint32_t code = 0; code < n; ++code) {
    const double v = c.decode(code);
    if (std::isfinite(v)) vals.push_back(v);
  }
  std::sort(vals.begin(), vals.end());
  for (size_t i = 0; i < vals.size(); ++i) {
    x.push_back(vals[i]);
    x.push_back(std::nextafter(static_cast<float>(vals[i]), INFINITY));
    x.push_back(std::nextafter(static_cast<float>(vals[i]), -INFINITY));
    if (i + 1 < vals.size()) {
      const double m = 0.5 * (vals[i] + vals[i + 1]);
      x.push_back(m);
      x.push_back(0.25 * vals[i] + 0.75 * vals[i + 1]);
    }
  }
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> u(-1, 1);
  for (size_t i = 0; i < random_count; ++i) {
    const double mag = std::ldexp(1.0, static_cast<int>(std::floor(u(rng) * 40)));
    x.push_back(static_cast<float>(u(rng) * mag * c.max_finite() / 64));
  }
  x.push_back(0.0);
  x.push_back(-0.0);
  x.push_back(c.max_finite() * 1.01);
  x.push_back(-c.max_finite() * 1.01);
  x.push_back(c.max_finite() * 4);
  x.push_back(-c.max_finite() * 4);
  return x;
}

}  // namespace
// Test names print the format's name, not its bytes.
void PrintTo(const Format& f, std::ostream* os) { *os << f.name; }
namespace {

class EveryFormat : public ::testing::TestWithParam<Format> {};

TEST_P(EveryFormat, DecodeThenEncodeIsIdentityForEveryCode) {
  const Codec c(GetParam());
  for (uint32_t code = 0; code < c.format().num_codes(); ++code) {
    const double v = c.decode(code);
    if (std::isnan(v)) continue;
    for (Rounding r : kDeterministic) {
      for (Overflow ov : {Overflow::kSaturate, Overflow::kIeee}) {
        RoundOptions opt{r, ov};
        ASSERT_EQ(c.encode(v, opt), code) << c.format().name << " code " << code << " value " << v
                                          << " " << rounding_name(r);
      }
    }
    RoundOptions sr{Rounding::kStochastic};
    ASSERT_EQ(c.encode(v, sr, code), code);
  }
}

TEST_P(EveryFormat, ArithmeticModelAgreesWithTableOracle) {
  const Codec c(GetParam());
  if (c.table()) GTEST_SKIP() << "this format already rounds by table";
  if (c.format().bits > 16) GTEST_SKIP();
  const ValueTable oracle(c.format().num_codes(), [&](uint32_t code) { return c.decode(code); });
  for (double x : probe_inputs(c, 20000, 7)) {
    if (!std::isfinite(x) || x > c.max_finite() || x < c.lowest_finite()) continue;
    if (!c.format().is_signed && x < 0) continue;
    const Bracket got = c.bracket(x);
    const Bracket want = oracle.bracket(x);
    ASSERT_EQ(got.lo, want.lo) << c.format().name << " x=" << x;
    ASSERT_EQ(got.hi, want.hi) << c.format().name << " x=" << x;
    // (Zero's code depends on the sign of x; the oracle always has +0.)
    if (got.lo != 0) {
      ASSERT_EQ(got.lo_code, want.lo_code) << c.format().name << " x=" << x;
    }
    if (got.hi != 0) {
      ASSERT_EQ(got.hi_code, want.hi_code) << c.format().name << " x=" << x;
    }
  }
}

TEST_P(EveryFormat, RoundingModesHaveTheirDefiningProperties) {
  const Codec c(GetParam());
  auto x = probe_inputs(c, 5000, 11);
  std::sort(x.begin(), x.end());
  for (Overflow ov : {Overflow::kSaturate, Overflow::kIeee}) {
    std::vector<double> prev(kNumRoundings, -INFINITY);
    for (double v : x) {
      const RoundOptions dn{Rounding::kDown, ov}, up{Rounding::kUp, ov};
      const double lo = c.fakequant(v, dn), hi = c.fakequant(v, up);
      const bool in_range = v <= c.max_finite() && v >= c.lowest_finite();
      if (in_range && !(c.format().family == Family::kPosit && std::fabs(v) < c.decode(1))) {
        ASSERT_LE(lo, v) << c.format().name;
        ASSERT_GE(hi, v) << c.format().name;
      }
      for (Rounding r : kDeterministic) {
        const RoundOptions opt{r, ov};
        const uint32_t code = c.encode(v, opt);
        const double q = c.decode(code);
        if (std::isnan(q)) continue;
        // Monotonic in the value.
        ASSERT_GE(q, prev[static_cast<int>(r)]) << c.format().name << " " << rounding_name(r) << " x=" << v;
        prev[static_cast<int>(r)] = q;
        // Idempotent.
        ASSERT_EQ(c.encode(q, opt), code) << c.format().name << " " << rounding_name(r);
        if (!in_range || !std::isfinite(lo) || !std::isfinite(hi)) continue;
        if (r == Rounding::kNearestEven || r == Rounding::kNearestAway) {
          // Picks one of the two neighbours, and the nearer one (posits
          // measure "nearer" on the bit string, so only the pick is checked).
          ASSERT_TRUE(q == lo || q == hi) << c.format().name;
          if (c.format().family != Family::kPosit) {
            ASSERT_LE(std::fabs(q - v), std::fabs((q == lo ? hi : lo) - v)) << c.format().name << " x=" << v;
          }
        }
        if (r == Rounding::kOdd && lo != hi && q != v) {
          ASSERT_TRUE(q == lo || q == hi);
          const uint32_t other = c.encode(q == lo ? hi : lo, opt);
          if ((code & 1u) == (other & 1u)) continue;  // unsorted codebooks only
          ASSERT_EQ(code & 1u, 1u) << c.format().name << " x=" << v;
        }
      }
    }
  }
}

TEST_P(EveryFormat, StochasticRoundingIsUnbiased) {
  const Codec c(GetParam());
  std::vector<double> probes;
  // A few inexact in-range values between neighbours.
  for (double v : probe_inputs(c, 200, 3)) {
    const Bracket b = c.bracket(std::clamp(v, c.lowest_finite(), c.max_finite()));
    if (!b.exact() && b.hi - b.lo > 0 && probes.size() < 3) probes.push_back(b.lo + 0.3 * (b.hi - b.lo));
  }
  for (double x : probes) {
    const Bracket b = c.bracket(x);
    constexpr int kDraws = 100000;
    double sum = 0;
    for (int i = 0; i < kDraws; ++i) {
      sum += c.fakequant(x, {Rounding::kStochastic, Overflow::kSaturate, 32, 42}, i);
    }
    const double p = (x - b.lo) / (b.hi - b.lo);
    const double sigma = (b.hi - b.lo) * std::sqrt(p * (1 - p) / kDraws);
    EXPECT_NEAR(sum / kDraws, x, 4 * sigma) << c.format().name << " x=" << x;
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, EveryFormat, ::testing::ValuesIn(formats_under_test()),
                         [](const auto& info) {
                           std::string n = info.param.name;
                           for (char& ch : n) {
                             if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
                           }
                           return n + "_" + std::to_string(info.index);
                         });

// ---------------------------------------------------------------- specifics

double fq(const char* fmt, double x, Rounding r = Rounding::kNearestEven,
          Overflow ov = Overflow::kSaturate) {
  return Codec(parse_format(fmt)).fakequant(x, {r, ov});
}

TEST(Tapered, PositRanges) {
  EXPECT_EQ(parse_format("posit8_0").max_finite(), 64.0);
  EXPECT_EQ(parse_format("posit8_0").min_subnormal(), std::ldexp(1.0, -6));
  EXPECT_EQ(parse_format("posit16_1").max_finite(), std::ldexp(1.0, 28));
  EXPECT_EQ(parse_format("posit8_2").max_finite(), std::ldexp(1.0, 24));
}

TEST(Tapered, PositTiesFollowTheBitString) {
  // posit8_2: 0x7E = 2^20 and 0x7F = 2^24 (maxpos); the 9-bit posit between
  // them is 2^22, not the arithmetic mean.
  const Codec c(parse_format("posit8_2"));
  ASSERT_EQ(c.decode(0x7E), std::ldexp(1.0, 20));
  ASSERT_EQ(c.decode(0x7F), std::ldexp(1.0, 24));
  EXPECT_EQ(c.encode(std::ldexp(1.0, 22) * 1.01, {}), 0x7Fu);
  EXPECT_EQ(c.encode(std::ldexp(1.0, 22) * 0.99, {}), 0x7Eu);
  EXPECT_EQ(c.encode(std::ldexp(1.0, 22), {}), 0x7Eu);  // tie: even code
  // Never NaR on overflow, never 0 on underflow, in every mode.
  for (Rounding r : kDeterministic) {
    EXPECT_EQ(c.encode(1e30, {r, Overflow::kIeee}), 0x7Fu);
    EXPECT_EQ(c.encode(1e-30, {r, Overflow::kIeee}), 0x01u);
    EXPECT_EQ(c.encode(-1e-30, {r, Overflow::kIeee}), 0xFFu);
  }
  EXPECT_EQ(c.encode(NAN, {}), 0x80u);
  EXPECT_EQ(c.encode(INFINITY, {}), 0x80u);
}

TEST(Tapered, HiFloat8Values) {
  const Codec c(parse_format("hifloat8"));
  int positive_finite = 0;
  for (uint32_t code = 0; code < 256; ++code) {
    const double v = c.decode(code);
    if (std::isfinite(v) && v > 0) ++positive_finite;
  }
  EXPECT_EQ(positive_finite, 126);
  EXPECT_EQ(c.max_finite(), 32768.0);
  EXPECT_EQ(c.format().min_subnormal(), std::ldexp(1.0, -22));
  EXPECT_EQ(c.format().min_normal(), std::ldexp(1.0, -15));
  EXPECT_EQ(c.decode(0x08), 1.0);
  EXPECT_EQ(c.decode(0x18), 0.5);
  EXPECT_EQ(c.decode(0x7E), std::ldexp(1.0, -15));
  EXPECT_TRUE(std::isinf(c.decode(0x6F)));
  EXPECT_TRUE(std::isnan(c.decode(0x80)));
  // 40960 ties between max (0x6E, even) and inf: rne keeps max, rna overflows.
  EXPECT_EQ(c.encode(40960, {Rounding::kNearestEven, Overflow::kIeee}), 0x6Eu);
  EXPECT_EQ(c.encode(40960, {Rounding::kNearestAway, Overflow::kIeee}), 0x6Fu);
  EXPECT_EQ(c.encode(40960, {Rounding::kNearestAway, Overflow::kSaturate}), 0x6Eu);
  EXPECT_EQ(c.encode(-0.0, {}), 0x00u);  // one zero
}

TEST(ScaleFormats, E8M0RoundsAsSpecified) {
  const Codec c(parse_format("e8m0"));
  const RoundOptions rne{}, up{Rounding::kUp}, dn{Rounding::kDown};
  EXPECT_EQ(c.decode(127), 1.0);
  EXPECT_EQ(c.decode(0), std::ldexp(1.0, -127));
  EXPECT_TRUE(std::isnan(c.decode(255)));
  // 1.5 ties between 1 (code 127, odd) and 2 (128, even): ties to even.
  // ml_dtypes always rounds this tie up; 3 = 1.5 * 2 shows the difference.
  EXPECT_EQ(c.encode(1.5, rne), 128u);
  EXPECT_EQ(c.encode(3.0, rne), 128u);
  EXPECT_EQ(c.encode(3.0, up), 129u);
  EXPECT_EQ(c.encode(3.0, dn), 128u);
  EXPECT_EQ(c.encode(0.0, rne), 0u);
  EXPECT_EQ(c.encode(std::ldexp(1.0, -130), up), 0u);
  // float32 subnormals between 2^-127 and 2^-126 round correctly.
  EXPECT_EQ(c.encode(std::ldexp(1.2, -127), rne), 0u);
  EXPECT_EQ(c.encode(std::ldexp(1.7, -127), rne), 1u);
  EXPECT_EQ(c.encode(-1.0, {Rounding::kNearestEven, Overflow::kIeee}), 255u);
  EXPECT_EQ(c.encode(-1.0, {Rounding::kNearestEven, Overflow::kSaturate}), 0u);
  EXPECT_EQ(c.encode(1e39, {Rounding::kNearestEven, Overflow::kIeee}), 255u);
  EXPECT_EQ(c.encode(1e39, {Rounding::kNearestEven, Overflow::kSaturate}), 254u);
}

TEST(ScaleFormats, UnsignedE4M3) {
  const Codec c(parse_format("ue4m3"));
  EXPECT_EQ(c.max_finite(), 448.0);
  EXPECT_EQ(c.encode(448, {}), 0x7Eu);
  EXPECT_TRUE(std::isnan(c.decode(0x7F)));
  EXPECT_TRUE(std::isnan(c.decode(0x80)));  // the top bit is unused
  EXPECT_EQ(c.encode(-0.0001, {Rounding::kNearestEven, Overflow::kIeee}), 0u);
  EXPECT_EQ(c.encode(-1, {Rounding::kNearestEven, Overflow::kIeee}), 0x7Fu);
  EXPECT_EQ(c.encode(-1, {Rounding::kTowardZero, Overflow::kIeee}), 0u);
  EXPECT_EQ(c.encode(-1, {Rounding::kNearestEven, Overflow::kSaturate}), 0u);
  EXPECT_EQ(parse_format("ue5m3").max_finite(), 114688.0);
}

TEST(Overflow, DirectedModesFollowIeee) {
  const RoundOptions ieee_rtz{Rounding::kTowardZero, Overflow::kIeee};
  EXPECT_EQ(fq("e5m2", 1e6, Rounding::kTowardZero, Overflow::kIeee), 57344.0);
  EXPECT_TRUE(std::isinf(fq("e5m2", 1e6, Rounding::kUp, Overflow::kIeee)));
  EXPECT_EQ(fq("e5m2", -1e6, Rounding::kUp, Overflow::kIeee), -57344.0);
  EXPECT_TRUE(std::isinf(fq("e5m2", -1e6, Rounding::kDown, Overflow::kIeee)));
  EXPECT_EQ(fq("e5m2", 1e6, Rounding::kOdd, Overflow::kIeee), 57344.0);
  EXPECT_TRUE(std::isnan(fq("e4m3fn", 465, Rounding::kNearestEven, Overflow::kIeee)));
  EXPECT_EQ(fq("e4m3fn", 464, Rounding::kNearestEven, Overflow::kIeee), 448.0);  // tie to even
  EXPECT_EQ(fq("e4m3fn", 1e9), 448.0);
  // 480 is exactly where the next value would be; it is still not a value.
  EXPECT_EQ(fq("e4m3fn", 480, Rounding::kTowardZero, Overflow::kIeee), 448.0);
  EXPECT_TRUE(std::isinf(fq("e5m2", 65536, Rounding::kNearestEven, Overflow::kIeee)));
  EXPECT_EQ(fq("e5m2", 65536, Rounding::kDown, Overflow::kIeee), 57344.0);
  EXPECT_EQ(fq("e2m1", 100, Rounding::kUp, Overflow::kIeee), 6.0);  // no inf, no NaN
  (void)ieee_rtz;
}

TEST(Integers, RangesTiesAndCodes) {
  const Codec i4(parse_format("int4"));
  EXPECT_EQ(i4.encode(-8, {}), 0x8u);
  EXPECT_EQ(i4.encode(-9, {}), 0x8u);
  EXPECT_EQ(i4.encode(2.5, {}), 2u);
  EXPECT_EQ(i4.encode(3.5, {}), 4u);
  EXPECT_EQ(i4.encode(-2.5, {Rounding::kNearestAway}), static_cast<uint32_t>(-3 & 0xF));
  const Codec n8(parse_format("int:8:narrow"));
  EXPECT_EQ(n8.lowest_finite(), -127.0);
  EXPECT_TRUE(std::isnan(n8.decode(0x80)));
  EXPECT_EQ(n8.encode(-1000, {}), 0x81u);
  const Codec t(parse_format("ternary"));
  EXPECT_EQ(t.fakequant(0.5, {}), 0.0);
  EXPECT_EQ(t.fakequant(-0.51, {}), -1.0);
  EXPECT_EQ(t.fakequant(7, {}), 1.0);
  EXPECT_EQ(Codec(parse_format("uint4")).fakequant(-3, {}), 0.0);
}

TEST(Codebooks, TablesAndTies) {
  const Codec nf4(parse_format("nf4"));
  EXPECT_EQ(nf4.encode(0.0, {}), 7u);
  EXPECT_EQ(nf4.encode(NAN, {}), 7u);
  EXPECT_EQ(nf4.encode(5.0, {}), 15u);
  EXPECT_EQ(nf4.fakequant(0.7, {}), static_cast<double>(0.7229568362236023f));
  const Codec iq(parse_format("iq4_nl"));
  EXPECT_EQ(iq.fakequant(-4.5, {}), 1.0);  // tie between -10 (code 7) and 1 (code 8): even code
  EXPECT_EQ(iq.fakequant(-4.5, {Rounding::kNearestAway}), -10.0);
  EXPECT_EQ(iq.fakequant(-4.5, {Rounding::kTowardZero}), 1.0);
  EXPECT_EQ(iq.encode(NAN, {}), 8u);  // smallest magnitude: 1
  const Codec bin(parse_format("binary"));
  EXPECT_EQ(bin.fakequant(0.0, {}), 1.0);
  EXPECT_EQ(bin.fakequant(-0.2, {}), -1.0);
  EXPECT_EQ(bin.encode(3, {}), 0u);
}

TEST(Inputs, Float64IsRoundedOnceNotTwice) {
  // 1 + 2^-4 is the midpoint of 1 and 1.125 in e4m3; the extra 2^-40 puts
  // x above it. Rounding through float32 first would lose 2^-40 and tie to 1.
  const double x = 1.0 + 0.0625 + std::ldexp(1.0, -40);
  EXPECT_EQ(fq("e4m3fn", x), 1.125);
  EXPECT_EQ(fq("e4m3fn", static_cast<float>(x)), 1.0);  // the double-rounded answer
}

}  // namespace
}  // namespace lowbit
