// Fused small-block quantization (small_block_kernels.h), compiled once per
// Highway target. A batch is 16 blocks; the scales of a batch are computed
// one block per lane (16 lanes on AVX-512, two vectors of 8 on AVX2), the
// elements one vector at a time with the block's scale broadcast, through
// the same per-vector step as scaled_row (scaled_vec-inl.h).

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/kernels/small_block_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Highway's headers first: the -inl.h files are compiled once per target.
#include "lowbit/kernels/lattice-inl.h"
#include "lowbit/kernels/scaled_vec-inl.h"
#include "lowbit/kernels/small_block_kernels.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>
#include <vector>

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {

uint32_t MaxAbsBits(const float* HWY_RESTRICT in, size_t n) {
  const DI di;
  const size_t N = hn::Lanes(di);
  const VI absmask = hn::Set(di, 0x7fffffff);
  // Four accumulators: the loop runs at load speed, not max latency.
  VI m0 = hn::Zero(di), m1 = m0, m2 = m0, m3 = m0;
  const int32_t* p = reinterpret_cast<const int32_t*>(in);
  size_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    m0 = hn::Max(m0, hn::And(hn::LoadU(di, p + i), absmask));
    m1 = hn::Max(m1, hn::And(hn::LoadU(di, p + i + N), absmask));
    m2 = hn::Max(m2, hn::And(hn::LoadU(di, p + i + 2 * N), absmask));
    m3 = hn::Max(m3, hn::And(hn::LoadU(di, p + i + 3 * N), absmask));
  }
  for (; i + N <= n; i += N) m0 = hn::Max(m0, hn::And(hn::LoadU(di, p + i), absmask));
  uint32_t m = static_cast<uint32_t>(hn::GetLane(hn::MaxOfLanes(di, hn::Max(hn::Max(m0, m1), hn::Max(m2, m3)))));
  for (; i < n; ++i) m = std::max(m, std::bit_cast<uint32_t>(in[i]) & 0x7fffffffu);
  return m;
}

#if HWY_TARGET == HWY_SCALAR
// One lane: no batch of blocks per vector; callers take the general route.
bool SmallBlockSupported() { return false; }
void SmallBlockRow(const KernelPlan&, const kernels::SmallBlockSpec&, const float*, size_t,
                   const kernels::SmallBlockOut&) {
  fail_internal("small_block_row on the one-lane target");
}
void SmallBlockDequantRow(const kernels::SmallBlockDequant&, const void*, const uint8_t*, size_t, float*) {
  fail_internal("small_block_dequant_row on the one-lane target");
}
#else

bool SmallBlockSupported() { return true; }

constexpr size_t kBatch = 16;  // blocks per batch: a whole number of vectors of lanes
using VD = hn::Vec<hn::Repartition<double, DF>>;
using MD = hn::Mask<hn::Repartition<double, DF>>;

// The scales of one batch, by block.
struct BatchScales {
  HWY_ALIGN float scale[kBatch];
  HWY_ALIGN float inv[kBatch];
  HWY_ALIGN int32_t code[kBatch];
};

// Where a batch lies in its row: nb blocks from row element j, the last one
// of `last` elements.
struct Batch {
  size_t j, nb, last;
  size_t size(size_t b, size_t group) const { return b + 1 == nb ? last : group; }
  bool whole(size_t group) const { return nb == kBatch && last == group; }
};

// amax[b]: the amax bits of block b of the batch (0 past its blocks).
HWY_INLINE void BatchAmax(const float* HWY_RESTRICT row, const Batch& t, size_t group, int32_t* HWY_RESTRICT amax) {
  const DI di;
  const DF df;
  const size_t N = hn::Lanes(di);
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3_ZEN4
  if ((group == 16 || group == 32) && t.whole(group)) {
    _mm512_store_si512(amax, BlockAmax16(row + t.j, group));
    return;
  }
#endif
  const VI absmask = hn::Set(di, 0x7fffffff);
  for (size_t b = 0; b < kBatch; ++b) {
    if (b >= t.nb) {
      amax[b] = 0;
      continue;
    }
    const float* p = row + t.j + b * group;
    const size_t size = t.size(b, group);
    VI m = hn::Zero(di);
    for (size_t k = 0; k < size; k += N) {
      const VF x = k + N <= size ? hn::LoadU(df, p + k) : LoadPart(p + k, size - k);  // padding: |0|
      m = hn::Max(m, hn::And(hn::BitCast(di, x), absmask));
    }
    amax[b] = hn::GetLane(hn::MaxOfLanes(di, m));
  }
}

