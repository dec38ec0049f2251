// Every SIMD target agrees bit for bit with the scalar model, for every
// format, rounding mode, overflow policy and thread count.
#include "lowbit/kernels/array_ops.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>

#include "lowbit/core/error.h"
#include "lowbit/format/codec.h"
#include "lowbit/format/packing.h"
#include "lowbit/format/registry.h"

namespace lowbit {
namespace {

constexpr Rounding kAllModes[] = {Rounding::kNearestEven, Rounding::kNearestAway, Rounding::kTowardZero,
                                  Rounding::kUp,          Rounding::kDown,        Rounding::kOdd,
                                  Rounding::kStochastic};

std::vector<Format> kernel_formats() {
  std::vector<Format> v;
  for (const Format& f : preset_formats()) {
    // Integers: a few widths stand for all (the code path is one formula).
    if (f.family == Family::kInteger && f.bits != 2 && f.bits != 4 && f.bits != 8 && f.bits != 16 && !f.ternary) {
      continue;
    }
    v.push_back(f);
  }
  for (const char* s : {"fp:e2m5:specials=finite", "fp:e3m2:bias=5", "fp:e5m0:specials=ieee", "int:8:narrow",
                        "int:5:unsigned", "posit:12:1", "codebook:-3,-1,0.5,2,7", "codebook:0.25,-2,1,-0.5",
                        // smallest normal below float32's (found by format_properties_test)
                        "fp:e8m4:bias=128:specials=fn"}) {
    v.push_back(parse_format(s));
  }
  return v;
}

// Inputs: the structured part of the ml_dtypes conformance inputs (every
// value, neighbour and midpoint of every float8/6/4 format, specials,
// subnormals), the values and midpoints of this format, and random floats
// over the whole range.
std::vector<float> inputs_for(const Codec& c) {
  std::vector<float> x;
  std::ifstream in(std::string(LOWBIT_SHARED_DIR) + "/conformance/ml_dtypes/inputs.f32.bin", std::ios::binary);
  std::vector<char> raw((std::istreambuf_iterator<char>(in)), {});
  const size_t structured = std::min<size_t>(raw.size() / 4, 90316);
  x.resize(structured);
  std::memcpy(x.data(), raw.data(), structured * 4);
  const uint32_t codes = c.format().bits <= 16 ? c.format().num_codes() : 0;
  const uint32_t stride = codes > 4096 ? 61 : 1;
  std::vector<double> vals;
  for (uint32_t code = 0; code < codes; code += stride) {
    const double v = c.decode(code);
    if (std::isfinite(v)) vals.push_back(v);
  }
  std::sort(vals.begin(), vals.end());
  for (size_t i = 0; i < vals.size(); ++i) {
    const float v = static_cast<float>(vals[i]);
    x.insert(x.end(), {v, std::nextafter(v, INFINITY), std::nextafter(v, -INFINITY)});
    if (i + 1 < vals.size()) {
      const float m = static_cast<float>(0.5 * (vals[i] + vals[i + 1]));
      x.insert(x.end(), {m, std::nextafter(m, INFINITY), std::nextafter(m, -INFINITY)});
    }
  }
  std::mt19937 rng(1234);
  for (int i = 0; i < 20000; ++i) x.push_back(std::bit_cast<float>(static_cast<uint32_t>(rng())));
  std::normal_distribution<float> nd(0, 1);
  for (int i = 0; i < 20000; ++i) x.push_back(nd(rng) * static_cast<float>(c.max_finite()) / 3);
  return x;
}

}  // namespace
// Test names print the format's name, not its bytes.
void PrintTo(const Format& f, std::ostream* os) { *os << f.name; }
namespace {

class KernelExactness : public ::testing::TestWithParam<Format> {
 protected:
  void TearDown() override { reset_kernel_target(); }
};

TEST_P(KernelExactness, EveryTargetModeAndPolicyMatchesScalarModel) {
  const Codec codec(GetParam());
  const Format& f = codec.format();
  const auto x = inputs_for(codec);
  const size_t n = x.size();
  const int cb = f.code_bytes();
  std::vector<uint32_t> want_code(n);
  std::vector<uint32_t> want_bits(n);
  for (Rounding mode : kAllModes) {
    for (Overflow ov : {Overflow::kSaturate, Overflow::kIeee}) {
      ArrayOptions opt;
      opt.round = {mode, ov, mode == Rounding::kStochastic ? 13 : 32, 99};
      opt.index_offset = 5;
      for (size_t i = 0; i < n; ++i) {
        want_code[i] = codec.encode(x[i], opt.round, opt.index_offset + i);
        const float v = static_cast<float>(codec.decode(want_code[i]));
        want_bits[i] = std::isnan(v) ? (0x7fc00000u | (std::signbit(v) ? 0x80000000u : 0u)) : std::bit_cast<uint32_t>(v);
      }
      for (KernelTarget t : available_targets()) {
        set_kernel_target(t);
        std::vector<float> out(n);
        std::vector<uint8_t> codes(n * cb);
        fakequant_array(f, x.data(), out.data(), n, opt);
        encode_array(f, x.data(), codes.data(), n, false, opt);
        size_t bad = 0;
        for (size_t i = 0; i < n && bad < 5; ++i) {
          uint32_t got = 0;
          for (int b = 0; b < cb; ++b) got |= static_cast<uint32_t>(codes[i * cb + b]) << (8 * b);
          const uint32_t got_bits = std::bit_cast<uint32_t>(out[i]);
          if (got != want_code[i] || got_bits != want_bits[i]) {
            ++bad;
            ADD_FAILURE() << f.name << " " << kernel_target_name(t) << " " << rounding_name(mode) << " "
                          << overflow_name(ov) << " x=" << std::hexfloat << x[i] << " (0x" << std::hex
                          << std::bit_cast<uint32_t>(x[i]) << ") code 0x" << got << " want 0x" << want_code[i]
                          << ", value 0x" << got_bits << " want 0x" << want_bits[i];
          }
        }
        ASSERT_EQ(bad, 0u);
        if (has_packed_layout(f)) {
          std::vector<uint8_t> want_codes8(n), want_packed(encoded_bytes(f, n, true)), got_packed(want_packed.size());
          for (size_t i = 0; i < n; ++i) want_codes8[i] = static_cast<uint8_t>(want_code[i]);
          pack_codes(f, want_codes8.data(), n, want_packed.data());
          encode_array(f, x.data(), got_packed.data(), n, true, opt);
          ASSERT_EQ(got_packed, want_packed) << f.name << " packed, " << kernel_target_name(t);
        }
      }
    }
  }
}

TEST_P(KernelExactness, DecodeMatchesScalarForEveryCode) {
  const Codec codec(GetParam());
  const Format& f = codec.format();
  if (f.bits > 16) GTEST_SKIP() << "decoded by the scalar model";
  std::vector<uint32_t> valid;
  for (uint32_t c = 0; c < f.num_codes(); ++c) {
    if (codec.is_valid_code(c)) valid.push_back(c);
  }
  const uint32_t n = static_cast<uint32_t>(valid.size());
  const int cb = f.code_bytes();
  std::vector<uint8_t> codes(n * cb);
  for (uint32_t j = 0; j < n; ++j) {
    for (int b = 0; b < cb; ++b) codes[j * cb + b] = static_cast<uint8_t>(valid[j] >> (8 * b));
  }
  for (KernelTarget t : available_targets()) {
    set_kernel_target(t);
    std::vector<float> out(n);
    decode_array(f, codes.data(), out.data(), n, false, {});
    for (uint32_t j = 0; j < n; ++j) {
      const uint32_t c = valid[j];
      const double want = codec.decode(c);
      if (std::isnan(want)) {
        ASSERT_TRUE(std::isnan(out[j])) << f.name << " " << kernel_target_name(t) << " code " << c;
        ASSERT_EQ(std::signbit(out[j]), std::signbit(want));
      } else {
        ASSERT_EQ(std::bit_cast<uint32_t>(out[j]), std::bit_cast<uint32_t>(static_cast<float>(want)))
            << f.name << " " << kernel_target_name(t) << " code " << c;
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Formats, KernelExactness, ::testing::ValuesIn(kernel_formats()), [](const auto& info) {
  std::string n = info.param.name;
  for (char& ch : n) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) ch = '_';
  }
  return n + "_" + std::to_string(info.index);
});

// ---------------------------------------------------------------- threads

TEST(KernelThreads, ResultsDoNotDependOnThreadCountOrSplit) {
  const size_t n = 3 * kChunkElements + 1234;
  std::vector<float> x(n);
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0, 3);
  for (auto& v : x) v = nd(rng);
  for (const char* name : {"float8_e4m3fn", "float4_e2m1fn", "int4", "posit8_1", "hifloat8", "nf4"}) {
    const Format f = parse_format(name);
    for (Rounding mode : {Rounding::kNearestEven, Rounding::kStochastic}) {
      ArrayOptions opt;
      opt.round.mode = mode;
      opt.round.seed = 77;
      // Start just below 2^32 so chunks cross the stochastic key boundary.
      opt.index_offset = (uint64_t{1} << 32) - 1000;
      std::vector<std::vector<float>> results;
      std::vector<std::vector<uint8_t>> packed;
      for (int threads : {1, 2, 3}) {
        opt.threads = threads;
        std::vector<float> out(n);
        fakequant_array(f, x.data(), out.data(), n, opt);
        results.push_back(out);
        std::vector<uint8_t> p(encoded_bytes(f, n, true));
        encode_array(f, x.data(), p.data(), n, true, opt);
        packed.push_back(p);
      }
      EXPECT_EQ(std::memcmp(results[0].data(), results[1].data(), n * 4), 0) << name;
      EXPECT_EQ(std::memcmp(results[0].data(), results[2].data(), n * 4), 0) << name;
      EXPECT_EQ(packed[0], packed[1]) << name;
      EXPECT_EQ(packed[0], packed[2]) << name;
      // And the scalar model, element by element.
      const Codec codec(f);
      for (size_t i = 0; i < n; i += 997) {
        EXPECT_EQ(std::bit_cast<uint32_t>(results[0][i]),
                  std::bit_cast<uint32_t>(static_cast<float>(codec.fakequant(x[i], opt.round, opt.index_offset + i))))
            << name << " i=" << i;
      }
    }
  }
}

TEST(KernelThreads, InPlaceEqualsOutOfPlace) {
  // Posits take the scalar fallback for some lanes; in place, those lanes
  // must still see the original input.
  const size_t n = 5000;
  std::vector<float> x(n);
  std::mt19937 rng(8);
  std::normal_distribution<float> nd(0, 1);
  for (auto& v : x) v = std::ldexp(nd(rng), -10);  // around posit8_1's sparse regime
  for (Rounding mode : {Rounding::kNearestEven, Rounding::kStochastic}) {
    ArrayOptions opt;
    opt.round.mode = mode;
    std::vector<float> out(n), inplace(x);
    fakequant_array(parse_format("posit8_1"), x.data(), out.data(), n, opt);
    fakequant_array(parse_format("posit8_1"), inplace.data(), inplace.data(), n, opt);
    EXPECT_EQ(std::memcmp(out.data(), inplace.data(), n * 4), 0);
  }
}

// ---------------------------------------------------------------- packing

TEST(KernelPacking, PackedRoundTripForEveryPackedFormat) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0, 2);
  for (const Format& f : preset_formats()) {
    if (!has_packed_layout(f)) continue;
    for (size_t n : {size_t{1}, size_t{7}, size_t{13}, kChunkElements + 3}) {
      std::vector<float> x(n);
      for (auto& v : x) v = nd(rng) * static_cast<float>(f.max_finite()) / 4;
      std::vector<uint8_t> packed(encoded_bytes(f, n, true));
      std::vector<uint8_t> plain(encoded_bytes(f, n, false));
      encode_array(f, x.data(), packed.data(), n, true, {});
      encode_array(f, x.data(), plain.data(), n, false, {});
      std::vector<uint8_t> unpacked(n);
      unpack_codes(f, packed.data(), n, unpacked.data());
      ASSERT_EQ(unpacked, plain) << f.name << " n=" << n;
      std::vector<float> a(n), b(n);
      decode_array(f, packed.data(), a.data(), n, true, {});
      decode_array(f, plain.data(), b.data(), n, false, {});
      ASSERT_EQ(std::memcmp(a.data(), b.data(), n * 4), 0) << f.name;
    }
  }
}


