// ggml's K-quants (Q2_K..Q6_K): super-blocks of 256 elements cut into
// groups of 16 or 32, each with a quantized scale (and min), both scaled by
// float16 super-block factors; and llama.cpp's scale searches, which the
// legacy types' weighted paths share (row_codec_internal.h).
//
// Quantization reproduces ggml-quants.c: without importance weights
// quantize_row_q{2..6}_K_ref (searches make_qkx2_quants, make_qx_quants,
// make_q3_quants), with them quantize_row_q{2..6}_K_impl (make_qkx3_quants,
// make_qx_quants and make_qp_quants over the weights qw * sqrt(sigma^2 +
// x^2), or qw itself for Q6_K).
//
// The scalar functions below are the model: ggml's float32 operations in
// ggml's order. The searches dominate the cost (each tries ~20 scales per
// group), so the hot ones also run lane-parallel: one group per SIMD lane,
// every lane doing the scalar sequence of operations, with branches turned
// into per-lane selects. That is bit-identical to the model by construction;
// k_quants_test checks every Highway target against it.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/ggml/k_quants.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Highway's headers first: simd_types-inl.h is compiled once per target.
#include "lowbit/ggml/row_codec_internal.h"
#include "lowbit/kernels/simd_types-inl.h"

#include <algorithm>
#include <cmath>
#include <type_traits>

HWY_BEFORE_NAMESPACE();
namespace lowbit::ggml_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using lowbit::HWY_NAMESPACE::DF;  // float32 lanes
using lowbit::HWY_NAMESPACE::DI;  // int32 lanes
using lowbit::HWY_NAMESPACE::VI;
using VF = hn::Vec<DF>;

// ggml's nearest_int, per lane.
HWY_INLINE VI GgmlNearestInt(VF v) {
  const DF df;
  const DI di;
  const VI bits = hn::BitCast(di, hn::Add(v, hn::Set(df, 12582912.f)));
  return hn::Sub(hn::And(bits, hn::Set(di, 0x007FFFFF)), hn::Set(di, 0x00400000));
}

constexpr size_t kN = hn::MaxLanes(DF());  // lanes of one vector (x86: exact)
static_assert(kN <= 16, "the transposes assume a group length divisible by the lane count");
// Vectors of groups searched together. A search is a chain of dependent
// steps (each sum runs through a group's elements in order, as in the model,
// and each step starts from the min the previous one chose), so one vector
// alone waits on latencies; two independent ones interleaved keep the
// floating-point pipes busy.
constexpr size_t kK = 2;
constexpr size_t kG = kK * kN;  // groups per pass

// Up to kG groups of up to 32 elements, transposed so that lane g holds
// group g: row i (kG floats from i * kG) is element i of every group, vector
// k of a row holds groups k * kN onwards. Codes are stored as floats (small
// integers, exact), which is what the error sums consume. Missing groups are
// zeros.
struct Lanes {
  alignas(64) float x[32 * kG];
  alignas(64) float w[32 * kG];
  alignas(64) float L[32 * kG];
  alignas(64) float aux[32 * kG];
  alignas(64) float a[kG], b[kG];
};

// Transposes the kN x kN matrix whose rows are v[0..kN) in place. A stage
// pairs rows 2j, 2j + 1 and keeps their even columns in row j and their odd
// ones in row j + kN / 2: that moves the column index's lowest bit to the
// top of the row index and the row index's lowest bit to the top of the
// column index, so log2(kN) stages swap the two indices.
HWY_INLINE void TransposeSquare(VF* v) {
#if HWY_TARGET != HWY_SCALAR
  const DF df;
  for (size_t stage = 1; stage < kN; stage *= 2) {
    VF t[kN];
    for (size_t j = 0; j < kN / 2; ++j) {
      t[j] = hn::ConcatEven(df, v[2 * j + 1], v[2 * j]);
      t[j + kN / 2] = hn::ConcatOdd(df, v[2 * j + 1], v[2 * j]);
    }
    for (size_t j = 0; j < kN; ++j) v[j] = t[j];
  }
#else
  (void)v;
#endif
}

// m <= kG contiguous groups of n floats into the rows of dst.
void ToLanes(const float* src, size_t m, int n, float* dst) {
  const DF df;
  for (size_t k = 0; k < kK; ++k) {
    for (int c = 0; c < n; c += static_cast<int>(kN)) {
      VF v[kN];
      if ((k + 1) * kN <= m) {  // whole vectors: no per-row branch
        for (size_t r = 0; r < kN; ++r) v[r] = hn::LoadU(df, src + (k * kN + r) * n + c);
      } else {
        for (size_t r = 0; r < kN; ++r) {
          const size_t g = k * kN + r;
          v[r] = g < m ? hn::LoadU(df, src + g * n + c) : hn::Zero(df);
        }
      }
      TransposeSquare(v);
      for (size_t j = 0; j < kN; ++j) hn::Store(v[j], df, dst + (c + j) * kG + k * kN);
    }
  }
}

// The codes of the first m groups back out of the rows, one byte each
// (Q6_K's signed codes are stored + nmax, so they are non-negative too).
void CodesFromLanes(const float* src, size_t m, int n, uint8_t* dst) {
  const DF df;
  const DI di;
  const hn::RebindToUnsigned<DI> du;
  const hn::Rebind<uint8_t, DF> du8;
  for (size_t k = 0; k < kK && k * kN < m; ++k) {
    for (int c = 0; c < n; c += static_cast<int>(kN)) {
      VF v[kN];
      for (size_t j = 0; j < kN; ++j) v[j] = hn::Load(df, src + (c + j) * kG + k * kN);
      TransposeSquare(v);
      for (size_t r = 0; r < kN && k * kN + r < m; ++r) {
        const auto codes = hn::TruncateTo(du8, hn::BitCast(du, hn::ConvertTo(di, v[r])));
        hn::StoreU(codes, du8, dst + (k * kN + r) * n + c);
      }
    }
  }
}

// A search step's codes from v = iscale * (x - min), the model's formulas:
// make_qkx2_quants clamps nearest_int(v) to 0..nmax, make_qkx3_quants
// (qkx3_guard) clamps v from above first and maps v <= 0 to 0. kFast: every
// |v| is known to be below 2^22, where nearest_int is rounding to nearest
// even (hn::Round: one instruction, and the codes stay floats for the sums),
// and clamping to the integers 0 and nmax before rounding equals clamping
// after, so both formulas agree. Otherwise the model's integer operations,
// including the bits nearest_int gives for huge and NaN v. kLo / kHi false:
// the fast codes skip the clamp at 0 (nmax), every v being known to be
// above -0.5 (below nmax + 0.5), where rounding alone stays in range (a v in
// (-0.5, 0) gives -0, which adds and multiplies into the sums, the error and
// the codes exactly as +0 does).
template <bool kFast, bool kLo = true, bool kHi = true>
HWY_INLINE VF QkxCodes(VF v, VF fnmax, bool qkx3_guard) {
  const DF df;
  const VF zero = hn::Zero(df);
  if constexpr (kFast) {
    if constexpr (kLo) v = hn::Max(v, zero);
    if constexpr (kHi) v = hn::Min(v, fnmax);
    return hn::Round(v);
  } else {
    const DI di;
    const VI inmax = hn::ConvertTo(di, fnmax);
    VI l;
    if (qkx3_guard) {
      l = hn::IfThenElseZero(hn::RebindMask(di, hn::Gt(v, zero)),
                             GgmlNearestInt(hn::IfThenElse(hn::Lt(v, fnmax), v, fnmax)));
    } else {
      l = hn::Max(hn::Zero(di), hn::Min(inmax, GgmlNearestInt(v)));
    }
    return hn::ConvertTo(df, l);
  }
}