HWY_INLINE MI NotFinite(VI amax) { return amax > hn::Set(DI(), 0x7f7fffff); }

// The OCP MX floor rule on E8M0, per lane (set_params_mx_floor's arithmetic).
HWY_INLINE void FloorScales(const kernels::SmallBlockSpec& s, const int32_t* amax, BatchScales& o) {
  const DI di;
  const DF df;
  const size_t N = hn::Lanes(di);
  const VI lo = hn::Set(di, -127), hi = hn::Set(di, 127), bias = hn::Set(di, 127);
  const VI tiny = hn::Set(di, 0x00400000);  // 2^-127, a float32 subnormal
  const auto pow2 = [&](VI e) { return hn::IfThenElse(e > lo, hn::ShiftLeft<23>(hn::Add(e, bias)), tiny); };
  for (size_t i = 0; i < kBatch; i += N) {
    const VI a = hn::Load(di, amax + i);
    const MI bad = NotFinite(a);
    // Subnormal and zero amax: floor(log2) <= -127, minus emax_exp >= 0.
    VI e = hn::Sub(hn::ShiftRight<23>(a), hn::Set(di, 127 + s.emax_exp));
    e = hn::IfThenElse(a < hn::Set(di, 0x00800000), lo, hn::Min(hn::Max(e, lo), hi));
    const VF nan = hn::Set(df, std::numeric_limits<float>::quiet_NaN());
    const auto bad_f = hn::RebindMask(df, bad);
    hn::Store(hn::IfThenElse(bad_f, nan, hn::BitCast(df, pow2(e))), df, o.scale + i);
    hn::Store(hn::IfThenElse(bad_f, nan, hn::BitCast(df, pow2(hn::Sub(hn::Zero(di), e)))), df, o.inv + i);
    hn::Store(hn::IfThenElse(bad, hn::Set(di, static_cast<int32_t>(s.nan_code)), hn::Add(e, bias)), di, o.code + i);
  }
}

// The absmax-like scale of clip factor alpha per lane (set_params'
// arithmetic): scale, inverse and (kWantCode) scale code.
struct LaneScales {
  VF scale, inv;
  VI code;
};
template <bool kWantCode>
HWY_INLINE LaneScales AbsmaxScales(const Ctx& sc, const kernels::SmallBlockSpec& s, VI amax, VF alpha) {
  const DI di;
  const DF df;
  const DU du;
  const MI bad = NotFinite(amax);
  const VF a = hn::BitCast(df, hn::IfThenZeroElse(bad, amax));
  VF raw = hn::Div(hn::Mul(a, alpha), hn::Set(df, s.emax_val));
  if (s.two_level) raw = s.tensor_scale == 0.0f ? hn::Zero(df) : hn::Div(raw, hn::Set(df, s.tensor_scale));
  const LatticeOut r = Round<kRne, kClosedK, kWantCode>(sc, hn::BitCast(di, raw), hn::Zero(du));
  const VF val = hn::BitCast(df, r.value);
  const VF eff = s.two_level ? hn::Mul(val, hn::Set(df, s.tensor_scale)) : val;
  const VF inv = hn::IfThenZeroElse(hn::Eq(eff, hn::Zero(df)), hn::Div(hn::Set(df, 1.0f), eff));
  const VF nan = hn::Set(df, std::numeric_limits<float>::quiet_NaN());
  const auto bad_f = hn::RebindMask(df, bad);
  LaneScales o;
  o.scale = hn::IfThenElse(bad_f, nan, eff);
  o.inv = hn::IfThenElse(bad_f, nan, inv);
  if constexpr (kWantCode) o.code = hn::IfThenElse(bad, hn::Set(di, static_cast<int32_t>(s.nan_code)), r.code);
  return o;
}

// Whether all 16 blocks of a whole batch have finite scales.
HWY_INLINE bool AllFinite(const BatchScales& s) {
  const DF df;
  auto ok = hn::IsFinite(hn::Load(df, s.scale));
  for (size_t i = hn::Lanes(df); i < kBatch; i += hn::Lanes(df)) ok = hn::And(ok, hn::IsFinite(hn::Load(df, s.scale + i)));
  return hn::AllTrue(df, ok);
}

HWY_INLINE void StoreScales(const LaneScales& l, BatchScales& o, size_t i) {
  hn::Store(l.scale, DF(), o.scale + i);
  hn::Store(l.inv, DF(), o.inv + i);
  hn::Store(l.code, DI(), o.code + i);
}

