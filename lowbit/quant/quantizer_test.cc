#include "lowbit/quant/quantizer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/format/codec.h"
#include "lowbit/format/registry.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/quant/error_stats.h"
#include "lowbit/quant/reciprocal_scale.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {
namespace {

std::vector<float> normal(size_t n, uint32_t seed, float sigma = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, sigma);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

std::vector<float> deq(const QuantizedTensor& q) {
  std::vector<float> out(q.numel());
  dequantize(q, out.data());
  return out;
}

double qsnr(const std::vector<float>& x, const std::vector<float>& y) {
  return error_stats(x.data(), y.data(), x.size()).qsnr_db();
}

uint32_t scale_code(const QuantizedTensor& q, uint64_t b) {
  const int cb = q.scheme.scale_format.code_bytes();
  uint32_t c = 0;
  for (int k = 0; k < cb; ++k) c |= static_cast<uint32_t>(q.scales[b * cb + k]) << (8 * k);
  return c;
}

// ---- MX scale rules on hand-computed blocks ----

TEST(MxScale, FloorRuleClipsTheBlockMaximum) {
  // amax 957: floor(log2 957) = 9, emax(E4M3) = 8, so the scale is 2^1 and
  // 957 / 2 = 478.5 saturates to 448: 957 comes back as 896.
  std::vector<float> x(32, 0.0f);
  x[0] = 957.0f;
  x[1] = 3.0f;     // 1.5 in element units: exact
  x[2] = -104.0f;  // -52: exact in E4M3
  x[3] = 1.0f;     // 0.5
  const QuantizedTensor q = quantize({x.data(), {32}}, parse_scheme("mxfp8_e4m3"));
  EXPECT_EQ(scale_code(q, 0), 127u + 1u);
  const auto y = deq(q);
  EXPECT_EQ(y[0], 896.0f);
  EXPECT_EQ(y[1], 3.0f);
  EXPECT_EQ(y[2], -104.0f);
  EXPECT_EQ(y[3], 1.0f);
  EXPECT_EQ(q.codes[0], 0x7Eu);  // 448 in E4M3FN
}

TEST(MxScale, CeilRuleNeverClips) {
  // ceil(log2(957 / 448)) = 2: scale 4, 957 / 4 = 239.25 -> 240.
  std::vector<float> x(32, 0.0f);
  x[0] = 957.0f;
  const QuantizedTensor q = quantize({x.data(), {32}}, parse_scheme("mxfp8_e4m3/scale=ceil"));
  EXPECT_EQ(scale_code(q, 0), 127u + 2u);
  EXPECT_EQ(deq(q)[0], 960.0f);
}

TEST(MxScale, Mxfp4AndMxint8Blocks) {
  // MXFP4: amax 5 -> floor(log2 5) - 2 = 0: scale 1, elements round in E2M1.
  std::vector<float> x = {5.0f, 2.4f, -0.74f, 0.25f};
  x.resize(32, 0.0f);
  auto q = quantize({x.data(), {32}}, parse_scheme("mxfp4"));
  EXPECT_EQ(scale_code(q, 0), 127u);
  auto y = deq(q);
  EXPECT_EQ(y[0], 4.0f);   // 5 is a tie between 4 and 6: even mantissa, 4
  EXPECT_EQ(y[1], 2.0f);
  EXPECT_EQ(y[2], -0.5f);
  EXPECT_EQ(y[3], 0.0f);   // 0.25 ties between 0 and 0.5: even, 0
  // MXINT8: amax 1.0 -> scale 2^(0 - 6), elements are round(x * 64).
  std::vector<float> z = {1.0f, -0.5f, 0.01f, 1.99f};
  z.resize(32, 0.0f);
  q = quantize({z.data(), {32}}, parse_scheme("mxint8"));
  // amax 1.99: floor(log2) = 0, minus emax 6: scale 2^-6 (code 121);
  // 1.99 * 64 = 127.36 -> 127.
  EXPECT_EQ(scale_code(q, 0), 127u - 6u);
  y = deq(q);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], -0.5f);
  EXPECT_EQ(y[2], 1.0f / 64.0f);  // 0.64 -> 1
  EXPECT_EQ(y[3], 127.0f / 64.0f);
}

