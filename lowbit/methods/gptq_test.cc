#include "lowbit/methods/gptq.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"
#include "lowbit/quant/block_codec.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

// A layer's calibration problem: inputs X [n, cols] whose columns are
// correlated (mixed from fewer sources) and of unequal size, as a Linear's
// inputs are, and a heavy-tailed weight W [rows, cols].
struct Problem {
  uint64_t rows, cols;
  std::vector<float> w, gram;
};

Problem make_problem(uint64_t rows, uint64_t cols, uint64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  Problem p{rows, cols, {}, {}};
  const uint64_t sources = cols / 2 + 1;
  std::vector<float> mix(sources * cols), x(n * cols, 0.0f), col_scale(cols);
  for (float& v : mix) v = nd(rng);
  for (uint64_t c = 0; c < cols; ++c) col_scale[c] = std::exp(nd(rng));  // log-normal channel sizes
  for (uint64_t t = 0; t < n; ++t) {
    std::vector<float> z(sources);
    for (float& v : z) v = nd(rng);
    for (uint64_t c = 0; c < cols; ++c) {
      float s = 0;
      for (uint64_t k = 0; k < sources; ++k) s += z[k] * mix[k * cols + c];
      x[t * cols + c] = s * col_scale[c];
    }
  }
  p.gram.assign(cols * cols, 0.0f);
  for (uint64_t i = 0; i < cols; ++i) {
    for (uint64_t j = 0; j < cols; ++j) {
      double s = 0;
      for (uint64_t t = 0; t < n; ++t) s += static_cast<double>(x[t * cols + i]) * x[t * cols + j];
      p.gram[i * cols + j] = static_cast<float>(s);
    }
  }
  // Student-t(3) weights at a weight-like scale.
  std::chi_squared_distribution<float> chi(3.0f);
  p.w.resize(rows * cols);
  for (float& v : p.w) v = 0.02f * nd(rng) / std::sqrt(chi(rng) / 3.0f);
  return p;
}

std::vector<float> dequantized(const QuantizedTensor& q) {
  std::vector<float> out(q.numel());
  dequantize(q, out.data(), 1);
  return out;
}

// GPTQ written out as the paper states it, in float64, with no lazy
// batches: H⁻¹ by Gauss-Jordan elimination, its upper Cholesky factor, and
// each column's error applied to every later column at once. Group
// parameters come from the scheme's rule on the weights as they are when
// the sweep reaches the group, as quantize() computes them; each element
// is rounded with BlockCodec::quantize_run.
std::vector<float> reference_gptq(const Problem& p, const Scheme& s, double damp) {
  const uint64_t R = p.rows, C = p.cols, G = s.gran.group;
  std::vector<double> h(C * C), inv(C * C, 0.0);
  double mean = 0;
  for (uint64_t i = 0; i < C; ++i) mean += p.gram[i * C + i];
  mean /= C;
  for (uint64_t k = 0; k < C * C; ++k) h[k] = p.gram[k];
  for (uint64_t i = 0; i < C; ++i) h[i * C + i] += damp * mean, inv[i * C + i] = 1;
  for (uint64_t i = 0; i < C; ++i) {  // Gauss-Jordan, pivots on the diagonal (H is SPD)
    const double piv = h[i * C + i];
    for (uint64_t j = 0; j < C; ++j) h[i * C + j] /= piv, inv[i * C + j] /= piv;
    for (uint64_t r = 0; r < C; ++r) {
      if (r == i) continue;
      const double f = h[r * C + i];
      for (uint64_t j = 0; j < C; ++j) h[r * C + j] -= f * h[i * C + j], inv[r * C + j] -= f * inv[i * C + j];
    }
  }
  // inv = Uᵀ U: U's rows by the upper (row-oriented) Cholesky recurrence.
  std::vector<double> u(C * C, 0.0);
  for (uint64_t i = 0; i < C; ++i) {
    double d = inv[i * C + i];
    for (uint64_t k = 0; k < i; ++k) d -= u[k * C + i] * u[k * C + i];
    u[i * C + i] = std::sqrt(d);
    for (uint64_t j = i + 1; j < C; ++j) {
      double v = inv[i * C + j];
      for (uint64_t k = 0; k < i; ++k) v -= u[k * C + i] * u[k * C + j];
      u[i * C + j] = v / u[i * C + i];
    }
  }
  std::vector<double> w(p.w.begin(), p.w.end());
  std::vector<float> q(R * C);
  std::vector<BlockParams> params(R);
  const std::vector<uint64_t> shape = {R, C};
  for (uint64_t c = 0; c < C; ++c) {
    if (c % G == 0) {
      const uint64_t gl = std::min(G, C - c);
      std::vector<float> slab(R * gl);
      for (uint64_t r = 0; r < R; ++r) {
        for (uint64_t k = 0; k < gl; ++k) slab[r * gl + k] = static_cast<float>(w[r * C + c + k]);
      }
      const std::vector<uint64_t> sshape = {R, gl};
      params = BlockCodec(s, sshape).read(quantize({slab.data(), sshape}, s));
    }
    const BlockCodec codec(s, shape);
    for (uint64_t r = 0; r < R; ++r) {
      const float x = static_cast<float>(w[r * C + c]);
      float xq = 0;
      codec.quantize_run(&x, 1, params[r], 0, &xq);
      q[r * C + c] = xq;
      const double e = (w[r * C + c] - xq) / u[c * C + c];
      for (uint64_t j = c + 1; j < C; ++j) w[r * C + j] -= e * u[c * C + j];
    }
  }
  return q;
}