// Promotes the lower and upper half of a float vector to double.
HWY_INLINE VD LowerToDouble(VF v) {
  const hn::Half<DF> dh;
  return hn::PromoteTo(hn::Repartition<double, DF>(), hn::LowerHalf(dh, v));
}
HWY_INLINE VD UpperToDouble(VF v) {
  const hn::Half<DF> dh;
  return hn::PromoteTo(hn::Repartition<double, DF>(), hn::UpperHalf(dh, v));
}

// The float lanes' mask from the masks of their lower and upper halves.
HWY_INLINE hn::Mask<DF> JoinMasks(MD lo, MD hi) {
  const hn::Repartition<double, DF> dd;
  const size_t half = hn::Lanes(dd);  // at most 8: one byte of bits each
  uint8_t lb[8] = {}, hb[8] = {};
  hn::StoreMaskBits(dd, lo, lb);
  hn::StoreMaskBits(dd, hi, hb);
  const uint32_t bits = static_cast<uint32_t>(lb[0]) | static_cast<uint32_t>(hb[0]) << half;
  uint8_t out[8] = {};
  std::memcpy(out, &bits, sizeof bits);
  return hn::LoadMaskBits(DF(), out);
}

// A block error per lane, as a lower and an upper half of doubles.
struct LaneErr {
  VD lo, hi;
};

template <int kFam, int kKnown, bool kWhole, size_t kGroup>
HWY_NOINLINE void SearchLanes(const RowCtx& r, const Ctx& sc, const kernels::SmallBlockSpec& s, const float* tr,
                              const Batch& t, size_t g, const int32_t* amax, BatchScales& o);

// SearchLanes with the group fixed at compile time where it is 16 or 32.
template <int kFam, int kKnown>
HWY_INLINE void SearchLanesFor(bool whole, const RowCtx& r, const Ctx& sc, const kernels::SmallBlockSpec& s,
                               const float* tr, const Batch& t, size_t g, const int32_t* amax, BatchScales& o) {
  if (!whole) return SearchLanes<kFam, kKnown, false, 0>(r, sc, s, tr, t, g, amax, o);
  if (s.group == 16) return SearchLanes<kFam, kKnown, true, 16>(r, sc, s, tr, t, g, amax, o);
  if (s.group == 32) return SearchLanes<kFam, kKnown, true, 32>(r, sc, s, tr, t, g, amax, o);
  return SearchLanes<kFam, kKnown, true, 0>(r, sc, s, tr, t, g, amax, o);
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3_ZEN4
// out[k * 16 + l] = p[l * stride + k] for k, l < 16: 16 contiguous loads
// and 64 shuffles (gathers would take the loads' cache misses one by one).
HWY_INLINE void Transpose16(const float* HWY_RESTRICT p, size_t stride, float* HWY_RESTRICT out) {
  __m512 r[16], t[16];
  for (int l = 0; l < 16; ++l) r[l] = _mm512_loadu_ps(p + static_cast<size_t>(l) * stride);
  for (int i = 0; i < 8; ++i) {  // 32-bit pairs of rows 2i, 2i + 1
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  const auto lo64 = [](__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_unpacklo_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
  };
  const auto hi64 = [](__m512 a, __m512 b) {
    return _mm512_castpd_ps(_mm512_unpackhi_pd(_mm512_castps_pd(a), _mm512_castps_pd(b)));
  };
  for (int i = 0; i < 4; ++i) {  // 64-bit pairs: each 128-bit lane holds a 4 x 4 tile
    r[4 * i] = lo64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 1] = hi64(t[4 * i], t[4 * i + 2]);
    r[4 * i + 2] = lo64(t[4 * i + 1], t[4 * i + 3]);
    r[4 * i + 3] = hi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int i = 0; i < 2; ++i) {  // then 128-bit lanes, twice
    for (int j = 0; j < 4; ++j) {
      t[8 * i + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0x88);
      t[8 * i + 4 + j] = _mm512_shuffle_f32x4(r[8 * i + j], r[8 * i + 4 + j], 0xDD);
    }
  }
  for (int j = 0; j < 8; ++j) {
    _mm512_store_ps(out + j * 16, _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88));
    _mm512_store_ps(out + (8 + j) * 16, _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD));
  }
}
#endif