TEST(KernelInputs, HalfBfloatAndDoubleInputsRoundOnce) {
  const Format f = parse_format("float4_e2m1fn");
  const Codec codec(f);
  std::vector<uint16_t> h(65536);
  for (uint32_t i = 0; i < 65536; ++i) h[i] = static_cast<uint16_t>(i);
  const Codec f16(parse_format("float16")), bf16(parse_format("bfloat16"));
  for (auto [type, src] : {std::pair{InputType::kFloat16, &f16}, std::pair{InputType::kBFloat16, &bf16}}) {
    std::vector<uint8_t> out(65536);
    encode_array(f, type, h.data(), out.data(), h.size(), false, {});
    for (uint32_t i = 0; i < 65536; ++i) {
      ASSERT_EQ(out[i], codec.encode(src->decode(i), {}, i)) << i;
    }
  }
  const std::vector<double> d = {1.0 + std::ldexp(1.0, -30), 2.5 + std::ldexp(1.0, -40), -2.5, 1e300, -0.0};
  std::vector<uint8_t> out(d.size());
  encode_array(f, InputType::kFloat64, d.data(), out.data(), d.size(), false, {});
  for (size_t i = 0; i < d.size(); ++i) EXPECT_EQ(out[i], codec.encode(d[i], {}, i));
  EXPECT_EQ(codec.decode(out[1]), 3.0);  // 2.5 + tiny: above the tie, not the even 2
}

