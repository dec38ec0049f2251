// The fused small-block kernels against the arithmetic small_block_kernels.h
// documents, computed here element by element with the scalar model
// (Codec), on every SIMD target that runs them: floor, absmax and mse
// rules, one- and two-level scales, odd groups, short last blocks and
// batches, and blocks holding zeros, subnormals, inf and NaN.
#include "lowbit/kernels/small_block_kernels.h"

#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "lowbit/format/codec.h"
#include "lowbit/format/registry.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit {
namespace {

using kernels::SmallBlockRule;
using kernels::SmallBlockSpec;

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

// ---- the reference: scalar model and the documented rules ----

struct Params {
  float scale, inv;
  uint32_t code;
};

uint32_t amax_bits(const float* x, size_t n) {
  uint32_t m = 0;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::bit_cast<uint32_t>(x[i]) & 0x7fffffffu);
  return m;
}

float pow2(int e) {  // 2^e for e in [-127, 127]
  return e >= -126 ? std::bit_cast<float>(static_cast<uint32_t>(e + 127) << 23) : std::bit_cast<float>(0x00400000u);
}

Params floor_params(const SmallBlockSpec& s, uint32_t amax) {
  if (amax >= 0x7f800000u) return {kNaN, kNaN, s.nan_code};
  // floor(log2 amax), from the value (not the kernel's bit arithmetic).
  const int lg = amax == 0 ? -1000 : std::ilogb(std::bit_cast<float>(amax));
  const int e = std::clamp(lg - s.emax_exp, -127, 127);
  return {pow2(e), pow2(-e), static_cast<uint32_t>(e + 127)};
}

Params absmax_params(const SmallBlockSpec& s, const Codec& sc, uint32_t amax, float alpha) {
  if (amax >= 0x7f800000u) return {kNaN, kNaN, s.nan_code};
  float raw = (std::bit_cast<float>(amax) * alpha) / s.emax_val;
  if (s.two_level) raw = s.tensor_scale == 0.0f ? 0.0f : raw / s.tensor_scale;
  const uint32_t code = sc.encode(raw, RoundOptions{});
  const float val = static_cast<float>(sc.decode(code));
  const float eff = s.two_level ? val * s.tensor_scale : val;
  return {eff, eff == 0.0f ? 0.0f : 1.0f / eff, code};
}

// Element k of the block: code and x_hat.
std::pair<uint32_t, float> element(const Codec& e, float x, const Params& p) {
  if (!std::isfinite(p.scale)) return {0, kNaN};
  const uint32_t c = e.encode(x * p.inv, RoundOptions{});
  return {c, static_cast<float>(e.decode(c)) * p.scale};
}

// The canonical error sum (scaled_kernels.h) of one block: element k into
// float partial k mod 16, then lanes k and k + 8 in double, k + 4, k + 2, k + 1.
double block_error(const Codec& e, const float* x, size_t n, const Params& p) {
  float part[16] = {};
  for (size_t k = 0; k < n; ++k) {
    const float d = element(e, x[k], p).second - x[k];
    part[k % 16] += d * d;
  }
  double t[8];
  for (int k = 0; k < 8; ++k) t[k] = static_cast<double>(part[k]) + static_cast<double>(part[k + 8]);
  for (int k = 0; k < 4; ++k) t[k] += t[k + 4];
  return 0.0 + ((t[0] + t[2]) + (t[1] + t[3]));
}

// The mse search of docs/schemes.md, one block.
Params mse_params(const SmallBlockSpec& s, const Codec& sc, const Codec& e, const float* x, size_t n) {
  const uint32_t amax = amax_bits(x, n);
  float best_alpha = 1.0f;
  double best = std::numeric_limits<double>::infinity();
  const auto trial = [&](float alpha) {
    const double err = block_error(e, x, n, absmax_params(s, sc, amax, alpha));
    if (err < best) {
      best = err;
      best_alpha = alpha;
    }
    return err;
  };
  for (int k = 0; k <= 9; ++k) trial(1.0f - static_cast<float>(k) * 0.1f);
  const float phi = 0.6180339887f;
  float lo = std::max(best_alpha - 0.1f, 0.01f), hi = std::min(best_alpha + 0.1f, 1.0f);
  float x1 = hi - phi * (hi - lo), x2 = lo + phi * (hi - lo);
  double f1 = trial(x1), f2 = trial(x2);
  for (int it = 0; it < 8; ++it) {
    if (f1 <= f2) {
      hi = x2;
      x2 = x1;
      f2 = f1;
      x1 = hi - phi * (hi - lo);
      f1 = trial(x1);
    } else {
      lo = x1;
      x1 = x2;
      f1 = f2;
      x2 = lo + phi * (hi - lo);
      f2 = trial(x2);
    }
  }
  return absmax_params(s, sc, amax, best_alpha);
}