TEST(MxScale, AllZeroBlockTakesTheSmallestScale) {
  std::vector<float> x(64, 0.0f);
  x[40] = 1.0f;  // second block nonzero
  const QuantizedTensor q = quantize({x.data(), {64}}, parse_scheme("mxfp4"));
  EXPECT_EQ(scale_code(q, 0), 0u);  // 2^-127, as microxcaling
  for (int i = 0; i < 16; ++i) EXPECT_EQ(q.codes[i], 0u);
  const auto y = deq(q);
  for (int i = 0; i < 32; ++i) EXPECT_EQ(std::bit_cast<uint32_t>(y[i]), 0u) << i;
  EXPECT_EQ(y[40], 1.0f);
}

// ---- zero points ----

TEST(FloatZero, ConstantBlocksKeepTheirValue) {
  // A constant block has a zero-width range; widened to zero (as /asym
  // does), 0.75 gets s = fp16(0.75 / 15), z = 0, code 15; -3 gets s =
  // fp16(3 / 15), z = fp16(15.004) = 15, code 0. Either is off by the fp16
  // rounding of s only (relative < 2^-11), where scale 0 gave 0.
  std::vector<float> x(64, 0.75f);
  std::fill(x.begin() + 32, x.end(), -3.0f);
  for (const char* spec : {"int4/g32/asym=float", "int4/channel/asym=float", "int2/g32/asym=float"}) {
    const std::vector<uint64_t> shape = std::string(spec).find("channel") != std::string::npos
                                           ? std::vector<uint64_t>{2, 32}
                                           : std::vector<uint64_t>{64};
    const auto y = deq(quantize({x.data(), shape}, parse_scheme(spec)));
    for (size_t i = 0; i < x.size(); ++i) {
      ASSERT_NEAR(y[i], x[i], std::fabs(x[i]) * 0x1p-11) << spec << " element " << i;
    }
  }
  const float one = 0.7f;  // a one-element tensor is one constant block
  const auto y = deq(quantize({&one, {1, 1}}, parse_scheme("int4/g32/asym=float")));
  EXPECT_NEAR(y[0], one, one * 0x1p-11);
}

TEST(MxScale, InfOrNanMakesTheWholeBlockNan) {
  for (float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN(),
                    -std::numeric_limits<float>::infinity()}) {
    std::vector<float> x = normal(96, 1);
    x[37] = bad;  // block 1
    for (const char* s : {"mxfp4", "mxfp8_e4m3", "mxint8", "nvfp4", "int4/g32", "int4/g32/asym"}) {
      const Scheme sc = parse_scheme(s);
      const QuantizedTensor q = quantize({x.data(), {96}}, sc);
      const auto y = deq(q);
      const int g = static_cast<int>(sc.gran.group);
      const int b = 37 / g;
      for (int i = 0; i < 96; ++i) {
        EXPECT_EQ(std::isnan(y[i]), i / g == b) << s << " " << i;
      }
      if (std::string(s).starts_with("mx")) {
        EXPECT_EQ(scale_code(q, 1), 0xFFu) << s;
      }
      std::vector<float> f(96);
      fakequant_tensor({x.data(), {96}}, f.data(), parse_scheme(s));
      for (int i = 0; i < 96; ++i) {
        EXPECT_EQ(std::bit_cast<uint32_t>(f[i]), std::bit_cast<uint32_t>(y[i])) << s << " " << i;
      }
    }
  }
}

// ---- NVFP4 two-level scale ----