TEST(Gptq, AgreesWithTheAlgorithmWrittenOutInDouble) {
  for (const char* spec : {"int4/g16", "int4/g16/asym", "float4_e2m1fn/g16", "int2/g16/asym"}) {
    SCOPED_TRACE(spec);
    const Problem p = make_problem(40, 64, 400, 1);
    const Scheme s = parse_scheme(spec);
    GptqOptions o;
    o.act_order = false;  // the natural order, with dynamic groups, as written out above
    o.block = 16;         // four lazy batches
    GptqStats st;
    const std::vector<float> q = dequantized(gptq_quantize({p.w.data(), {p.rows, p.cols}}, s, p.gram, o, &st));
    const std::vector<float> ref = reference_gptq(p, s, o.damp);
    uint64_t same = 0;
    for (size_t k = 0; k < q.size(); ++k) same += q[k] == ref[k];
    // float32 against float64 arithmetic: a few roundings near a tie may
    // go the other way, and their feedback then differs a little.
    EXPECT_GE(static_cast<double>(same) / q.size(), 0.97);
    const double e_ref = hessian_error(p.w.data(), ref.data(), p.rows, p.cols, p.gram, 1);
    EXPECT_NEAR(st.gptq_error / e_ref, 1.0, 0.03);
    // On correlated inputs the feedback pays: well below plain rounding.
    EXPECT_LT(st.gptq_error, 0.8 * st.rtn_error) << st.gptq_error << " vs " << st.rtn_error;
    EXPECT_EQ(st.damp, o.damp);
    EXPECT_EQ(st.damp_retries, 0);
    EXPECT_TRUE(st.fallback.empty());
  }
}

TEST(Gptq, LazyBatchSizeChangesOnlyRoundingOrder) {
  const Problem p = make_problem(32, 96, 300, 2);
  const Scheme s = parse_scheme("int3/g32/asym");
  std::vector<double> errs;
  for (int block : {1, 7, 32, 96, 1000}) {
    GptqOptions o;
    o.act_order = false;  // dynamic groups: the batch boundaries matter most
    o.block = block;
    GptqStats st;
    gptq_quantize({p.w.data(), {p.rows, p.cols}}, s, p.gram, o, &st);
    errs.push_back(st.gptq_error);
  }
  for (double e : errs) EXPECT_NEAR(e / errs[0], 1.0, 0.02);
}

TEST(Gptq, SameBitsAtAnyThreadCount) {
  // 600 rows: three row chunks; 300 columns: three lazy batches.
  const Problem p = make_problem(600, 300, 350, 3);
  for (const char* spec : {"int4/g64", "mxfp4", "nvfp4"}) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    for (bool act_order : {false, true}) {
      GptqOptions o;
      o.act_order = act_order;
      o.threads = 1;
      const QuantizedTensor a = gptq_quantize({p.w.data(), {p.rows, p.cols}}, s, p.gram, o);
      o.threads = 3;
      const QuantizedTensor b = gptq_quantize({p.w.data(), {p.rows, p.cols}}, s, p.gram, o);
      EXPECT_EQ(a.codes, b.codes);
      EXPECT_EQ(a.scales, b.scales);
      EXPECT_EQ(a.zeros, b.zeros);
      EXPECT_EQ(a.tensor_scale, b.tensor_scale);
    }
  }
}