struct RowResult {
  std::vector<uint32_t> codes, scale_codes;
  std::vector<float> deq;
};

RowResult reference_row(const Format& elem, const Format* scale, const SmallBlockSpec& s, const std::vector<float>& x) {
  const Codec e(elem);
  const Codec sc(scale ? *scale : elem);
  RowResult r;
  for (size_t b0 = 0; b0 < x.size(); b0 += s.group) {
    const size_t n = std::min(s.group, x.size() - b0);
    const float* p = x.data() + b0;
    Params prm;
    if (s.rule == SmallBlockRule::kFloorE8m0) {
      prm = floor_params(s, amax_bits(p, n));
    } else if (s.rule == SmallBlockRule::kAbsmax) {
      prm = absmax_params(s, sc, amax_bits(p, n), 1.0f);
    } else {
      prm = mse_params(s, sc, e, p, n);
    }
    r.scale_codes.push_back(prm.code);
    for (size_t k = 0; k < n; ++k) {
      const auto [c, d] = element(e, p[k], prm);
      r.codes.push_back(c);
      r.deq.push_back(d);
    }
  }
  return r;
}

// ---- the kernel, both outputs ----

RowResult kernel_row(const Format& elem, const Format* scale, SmallBlockSpec s, const std::vector<float>& x,
                     kernels::CodeLayout layout, int scale_width) {
  const KernelPlan ep = make_kernel_plan(elem, RoundOptions{});
  std::optional<KernelPlan> sp;
  if (scale) {
    sp.emplace(make_kernel_plan(*scale, RoundOptions{}));
    s.scale = &*sp;
  }
  EXPECT_TRUE(kernels::small_block_supported(ep, s, layout));
  const size_t n = x.size(), nb = (n + s.group - 1) / s.group;
  std::vector<uint8_t> codes(4 * n + 8, 0xAA), scodes(nb * scale_width + 8, 0xAA);
  kernels::SmallBlockOut out;
  out.layout = layout;
  out.codes = codes.data();
  out.scale_codes = scodes.data();
  out.scale_width = scale_width;
  kernels::small_block_row(ep, s, x.data(), n, out);
  RowResult r;
  for (size_t i = 0; i < n; ++i) {
    switch (layout) {
      case kernels::CodeLayout::kNibbles:
        r.codes.push_back(i % 2 == 0 ? codes[i / 2] & 0xFu : codes[i / 2] >> 4);
        break;
      case kernels::CodeLayout::kHalf:
        r.codes.push_back(codes[2 * i] | static_cast<uint32_t>(codes[2 * i + 1]) << 8);
        break;
      default:
        r.codes.push_back(codes[i]);
    }
  }
  for (size_t b = 0; b < nb; ++b) {
    uint32_t c = 0;
    for (int k = 0; k < scale_width; ++k) c |= static_cast<uint32_t>(scodes[b * scale_width + k]) << (8 * k);
    r.scale_codes.push_back(c);
  }
  EXPECT_EQ(scodes[nb * scale_width], 0xAA) << "wrote past the last scale code";
  // x_hat: a second call without codes (fakequant).
  r.deq.assign(n, 0.0f);
  kernels::SmallBlockOut fq;
  fq.deq = r.deq.data();
  kernels::small_block_row(ep, s, x.data(), n, fq);
  return r;
}