TEST(Nvfp4, TwoLevelScaleByHand) {
  // Tensor amax 2688 = 6 * 448: tensor scale exactly 1. Block 0 amax 2688:
  // block scale 2688 / 6 / 1 = 448 (UE4M3 max, exact). Block 1 amax 3: scale
  // 0.5 (exact). Block 2 amax 1.3: 1.3 / 6 = 0.21667 -> UE4M3 0.21875
  // (nearest: 0.203125, 0.21875; 0.21667 is closer to 0.21875).
  std::vector<float> x(48, 0.0f);
  x[0] = 2688.0f;
  x[1] = 900.0f;  // 900 / 448 = 2.009 -> 2 in E2M1
  x[16] = 3.0f;
  x[17] = -0.75f;  // -1.5 in units of 0.5
  x[32] = 1.3f;
  x[33] = 0.5f;  // 0.5 / 0.21875 = 2.2857 -> 2: 0.4375
  const QuantizedTensor q = quantize({x.data(), {48}}, parse_scheme("nvfp4"));
  EXPECT_EQ(std::bit_cast<float>(q.tensor_scale), 1.0f);
  const Codec ue4m3(parse_format("ue4m3"));
  EXPECT_EQ(ue4m3.decode(q.scales[0]), 448.0);
  EXPECT_EQ(ue4m3.decode(q.scales[1]), 0.5);
  EXPECT_EQ(ue4m3.decode(q.scales[2]), 0.21875);
  const auto y = deq(q);
  EXPECT_EQ(y[0], 2688.0f);
  EXPECT_EQ(y[1], 896.0f);
  EXPECT_EQ(y[16], 3.0f);
  EXPECT_EQ(y[17], -0.75f);
  EXPECT_EQ(y[32], 1.3125f);  // 1.3 / 0.21875 = 5.94 -> 6
  EXPECT_EQ(y[33], 0.4375f);
}

TEST(Nvfp4, TensorScaleIsAmaxOver2688) {
  // amax 1: tensor scale 1/2688 in float32; a block with amax 1 gets the
  // block scale (1/6) / (1/2688) = 448.
  std::vector<float> x = normal(64, 3);
  float amax = 0;
  for (float v : x) amax = std::max(amax, std::fabs(v));
  for (float& v : x) v /= amax;
  const QuantizedTensor q = quantize({x.data(), {64}}, parse_scheme("nvfp4"));
  EXPECT_EQ(std::bit_cast<float>(q.tensor_scale), 1.0f / 2688.0f);
  const auto y = deq(q);
  EXPECT_GT(qsnr(x, y), 15.0);
}

// ---- bits per element ----

TEST(BitsPerElement, ExactForPresets) {
  const std::vector<uint64_t> shape = {256, 512};
  const double n = 256.0 * 512.0;
  const auto bpe = [&](const char* s) {
    std::vector<float> x = normal(256 * 512, 5);
    return quantize({x.data(), shape}, parse_scheme(s)).bits_per_element();
  };
  EXPECT_EQ(bpe("mxfp4"), 4.25);
  EXPECT_EQ(bpe("mxfp6_e2m3"), 6.25);
  EXPECT_EQ(bpe("mxfp8_e4m3"), 8.25);
  EXPECT_EQ(bpe("mxint8"), 8.25);
  EXPECT_EQ(bpe("nvfp4"), 4.5 + 32.0 / n);
  EXPECT_EQ(bpe("nvint4"), 4.5 + 32.0 / n);
  EXPECT_EQ(bpe("bfp8"), 8.5);
  EXPECT_EQ(bpe("int4/g128/asym"), 4.0 + (16.0 + 4.0) / 128.0);  // fp16 scale, 4-bit zero
  EXPECT_EQ(bpe("int4/g128/asym=float"), 4.0 + (16.0 + 16.0) / 128.0);
  EXPECT_EQ(bpe("int8/channel"), 8.0 + 16.0 / 512.0);
  EXPECT_EQ(bpe("float8_e4m3fn/tensor"), 8.0 + 32.0 / n);
  EXPECT_EQ(bpe("e2m1/b16x16/sf=ue4m3"), 4.0 + 8.0 / 256.0);
  EXPECT_EQ(bpe("ternary/g64"), (std::ceil(n / 5.0) * 8.0 + 16.0 * n / 64.0) / n);
}

// ---- closed forms ----