// Lane group g's elements transposed: tr[k * N + l] is element k of block
// g + l of the batch, 0 past its block and past the batch. Returns whether
// the lane group is whole (N blocks of `group` elements).
HWY_INLINE bool LoadLanes(const float* HWY_RESTRICT row, const Batch& t, size_t group, size_t g,
                          float* HWY_RESTRICT tr) {
  const DI di;
  const DF df;
  const size_t N = hn::Lanes(df);
  const float* p = row + t.j + g * group;
  if (g + N < t.nb || (g + N == t.nb && t.last == group)) {
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3_ZEN4
    if (group % 16 == 0) {
      for (size_t k = 0; k < group; k += 16) Transpose16(p + k, group, tr + k * N);
      return true;
    }
#endif
    const VI base = hn::Mul(hn::Iota(di, 0), hn::Set(di, static_cast<int32_t>(group)));
    for (size_t k = 0; k < group; ++k) {
      hn::Store(hn::GatherIndex(df, p, hn::Add(base, hn::Set(di, static_cast<int32_t>(k)))), df, tr + k * N);
    }
    return true;
  }
  for (size_t k = 0; k < group; ++k) {
    for (size_t l = 0; l < N; ++l) {
      const size_t b = g + l;
      tr[k * N + l] = b < t.nb && k < t.size(b, group) ? p[l * group + k] : 0.0f;
    }
  }
  return false;
}

// The mse search for the N blocks of lane group g of a batch, one block per
// lane: the candidates of the general search (quant/scale_search.cc) in its order,
// each block's error in the canonical order (element k into float partial
// k mod 16, then the double tree), the best kept on strict improvement.
// kWhole: every lane holds a block of `group` elements (else lanes' padding
// is masked out of the sums: its error is not always 0, an infinite inverse
// scale makes 0 * inv NaN). kGroup: the group when it is a compile-time
// constant (16, 32: the loops unroll and the partial sums stay in
// registers), else 0.
template <int kFam, int kKnown, bool kWhole, size_t kGroup>
HWY_NOINLINE void SearchLanes(const RowCtx& r, const Ctx& sc, const kernels::SmallBlockSpec& s, const float* tr,
                              const Batch& t, size_t g, const int32_t* amax, BatchScales& o) {
  const DI di;
  const DF df;
  const hn::Repartition<double, DF> dd;
  const size_t N = hn::Lanes(df);
  const size_t group = kGroup ? kGroup : s.group;
  HWY_ALIGN int32_t sizes[HWY_MAX_BYTES / 4];
  for (size_t l = 0; l < N; ++l) sizes[l] = g + l < t.nb ? static_cast<int32_t>(t.size(g + l, group)) : 0;
  const VI lane_size = hn::Load(di, sizes);
  const VI a = hn::Load(di, amax + g);
  const VF nan = hn::Set(df, std::numeric_limits<float>::quiet_NaN());

  const auto errors = [&](VF alpha) HWY_ATTR {
    const LaneScales ls = AbsmaxScales<false>(sc, s, a, alpha);
    const auto finite = hn::IsFinite(ls.scale);
    VF part[16];
    for (size_t k0 = 0; k0 < group; k0 += 16) {
#pragma GCC unroll 16
      for (size_t i = 0; i < 16; ++i) {
        const size_t k = k0 + i;
        VF e = hn::Zero(df);
        if (k < group) {
          const VF x = hn::Load(df, tr + k * N);
          const VF v =
              hn::BitCast(df, RoundScaled<kRne, kFam, false, kKnown>(r, hn::Mul(x, ls.inv), 0).value);
          const VF d = hn::Sub(hn::IfThenElse(finite, hn::Mul(v, ls.scale), nan), x);
          e = hn::Mul(d, d);
          if (!kWhole) e = hn::IfThenElseZero(hn::RebindMask(df, hn::Set(di, static_cast<int32_t>(k)) < lane_size), e);
        }
        part[i] = k0 == 0 ? e : hn::Add(part[i], e);
      }
    }
    // The canonical tree: lanes k and k + 8, then k + 4, k + 2, k + 1.
    VD dlo[8], dhi[8];
    for (int k = 0; k < 8; ++k) {
      dlo[k] = hn::Add(LowerToDouble(part[k]), LowerToDouble(part[k + 8]));
      dhi[k] = hn::Add(UpperToDouble(part[k]), UpperToDouble(part[k + 8]));
    }
    for (int k = 0; k < 4; ++k) {
      dlo[k] = hn::Add(dlo[k], dlo[k + 4]);
      dhi[k] = hn::Add(dhi[k], dhi[k + 4]);
    }
    return LaneErr{hn::Add(hn::Add(dlo[0], dlo[2]), hn::Add(dlo[1], dlo[3])),
                   hn::Add(hn::Add(dhi[0], dhi[2]), hn::Add(dhi[1], dhi[3]))};
  };
  LaneErr best{hn::Set(dd, std::numeric_limits<double>::infinity()),
               hn::Set(dd, std::numeric_limits<double>::infinity())};
  VF best_alpha = hn::Set(df, 1.0f);
  const auto trial = [&](VF alpha) {
    const LaneErr e = errors(alpha);
    const MD blo = hn::Lt(e.lo, best.lo), bhi = hn::Lt(e.hi, best.hi);
    best.lo = hn::IfThenElse(blo, e.lo, best.lo);
    best.hi = hn::IfThenElse(bhi, e.hi, best.hi);
    best_alpha = hn::IfThenElse(JoinMasks(blo, bhi), alpha, best_alpha);
    return e;
  };
  for (int k = 0; k <= kernels::kMseGridSteps; ++k) {
    trial(hn::Set(df, 1.0f - static_cast<float>(k) * kernels::kMseGridStep));
  }
  const VF step = hn::Set(df, kernels::kMseGridStep), phi = hn::Set(df, kernels::kMsePhi);
  VF lo = hn::Max(hn::Sub(best_alpha, step), hn::Set(df, 0.01f));
  VF hi = hn::Min(hn::Add(best_alpha, step), hn::Set(df, 1.0f));
  VF x1 = hn::Sub(hi, hn::Mul(phi, hn::Sub(hi, lo)));
  VF x2 = hn::Add(lo, hn::Mul(phi, hn::Sub(hi, lo)));
  LaneErr f1 = trial(x1), f2 = trial(x2);
  for (int it = 0; it < kernels::kMseRefineSteps; ++it) {
    // Per lane: f1 <= f2 keeps [lo, x2] (x1 is the new upper probe),
    // otherwise [x1, hi] (x2 is the new lower probe).
    const MD llo = hn::Le(f1.lo, f2.lo), lhi = hn::Le(f1.hi, f2.hi);
    const auto left = JoinMasks(llo, lhi);
    const VF nhi = hn::IfThenElse(left, x2, hi), nlo = hn::IfThenElse(left, lo, x1);
    const VF nx1 = hn::IfThenElse(left, hn::Sub(nhi, hn::Mul(phi, hn::Sub(nhi, nlo))), x2);
    const VF nx2 = hn::IfThenElse(left, x1, hn::Add(nlo, hn::Mul(phi, hn::Sub(nhi, nlo))));
    lo = nlo;
    hi = nhi;
    x1 = nx1;
    x2 = nx2;
    const LaneErr f = trial(hn::IfThenElse(left, x1, x2));
    const LaneErr old1 = f1;
    f1 = LaneErr{hn::IfThenElse(llo, f.lo, f2.lo), hn::IfThenElse(lhi, f.hi, f2.hi)};
    f2 = LaneErr{hn::IfThenElse(llo, old1.lo, f.lo), hn::IfThenElse(lhi, old1.hi, f.hi)};
  }
  StoreScales(AbsmaxScales<true>(sc, s, a, best_alpha), o, g);
}