// Rows: N(0, 1) blocks, with blocks of zeros, subnormals, huge values, inf
// and NaN, and a row length that leaves a short last batch and block.
std::vector<float> test_row(size_t group, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> d;
  const size_t n = 16 * group * 2 + 3 * group + (group > 1 ? group / 2 + 1 : 0);
  std::vector<float> x(n);
  for (auto& v : x) v = d(rng);
  const auto block = [&](size_t b) { return x.data() + b * group; };
  std::fill(block(1), block(1) + group, 0.0f);
  for (size_t k = 0; k < group; ++k) block(2)[k] = 1e-40f * static_cast<float>(k + 1);  // subnormal amax
  block(3)[group / 2] = std::numeric_limits<float>::infinity();
  block(4)[0] = kNaN;
  block(5)[group - 1] = -std::numeric_limits<float>::infinity();
  for (size_t k = 0; k < group; ++k) block(6)[k] *= 1e37f;  // near float32's top
  for (size_t k = 0; k < group; ++k) block(7)[k] *= 1e-30f;
  block(8)[0] = -0.0f;
  return x;
}

void expect_same(const RowResult& got, const RowResult& want, const std::string& what) {
  ASSERT_EQ(got.codes.size(), want.codes.size()) << what;
  for (size_t i = 0; i < want.codes.size(); ++i) {
    ASSERT_EQ(got.codes[i], want.codes[i]) << what << ": code of element " << i;
    ASSERT_EQ(std::bit_cast<uint32_t>(got.deq[i]), std::bit_cast<uint32_t>(want.deq[i]))
        << what << ": x_hat of element " << i << " " << got.deq[i] << " vs " << want.deq[i];
  }
  ASSERT_EQ(got.scale_codes, want.scale_codes) << what;
}

std::vector<KernelTarget> simd_targets() {
  std::vector<KernelTarget> v;
  for (KernelTarget t : available_targets()) {
    if (t == KernelTarget::kScalar) continue;
    set_kernel_target(t);
    if (kernels::small_block_simd()) v.push_back(t);
    reset_kernel_target();
  }
  return v;
}

struct Case {
  const char* elem;
  const char* scale;  // null: E8M0 floor
  SmallBlockRule rule;
  size_t group;
  bool two_level;
  float tensor_scale;
  kernels::CodeLayout layout;
  int scale_width;
};

TEST(SmallBlockRow, EqualsTheScalarModelOnEveryTarget) {
  using L = kernels::CodeLayout;
  const SmallBlockRule F = SmallBlockRule::kFloorE8m0, A = SmallBlockRule::kAbsmax, M = SmallBlockRule::kMse;
  const Case cases[] = {
      {"e2m1", nullptr, F, 32, false, 1, L::kNibbles, 1},          // mxfp4
      {"int:8:narrow", nullptr, F, 32, false, 1, L::kByte, 1},     // mxint8
      {"e4m3fn", nullptr, F, 16, false, 1, L::kByte, 1},
      {"e2m1", nullptr, F, 7, false, 1, L::kByte, 1},
      {"e2m1", "ue4m3", A, 16, true, 0.0123f, L::kNibbles, 1},     // nvfp4
      {"e2m1", "ue4m3", A, 16, true, 0.0f, L::kNibbles, 1},        // all-zero tensor
      {"e2m1", "ue4m3", A, 16, true, 1e-40f, L::kNibbles, 1},      // infinite inverse scales
      {"int:4:narrow", "ue4m3", A, 16, true, 3.0f, L::kNibbles, 1},  // nvint4
      {"e2m1", "ue4m3", A, 7, false, 1, L::kByte, 1},
      {"int4", "float16", A, 32, false, 1, L::kNibbles, 2},
      {"e2m1", "ue4m3", M, 16, false, 1, L::kNibbles, 1},
      {"e2m1", "ue4m3", M, 16, true, 0.0021f, L::kNibbles, 1},
      {"int4", "float16", M, 32, false, 1, L::kNibbles, 2},
      {"e2m1", "ue4m3", M, 7, false, 1, L::kByte, 1},
      {"e4m3fn", "bfloat16", M, 64, false, 1, L::kByte, 2},
      {"int8", "float16", M, 1, false, 1, L::kByte, 2},
  };
  const std::vector<KernelTarget> targets = simd_targets();
  ASSERT_FALSE(targets.empty()) << "no SIMD target runs the small-block kernels on this machine";
  for (const Case& c : cases) {
    const Format elem = parse_format(c.elem);
    const Format scale = parse_format(c.scale ? c.scale : "e8m0");
    SmallBlockSpec s;
    s.rule = c.rule;
    s.group = c.group;
    s.emax_val = static_cast<float>(Codec(elem).format().max_finite());
    s.emax_exp = static_cast<int>(std::floor(std::log2(s.emax_val)));
    s.two_level = c.two_level;
    s.tensor_scale = c.tensor_scale;
    s.nan_code = Codec(scale).nan_result(false);
    const std::vector<float> x = test_row(c.group, static_cast<uint32_t>(c.group) * 7 + 1);
    const RowResult want = reference_row(elem, c.scale ? &scale : nullptr, s, x);
    for (KernelTarget t : targets) {
      set_kernel_target(t);
      const RowResult got = kernel_row(elem, c.scale ? &scale : nullptr, s, x, c.layout, c.scale_width);
      reset_kernel_target();
      expect_same(got, want,
                  std::string(c.elem) + "/g" + std::to_string(c.group) + "/" + (c.scale ? c.scale : "e8m0") +
                      " rule " + std::to_string(static_cast<int>(c.rule)) + " s_t " + std::to_string(c.tensor_scale) +
                      " on " + kernel_target_name(t));
    }
  }
}