TEST(ClosedForm, UniformInt8NarrowAbsmaxIs48_10dB) {
  // Step 1/127 on [-1, 1]: noise 1/(12 * 127^2), signal 1/3: 10 log10(4 * 127^2).
  const size_t n = size_t{1} << 22;
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> x(n), y(n);
  for (auto& v : x) v = d(rng);
  fakequant_tensor({x.data(), {n}}, y.data(), parse_scheme("int:8:narrow/tensor"));
  const double want = 10.0 * std::log10(4.0 * 127.0 * 127.0);
  EXPECT_NEAR(want, 48.10, 0.005);
  EXPECT_NEAR(qsnr(x, y), want, 0.05);
}

TEST(ClosedForm, MseNeverWorseThanAbsmax) {
  std::mt19937 rng(2);
  std::student_t_distribution<float> heavy(3.0f);
  std::vector<float> t(1 << 16);
  for (auto& v : t) v = heavy(rng);
  const std::vector<std::vector<float>> data = {normal(1 << 16, 9), t};
  for (const auto& x : data) {
    for (const char* base : {"int4/g32", "int4/g128/asym", "int8/tensor", "e2m1/g16/sf=ue4m3", "int3/channel",
                             "e4m3fn/tensor", "nf4/g64", "int4/g64/asym=float", "mxfp4", "nvfp4", "e2m1/b16x16/sf=bf16"}) {
      const Scheme a = parse_scheme(base);
      const Scheme m = parse_scheme(std::string(base) + "/scale=mse");
      std::vector<float> ya(x.size()), ym(x.size());
      fakequant_tensor({x.data(), {256, 256}}, ya.data(), a);
      fakequant_tensor({x.data(), {256, 256}}, ym.data(), m);
      const ErrorStats ea = error_stats(x.data(), ya.data(), x.size());
      const ErrorStats em = error_stats(x.data(), ym.data(), x.size());
      EXPECT_LE(em.sum_err2, ea.sum_err2 * (1 + 1e-12)) << base;
    }
  }
}

// The squared error of the best clip factor on a dense grid, block by
// block (symmetric schemes): the optimum the mse search must come within
// 0.05 dB of. Scales are rounded to the scale format and applied as the
// quantizer documents: u = x * (1/s), x_hat = value(round(u)) * s.
double dense_best_error(const std::vector<float>& x, size_t group, const Format& elem, const Format& sf, int steps) {
  const size_t n = x.size(), nb = (n + group - 1) / group;
  std::vector<float> amax(nb, 0.0f), raw(nb), sc(nb), u(n), v(n);
  std::vector<double> best(nb, std::numeric_limits<double>::infinity());
  for (size_t i = 0; i < n; ++i) amax[i / group] = std::max(amax[i / group], std::fabs(x[i]));
  ArrayOptions one;
  one.threads = 1;
  for (int k = 0; k < steps; ++k) {
    const float alpha = 1.0f - 0.9f * static_cast<float>(k) / static_cast<float>(steps);
    for (size_t b = 0; b < nb; ++b) raw[b] = amax[b] * alpha / static_cast<float>(elem.max_finite());
    fakequant_array(sf, raw.data(), sc.data(), nb, one);
    for (size_t i = 0; i < n; ++i) {
      const float s = sc[i / group];
      u[i] = x[i] * (s == 0.0f ? 0.0f : 1.0f / s);
    }
    fakequant_array(elem, u.data(), v.data(), n, one);
    std::vector<double> e(nb, 0.0);
    for (size_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(v[i] * sc[i / group]) - x[i];
      e[i / group] += d * d;
    }
    for (size_t b = 0; b < nb; ++b) best[b] = std::min(best[b], e[b]);
  }
  double total = 0;
  for (double b : best) total += b;
  return total;
}