// Quantizes the elements of a batch with their blocks' scales broadcast:
// what scaled_row's vector step does, with the layout fixed, x_hat computed
// only when stored, and the check for a non-finite scale (code 0, x_hat
// NaN) made once per block.
template <int kFam, kernels::CodeLayout kLayout, bool kDeq, int kKnown>
HWY_INLINE void EmitBatch(const RowCtx& r, const float* HWY_RESTRICT row, const Batch& t, size_t group,
                          const BatchScales& s) {
  const DF df;
  const DI di;
  const size_t N = hn::Lanes(df);
  void* const codes = r.out.codes;
  float* const deq = r.out.deq;
  if (t.whole(group) && group % N == 0 && AllFinite(s)) {
    // The common case: whole vectors of finite blocks, no tails, no checks.
    for (size_t b = 0; b < kBatch; ++b) {
      const VF scale = hn::Set(df, s.scale[b]), inv = hn::Set(df, s.inv[b]);
      for (size_t j = t.j + b * group, end = j + group; j < end; j += N) {
        const LatticeOut o = RoundScaled<kRne, kFam, true, kKnown>(r, hn::Mul(hn::LoadU(df, row + j), inv), j);
        if constexpr (kLayout != kernels::CodeLayout::kNone) StoreCodesFull(kLayout, codes, o.code, j);
        if constexpr (kDeq) hn::StoreU(hn::Mul(hn::BitCast(df, o.value), scale), df, deq + j);
      }
    }
    return;
  }
  for (size_t b = 0; b < t.nb; ++b) {
    const bool bad = !std::isfinite(s.scale[b]);
    const VF scale = hn::Set(df, s.scale[b]), inv = hn::Set(df, s.inv[b]);
    const size_t size = t.size(b, group), j0 = t.j + b * group;
    for (size_t k = 0; k < size; k += N) {
      const size_t j = j0 + k, count = std::min(N, size - k);
      const bool full = count == N;
      VI code = hn::Zero(di);
      VF d = hn::Set(df, std::numeric_limits<float>::quiet_NaN());
      if (HWY_LIKELY(!bad)) {
        const VF x = full ? hn::LoadU(df, row + j) : LoadPart(row + j, count);
        const LatticeOut o = RoundScaled<kRne, kFam, true, kKnown>(r, hn::Mul(x, inv), j);
        code = o.code;
        if constexpr (kDeq) d = hn::Mul(hn::BitCast(df, o.value), scale);
      }
      if constexpr (kLayout != kernels::CodeLayout::kNone) {
        if (full) {
          StoreCodesFull(kLayout, codes, code, j);
        } else {
          StoreCodesPartial(kLayout, codes, code, j, count);
        }
      }
      if constexpr (kDeq) {
        if (full) {
          hn::StoreU(d, df, deq + j);
        } else {
          StorePart(d, deq + j, count);
        }
      }
    }
  }
}