TEST(SmallBlockRow, SupportsOnlyWhatItComputesExactly) {
  SmallBlockSpec s;
  s.rule = SmallBlockRule::kFloorE8m0;
  s.group = 32;
  for (KernelTarget t : simd_targets()) {
    set_kernel_target(t);
    const KernelPlan e2m1 = make_kernel_plan(parse_format("e2m1"), RoundOptions{});
    EXPECT_TRUE(kernels::small_block_supported(e2m1, s, kernels::CodeLayout::kNibbles));
    RoundOptions rtz;
    rtz.mode = Rounding::kTowardZero;
    EXPECT_FALSE(kernels::small_block_supported(make_kernel_plan(parse_format("e2m1"), rtz), s,
                                                kernels::CodeLayout::kNibbles));
    EXPECT_FALSE(kernels::small_block_supported(make_kernel_plan(parse_format("posit8_1"), RoundOptions{}), s,
                                                kernels::CodeLayout::kByte));
    SmallBlockSpec odd = s;
    odd.group = 7;
    EXPECT_FALSE(kernels::small_block_supported(e2m1, odd, kernels::CodeLayout::kNibbles));
    SmallBlockSpec wide = s;
    wide.group = kernels::kSmallBlockMaxGroup + 1;
    EXPECT_FALSE(kernels::small_block_supported(e2m1, wide, kernels::CodeLayout::kByte));
    SmallBlockSpec e8m0_absmax = s;  // E8M0 scales are not a SIMD rounding
    e8m0_absmax.rule = SmallBlockRule::kAbsmax;
    const KernelPlan e8m0 = make_kernel_plan(parse_format("e8m0"), RoundOptions{});
    e8m0_absmax.scale = &e8m0;
    EXPECT_FALSE(kernels::small_block_supported(e2m1, e8m0_absmax, kernels::CodeLayout::kNibbles));
    reset_kernel_target();
  }
  set_kernel_target(KernelTarget::kScalar);
  EXPECT_FALSE(kernels::small_block_supported(make_kernel_plan(parse_format("e2m1"), RoundOptions{}), s,
                                              kernels::CodeLayout::kNibbles));
  reset_kernel_target();
}