TEST(MseSearch, WithinFiveHundredthsOfADecibelOfTheDenseOptimum) {
  std::mt19937 rng(17);
  std::student_t_distribution<float> t5(5.0f);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> heavy(1 << 16), flat(1 << 16);
  for (auto& v : heavy) v = t5(rng);
  for (auto& v : flat) v = uni(rng);
  const std::vector<std::pair<const char*, std::vector<float>>> data = {
      {"normal", normal(1 << 16, 4)}, {"student-t5", heavy}, {"uniform", flat}};
  struct Case {
    const char* elem;
    const char* gran;
    size_t group;
    const char* sf;
  };
  const Case cases[] = {{"int4", "tensor", 1 << 16, "float32"},   {"int8", "tensor", 1 << 16, "float32"},
                        {"int3", "tensor", 1 << 16, "float32"},   {"e2m1", "tensor", 1 << 16, "float32"},
                        {"e4m3fn", "tensor", 1 << 16, "float32"}, {"nf4", "tensor", 1 << 16, "float32"},
                        {"int4", "g128", 128, "float16"},         {"e2m1", "g32", 32, "float16"}};
  for (const auto& [dname, x] : data) {
    double s2 = 0;
    for (float v : x) s2 += static_cast<double>(v) * v;
    for (const Case& c : cases) {
      const std::string spec = std::string(c.elem) + "/" + c.gran + "/scale=mse";
      std::vector<float> y(x.size());
      fakequant_tensor({x.data(), {x.size()}}, y.data(), parse_scheme(spec));
      const double got = qsnr(x, y);
      const double best = -10.0 * std::log10(dense_best_error(x, c.group, parse_format(c.elem), parse_format(c.sf), 400) / s2);
      EXPECT_GE(got, best - 0.05) << spec << " on " << dname << ": search " << got << " dB, dense " << best << " dB";
    }
  }
}

// ---- exactness across targets and threads ----

struct Result {
  QuantizedTensor q;
  std::vector<float> fake, deq;
};

Result run_once(const std::vector<float>& x, const std::vector<uint64_t>& shape, const Scheme& s, int threads,
                const std::vector<float>* w = nullptr) {
  QuantizeOptions o;
  o.threads = threads;
  if (w) {
    o.importance = w->data();
    o.importance_count = w->size();
  }
  Result r;
  r.q = quantize({x.data(), shape}, s, o);
  r.fake.resize(x.size());
  fakequant_tensor({x.data(), shape}, r.fake.data(), s, o);
  r.deq.resize(x.size());
  dequantize(r.q, r.deq.data(), threads);
  return r;
}

TEST(Exactness, EveryTargetAndThreadCountGivesTheSameBits) {
  std::vector<float> x = normal(3 * 37 * 80, 21);
  x[5] = 30.0f;  // an outlier-ish value
  const std::vector<uint64_t> shape = {3, 37, 80};
  std::vector<float> w(x.size());
  for (size_t i = 0; i < w.size(); ++i) w[i] = 0.5f + static_cast<float>(i % 7);
  const char* schemes[] = {"mxfp4",         "mxfp8_e5m2",         "mxint8",          "nvfp4",
                           "nvfp4/b16x16",  "int4/g128/asym",     "int4/g20/asym=float", "int8/channel",
                           "int8/channel:1", "int8/channel:2",    "e2m1/g7/sf=ue4m3", "posit8_1/g32",
                           "hifloat8/tensor", "nf4/g64",          "ternary/g32",     "int3/b4x8/scale=mse",
                           "e4m3fn/g32/scale=mse", "int4/g32/asym/scale=mse", "mxfp4/scale=mse",
                           "int4/g16/scale=percentile:99", "int4/tensor/scale=mse", "e2m1/g16/round=stochastic/seed=3",
                           "int4/g64/scale=wmse", "bfp6", "int4/g32/outliers=0.01", "int4/channel/outliers=3sigma:plain",
                           // the fused small-block route's other rules and scale formats
                           "nvfp4/scale=mse", "nvint4", "mxint4", "e2m1/g24/sf=bfloat16", "int4/g16/sf=e4m3fn/scale=mse"};
  for (const char* spec : schemes) {
    const Scheme s = parse_scheme(spec);
    const bool weighted = s.rule == ScaleRule::kWmse;
    reset_kernel_target();
    const Result ref = [&] {
      set_kernel_target(KernelTarget::kScalar);
      Result r = run_once(x, shape, s, 1, weighted ? &w : nullptr);
      reset_kernel_target();
      return r;
    }();
    for (KernelTarget t : available_targets()) {
      for (int threads : {1, 2, 3}) {
        set_kernel_target(t);
        const Result r = run_once(x, shape, s, threads, weighted ? &w : nullptr);
        reset_kernel_target();
        SCOPED_TRACE(std::string(spec) + " target " + kernel_target_name(t) + " threads " + std::to_string(threads));
        EXPECT_EQ(r.q.codes, ref.q.codes);
        EXPECT_EQ(r.q.scales, ref.q.scales);
        EXPECT_EQ(r.q.zeros, ref.q.zeros);
        EXPECT_EQ(r.q.tensor_scale, ref.q.tensor_scale);
        EXPECT_EQ(r.q.outliers.positions, ref.q.outliers.positions);
        ASSERT_EQ(0, std::memcmp(r.fake.data(), ref.fake.data(), x.size() * 4));
        ASSERT_EQ(0, std::memcmp(r.deq.data(), ref.deq.data(), x.size() * 4));
      }
    }
    // Fakequant equals dequantize(quantize(x)) bit for bit.
    const auto y = deq(ref.q);
    ASSERT_EQ(0, std::memcmp(y.data(), ref.fake.data(), x.size() * 4)) << spec;
  }
}

