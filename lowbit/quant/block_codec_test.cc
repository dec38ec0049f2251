#include "lowbit/quant/block_codec.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

#include "lowbit/core/test_support.h"
#include "lowbit/quant/quantizer.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

std::vector<float> heavy_tailed(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::student_t_distribution<float> d(4.0f);
  std::vector<float> v(n);
  for (float& x : v) x = d(g);
  return v;
}

const char* const kSchemes[] = {"int4/g128/asym",    "int3/g32/asym=float", "int8/channel", "mxfp4",
                                "nvfp4",             "nvfp4/b16x16",        "e4m3fn/b16x16", "int:12/g32",
                                "int4/g64/round=stochastic/seed=9", "e2m1/g16/sf=ue4m3"};

// Keeping quantize()'s own parameters reproduces quantize() bit for bit:
// the codec is the quantizer's arithmetic for fixed parameters.
TEST(BlockCodec, QuantizesParametersAsQuantizeDoes) {
  const std::vector<uint64_t> shape = {48, 256};
  const std::vector<float> x = heavy_tailed(48 * 256, 1);
  for (const char* spec : kSchemes) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    const QuantizedTensor q = quantize({x.data(), shape}, s);
    const BlockCodec c(s, shape);
    const std::vector<BlockParams> p = c.read(q);
    ASSERT_EQ(p.size(), c.grid().num_blocks);
    for (int threads : {1, 2, 7}) {
      QuantizedTensor r;
      r.tensor_scale = q.tensor_scale;
      c.encode({x.data(), shape}, p, threads, r);
      c.write(p, r);
      EXPECT_EQ(r.codes, q.codes) << threads;
      EXPECT_EQ(r.scales, q.scales);
      EXPECT_EQ(r.zeros, q.zeros);
      std::vector<float> a(x.size()), b(x.size());
      dequantize(q, a.data(), 1);
      dequantize(r, b.data(), 1);
      EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * 4));
    }
  }
}

TEST(BlockCodec, ParametersRoundTripThroughTheirCodes) {
  for (const char* spec : {"int4/g128/asym", "int3/g32/asym=float", "int8/channel", "mxfp4", "e2m1/g16/sf=ue4m3"}) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    const BlockCodec c(s, {4, 128});
    const BlockParams p = c.from_values(0.0371f, 5.4f);
    const BlockParams back = c.from_values(p.value.scale, s.zero == ZeroPoint::kFloat ? p.value.z_in : p.value.z_post);
    EXPECT_EQ(back.scale_code, p.scale_code);
    EXPECT_EQ(back.zero_code, p.zero_code);
    const BlockParams again = c.from_codes(p.scale_code, p.zero_code);
    EXPECT_EQ(again.value.scale, p.value.scale);
    EXPECT_EQ(again.value.inv, p.value.inv);
    if (s.zero == ZeroPoint::kInteger) {
      EXPECT_EQ(p.value.z_post, 5.0f);
    }
  }
  // The NaN scale code is the NaN block.
  const BlockCodec mx(parse_scheme("mxfp4"), {1, 32});
  EXPECT_TRUE(std::isnan(mx.from_codes(0xFF, 0).value.scale));
}

// One block, an element run at a time (GPTQ's column sweep): the values and
// codes of the whole-tensor quantization, and its error.
TEST(BlockCodec, RunsOfABlockMatchTheWholeTensor) {
  const std::vector<uint64_t> shape = {2, 64};
  const std::vector<float> x = heavy_tailed(128, 2);
  for (const char* spec : {"int4/g64/asym", "int4/g64/round=stochastic/seed=3", "mxfp4"}) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    const QuantizedTensor q = quantize({x.data(), shape}, s);
    std::vector<float> want(128);
    dequantize(q, want.data(), 1);
    const BlockCodec c(s, shape);
    const std::vector<BlockParams> p = c.read(q);
    // The first block of row 1 (elements 64.. of the tensor), in runs of 5.
    const uint64_t b = c.grid().block_of(1, 0), len = c.grid().group;
    std::vector<float> got(len);
    std::vector<uint32_t> codes(len);
    for (uint64_t j = 0; j < len; j += 5) {
      const uint64_t n = std::min<uint64_t>(5, len - j);
      c.quantize_run(x.data() + 64 + j, n, p[b], 64 + j, got.data() + j, codes.data() + j);
    }
    EXPECT_EQ(0, std::memcmp(got.data(), want.data() + 64, len * 4));
    // The kernel's error sums are float32 partials added in double
    // (scaled_kernels.h): close to the double sum, not equal.
    double e = 0;
    for (uint64_t j = 0; j < len; ++j) e += (double(want[64 + j]) - x[64 + j]) * (double(want[64 + j]) - x[64 + j]);
    EXPECT_NEAR(c.block_sq_error(x.data() + 64, len, p[b], 64), e, 1e-6 * e);
  }
}

TEST(BlockCodec, RefusesWhatItCannotSetBlockByBlock) {
  EXPECT_EQ(catch_error([] { BlockCodec(parse_scheme("int4/g32/outliers=0.01"), {4, 64}); }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(catch_error([] { BlockCodec(parse_scheme("q4_0"), {4, 64}); }).kind(), ErrorKind::kUsage);
  const BlockCodec c(parse_scheme("int4/g32/asym"), {4, 64});
  QuantizedTensor wrong = quantize({std::vector<float>(64, 1.f).data(), {2, 32}}, parse_scheme("int4/g32/asym"));
  EXPECT_EQ(catch_error([&] { (void)c.read(wrong); }).kind(), ErrorKind::kInput);
}

}  // namespace
}  // namespace lowbit