// Quantize writes codes, fakequant x_hat only (quant/quantize.cc's sinks).
template <int kFam, int kKnown>
HWY_INLINE void EmitBatchAnyLayout(const RowCtx& r, const float* HWY_RESTRICT row, const Batch& t, size_t group,
                                   const BatchScales& s) {
  using L = kernels::CodeLayout;
  if (r.out.deq) return EmitBatch<kFam, L::kNone, true, kKnown>(r, row, t, group, s);
  switch (r.out.layout) {
    case L::kNone:
      return;
    case L::kByte:
      return EmitBatch<kFam, L::kByte, false, kKnown>(r, row, t, group, s);
    case L::kHalf:
      return EmitBatch<kFam, L::kHalf, false, kKnown>(r, row, t, group, s);
    case L::kWord:
      return EmitBatch<kFam, L::kWord, false, kKnown>(r, row, t, group, s);
    case L::kNibbles:
      return EmitBatch<kFam, L::kNibbles, false, kKnown>(r, row, t, group, s);
  }
}

template <int kFam>
HWY_NOINLINE void SmallBlockRowT(const KernelPlan& p, const kernels::SmallBlockSpec& s, const float* HWY_RESTRICT row,
                                 size_t n, const kernels::SmallBlockOut& out) {
  const DF df;
  const DI di;
  const size_t N = hn::Lanes(df);
  kernels::ScaledOut so;
  so.layout = out.layout;
  so.codes = out.codes;
  so.deq = out.deq;
  const RowCtx r(p, 0, kernels::ScaledSpec{}, so, 0);
  // The emission's own copy, whose address goes to no call: the compiler
  // may then keep its constants in registers across the code stores
  // (r's address escapes into the search, and a uint8_t store may alias it).
  const RowCtx er = r;
  const bool floor = s.rule == kernels::SmallBlockRule::kFloorE8m0;
  // The scale format's constants (an unused copy of the element's for floor).
  const Ctx sc(floor ? p : *s.scale, 0);
  const size_t group = s.group, per_batch = kBatch * group;
  // Overflow saturates inside the fast rounding, and the sign rule is known:
  // hot loops skip the checks.
  const int known = !(r.c.fast && r.c.fast_saturate && p.opt.mode == Rounding::kNearestEven) ? kFastUnknown
                    : r.c.negative_zero                                                   ? kFastSatNegZero
                                                                                          : kFastSatNoNegZero;
  HWY_ALIGN int32_t amax[kBatch];
  BatchScales bs;
  for (size_t j = 0; j < n; j += per_batch) {
    const size_t rest = std::min(per_batch, n - j);
    const size_t nb = (rest + group - 1) / group;
    const Batch t{j, nb, rest - (nb - 1) * group};
    BatchAmax(row, t, group, amax);
    if (floor) {
      FloorScales(s, amax, bs);
    } else if (s.rule == kernels::SmallBlockRule::kAbsmax) {
      for (size_t i = 0; i < kBatch; i += N) {
        StoreScales(AbsmaxScales<true>(sc, s, hn::Load(di, amax + i), hn::Set(df, 1.0f)), bs, i);
      }
    } else {
      HWY_ALIGN float tr[kernels::kSmallBlockMaxGroup * HWY_MAX_BYTES / 4];
      for (size_t g = 0; g < nb; g += N) {
        const bool whole = LoadLanes(row, t, group, g, tr);
        if (kFam == kClosedK && known == kFastSatNegZero) {
          SearchLanesFor<kClosedK, kFastSatNegZero>(whole, r, sc, s, tr, t, g, amax, bs);
        } else if (kFam == kClosedK && known == kFastSatNoNegZero) {
          SearchLanesFor<kClosedK, kFastSatNoNegZero>(whole, r, sc, s, tr, t, g, amax, bs);
        } else {
          SearchLanesFor<kFam, kFastUnknown>(whole, r, sc, s, tr, t, g, amax, bs);
        }
      }
    }
    if (kFam == kClosedK && known == kFastSatNegZero) {
      EmitBatchAnyLayout<kClosedK, kFastSatNegZero>(er, row, t, group, bs);
    } else if (kFam == kClosedK && known == kFastSatNoNegZero) {
      EmitBatchAnyLayout<kClosedK, kFastSatNoNegZero>(er, row, t, group, bs);
    } else {
      EmitBatchAnyLayout<kFam, kFastUnknown>(er, row, t, group, bs);
    }
    if (out.scale_codes && out.scale_width == 1 && nb == kBatch) {
      const hn::Rebind<uint8_t, DI> d8;
      for (size_t i = 0; i < kBatch; i += N) {
        hn::StoreU(hn::DemoteTo(d8, hn::Load(di, bs.code + i)), d8, out.scale_codes + j / group + i);
      }
    } else if (out.scale_codes) {
      uint8_t* dst = out.scale_codes + (j / group) * static_cast<size_t>(out.scale_width);
      for (size_t b = 0; b < nb; ++b) {
        const uint32_t code = static_cast<uint32_t>(bs.code[b]);
        for (int k = 0; k < out.scale_width; ++k) *dst++ = static_cast<uint8_t>(code >> (8 * k));
      }
    }
  }
}