TEST(KernelInputs, CodesOutsideTheFormatAreRejected) {
  const uint8_t codes[] = {0x03, 0x1F};
  float out[2];
  EXPECT_THROW(decode_array(parse_format("int4"), codes, out, 2, false, {}), Error);
  // Unused codes inside the width: the left-out code of a narrow integer,
  // ternary's fourth code (packed or not), UE4M3 with its top bit set.
  const uint8_t narrow[] = {0x80};
  EXPECT_THROW(decode_array(parse_format("int:8:narrow"), narrow, out, 1, false, {}), Error);
  const uint8_t trit[] = {2};
  EXPECT_THROW(decode_array(parse_format("ternary"), trit, out, 1, false, {}), Error);
  const uint8_t ue[] = {0x81};
  EXPECT_THROW(decode_array(parse_format("ue4m3"), ue, out, 1, false, {}), Error);
  const uint8_t ue_nan[] = {0x7F};
  decode_array(parse_format("ue4m3"), ue_nan, out, 1, false, {});  // its NaN is a code
  EXPECT_TRUE(std::isnan(out[0]));
  const uint8_t cb[] = {5};
  EXPECT_THROW(decode_array(parse_format("codebook:1,2,3,4,5"), cb, out, 1, false, {}), Error);
}

}  // namespace
}  // namespace lowbit