// make_qkx2_quants / make_qkx3_quants over the lanes (the scalar model is
// make_qkx_quants below; comments there). rms_weights: the weights are
// ggml's Q4_K/Q5_K ones, av_x + |x| with av_x the group's RMS, computed here
// from the lanes (t.w is output then).
void QkxLanes(Lanes& t, int n, const QkxParams& p, bool rms_weights) {
  const DF df;
  const VF zero = hn::Zero(df);
  const VF fnmax = hn::Set(df, static_cast<float>(p.nmax));
  const auto at = [](float* base, int i, size_t k) { return base + i * kG + k * kN; };
  const auto X = [&](int i, size_t k) { return hn::Load(df, at(t.x, i, k)); };
  const auto W = [&](int i, size_t k) { return hn::Load(df, at(t.w, i, k)); };
  if (rms_weights) {
    for (size_t k = 0; k < kK; ++k) {
      VF sum_x2 = zero;
      for (int i = 0; i < n; ++i) sum_x2 = hn::Add(sum_x2, hn::Mul(X(i, k), X(i, k)));
      const VF av_x = hn::Sqrt(hn::Div(sum_x2, hn::Set(df, static_cast<float>(n))));
      for (int i = 0; i < n; ++i) hn::Store(hn::Add(av_x, hn::Abs(X(i, k))), df, at(t.w, i, k));
    }
  }
  VF min[kK], max[kK], sum_w[kK], sum_x[kK];
  for (size_t k = 0; k < kK; ++k) {
    min[k] = max[k] = X(0, k);
    sum_w[k] = W(0, k);
    sum_x[k] = hn::Mul(sum_w[k], min[k]);
  }
  for (int i = 1; i < n; ++i) {
    for (size_t k = 0; k < kK; ++k) {
      const VF x = X(i, k), w = W(i, k);
      min[k] = hn::IfThenElse(hn::Lt(x, min[k]), x, min[k]);
      max[k] = hn::IfThenElse(hn::Gt(x, max[k]), x, max[k]);
      sum_w[k] = hn::Add(sum_w[k], w);
      sum_x[k] = hn::Add(sum_x[k], hn::Mul(w, x));
    }
  }
  using M = decltype(hn::Eq(zero, zero));
  M flat[kK];
  VF xlo[kK], xhi[kK], min0[kK], scale[kK], best[kK], iscale[kK];
  // A NaN in a searched group (it makes sum_x NaN) rules out the fast codes
  // for the whole pass; flat groups are left out of that and of the range
  // checks, since the model returns before searching them and their lanes'
  // results are discarded.
  bool ordered = true;
  for (size_t k = 0; k < kK; ++k) {
    xlo[k] = min[k];
    xhi[k] = max[k];
    min[k] = hn::IfThenElse(hn::Gt(min[k], zero), zero, min[k]);
    flat[k] = p.qkx3 ? hn::Le(max[k], min[k]) : hn::Eq(max[k], min[k]);
    min0[k] = min[k];
    ordered = ordered && hn::AllTrue(df, hn::Or(flat[k], hn::Not(hn::IsNaN(sum_x[k]))));
  }
  // Where the v = iscale * (x - m) of the searched lanes lie: float
  // rounding is monotonic, so each v lies between its values at the group's
  // smallest and largest x. fast: every |v| below 2^22; lo (hi): some v may
  // be at or below -0.5 (at or above nmax + 0.5), so the fast codes clamp
  // there.
  struct Range {
    bool fast, lo = false, hi = false;
  };
  const VF limit = hn::Set(df, 4194304.0f), lo_edge = hn::Set(df, -0.5f),
           hi_edge = hn::Set(df, static_cast<float>(p.nmax) + 0.5f);
  const auto range = [&](Range& r, size_t k, VF is, VF m) {
    const VF a = hn::Mul(is, hn::Sub(xlo[k], m)), b = hn::Mul(is, hn::Sub(xhi[k], m));
    const VF vlo = hn::Min(a, b), vhi = hn::Max(a, b);
    r.fast = r.fast && hn::AllTrue(df, hn::Or(flat[k], hn::And(hn::Lt(hn::Abs(vlo), limit), hn::Lt(hn::Abs(vhi), limit))));
    r.lo = r.lo || !hn::AllTrue(df, hn::Or(flat[k], hn::Gt(vlo, lo_edge)));
    r.hi = r.hi || !hn::AllTrue(df, hn::Or(flat[k], hn::Lt(vhi, hi_edge)));
  };
  const auto diff_term = [&](VF s, VF m, VF fl, VF x, VF w) {
    VF diff = hn::Sub(hn::Add(hn::Mul(s, fl), m), x);
    diff = p.use_mad ? hn::Abs(diff) : hn::Mul(diff, diff);
    return hn::Mul(w, diff);
  };
  // The best codes are not copied from step to step: a lane keeps the
  // iscale and min they came from (and whether they are the first codes,
  // whose formula is make_qkx2_quants's in both searches), and they are
  // recomputed from those at the end.
  VF code_is[kK], code_min[kK];
  M first_codes[kK];
  Range r{ordered};
  for (size_t k = 0; k < kK; ++k) {
    iscale[k] = hn::Div(fnmax, hn::Sub(max[k], min[k]));
    scale[k] = hn::Div(hn::Set(df, 1.0f), iscale[k]);
    best[k] = zero;
    code_is[k] = iscale[k];
    code_min[k] = min[k];
    first_codes[k] = hn::Eq(zero, zero);
    range(r, k, iscale[k], min[k]);
  }
  // The first codes and their error.
  const auto first = [&](auto fast_tag) {
    for (int i = 0; i < n; ++i) {
      for (size_t k = 0; k < kK; ++k) {
        const VF x = X(i, k);
        const VF fl = QkxCodes<decltype(fast_tag)::value>(hn::Mul(iscale[k], hn::Sub(x, min[k])), fnmax, false);
        best[k] = hn::Add(best[k], diff_term(scale[k], min[k], fl, x, W(i, k)));
      }
    }
  };
  r.fast ? first(std::true_type()) : first(std::false_type());
  for (int is = 0; is <= p.nstep; ++is) {
    const VF top = hn::Set(df, p.rmin + p.rdelta * static_cast<float>(is) + static_cast<float>(p.nmax));
    r = Range{ordered};
    for (size_t k = 0; k < kK; ++k) {
      iscale[k] = hn::Div(top, hn::Sub(max[k], min[k]));
      range(r, k, iscale[k], min[k]);
    }
    VF sum_l[kK], sum_l2[kK], sum_xl[kK];
    const VF one = hn::Set(df, 1.0f);
    const auto sums = [&](auto fast_tag, auto lo_tag, auto hi_tag) {
      for (size_t k = 0; k < kK; ++k) sum_l[k] = sum_l2[k] = sum_xl[k] = zero;
      for (int i = 0; i < n; ++i) {
        for (size_t k = 0; k < kK; ++k) {
          const VF x = X(i, k), w = W(i, k);
          const VF fl =
              QkxCodes<decltype(fast_tag)::value, decltype(lo_tag)::value, decltype(hi_tag)::value>(
                  hn::Mul(iscale[k], hn::Sub(x, min[k])), fnmax, p.qkx3);
          hn::Store(fl, df, at(t.aux, i, k));
          const VF wl = hn::Mul(w, fl);
          sum_l[k] = hn::Add(sum_l[k], wl);
          sum_l2[k] = hn::Add(sum_l2[k], hn::Mul(wl, fl));
          // The step is bound by floating-point throughput: per element
          // and vector, 7 multiplies and 8 adds, subtracts or roundings,
          // with two pipes for each kind on x86. One of the sums is
          // accumulated as t * 1 + sum, exact like an add, to move one op
          // of every two vectors onto the multiply pipes (measured ~3%;
          // all three that way was ~10% slower than none).
          const VF xl = hn::Mul(wl, x);
          sum_xl[k] = k == 0 ? hn::MulAdd(xl, one, sum_xl[k]) : hn::Add(sum_xl[k], xl);
        }
      }
    };
    const std::true_type yes;
    const std::false_type no;
    if (!r.fast) {
      sums(no, yes, yes);
    } else if (r.lo) {
      r.hi ? sums(yes, yes, yes) : sums(yes, yes, no);
    } else {
      r.hi ? sums(yes, no, yes) : sums(yes, no, no);
    }
    M d_pos[kK];
    VF this_scale[kK], this_min[kK];
    bool any = false;
    for (size_t k = 0; k < kK; ++k) {
      const VF D = hn::Sub(hn::Mul(sum_w[k], sum_l2[k]), hn::Mul(sum_l[k], sum_l[k]));
      d_pos[k] = hn::Gt(D, zero);
      any = any || !hn::AllFalse(df, d_pos[k]);
      this_scale[k] = hn::Div(hn::Sub(hn::Mul(sum_w[k], sum_xl[k]), hn::Mul(sum_x[k], sum_l[k])), D);
      this_min[k] = hn::Div(hn::Sub(hn::Mul(sum_l2[k], sum_x[k]), hn::Mul(sum_l[k], sum_xl[k])), D);
      const auto min_pos = hn::Gt(this_min[k], zero);
      this_scale[k] = hn::IfThenElse(min_pos, hn::Div(sum_xl[k], sum_l2[k]), this_scale[k]);
      this_min[k] = hn::IfThenElse(min_pos, zero, this_min[k]);
    }
    if (!any) continue;
    VF err[kK];
    for (size_t k = 0; k < kK; ++k) err[k] = zero;
    for (int i = 0; i < n; ++i) {
      for (size_t k = 0; k < kK; ++k) {
        err[k] = hn::Add(err[k], diff_term(this_scale[k], this_min[k], hn::Load(df, at(t.aux, i, k)), X(i, k), W(i, k)));
      }
    }
    M better[kK];
    any = false;
    for (size_t k = 0; k < kK; ++k) {
      better[k] = hn::And(d_pos[k], hn::Lt(err[k], best[k]));
      any = any || !hn::AllFalse(df, better[k]);
    }
    if (!any) continue;
    for (size_t k = 0; k < kK; ++k) {
      code_is[k] = hn::IfThenElse(better[k], iscale[k], code_is[k]);
      code_min[k] = hn::IfThenElse(better[k], min[k], code_min[k]);
      first_codes[k] = hn::AndNot(better[k], first_codes[k]);
      best[k] = hn::IfThenElse(better[k], err[k], best[k]);
      scale[k] = hn::IfThenElse(better[k], this_scale[k], scale[k]);
      min[k] = hn::IfThenElse(better[k], this_min[k], min[k]);
    }
  }
  // The best codes, recomputed with the model's integer operations (equal to
  // the fast codes where those were used); flat groups: all codes 0, scale
  // 0, the min as it was before the search.
  for (size_t k = 0; k < kK; ++k) {
    const bool both = p.qkx3 && !hn::AllFalse(df, first_codes[k]);
    for (int i = 0; i < n; ++i) {
      const VF v = hn::Mul(code_is[k], hn::Sub(X(i, k), code_min[k]));
      VF fl = QkxCodes<false>(v, fnmax, p.qkx3);
      if (both) fl = hn::IfThenElse(first_codes[k], QkxCodes<false>(v, fnmax, false), fl);
      hn::Store(hn::IfThenZeroElse(flat[k], fl), df, at(t.L, i, k));
    }
    hn::Store(hn::IfThenZeroElse(flat[k], scale[k]), df, t.a + k * kN);
    hn::Store(hn::Neg(hn::IfThenElse(flat[k], min0[k], min[k])), df, t.b + k * kN);
  }
}