// Long rows take the batched paths (16 blocks of statistics at a time,
// register-table dequantization); a few non-finite values ride along.
TEST(Exactness, LongRowsOnEveryTarget) {
  std::vector<float> x = normal(5 * 2048, 33);
  x[100] = std::numeric_limits<float>::quiet_NaN();
  x[3000] = std::numeric_limits<float>::infinity();
  x[5000] = 1e-40f;  // subnormal
  const std::vector<uint64_t> shape = {5, 2048};
  for (const char* spec : {"mxfp4", "nvfp4", "mxint8", "mxfp8_e4m3", "int4/g128/asym", "e2m1/g16/sf=ue4m3/scale=mse",
                           "int4/g32/scale=mse", "nvfp4/b16x16", "nvfp4/scale=mse", "nvint4", "int4/g16/sf=e4m3fn/scale=mse"}) {
    const Scheme s = parse_scheme(spec);
    set_kernel_target(KernelTarget::kScalar);
    const Result ref = run_once(x, shape, s, 1);
    reset_kernel_target();
    for (KernelTarget t : available_targets()) {
      set_kernel_target(t);
      const Result r = run_once(x, shape, s, 2);
      reset_kernel_target();
      SCOPED_TRACE(std::string(spec) + " target " + kernel_target_name(t));
      EXPECT_EQ(r.q.codes, ref.q.codes);
      EXPECT_EQ(r.q.scales, ref.q.scales);
      EXPECT_EQ(r.q.zeros, ref.q.zeros);
      ASSERT_EQ(0, std::memcmp(r.fake.data(), ref.fake.data(), x.size() * 4));
      ASSERT_EQ(0, std::memcmp(r.deq.data(), ref.deq.data(), x.size() * 4));
    }
  }
}

// ---- bad input ----

TEST(BadInput, ChannelAxisOutOfRange) {
  std::vector<float> x(12, 1.0f);
  try {
    quantize({x.data(), {3, 4}}, parse_scheme("int8/channel:2"));
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput);  // the spec is fine; this tensor lacks the axis
    EXPECT_NE(std::string(e.what()).find("axis 2"), std::string::npos) << e.what();
  }
}