TEST(Gptq, DiagonalHessianIsPlainRounding) {
  // Uncorrelated inputs: H⁻¹'s factor is diagonal, no error moves, and
  // every value is quantize()'s.
  const Problem p = make_problem(24, 48, 10, 4);
  std::vector<float> diag(48 * 48, 0.0f);
  for (uint64_t i = 0; i < 48; ++i) diag[i * 48 + i] = 1.0f + i;
  for (const char* spec : {"int4/g16/asym", "nvfp4", "int8/channel", "float8_e4m3fn/tensor"}) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    GptqStats st;
    const std::vector<float> q = dequantized(gptq_quantize({p.w.data(), {24, 48}}, s, diag, {}, &st));
    const std::vector<float> rtn = dequantized(quantize({p.w.data(), {24, 48}}, s));
    EXPECT_EQ(q, rtn);
    EXPECT_DOUBLE_EQ(st.gptq_error, st.rtn_error);
  }
}

TEST(Gptq, ActOrderKeepsTheOriginalWeightsGroupParameters) {
  const Problem p = make_problem(32, 64, 300, 5);
  const Scheme s = parse_scheme("int4/g16/asym");
  GptqOptions o;
  o.act_order = true;
  GptqStats st;
  const QuantizedTensor q = gptq_quantize({p.w.data(), {32, 64}}, s, p.gram, o, &st);
  const QuantizedTensor rtn = quantize({p.w.data(), {32, 64}}, s);
  EXPECT_EQ(q.scales, rtn.scales);
  EXPECT_EQ(q.zeros, rtn.zeros);
  EXPECT_NE(q.codes, rtn.codes);
  EXPECT_LT(st.gptq_error, 0.8 * st.rtn_error);
  // The default is act-order.
  EXPECT_EQ(gptq_quantize({p.w.data(), {32, 64}}, s, p.gram).codes, q.codes);
  // Static groups without act-order: the same parameters too.
  o.act_order = false;
  o.static_groups = true;
  const QuantizedTensor sg = gptq_quantize({p.w.data(), {32, 64}}, s, p.gram, o);
  EXPECT_EQ(sg.scales, rtn.scales);
}

TEST(Gptq, EverySchemeFamilyLowersTheOutputError) {
  const Problem p = make_problem(64, 128, 500, 6);
  for (const char* spec : {"int4/g32", "int2/g16/asym", "float4_e2m1fn/g32", "mxfp4", "nvfp4", "nvfp4/b16x16",
                           "int8/channel", "float8_e4m3fn/channel", "int4/g32/scale=mse"}) {
    SCOPED_TRACE(spec);
    const Scheme s = parse_scheme(spec);
    for (int variant = 0; variant < 3; ++variant) {
      GptqOptions o;
      o.static_groups = variant >= 1;
      o.act_order = variant == 2;
      // Dynamic 2-bit groups follow the weights as the feedback moves them,
      // and on this problem their ranges grow faster than the error falls
      // (the algorithm written out above does the same).
      if (variant == 0 && std::string(spec) == "int2/g16/asym") continue;
      GptqStats st;
      gptq_quantize({p.w.data(), {64, 128}}, s, p.gram, o, &st);
      EXPECT_LT(st.gptq_error, 0.9 * st.rtn_error) << variant << ": " << st.gptq_error << " vs " << st.rtn_error;
    }
  }
}

TEST(Gptq, DeadColumnsAreZeroed) {
  Problem p = make_problem(16, 32, 200, 7);
  for (uint64_t j = 0; j < 32; ++j) p.gram[5 * 32 + j] = p.gram[j * 32 + 5] = 0;  // no input reaches column 5
  GptqStats st;
  const std::vector<float> q = dequantized(gptq_quantize({p.w.data(), {16, 32}}, parse_scheme("int4/g8"), p.gram, {}, &st));
  EXPECT_EQ(st.dead_columns, 1u);
  for (uint64_t r = 0; r < 16; ++r) EXPECT_EQ(q[r * 32 + 5], 0.0f);
}