// Dequantization: the row's block scales from their one-byte codes in SIMD
// (gathered values times the tensor scale: the parameters dequantize()
// builds per block), then the elements: x_hat = value * scale, or NaN for a
// scale that is not finite.
template <kernels::CodeLayout kLayout>
HWY_NOINLINE void SmallBlockDequantRowT(const kernels::SmallBlockDequant& q, const void* codes,
                                        const uint8_t* scale_codes, size_t n, float* HWY_RESTRICT out) {
  const DF df;
  const DI di;
  const size_t N = hn::Lanes(df);
  const size_t group = q.group, nb = (n + group - 1) / group;
  const float* svals = reinterpret_cast<const float*>(q.scale_values);
  const VI smask = hn::Set(di, static_cast<int32_t>(q.scale_mask));
  const VF st = hn::Set(df, q.tensor_scale);
  const hn::Rebind<uint8_t, DI> d8;
  thread_local std::vector<float> scales;
  scales.resize(nb + N);
  float* const bsc = scales.data();
  for (size_t b = 0; b < nb; b += N) {
    HWY_ALIGN uint8_t cbuf[HWY_MAX_BYTES / 4] = {};
    const uint8_t* sb = scale_codes + b;
    if (b + N > nb) {
      std::memcpy(cbuf, sb, nb - b);
      sb = cbuf;
    }
    const VI idx = hn::And(hn::BitCast(di, hn::PromoteTo(DU(), hn::LoadU(d8, sb))), smask);
    const VF v = hn::GatherIndex(df, svals, idx);
    hn::StoreU(q.two_level ? hn::Mul(v, st) : v, df, bsc + b);
  }
  const auto scalar = [&](size_t j, float s) {
    uint32_t c;
    if constexpr (kLayout == kernels::CodeLayout::kByte) {
      c = static_cast<const uint8_t*>(codes)[j];
    } else {
      const uint8_t b = static_cast<const uint8_t*>(codes)[j / 2];
      c = j % 2 == 0 ? (b & 0xFu) : (b >> 4);
    }
    out[j] = std::isfinite(s) ? q.lut[c] * s : std::numeric_limits<float>::quiet_NaN();
  };
  const auto params = [&](size_t b) { return std::pair<float, float>{bsc[b], 0.0f}; };
  const auto scalar_at = [&](size_t j) { scalar(j, bsc[j / group]); };
  // As dequant_row: streaming whatever the alignment for 4-bit codes only.
  if (q.stream && kLayout == kernels::CodeLayout::kNibbles &&
      StreamDequant(q.lut, q.pair_lut, kLayout, codes, false, 0, n, group, params, scalar_at, out)) {
    return;
  }
  for (size_t b = 0; b < nb; ++b) {
    size_t k = b * group;
    const size_t end = std::min(n, k + group);
    const float s = bsc[b];
    if (std::isfinite(s) && (kLayout != kernels::CodeLayout::kNibbles || k % 2 == 0)) {
      const VF vs = hn::Set(df, s);
      for (; k + N <= end; k += N) {
        const VF v = hn::Mul(CodeValues(q.lut, q.pair_lut, kLayout, codes, k), vs);
        if (q.stream && reinterpret_cast<uintptr_t>(out + k) % (N * sizeof(float)) == 0) {
          hn::Stream(v, df, out + k);
        } else {
          hn::StoreU(v, df, out + k);
        }
      }
    }
    for (; k < end; ++k) scalar(k, s);
  }
#if HWY_ARCH_X86
  if (q.stream) _mm_sfence();
#endif
}