// Shards that a runtime fuses (q/k/v) quantized each with the group's
// largest amax are exactly the rows of the fused tensor quantized whole:
// same tensor scale, same block scales, same codes.
TEST(Nvfp4, ShardsWithTheGroupAmaxEqualTheFusedTensor) {
  const uint64_t cols = 96;
  const std::vector<uint64_t> rows = {8, 3, 5};
  std::vector<std::vector<float>> shards;
  std::vector<float> fused;
  for (size_t k = 0; k < rows.size(); ++k) {
    shards.push_back(normal(rows[k] * cols, 40 + static_cast<uint32_t>(k), 0.5f + static_cast<float>(k)));
    fused.insert(fused.end(), shards.back().begin(), shards.back().end());
  }
  float amax = 0;
  for (float v : fused) amax = std::max(amax, std::fabs(v));
  for (const char* spec : {"nvfp4", "nvint4", "nvfp4/scale=mse"}) {
    const Scheme s = parse_scheme(spec);
    const QuantizedTensor whole = quantize({fused.data(), {fused.size() / cols, cols}}, s);
    QuantizeOptions o;
    o.min_tensor_amax = amax;
    size_t code_at = 0, scale_at = 0;
    for (size_t k = 0; k < rows.size(); ++k) {
      SCOPED_TRACE(std::string(spec) + " shard " + std::to_string(k));
      const QuantizedTensor q = quantize({shards[k].data(), {rows[k], cols}}, s, o);
      EXPECT_EQ(q.tensor_scale, whole.tensor_scale);
      ASSERT_LE(code_at + q.codes.size(), whole.codes.size());
      EXPECT_TRUE(std::equal(q.codes.begin(), q.codes.end(), whole.codes.begin() + static_cast<long>(code_at)));
      EXPECT_TRUE(std::equal(q.scales.begin(), q.scales.end(), whole.scales.begin() + static_cast<long>(scale_at)));
      code_at += q.codes.size();
      scale_at += q.scales.size();
      // Without the group amax, only the shard holding it agrees.
      const QuantizedTensor own = quantize({shards[k].data(), {rows[k], cols}}, s);
      EXPECT_EQ(own.tensor_scale == whole.tensor_scale, k == rows.size() - 1);
    }
  }
}

// reciprocal_tensor_scale: for tensor scales without a float32 reciprocal
// preimage, s_t moves to the reciprocal of its rounded reciprocal, and the
// blocks are quantized with it exactly as with a tensor amax giving that s_t;
// for the others nothing changes. 7 rows of data and an 8th holding the
// tensor amax A alone, so that a stand-in amax can replace A without
// touching the data's blocks.
TEST(Nvfp4, ReciprocalTensorScaleQuantizesWithTheScaleItsReciprocalGivesBack) {
  const Scheme nv = parse_scheme("nvfp4");
  QuantizeOptions rec;
  rec.reciprocal_tensor_scale = true;
  const auto with_amax = [](float a) {
    std::vector<float> x = normal(7 * 64, 11, a / 20.0f);
    x.resize(8 * 64, 0.0f);
    x[7 * 64 + 5] = a;
    return x;
  };
  // A tensor amax a with float32(a / 2688) == s, or 0 (a's ulp, relative,
  // can be twice s's: not every s is such a quotient).
  const auto amax_for = [](float s) {
    float up = s * 2688.0f, down = up;
    for (int k = 0; k < 4; ++k, up = std::nextafter(up, INFINITY), down = std::nextafter(down, 0.0f)) {
      if (up / 2688.0f == s) return up;
      if (down / 2688.0f == s) return down;
    }
    return 0.0f;
  };
  int moved = 0, kept = 0, compared = 0;
  for (int i = 0; i < 200; ++i) {
    const float s = std::ldexp(1.0f + static_cast<float>(i) / 200.0f + 3e-4f, -5);
    const float a = amax_for(s);
    if (a == 0) continue;
    const std::vector<float> x = with_amax(a);
    const QuantizedTensor q0 = quantize({x.data(), {8, 64}}, nv);
    const QuantizedTensor q1 = quantize({x.data(), {8, 64}}, nv, rec);
    ASSERT_EQ(q0.tensor_scale, std::bit_cast<uint32_t>(s));
    const float s1 = std::bit_cast<float>(q1.tensor_scale);
    EXPECT_EQ(1.0f / (1.0f / s1), s1);  // what vLLM reads back from g = 1/s1
    const ReciprocalScale r = reciprocal_preimage(s);
    if (r.exact) {
      ++kept;
      EXPECT_EQ(q1.tensor_scale, q0.tensor_scale);
      EXPECT_EQ(q1.codes, q0.codes);
      EXPECT_EQ(q1.scales, q0.scales);
      continue;
    }
    ++moved;
    EXPECT_EQ(s1, r.back);
    const uint32_t d = q1.tensor_scale > q0.tensor_scale ? q1.tensor_scale - q0.tensor_scale
                                                          : q0.tensor_scale - q1.tensor_scale;
    EXPECT_EQ(d, 1u);
    const float a1 = amax_for(s1);
    if (a1 == 0) continue;
    ++compared;
    const std::vector<float> x1 = with_amax(a1);
    const QuantizedTensor ref = quantize({x1.data(), {8, 64}}, nv);
    ASSERT_EQ(ref.tensor_scale, q1.tensor_scale);
    // The 7 data rows: 7 * 32 code bytes and 7 * 4 block scales.
    EXPECT_TRUE(std::equal(q1.codes.begin(), q1.codes.begin() + 7 * 32, ref.codes.begin()));
    EXPECT_TRUE(std::equal(q1.scales.begin(), q1.scales.begin() + 7 * 4, ref.scales.begin()));
  }
  EXPECT_GT(moved, 10);
  EXPECT_GT(compared, 5);
  EXPECT_GT(kept, 50);
}