TEST(Gptq, IndefiniteHessianIsDampedFurtherOrFallsBack) {
  const Problem p = make_problem(8, 4, 1, 8);
  // Eigenvalues 2.05 and -0.05: damping 0.01 (of a mean diagonal 1) is not
  // enough, 0.1 is.
  std::vector<float> h = {1, 1.05f, 0, 0, 1.05f, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  GptqStats st;
  gptq_quantize({p.w.data(), {8, 4}}, parse_scheme("int4/g4"), h, {}, &st);
  EXPECT_EQ(st.damp_retries, 1);
  EXPECT_DOUBLE_EQ(st.damp, 0.1);
  EXPECT_TRUE(st.fallback.empty());
  // Eigenvalue -9 + 1 even at damping 1: plain rounding, said so.
  h = {1, 10, 0, 0, 10, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1};
  const QuantizedTensor q = gptq_quantize({p.w.data(), {8, 4}}, parse_scheme("int4/g4"), h, {}, &st);
  EXPECT_NE(st.fallback.find("not positive definite"), std::string::npos);
  EXPECT_EQ(dequantized(q), dequantized(quantize({p.w.data(), {8, 4}}, parse_scheme("int4/g4"))));
}

TEST(Gptq, BadInputIsRefusedWithAReason) {
  const Problem p = make_problem(8, 16, 50, 9);
  const TensorView w{p.w.data(), {8, 16}};
  Error e = catch_error([&] { gptq_quantize(w, parse_scheme("int4/g8"), std::span(p.gram).first(15 * 15)); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("16 x 16"), std::string::npos) << e.what();
  std::vector<float> bad = p.gram;
  bad[3] = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(catch_error([&] { gptq_quantize(w, parse_scheme("int4/g8"), bad); }).kind(), ErrorKind::kInput);
  std::vector<float> wn = p.w;
  wn[0] = std::numeric_limits<float>::infinity();
  EXPECT_EQ(catch_error([&] { gptq_quantize({wn.data(), {8, 16}}, parse_scheme("int4/g8"), p.gram); }).kind(),
            ErrorKind::kInput);
  e = catch_error([&] { gptq_quantize(w, parse_scheme("int4/g8/round=stochastic"), p.gram); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(e.what()).find("stochastic"), std::string::npos) << e.what();
  EXPECT_EQ(catch_error([&] { gptq_quantize(w, parse_scheme("int4/g8/outliers=0.01"), p.gram); }).kind(),
            ErrorKind::kUsage);
  GptqOptions o;
  o.damp = 0;
  EXPECT_EQ(catch_error([&] { gptq_quantize(w, parse_scheme("int4/g8"), p.gram, o); }).kind(), ErrorKind::kUsage);
}

TEST(Gptq, TheSinksTwoLevelOptionsSetTheTensorScale) {
  // Fused shards share one tensor scale (min_tensor_amax), and vLLM's
  // NVFP4 stores its reciprocal: the tensor scale is quantize()'s with the
  // same options, for every group of the sweep.
  const Problem p = make_problem(32, 64, 200, 10);
  const Scheme s = parse_scheme("nvfp4");
  float amax = 0;
  for (float v : p.w) amax = std::max(amax, std::fabs(v));
  for (bool reciprocal : {false, true}) {
    for (float shared : {0.0f, 3 * amax}) {
      for (bool act_order : {false, true}) {
        GptqOptions o;
        o.act_order = act_order;
        o.min_tensor_amax = shared;
        o.reciprocal_tensor_scale = reciprocal;
        QuantizeOptions qo;
        qo.min_tensor_amax = shared;
        qo.reciprocal_tensor_scale = reciprocal;
        const QuantizedTensor q = gptq_quantize({p.w.data(), {32, 64}}, s, p.gram, o);
        EXPECT_EQ(q.tensor_scale, quantize({p.w.data(), {32, 64}}, s, qo).tensor_scale)
            << reciprocal << " " << shared << " " << act_order;
      }
    }
  }
}

}  // namespace
}  // namespace lowbit