// make_qx_quants (rmse_type 1) over the lanes (model: make_qx_quants below).
void QxLanes(Lanes& t, int n, int nmax) {
  const DF df;
  const DI di;
  const VF zero = hn::Zero(df);
  const VI lo = hn::Set(di, -nmax), hi = hn::Set(di, nmax - 1);
  const auto at = [](float* base, int i, size_t k) { return base + i * kG + k * kN; };
  for (size_t k = 0; k < kK; ++k) {
    VF amax = zero, max = zero;
    for (int i = 0; i < n; ++i) {
      const VF x = hn::Load(df, at(t.x, i, k));
      const VF ax = hn::Abs(x);
      const auto gt = hn::Gt(ax, amax);
      amax = hn::IfThenElse(gt, ax, amax);
      max = hn::IfThenElse(gt, x, max);
    }
    const auto tiny = hn::Lt(amax, hn::Set(df, kGroupMaxEps));
    // One pass at one scale: the codes into `codes`, the sums returned.
    const auto pass = [&](VF iscale, float* codes, VF& sumlx, VF& suml2) {
      sumlx = zero;
      suml2 = zero;
      for (int i = 0; i < n; ++i) {
        const VF x = hn::Load(df, at(t.x, i, k)), w = hn::Load(df, at(t.w, i, k));
        const VF fl = hn::ConvertTo(df, hn::Max(lo, hn::Min(hi, GgmlNearestInt(hn::Mul(iscale, x)))));
        hn::Store(fl, df, at(codes, i, k));
        sumlx = hn::Add(sumlx, hn::Mul(hn::Mul(w, x), fl));
        suml2 = hn::Add(suml2, hn::Mul(hn::Mul(w, fl), fl));
      }
    };
    VF sumlx, suml2;
    pass(hn::Div(hn::Set(df, static_cast<float>(-nmax)), max), t.L, sumlx, suml2);
    VF scale = hn::IfThenElse(hn::Not(hn::Eq(suml2, zero)), hn::Div(sumlx, suml2), zero);
    VF best = hn::Mul(scale, sumlx);
    for (int is = -9; is <= 9; ++is) {
      if (is == 0) continue;
      const float top = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is));
      pass(hn::Div(hn::Set(df, top), max), t.aux, sumlx, suml2);
      const auto better = hn::And(hn::Gt(suml2, zero), hn::Gt(hn::Mul(sumlx, sumlx), hn::Mul(best, suml2)));
      if (hn::AllFalse(df, better)) continue;
      for (int i = 0; i < n; ++i) {
        hn::Store(hn::IfThenElse(better, hn::Load(df, at(t.aux, i, k)), hn::Load(df, at(t.L, i, k))), df,
                  at(t.L, i, k));
      }
      scale = hn::IfThenElse(better, hn::Div(sumlx, suml2), scale);
      best = hn::IfThenElse(better, hn::Mul(scale, sumlx), best);
    }
    // Codes are stored + nmax; all-zero groups get code 0 and scale 0.
    const VF off = hn::Set(df, static_cast<float>(nmax));
    for (int i = 0; i < n; ++i) {
      hn::Store(hn::IfThenZeroElse(tiny, hn::Add(hn::Load(df, at(t.L, i, k)), off)), df, at(t.L, i, k));
    }
    hn::Store(hn::IfThenZeroElse(tiny, scale), df, t.a + k * kN);
  }
}