TEST(BadInput, ReciprocalTensorScaleNeedsAFloat32TensorScale) {
  std::vector<float> x(64, 1.0f);
  QuantizeOptions o;
  o.reciprocal_tensor_scale = true;
  for (const char* spec : {"int4/g32", "mxfp4", "fp4_e2m1/g16/sf=bfloat16*ue4m3"}) {
    EXPECT_THROW(quantize({x.data(), {64}}, parse_scheme(spec), o), Error) << spec;
  }
  EXPECT_NO_THROW(quantize({x.data(), {64}}, parse_scheme("nvint4"), o));
}

TEST(BadInput, MinTensorAmaxMustBeFiniteAndNonNegative) {
  std::vector<float> x(64, 1.0f);
  for (float bad : {-1.0f, std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity()}) {
    QuantizeOptions o;
    o.min_tensor_amax = bad;
    EXPECT_THROW(quantize({x.data(), {64}}, parse_scheme("nvfp4"), o), Error) << bad;
  }
}

TEST(BadInput, WmseNeedsWeights) {
  std::vector<float> x(64, 1.0f);
  EXPECT_THROW(quantize({x.data(), {64}}, parse_scheme("int4/g32/scale=wmse")), Error);
  std::vector<float> w(10, 1.0f);
  QuantizeOptions o;
  o.importance = w.data();
  o.importance_count = w.size();
  EXPECT_THROW(quantize({x.data(), {64}}, parse_scheme("int4/g32/scale=wmse"), o), Error);
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

// Found by the bad-input battery: a zero-size array crashed qtensor inside
// dequantize (its block grid's phantom 1 x 1 block). An empty tensor
// quantizes to an empty QuantizedTensor, which decodes to nothing.
TEST(BadInput, EmptyTensorsQuantizeAndDecodeToNothing) {
  for (const char* s : {"int8/channel", "int4/g128/asym", "mxfp4", "nvfp4", "int8/tensor", "e4m3fn/b16x16",
                        "int4/g32/outliers=0.01"}) {
    SCOPED_TRACE(s);
    for (const std::vector<uint64_t>& shape : {std::vector<uint64_t>{0}, {0, 64}, {64, 0}}) {
      const QuantizedTensor q = quantize({nullptr, shape}, parse_scheme(s));
      EXPECT_EQ(q.numel(), 0u);
      float sentinel = 7;
      dequantize(q, &sentinel, 1);
      EXPECT_EQ(sentinel, 7);
    }
  }
}

}  // namespace
}  // namespace lowbit