TEST(SmallBlockDequant, EqualsPerBlockParameters) {
  const Format e2m1 = parse_format("e2m1"), i8 = parse_format("int:8:narrow");
  for (const char* sf : {"ue4m3", "e8m0"}) {
    const Codec sc(parse_format(sf));
    std::vector<uint32_t> svals(256);
    for (uint32_t c = 0; c < 256; ++c) svals[c] = std::bit_cast<uint32_t>(static_cast<float>(sc.decode(c & 0x7F)));
    svals[0x7F] = std::bit_cast<uint32_t>(kNaN);
    for (const Format* elem : {&e2m1, &i8}) {
      const Codec ec(*elem);
      const bool nib = elem->bits == 4;
      std::vector<float> lut(size_t{1} << elem->bits);
      for (size_t c = 0; c < lut.size(); ++c) lut[c] = static_cast<float>(ec.decode(static_cast<uint32_t>(c)));
      std::vector<uint64_t> pair(256);
      for (size_t b = 0; b < 256 && nib; ++b) {
        pair[b] = std::bit_cast<uint32_t>(lut[b & 15]) | static_cast<uint64_t>(std::bit_cast<uint32_t>(lut[b >> 4])) << 32;
      }
      for (size_t group : {16, 32, 6}) {
        for (float st : {1.0f, 0.37f, 1e38f}) {
          std::mt19937 rng(static_cast<uint32_t>(group));
          const size_t n = 16 * group + 5 * group + 4, nb = (n + group - 1) / group;
          std::vector<uint8_t> codes(nib ? n / 2 : n), scodes(nb);
          for (auto& c : codes) c = static_cast<uint8_t>(rng());
          if (!nib) {
            for (auto& c : codes) c = c == 0x80 ? 0 : c;  // the narrow format's unused code
          }
          for (auto& c : scodes) c = static_cast<uint8_t>(rng() % 200);
          scodes[3] = 0x7F;  // NaN scale
          kernels::SmallBlockDequant q;
          q.lut = lut.data();
          q.pair_lut = pair.data();
          q.layout = nib ? kernels::CodeLayout::kNibbles : kernels::CodeLayout::kByte;
          q.group = group;
          q.scale_values = svals.data();
          q.scale_mask = 0xFF;
          q.two_level = st != 1.0f;
          q.tensor_scale = st;
          std::vector<float> want(n);
          for (size_t i = 0; i < n; ++i) {
            float s = std::bit_cast<float>(svals[scodes[i / group]]);
            if (q.two_level) s *= st;
            if (!std::isfinite(s)) s = kNaN;
            const uint32_t c = nib ? (i % 2 == 0 ? codes[i / 2] & 15u : codes[i / 2] >> 4) : codes[i];
            want[i] = std::isnan(s) ? kNaN : lut[c] * s;
          }
          // Outputs at every alignment class the streaming path handles
          // differently: aligned, an even and an odd number of floats off.
          std::vector<float> buf(n + 64);
          float* const base = buf.data() + (16 - reinterpret_cast<uintptr_t>(buf.data()) / 4 % 16) % 16;
          for (KernelTarget t : simd_targets()) {
            for (bool stream : {false, true}) {
              for (size_t off : {0, 1, 4, 6}) {
                set_kernel_target(t);
                q.stream = stream;
                float* got = base + off;
                std::fill(got, got + n, 0.0f);
                kernels::small_block_dequant_row(q, codes.data(), scodes.data(), n, got);
                reset_kernel_target();
                for (size_t i = 0; i < n; ++i) {
                  ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
                      << sf << " " << elem->name << " g" << group << " s_t " << st << " " << kernel_target_name(t)
                      << " stream " << stream << " offset " << off << " element " << i;
                }
              }
            }
          }
        }
      }
    }
  }
}

TEST(MaxAbsBits, OrdersNanAboveInfAboveFinite) {
  std::vector<float> x(1000);
  std::mt19937 rng(5);
  std::normal_distribution<float> d;
  for (auto& v : x) v = d(rng);
  for (size_t n : {0, 1, 15, 16, 63, 64, 999, 1000}) {
    EXPECT_EQ(kernels::max_abs_bits(x.data(), n), amax_bits(x.data(), n)) << n;
  }
  x[997] = -std::numeric_limits<float>::infinity();
  EXPECT_EQ(kernels::max_abs_bits(x.data(), 1000), 0x7f800000u);
  x[3] = kNaN;
  EXPECT_GT(kernels::max_abs_bits(x.data(), 1000), 0x7f800000u);
}

}  // namespace
}  // namespace lowbit