// Runs `search` over `groups` groups of n, kG at a time, and copies the
// codes back out of the lanes. w null: QkxLanes computes the weights.
template <class Search>
void OverLanes(const float* x, const float* w, size_t groups, int n, uint8_t* L, float* scales, float* mins,
               Search search) {
  Lanes t;  // its members are 64-byte aligned, as every target needs
  for (size_t g0 = 0; g0 < groups; g0 += kG) {
    const size_t m = std::min(kG, groups - g0);
    ToLanes(x + g0 * n, m, n, t.x);
    if (w) ToLanes(w + g0 * n, m, n, t.w);
    search(t);
    CodesFromLanes(t.L, m, n, L + g0 * n);
    for (size_t k = 0; k < m; ++k) {
      scales[g0 + k] = t.a[k];
      if (mins) mins[g0 + k] = t.b[k];
    }
  }
}

void QkxSearch(const float* x, const float* w, size_t groups, int n, const QkxParams& p, uint8_t* L, float* scales,
               float* mins) {
  OverLanes(x, w, groups, n, L, scales, mins, [&](Lanes& t) { QkxLanes(t, n, p, w == nullptr); });
}

// The requantization every K-quant ends with (model: requantize below), for
// the groups whose d and m are numbers: a NaN there meets NaN inputs, and
// which of two NaNs an operation passes on is up to the compiler's operand
// order, so requantize leaves those groups to the model's compiled code.
void Requantize(const float* x, size_t groups, int n, const float* d, const float* m, int lo, int hi, int offset,
                uint8_t* L) {
  const DF df;
  const DI di;
  const hn::RebindToUnsigned<DI> du;
  const hn::Rebind<uint8_t, DF> du8;
  const VI vlo = hn::Set(di, lo), vhi = hn::Set(di, hi), voff = hn::Set(di, offset);
  for (size_t g = 0; g < groups; ++g) {
    if (!(d[g] != 0) || std::isnan(d[g]) || (m && std::isnan(m[g]))) continue;
    const VF vd = hn::Set(df, d[g]);
    for (int c = 0; c < n; c += static_cast<int>(kN)) {
      VF v = hn::LoadU(df, x + g * n + c);
      if (m) v = hn::Add(v, hn::Set(df, m[g]));
      const VI l = hn::Add(hn::Max(vlo, hn::Min(vhi, GgmlNearestInt(hn::Div(v, vd)))), voff);
      hn::StoreU(hn::TruncateTo(du8, hn::BitCast(du, l)), du8, L + g * n + c);
    }
  }
}

void QxSearch(const float* x, const float* w, size_t groups, int n, int nmax, int8_t* L, float* scales) {
  OverLanes(x, w, groups, n, reinterpret_cast<uint8_t*>(L), scales, nullptr, [&](Lanes& t) { QxLanes(t, n, nmax); });
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::ggml_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "lowbit/core/error.h"

namespace lowbit::ggml_internal {

HWY_EXPORT(QkxSearch);
HWY_EXPORT(QxSearch);
HWY_EXPORT(Requantize);

// ============================================================ scalar model

float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* qw) {
  float amax;
  const float max = signed_absmax(x, n, &amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.f;
  }
  const auto code = [&](float iscale, int i) { return std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i]))); };
  const auto sums = [&](float iscale, float& sumlx, float& suml2) {
    sumlx = suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const float l = static_cast<float>(code(iscale, i));
      const float w = qw ? qw[i] : x[i] * x[i];
      sumlx += w * x[i] * l;
      suml2 += w * l * l;
    }
  };
  float iscale = static_cast<float>(-nmax) / max;
  float sumlx, suml2;
  sums(iscale, sumlx, suml2);
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(code(iscale, i) + nmax);
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;  // ggml: `suml2 ? ...`, true for NaN
  float best = scale * sumlx;
  for (int is = -9; is <= 9; ++is) {
    if (is == 0) continue;
    iscale = -(static_cast<float>(nmax) + 0.1f * static_cast<float>(is)) / max;
    sums(iscale, sumlx, suml2);
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(code(iscale, i) + nmax);
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

float make_qkx_quants(int n, const QkxParams& p, const float* x, const float* w, uint8_t* L, float* the_min) {
  const int nmax = p.nmax;
  float min = x[0], max = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (p.qkx3 ? max <= min : max == min) {
    std::fill(L, L + n, uint8_t{0});
    *the_min = -min;
    return 0.f;
  }
  const auto error = [&](float scale, float m, const uint8_t* codes) {
    float e = 0;
    for (int i = 0; i < n; ++i) {
      float diff = scale * static_cast<float>(codes[i]) + m - x[i];
      diff = p.use_mad ? std::fabs(diff) : diff * diff;
      e += w[i] * diff;
    }
    return e;
  };
  float iscale = static_cast<float>(nmax) / (max - min);
  float scale = 1 / iscale;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(std::max(0, std::min(nmax, nearest_int(iscale * (x[i] - min)))));
  }
  float best_error = error(scale, min, L);
  uint8_t Laux[32];
  for (int is = 0; is <= p.nstep; ++is) {
    iscale = (p.rmin + p.rdelta * static_cast<float>(is) + static_cast<float>(nmax)) / (max - min);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const float v = iscale * (x[i] - min);
      int l;
      if (p.qkx3) {
        // make_qkx3_quants guards against v being inf, NaN or huge.
        l = v > 0 ? nearest_int(v < static_cast<float>(nmax) ? v : static_cast<float>(nmax)) : 0;
      } else {
        l = std::max(0, std::min(nmax, nearest_int(v)));
      }
      Laux[i] = static_cast<uint8_t>(l);
      const float fl = static_cast<float>(l);
      sum_l += w[i] * fl;
      sum_l2 += w[i] * fl * fl;
      sum_xl += w[i] * fl * x[i];
    }
    const float D = sum_w * sum_l2 - sum_l * sum_l;
    if (D > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / D;
      float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / D;
      if (this_min > 0) {
        this_min = 0;
        this_scale = sum_xl / sum_l2;
      }
      const float cur_error = error(this_scale, this_min, Laux);
      if (cur_error < best_error) {
        std::copy(Laux, Laux + n, L);
        best_error = cur_error;
        scale = this_scale;
        min = this_min;
      }
    }
  }
  *the_min = -min;
  return scale;
}