void SmallBlockDequantRow(const kernels::SmallBlockDequant& q, const void* codes, const uint8_t* scale_codes,
                          size_t n, float* out) {
  if (q.layout == kernels::CodeLayout::kNibbles) {
    return SmallBlockDequantRowT<kernels::CodeLayout::kNibbles>(q, codes, scale_codes, n, out);
  }
  return SmallBlockDequantRowT<kernels::CodeLayout::kByte>(q, codes, scale_codes, n, out);
}

void SmallBlockRow(const KernelPlan& p, const kernels::SmallBlockSpec& s, const float* row, size_t n,
                   const kernels::SmallBlockOut& out) {
  if (p.integer) return SmallBlockRowT<kIntSel>(p, s, row, n, out);
  if (p.man_bits != 0) return SmallBlockRowT<kClosedK>(p, s, row, n, out);
  return SmallBlockRowT<kClosedM0>(p, s, row, n, out);
}

#endif  // HWY_TARGET == HWY_SCALAR

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

HWY_EXPORT(SmallBlockSupported);
HWY_EXPORT(SmallBlockRow);
HWY_EXPORT(MaxAbsBits);
HWY_EXPORT(SmallBlockDequantRow);

bool small_block_simd() { return HWY_DYNAMIC_DISPATCH(SmallBlockSupported)(); }

bool small_block_supported(const KernelPlan& elem, const SmallBlockSpec& spec, CodeLayout layout) {
  if (elem.family != SimdFamily::kClosedForm || elem.opt.mode != Rounding::kNearestEven) return false;
  if (spec.group < 1 || spec.group > kSmallBlockMaxGroup) return false;
  if (layout == CodeLayout::kNibbles && spec.group % 2 != 0) return false;
  if (spec.rule == SmallBlockRule::kFloorE8m0) {
    if (spec.emax_exp < 0) return false;
  } else {
    const KernelPlan* s = spec.scale;
    // What ScaleCoder::round runs through the SIMD rounding (formats of up
    // to 16 bits) on the kClosedK instantiation (a mantissa, or integers).
    if (!s || s->family != SimdFamily::kClosedForm || s->man_bits == 0 || !s->decode_lut ||
        s->opt.mode != Rounding::kNearestEven) {
      return false;
    }
  }
  return small_block_simd();
}

void small_block_row(const KernelPlan& elem, const SmallBlockSpec& spec, const float* in, size_t n,
                     const SmallBlockOut& out) {
  if (out.deq && out.layout != CodeLayout::kNone) fail_internal("small_block_row writes codes or x_hat, not both");
  if (n == 0) return;
  HWY_DYNAMIC_DISPATCH(SmallBlockRow)(elem, spec, in, n, out);
}

uint32_t max_abs_bits(const float* in, size_t n) { return HWY_DYNAMIC_DISPATCH(MaxAbsBits)(in, n); }

void small_block_dequant_row(const SmallBlockDequant& q, const void* codes, const uint8_t* scale_codes, size_t n,
                             float* out) {
  if (n == 0) return;
  HWY_DYNAMIC_DISPATCH(SmallBlockDequantRow)(q, codes, scale_codes, n, out);
}

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