float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* qw) {
  float max = 0;
  for (int i = 0; i < n; ++i) max = max > x[i] ? max : x[i];
  if (max < kGroupMaxEps) {
    std::fill(L, L + n, uint8_t{0});
    return 0.f;
  }
  float iscale = static_cast<float>(nmax) / max;
  for (int i = 0; i < n; ++i) L[i] = static_cast<uint8_t>(nearest_int(iscale * x[i]));
  const auto mse = [&](float s, auto code) {
    float e = 0;
    for (int i = 0; i < n; ++i) {
      const float diff = x[i] - s * static_cast<float>(code(i));
      e += qw[i] * diff * diff;
    }
    return e;
  };
  float best_mse = mse(1 / iscale, [&](int i) { return L[i]; });
  for (int is = -4; is <= 4; ++is) {
    if (is == 0) continue;
    const float iscale_is = (0.1f * static_cast<float>(is) + static_cast<float>(nmax)) / max;
    const float m = mse(1 / iscale_is, [&](int i) { return std::min(nmax, nearest_int(iscale_is * x[i])); });
    if (m < best_mse) {
      best_mse = m;
      iscale = iscale_is;
    }
  }
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::min(nmax, nearest_int(iscale * x[i]));
    L[i] = static_cast<uint8_t>(l);
    sumlx += qw[i] * x[i] * static_cast<float>(l);
    suml2 += qw[i] * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = qw[i], li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      float sl2 = suml2 - w * li * li;
      if (slx > 0 && sl2 > 0) {
        const int new_l = std::min(nmax, nearest_int(x[i] * sl2 / slx));
        if (new_l != L[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<uint8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

namespace {

// make_q3_quants with do_rmse (Q3_K without weights): codes -nmax..nmax-1
// (stored + nmax), refined one element at a time with weights x^2.
float make_q3_quants(int n, int nmax, const float* x, int8_t* L) {
  float amax;
  const float max = signed_absmax(x, n, &amax);
  if (amax < kGroupMaxEps) {
    std::fill(L, L + n, int8_t{0});
    return 0.f;
  }
  const float iscale = static_cast<float>(-nmax) / max;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = std::max(-nmax, std::min(nmax - 1, nearest_int(iscale * x[i])));
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    sumlx += w * x[i] * static_cast<float>(l);
    suml2 += w * static_cast<float>(l) * static_cast<float>(l);
  }
  for (int itry = 0; itry < 5; ++itry) {
    int n_changed = 0;
    for (int i = 0; i < n; ++i) {
      const float w = x[i] * x[i], li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      if (slx > 0) {
        float sl2 = suml2 - w * li * li;
        const int new_l = std::max(-nmax, std::min(nmax - 1, nearest_int(x[i] * sl2 / slx)));
        if (new_l != L[i]) {
          slx += w * x[i] * static_cast<float>(new_l);
          sl2 += w * static_cast<float>(new_l) * static_cast<float>(new_l);
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(new_l);
            sumlx = slx;
            suml2 = sl2;
            ++n_changed;
          }
        }
      }
    }
    if (!n_changed) break;
  }
  for (int i = 0; i < n; ++i) L[i] = static_cast<int8_t>(L[i] + nmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

std::atomic<bool> g_scalar_model{false};

// The searches over many groups: lane-parallel unless the tests force the
// scalar model.
bool scalar_forced() { return g_scalar_model.load(std::memory_order_relaxed); }

// w null: ggml's Q4_K/Q5_K weights (av_x + |x|), which the lanes compute
// themselves; the scalar model needs them given.
void qkx_search(const float* x, const float* w, size_t groups, int n, const QkxParams& p, uint8_t* L, float* scales,
                float* mins) {
  if (!scalar_forced()) return HWY_DYNAMIC_DISPATCH(QkxSearch)(x, w, groups, n, p, L, scales, mins);
  if (!w) fail_internal("qkx_search: the scalar model needs its weights");
  for (size_t g = 0; g < groups; ++g) scales[g] = make_qkx_quants(n, p, x + g * n, w + g * n, L + g * n, mins + g);
}

void qx_search(const float* x, const float* w, size_t groups, int n, int nmax, int8_t* L, float* scales) {
  if (!scalar_forced()) return HWY_DYNAMIC_DISPATCH(QxSearch)(x, w, groups, n, nmax, L, scales);
  for (size_t g = 0; g < groups; ++g) scales[g] = make_qx_quants(n, nmax, x + g * n, L + g * n, w + g * n);
}

// ggml's last step in every K-quant: with the group scales d (and mins m)
// final, codes clamp(nearest_int((x + m) / d), lo, hi) + offset, for n
// elements of each group whose d != 0; ggml skips the groups with d == 0
// (NaN goes on), so those keep the search's codes. m null: x / d.
void requantize(const float* x, size_t groups, int n, const float* d, const float* m, int lo, int hi, int offset,
                uint8_t* L) {
  const bool simd = !scalar_forced();
  if (simd) HWY_DYNAMIC_DISPATCH(Requantize)(x, groups, n, d, m, lo, hi, offset, L);
  for (size_t g = 0; g < groups; ++g) {
    if (!(d[g] != 0)) continue;
    if (simd && !std::isnan(d[g]) && !(m && std::isnan(m[g]))) continue;  // done above
    for (int i = 0; i < n; ++i) {
      const float v = m ? (x[g * n + i] + m[g]) / d[g] : x[g * n + i] / d[g];
      L[g * n + i] = static_cast<uint8_t>(std::max(lo, std::min(hi, nearest_int(v))) + offset);
    }
  }
}

// ============================================================ super-blocks

constexpr int kQK = 256;
// Super-blocks searched together: enough groups to fill 16 lanes several
// times over.
constexpr uint64_t kBatch = 8;

// sigma^2 of a super-block as the weighted paths compute it: the sum of
// squares in element order, times `factor` over 256 (2 for Q3_K..Q5_K, 1
// for Q2_K).
float sigma2_of(const float* x, float factor) {
  float sum_x2 = 0;
  for (int l = 0; l < kQK; ++l) sum_x2 += x[l] * x[l];
  return factor * sum_x2 / kQK;
}

// weights = qw * sqrt(sigma2 + x^2), and their plain sum per group of g.
void importance_weights(const float* x, const float* qw, float sigma2, int g, float* w, float* sw) {
  for (int j = 0; j < kQK / g; ++j) {
    float sum = 0;
    for (int l = 0; l < g; ++l) {
      const float xv = x[j * g + l];
      w[j * g + l] = qw[j * g + l] * std::sqrt(sigma2 + xv * xv);
      sum += w[j * g + l];
    }
    sw[j] = sum;
  }
}

// Runs batch(x, count, out, importance) over runs of up to kBatch
// super-blocks of a row piece.
template <class Batch>
void over_batches(const float* x, uint64_t n, uint8_t* out, const float* imp, uint64_t block_bytes, Batch batch) {
  for (uint64_t s = 0; s < n / kQK; s += kBatch) {
    const uint64_t count = std::min(kBatch, n / kQK - s);
    // The next batch's input, fetched while this one is searched: the
    // searches read a batch at a stride the hardware prefetchers miss. The
    // last batch fetches what follows the piece, which is usually the next
    // piece (rows are contiguous); a prefetch never faults.
    for (uint64_t i = 0; i < kBatch * kQK; i += 16) __builtin_prefetch(x + (s + count) * kQK + i, 0, 2);
    batch(x + s * kQK, count, out + s * block_bytes, imp ? imp + s * kQK : nullptr);
  }
}

// ---------------------------------------------------------------- Q4_K, Q5_K

// 8 groups of 32 with a 6-bit scale and a 6-bit min each, packed into 12
// bytes (ggml's get_scale_min_k4 reads them back).
void pack_k4_scales(const uint8_t* ls, const uint8_t* lm, uint8_t* q) {
  for (int j = 0; j < 8; ++j) {
    if (j < 4) {
      q[j] = ls[j];
      q[j + 4] = lm[j];
    } else {
      q[j + 4] = static_cast<uint8_t>((ls[j] & 0xF) | ((lm[j] & 0xF) << 4));
      q[j - 4] = static_cast<uint8_t>(q[j - 4] | ((ls[j] >> 4) << 6));
      q[j] = static_cast<uint8_t>(q[j] | ((lm[j] >> 4) << 6));
    }
  }
}
void k4_scale_min(int j, const uint8_t* q, uint8_t* d, uint8_t* m) {
  if (j < 4) {
    *d = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *d = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

struct ScaleMinK {
  int nmax;            // 15 (Q4_K) or 31 (Q5_K)
  QkxParams ref;       // make_qkx2_quants's arguments in the _ref quantizer
  bool clamp_weighted; // the weighted path clamps its scale codes to 63 (Q5_K)
  uint64_t bytes;
};
constexpr ScaleMinK kQ4K{15, {15, -1.f, 0.1f, 20, false, false}, false, 144};
constexpr ScaleMinK kQ5K{31, {31, -0.5f, 0.1f, 15, false, false}, true, 176};

// One super-block after the group search: quantize the group scales and
// mins to 6 bits, requantize the elements against them, write the block.
void finish_scale_min_k(const ScaleMinK& t, const float* x, const float* scales, const float* mins, const float* sw,
                        uint8_t* L, uint8_t* y) {
  uint8_t ls[8], lm[8];
  uint16_t d16, dmin16;
  if (!sw) {
    float max_scale = 0, max_min = 0;
    for (int j = 0; j < 8; ++j) {
      if (scales[j] > max_scale) max_scale = scales[j];
      if (mins[j] > max_min) max_min = mins[j];
    }
    const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
    const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
    for (int j = 0; j < 8; ++j) {
      ls[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_scale * scales[j])));
      lm[j] = std::min<uint8_t>(63, static_cast<uint8_t>(nearest_int(inv_min * mins[j])));
    }
    d16 = fp32_to_fp16(max_scale / 63.f);
    dmin16 = fp32_to_fp16(max_min / 63.f);
  } else {
    const float d_block = make_qp_quants(8, 63, scales, ls, sw);
    const float m_block = make_qp_quants(8, 63, mins, lm, sw);
    if (t.clamp_weighted) {
      for (int j = 0; j < 8; ++j) {
        ls[j] = std::min<uint8_t>(63, ls[j]);
        lm[j] = std::min<uint8_t>(63, lm[j]);
      }
    }
    d16 = fp32_to_fp16(d_block);
    dmin16 = fp32_to_fp16(m_block);
  }
  store_u16(y, d16);
  store_u16(y + 2, dmin16);
  uint8_t* packed = y + 4;
  pack_k4_scales(ls, lm, packed);
  float d[8], dm[8];
  for (int j = 0; j < 8; ++j) {
    uint8_t sc, m;
    k4_scale_min(j, packed, &sc, &m);
    d[j] = fp16_to_fp32(d16) * static_cast<float>(sc);
    dm[j] = fp16_to_fp32(dmin16) * static_cast<float>(m);
  }
  requantize(x, 8, 32, d, dm, 0, t.nmax, 0, L);
  if (t.nmax == 31) {
    pack_bit_plane(L, 4, y + 16);
    pack_nibbles(L, kQK, 64, y + 48);
  } else {
    pack_nibbles(L, kQK, 64, y + 16);
  }
}

void quantize_scale_min_k(const ScaleMinK& t, const float* x, uint64_t n, uint8_t* out, const float* imp) {
  static constexpr QkxParams kWeighted{0, -0.9f, 0.05f, 36, false, true};
  over_batches(x, n, out, imp, t.bytes, [&](const float* xb, uint64_t count, uint8_t* yb, const float* qw) {
    float w[kBatch * kQK], scales[kBatch * 8], mins[kBatch * 8], sw[kBatch * 8];
    uint8_t L[kBatch * kQK];
    // Without importance the lane search derives the weights from x.
    const bool lanes_weigh = !qw && !scalar_forced();
    for (uint64_t s = 0; s < count && !lanes_weigh; ++s) {
      const float* xs = xb + s * kQK;
      if (qw) {
        importance_weights(xs, qw + s * kQK, sigma2_of(xs, 2), 32, w + s * kQK, sw + s * 8);
        continue;
      }
      for (int j = 0; j < 8; ++j) {
        float sum_x2 = 0;
        for (int l = 0; l < 32; ++l) sum_x2 += xs[32 * j + l] * xs[32 * j + l];
        const float av_x = std::sqrt(sum_x2 / 32);
        for (int l = 0; l < 32; ++l) w[s * kQK + 32 * j + l] = av_x + std::fabs(xs[32 * j + l]);
      }
    }
    QkxParams p = qw ? kWeighted : t.ref;
    p.nmax = t.nmax;
    qkx_search(xb, lanes_weigh ? nullptr : w, count * 8, 32, p, L, scales, mins);
    for (uint64_t s = 0; s < count; ++s) {
      finish_scale_min_k(t, xb + s * kQK, scales + s * 8, mins + s * 8, qw ? sw + s * 8 : nullptr, L + s * kQK,
                         yb + s * t.bytes);
    }
  });
}

void quantize_q4_k(const float* x, uint64_t n, uint8_t* out, const float* imp) { quantize_scale_min_k(kQ4K, x, n, out, imp); }
void quantize_q5_k(const float* x, uint64_t n, uint8_t* out, const float* imp) { quantize_scale_min_k(kQ5K, x, n, out, imp); }

void dequantize_scale_min_k(bool q5, const uint8_t* in, uint64_t n, float* out) {
  const uint64_t bytes = q5 ? kQ5K.bytes : kQ4K.bytes;
  uint8_t codes[kQK];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* y = in + b * bytes;
    const float d = fp16_to_fp32(load_u16(y)), dmin = fp16_to_fp32(load_u16(y + 2));
    unpack_nibbles(y + (q5 ? 48 : 16), kQK, 64, codes);
    if (q5) {
      for (int i = 0; i < kQK; ++i) codes[i] = static_cast<uint8_t>(codes[i] | (bit_plane(y + 16, i) << 4));
    }
    for (int j = 0; j < 8; ++j) {
      uint8_t sc, m;
      k4_scale_min(j, y + 4, &sc, &m);
      const float d1 = d * static_cast<float>(sc), m1 = dmin * static_cast<float>(m);
      for (int i = 32 * j; i < 32 * j + 32; ++i) out[b * kQK + i] = d1 * static_cast<float>(codes[i]) - m1;
    }
  }
}
void dequantize_q4_k(const uint8_t* in, uint64_t n, float* out) { dequantize_scale_min_k(false, in, n, out); }
void dequantize_q5_k(const uint8_t* in, uint64_t n, float* out) { dequantize_scale_min_k(true, in, n, out); }

// ---------------------------------------------------------------- Q6_K

// Layout: ql[128] (low nibbles, nibble groups of 128), qh[64] (high crumbs),
// scales[16] (int8), d.
void quantize_q6_k(const float* x, uint64_t n, uint8_t* out, const float* imp) {
  over_batches(x, n, out, imp, 210, [&](const float* xb, uint64_t count, uint8_t* yb, const float* qw) {
    float w[kBatch * kQK], scales[kBatch * 16];
    int8_t L[kBatch * kQK];
    for (uint64_t i = 0; i < count * kQK; ++i) w[i] = qw ? qw[i] : xb[i] * xb[i];
    qx_search(xb, w, count * 16, 16, 32, L, scales);
    for (uint64_t s = 0; s < count; ++s) {
      const float* xs = xb + s * kQK;
      const float* sc = scales + s * 16;
      int8_t* Ls = L + s * kQK;
      uint8_t* y = yb + s * 210;
      float max_abs_scale;
      const float max_scale = signed_absmax(sc, 16, &max_abs_scale);
      if (max_abs_scale < kGroupMaxEps) {
        std::memset(y, 0, 210);
        continue;
      }
      const float iscale = -128.f / max_scale;
      const uint16_t d16 = fp32_to_fp16(1 / iscale);
      int8_t* qscales = reinterpret_cast<int8_t*>(y + 192);
      for (int ib = 0; ib < 16; ++ib) qscales[ib] = static_cast<int8_t>(std::min(127, nearest_int(iscale * sc[ib])));
      float d[16];
      for (int j = 0; j < 16; ++j) d[j] = fp16_to_fp32(d16) * static_cast<float>(qscales[j]);
      requantize(xs, 16, 16, d, nullptr, -32, 31, 32, reinterpret_cast<uint8_t*>(Ls));
      const uint8_t* codes = reinterpret_cast<const uint8_t*>(Ls);
      uint8_t high[kQK];
      for (int i = 0; i < kQK; ++i) high[i] = codes[i] >> 4;
      pack_nibbles(codes, kQK, 128, y);
      pack_crumbs(high, kQK, y + 128);
      store_u16(y + 208, d16);
    }
  });
}

void dequantize_q6_k(const uint8_t* in, uint64_t n, float* out) {
  uint8_t lo[kQK], hi[kQK];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* y = in + b * 210;
    const float d = fp16_to_fp32(load_u16(y + 208));
    unpack_nibbles(y, kQK, 128, lo);
    unpack_crumbs(y + 128, kQK, hi);
    for (int i = 0; i < kQK; ++i) {
      const float dl = d * static_cast<float>(static_cast<int8_t>(y[192 + i / 16]));
      out[b * kQK + i] = dl * static_cast<float>((lo[i] | (hi[i] << 4)) - 32);
    }
  }
}

// ---------------------------------------------------------------- Q2_K

// Layout: scales[16] (scale | min << 4), qs[64] (crumbs), d, dmin.
void quantize_q2_k(const float* x, uint64_t n, uint8_t* out, const float* imp) {
  over_batches(x, n, out, imp, 84, [&](const float* xb, uint64_t count, uint8_t* yb, const float* qw) {
    float w[kBatch * kQK], scales[kBatch * 16], mins[kBatch * 16], sw[kBatch * 16];
    uint8_t L[kBatch * kQK];
    if (qw) {
      for (uint64_t s = 0; s < count; ++s) {
        const float* xs = xb + s * kQK;
        importance_weights(xs, qw + s * kQK, sigma2_of(xs, 1), 16, w + s * kQK, sw + s * 16);
      }
      qkx_search(xb, w, count * 16, 16, {3, -0.9f, 0.05f, 36, false, true}, L, scales, mins);
    } else {
      for (uint64_t i = 0; i < count * kQK; ++i) w[i] = std::fabs(xb[i]);
      qkx_search(xb, w, count * 16, 16, {3, -0.5f, 0.1f, 15, true, false}, L, scales, mins);
    }
    for (uint64_t s = 0; s < count; ++s) {
      const float* xs = xb + s * kQK;
      const float* sc = scales + s * 16;
      const float* mn = mins + s * 16;
      uint8_t* Ls = L + s * kQK;
      uint8_t* y = yb + s * 84;
      float dm, mm;
      if (qw) {
        uint8_t ls[16], lm[16];
        dm = make_qp_quants(16, 15, sc, ls, sw + s * 16);
        mm = make_qp_quants(16, 15, mn, lm, sw + s * 16);
        store_u16(y + 80, fp32_to_fp16(dm));
        store_u16(y + 82, fp32_to_fp16(mm));
        for (int j = 0; j < 16; ++j) y[j] = static_cast<uint8_t>(ls[j] | (lm[j] << 4));
      } else {
        float max_scale = 0, max_min = 0;
        for (int j = 0; j < 16; ++j) {
          if (sc[j] > max_scale) max_scale = sc[j];
          if (mn[j] > max_min) max_min = mn[j];
        }
        if (max_scale > 0) {
          const float iscale = 15.f / max_scale;
          for (int j = 0; j < 16; ++j) y[j] = static_cast<uint8_t>(nearest_int(iscale * sc[j]));
          store_u16(y + 80, fp32_to_fp16(max_scale / 15.f));
        } else {
          std::memset(y, 0, 16);
          store_u16(y + 80, fp32_to_fp16(0.f));
        }
        if (max_min > 0) {
          const float iscale = 15.f / max_min;
          for (int j = 0; j < 16; ++j) y[j] = static_cast<uint8_t>(y[j] | (nearest_int(iscale * mn[j]) << 4));
          store_u16(y + 82, fp32_to_fp16(max_min / 15.f));
        } else {
          store_u16(y + 82, fp32_to_fp16(0.f));
        }
      }
      dm = fp16_to_fp32(load_u16(y + 80));
      mm = fp16_to_fp32(load_u16(y + 82));
      float d[16], m[16];
      for (int j = 0; j < 16; ++j) {
        d[j] = dm * static_cast<float>(y[j] & 0xF);
        m[j] = mm * static_cast<float>(y[j] >> 4);
      }
      requantize(xs, 16, 16, d, m, 0, 3, 0, Ls);
      pack_crumbs(Ls, kQK, y + 16);
    }
  });
}

void dequantize_q2_k(const uint8_t* in, uint64_t n, float* out) {
  uint8_t codes[kQK];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* y = in + b * 84;
    const float d = fp16_to_fp32(load_u16(y + 80)), dmin = fp16_to_fp32(load_u16(y + 82));
    unpack_crumbs(y + 16, kQK, codes);
    for (int i = 0; i < kQK; ++i) {
      const uint8_t sc = y[i / 16];
      const float dl = d * static_cast<float>(sc & 0xF), ml = dmin * static_cast<float>(sc >> 4);
      out[b * kQK + i] = dl * static_cast<float>(codes[i]) - ml;
    }
  }
}

// ---------------------------------------------------------------- Q3_K

// Layout: hmask[32] (bit plane of the third bit), qs[64] (crumbs),
// scales[12] (16 six-bit scales + 32), d.
void pack_q3_scale(int j, int l, uint8_t* q) {
  if (j < 8) {
    q[j] = static_cast<uint8_t>(l & 0xF);
  } else {
    q[j - 8] = static_cast<uint8_t>(q[j - 8] | ((l & 0xF) << 4));
  }
  q[j % 4 + 8] = static_cast<uint8_t>(q[j % 4 + 8] | ((l >> 4) << (2 * (j / 4))));
}
int q3_scale(int j, const uint8_t* q) {
  const int low = j < 8 ? q[j] & 0xF : q[j - 8] >> 4;
  return (low | (((q[8 + j % 4] >> (2 * (j / 4))) & 3) << 4)) - 32;
}

void quantize_q3_k(const float* x, uint64_t n, uint8_t* out, const float* imp) {
  int8_t L[kQK];
  float scales[16], w[kQK], sw[16];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    const float* xs = x + b * kQK;
    uint8_t* y = out + b * 110;
    uint8_t* q = y + 96;
    std::memset(q, 0, 12);
    uint16_t d16;
    if (imp) {
      importance_weights(xs, imp + b * kQK, sigma2_of(xs, 2), 16, w, sw);
      for (int j = 0; j < 16; ++j) scales[j] = make_qx_quants(16, 4, xs + 16 * j, L + 16 * j, w + 16 * j);
      int8_t Ls[16];
      const float d_block = make_qx_quants(16, 32, scales, Ls, sw);
      for (int j = 0; j < 16; ++j) pack_q3_scale(j, Ls[j], q);
      d16 = fp32_to_fp16(d_block);
    } else {
      for (int j = 0; j < 16; ++j) scales[j] = make_q3_quants(16, 4, xs + 16 * j, L + 16 * j);
      float amax;
      const float max_scale = signed_absmax(scales, 16, &amax);
      if (max_scale != 0) {
        const float iscale = -32.f / max_scale;
        for (int j = 0; j < 16; ++j) {
          const int8_t l = static_cast<int8_t>(nearest_int(iscale * scales[j]));
          pack_q3_scale(j, std::max(-32, std::min(31, static_cast<int>(l))) + 32, q);
        }
        d16 = fp32_to_fp16(1 / iscale);
      } else {
        d16 = fp32_to_fp16(0.f);
      }
    }
    store_u16(y + 108, d16);
    float d[16];
    for (int j = 0; j < 16; ++j) d[j] = fp16_to_fp32(d16) * static_cast<float>(q3_scale(j, q));
    requantize(xs, 16, 16, d, nullptr, -4, 3, 4, reinterpret_cast<uint8_t*>(L));
    const uint8_t* codes = reinterpret_cast<const uint8_t*>(L);
    pack_bit_plane(codes, 2, y);
    pack_crumbs(codes, kQK, y + 32);
  }
}

void dequantize_q3_k(const uint8_t* in, uint64_t n, float* out) {
  uint8_t codes[kQK];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* y = in + b * 110;
    const float d_all = fp16_to_fp32(load_u16(y + 108));
    unpack_crumbs(y + 32, kQK, codes);
    for (int i = 0; i < kQK; ++i) {
      const float dl = d_all * static_cast<float>(q3_scale(i / 16, y + 96));
      out[b * kQK + i] = dl * static_cast<float>(codes[i] - (bit_plane(y, i) ? 0 : 4));
    }
  }
}

const RowCodec kCodecs[] = {
    {GgmlType::kQ2_K, quantize_q2_k, dequantize_q2_k},
    {GgmlType::kQ3_K, quantize_q3_k, dequantize_q3_k},
    {GgmlType::kQ4_K, quantize_q4_k, dequantize_q4_k},
    {GgmlType::kQ5_K, quantize_q5_k, dequantize_q5_k},
    {GgmlType::kQ6_K, quantize_q6_k, dequantize_q6_k},
};

}  // namespace

std::span<const RowCodec> k_quant_codecs() { return kCodecs; }

void force_scalar_model(bool on) { g_scalar_model.store(on); }
bool scalar_model_forced() { return g_scalar_model.load(std::memory_order_relaxed); }

}  // namespace lowbit::ggml_internal

#endif  // HWY_ONCE
