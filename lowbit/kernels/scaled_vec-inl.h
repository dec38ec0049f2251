// The per-vector steps of block-scaled quantization (scale, element
// rounding, zero point, codes, x_hat, error terms) and dequantization (code
// values), and the 16-block amax reduction, shared by the row kernels of
// scaled_kernels.cc and the fused small-block kernels of
// small_block_kernels.cc. Compiled once per Highway target by each file that
// includes it, after lattice-inl.h; per-target include guard, as Highway's
// -inl.h files do.

#if defined(LOWBIT_KERNELS_SCALED_VEC_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWBIT_KERNELS_SCALED_VEC_INL_H_
#undef LOWBIT_KERNELS_SCALED_VEC_INL_H_
#else
#define LOWBIT_KERNELS_SCALED_VEC_INL_H_
#endif

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <utility>

#include "hwy/highway.h"
#include "lowbit/kernels/lattice-inl.h"
#include "lowbit/kernels/scaled_kernels.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {

using VF = hn::Vec<DF>;

// Integer elements under rne/rtz/up/down: the float rounding instruction of
// the mode, then a clamp to the format's range. Exactly the scalar model:
// every float32 of magnitude >= 2^23 is an integer already, integers have
// no -0 (adding +0 turns -0 into +0), and formats without inf and NaN
// saturate. Rarely taken lanes (NaN) only occur in NaN-scale blocks, which
// the caller overwrites.
constexpr int kIntSel = 4;
using VUU = hn::Vec<DU>;

// Partial loads and stores through a padded buffer (this Highway version has
// no LoadN/StoreN); only block tails take them.
HWY_INLINE VF LoadPart(const float* p, size_t count) {
  const DF df;
  HWY_ALIGN float buf[HWY_MAX_BYTES / 4] = {};
  for (size_t k = 0; k < count; ++k) buf[k] = p[k];
  return hn::Load(df, buf);
}
HWY_INLINE void StorePart(VF v, float* p, size_t count) {
  const DF df;
  HWY_ALIGN float buf[HWY_MAX_BYTES / 4] = {};
  hn::Store(v, df, buf);
  for (size_t k = 0; k < count; ++k) p[k] = buf[k];
}

// The per-lane scale parameters of one vector.
struct LaneScale {
  VF scale, inv, z_in, z_post;
};

HWY_INLINE LaneScale Broadcast(const kernels::BlockScale& b) {
  const DF df;
  return {hn::Set(df, b.scale), hn::Set(df, b.inv), hn::Set(df, b.z_in), hn::Set(df, b.z_post)};
}

// Everything a row kernel's vector step needs, held by value: the kernels
// keep it in registers only if no pointer to it escapes (a code store
// through uint8_t* may alias anything reached through a pointer, and the
// compiler would reload every constant after every store).
struct RowCtx {
  RowCtx(const KernelPlan& p, uint32_t sr_key, const kernels::ScaledSpec& spec, const kernels::ScaledOut& out,
         uint64_t index0)
      : c(p, sr_key),
        int_lo(hn::Neg(hn::BitCast(DF(), hn::Set(DI(), static_cast<int32_t>(p.max_mag_bits[1]))))),
        int_hi(hn::BitCast(DF(), hn::Set(DI(), static_cast<int32_t>(p.max_mag_bits[0])))),
        spec(spec),
        out(out),
        index0(index0) {}
  const Ctx c;
  const VF int_lo, int_hi;  // integer elements: the clamp range
  const kernels::ScaledSpec spec;
  const kernels::ScaledOut out;
  const uint64_t index0;  // global index of the row's element 0
};

// Stores the codes of elements [j, j + count) (count <= lanes) of a row
// whose codes start at `codes`, from a full vector whose first `count`
// lanes are valid.
HWY_INLINE void StoreCodesPartial(kernels::CodeLayout layout, void* codes, VI code, size_t j, size_t count) {
  const DI di;
  HWY_ALIGN int32_t buf[HWY_MAX_BYTES / 4] = {};
  hn::Store(code, di, buf);
  for (size_t k = 0; k < count; ++k) {
    const uint32_t v = static_cast<uint32_t>(buf[k]);
    const size_t e = j + k;
    switch (layout) {
      case kernels::CodeLayout::kByte:
        static_cast<uint8_t*>(codes)[e] = static_cast<uint8_t>(v);
        break;
      case kernels::CodeLayout::kHalf:
        static_cast<uint16_t*>(codes)[e] = static_cast<uint16_t>(v);
        break;
      case kernels::CodeLayout::kWord:
        static_cast<uint32_t*>(codes)[e] = v;
        break;
      case kernels::CodeLayout::kNibbles: {
        uint8_t* b = static_cast<uint8_t*>(codes) + e / 2;
        if (e % 2 == 0) {
          *b = static_cast<uint8_t>((*b & 0xF0u) | (v & 0xFu));
        } else {
          *b = static_cast<uint8_t>((*b & 0x0Fu) | ((v & 0xFu) << 4));
        }
        break;
      }
      case kernels::CodeLayout::kNone:
        break;
    }
  }
}

// The same for a whole vector, elements [j, j + lanes) (j even for kNibbles).
HWY_INLINE void StoreCodesFull(kernels::CodeLayout layout, void* codes, VI code, size_t j) {
  switch (layout) {
    case kernels::CodeLayout::kByte:
      return StoreCodes(code, static_cast<uint8_t*>(codes) + j);
    case kernels::CodeLayout::kHalf:
      return StoreCodes(code, static_cast<uint16_t*>(codes) + j);
    case kernels::CodeLayout::kWord:
      return StoreCodes(code, static_cast<uint32_t*>(codes) + j);
    case kernels::CodeLayout::kNibbles:
#if HWY_TARGET == HWY_SCALAR
      return StoreCodesPartial(layout, codes, code, j, 1);
#else
      return StoreCodes(code, reinterpret_cast<Nibbles*>(static_cast<uint8_t*>(codes) + j / 2));
#endif
    case kernels::CodeLayout::kNone:
      return;
  }
}

// The element rounding of the scaled input u of elements [j, j + N) (j
// counts from the row's element 0): the integer shortcut for integer
// formats, else the rounding of lattice-inl.h with the scalar model for the
// lanes a table cannot express. With kWantCode false only the values are
// needed (the scale searches), and the code arithmetic folds away.
// kKnown: kClosedK under rne, and the caller has checked the plan's
// fast-path flags (KnownFast, RoundFastSaturate).
template <int kMode, int kFam, bool kWantCode = true, int kKnown = kFastUnknown>
HWY_INLINE LatticeOut RoundScaled(const RowCtx& r, VF u, size_t j) {
  const DI di;
  const DF df;
  const DU du;
  const Ctx& c = r.c;
  const VUU idx = hn::Add(hn::Iota(du, 0), hn::Set(du, static_cast<uint32_t>(r.index0 + j)));
  LatticeOut o;
  if constexpr (kFam == kIntSel) {
    VF rr;
    if constexpr (kMode == kRne) {
      rr = hn::Round(u);
    } else if constexpr (kMode == kRtz) {
      rr = hn::Trunc(u);
    } else if constexpr (kMode == kUp) {
      rr = hn::Ceil(u);
    } else {
      rr = hn::Floor(u);
    }
    rr = hn::Min(hn::Max(rr, r.int_lo), r.int_hi);
    rr = hn::Add(rr, hn::Zero(df));
    o.value = hn::BitCast(di, rr);
    o.fallback = hn::FirstN(di, 0);
    o.code = kWantCode ? hn::And(hn::ConvertTo(di, rr), c.code_mask) : hn::Zero(di);
    (void)idx;
  } else if constexpr (kKnown != kFastUnknown) {
    static_assert(kMode == kRne && kFam == kClosedK, "the fast saturating path is rne on kClosedK");
    o = RoundFastSaturate<kWantCode, kKnown>(c, hn::BitCast(di, u));
  } else {
    o = Round<kMode, kFam, kWantCode>(c, hn::BitCast(di, u), idx);
  }
  if (kFam == kTableSel && HWY_UNLIKELY(!hn::AllFalse(di, o.fallback))) {
    // Lanes the table cannot express: the scalar model, on the scaled input.
    HWY_ALIGN float ub[HWY_MAX_BYTES / 4];
    HWY_ALIGN int32_t fb[HWY_MAX_BYTES / 4], vb[HWY_MAX_BYTES / 4], cb[HWY_MAX_BYTES / 4];
    hn::Store(u, df, ub);
    hn::Store(hn::VecFromMask(di, o.fallback), di, fb);
    hn::Store(o.value, di, vb);
    hn::Store(o.code, di, cb);
    for (size_t k = 0; k < hn::Lanes(di); ++k) {
      if (!fb[k]) continue;
      const uint32_t code = c.p.codec->encode(ub[k], c.p.opt, r.index0 + j + k);
      cb[k] = static_cast<int32_t>(code);
      vb[k] = std::bit_cast<int32_t>(static_cast<float>(c.p.codec->decode(code)));
    }
    o.value = hn::Load(di, vb);
    o.code = hn::Load(di, cb);
  }
  return o;
}

// One vector of elements [j, j + count): x holds them (padding lanes past
// count hold 0). Returns x_hat and writes the codes of the valid lanes; with
// err, stores the error terms there (0 in the padding lanes).
template <int kMode, int kFam>
HWY_INLINE VF ScaledVec(const RowCtx& r, VF x, const LaneScale& s, size_t j, size_t count, bool full,
                        VF* err, const float* w) {
  const DI di;
  const DF df;
  VF u = hn::Mul(x, s.inv);
  if (r.spec.asym) u = hn::Add(u, s.z_in);
  const LatticeOut o = RoundScaled<kMode, kFam>(r, u, j);
  VF v = hn::BitCast(df, o.value);
  VF deq;
  VI code = o.code;
  if (r.spec.asym) {
    const VF q = hn::Min(hn::Max(hn::Add(v, s.z_post), hn::Zero(df)), hn::Set(df, r.spec.qmax));
    deq = hn::Mul(hn::Sub(q, hn::Add(s.z_in, s.z_post)), s.scale);
    code = hn::ConvertTo(di, q);
  } else {
    deq = hn::Mul(v, s.scale);
  }
  // Blocks without a finite scale: code 0 and NaN, whatever the lanes held.
  const auto bad = hn::Not(hn::IsFinite(s.scale));
  if (HWY_UNLIKELY(!hn::AllFalse(df, bad))) {
    deq = hn::IfThenElse(bad, hn::Set(df, std::numeric_limits<float>::quiet_NaN()), deq);
    code = hn::IfThenZeroElse(hn::RebindMask(di, bad), code);
  }
  if (r.out.layout != kernels::CodeLayout::kNone) {
    if (full) {
      StoreCodesFull(r.out.layout, r.out.codes, code, j);
    } else {
      StoreCodesPartial(r.out.layout, r.out.codes, code, j, count);
    }
  }
  if (err) {
    const VF d = hn::Sub(deq, x);
    VF e = hn::Mul(d, d);
    if (w) e = hn::Mul(e, full ? hn::LoadU(df, w + j) : LoadPart(w + j, count));
    if (!full) e = hn::IfThenElseZero(hn::FirstN(df, count), e);
    *err = e;
  }
  return deq;
}

// Values of the codes of elements [j, j + N) (full vectors only).
HWY_INLINE VF CodeValues(const float* HWY_RESTRICT lut, const uint64_t* HWY_RESTRICT pair_lut,
                         kernels::CodeLayout layout, const void* codes, size_t j) {
  const DF df;
  const DI di;
  if (layout == kernels::CodeLayout::kByte) {
    const hn::Rebind<uint8_t, DI> d8;
    const VI c = hn::BitCast(di, hn::PromoteTo(DU(), hn::LoadU(d8, static_cast<const uint8_t*>(codes) + j)));
    return hn::GatherIndex(df, lut, c);
  }
  if (layout == kernels::CodeLayout::kHalf) {
    const hn::Rebind<uint16_t, DI> d16;
    const VI c = hn::BitCast(di, hn::PromoteTo(DU(), hn::LoadU(d16, static_cast<const uint16_t*>(codes) + j)));
    return hn::GatherIndex(df, lut, c);
  }
#if HWY_TARGET == HWY_SCALAR
  (void)pair_lut;
  const uint8_t b = static_cast<const uint8_t*>(codes)[j / 2];
  return hn::Set(df, lut[j % 2 == 0 ? (b & 0xF) : (b >> 4)]);
#elif HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3_ZEN4
  // 16 lanes, 16 values: the table is one register. Each of 8 bytes is
  // doubled (b0 b0 b1 b1 ...), widened, shifted by 0 or 4 and masked to its
  // nibble, then permuted from the table.
  (void)pair_lut;
  const hn::Full128<uint8_t> d8;
  const hn::Full64<uint8_t> d8h;
  const auto bytes = hn::Combine(d8, hn::Zero(d8h), hn::LoadU(d8h, static_cast<const uint8_t*>(codes) + j / 2));
  const auto twice = hn::InterleaveLower(d8, bytes, bytes);
  const DU du;
  const auto shift = hn::Set(du, 4u);
  const auto odd = hn::And(hn::Iota(du, 0), hn::Set(du, 1u));
  const auto idx = hn::And(hn::Shr(hn::PromoteTo(du, twice), hn::Mul(odd, shift)), hn::Set(du, 15u));
  const auto table = hn::LoadU(df, lut);
  return hn::TableLookupLanes(table, hn::IndicesFromVec(df, hn::BitCast(di, idx)));
#else
  // Nibbles: one 64-bit gather per byte fetches both of its values.
  const hn::Repartition<int64_t, DF> d64;
  const hn::Rebind<int32_t, decltype(d64)> d32;
  const hn::Rebind<uint8_t, decltype(d64)> d8;
  const auto idx = hn::PromoteTo(d64, hn::PromoteTo(d32, hn::LoadU(d8, static_cast<const uint8_t*>(codes) + j / 2)));
  return hn::BitCast(df, hn::GatherIndex(d64, reinterpret_cast<const int64_t*>(pair_lut), idx));
#endif
}

// Dequantizes elements [j0, j1) of a row (codes and out at the row start)
// into whole 64-byte-aligned vectors with non-temporal stores, for outputs
// far beyond the caches (a normal store reads each line first), whatever the
// alignment of the blocks: a vector spans at most two blocks (group >=
// lanes), each lane takes its block's scale and zero, x_hat = (v - zero) *
// scale (v * scale when symmetric), NaN where the scale is not finite.
// params(b) gives block b's {scale, zero}; scalar(j) does element j alone
// (the unaligned head and the tail). Returns false, having written nothing,
// where the group or the alignment does not allow it.
template <class Params, class Scalar>
HWY_INLINE bool StreamDequant(const float* HWY_RESTRICT lut, const uint64_t* HWY_RESTRICT pair_lut,
                              kernels::CodeLayout layout, const void* codes, bool asym, size_t j0, size_t j1,
                              size_t group, const Params& params, const Scalar& scalar, float* HWY_RESTRICT out) {
  const DF df;
  const size_t N = hn::Lanes(df);
  const uintptr_t addr = reinterpret_cast<uintptr_t>(out + j0);
  const size_t head = (N - addr / sizeof(float) % N) % N;
  if (group < N || addr % sizeof(float) != 0 || j0 + head + N > j1 ||
      (layout == kernels::CodeLayout::kNibbles && (j0 + head) % 2 != 0)) {
    return false;
  }
  size_t j = j0;
  for (; j < j0 + head; ++j) scalar(j);
  const VF nan = hn::Set(df, std::numeric_limits<float>::quiet_NaN());
  const auto value = [&](size_t at, VF s, VF z) {
    const VF c = CodeValues(lut, pair_lut, layout, codes, at);
    return asym ? hn::Mul(hn::Sub(c, z), s) : hn::Mul(c, s);
  };
  for (size_t b = j / group; j + N <= j1; ++b) {
    // The vectors inside block b share its parameters...
    const size_t end = std::min(j1, (b + 1) * group);
    const auto [s0, z0] = params(b);
    const VF s = hn::Set(df, s0), z = hn::Set(df, z0);
    if (std::isfinite(s0)) {
      for (; j + N <= end; j += N) hn::Stream(value(j, s, z), df, out + j);
    } else {
      for (; j + N <= end; j += N) hn::Stream(nan, df, out + j);
    }
    // ...and one may straddle it and block b + 1, lane by lane.
    if (j < end && j + N <= j1) {
      const auto [s1, z1] = params(b + 1);
      const auto first = hn::FirstN(df, end - j);
      const VF sv = hn::IfThenElse(first, s, hn::Set(df, s1)), zv = hn::IfThenElse(first, z, hn::Set(df, z1));
      hn::Stream(hn::IfThenElse(hn::IsFinite(sv), value(j, sv, zv), nan), df, out + j);
      j += N;
    }
  }
  for (; j < j1; ++j) scalar(j);
#if HWY_ARCH_X86
  _mm_sfence();  // order the non-temporal stores before returning
#endif
  return true;
}

#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3_ZEN4
// The amax bits (max of |x| as integers: NaN above inf above every finite
// value) of 16 consecutive blocks of 16 or 32 elements at p, block k's in
// lane k: one vector of |x| bits per block, then a transpose-reduce (15
// maxes and 14 shuffles instead of a horizontal reduction per block).
HWY_INLINE __m512i BlockAmax16(const float* HWY_RESTRICT p, size_t group) {
  const __m512i am = _mm512_set1_epi32(0x7fffffff);
  __m512i v[16];
  for (int k = 0; k < 16; ++k) {
    const float* q = p + static_cast<size_t>(k) * group;
    __m512i a = _mm512_and_si512(_mm512_loadu_si512(q), am);
    if (group == 32) a = _mm512_max_epi32(a, _mm512_and_si512(_mm512_loadu_si512(q + 16), am));
    v[k] = a;
  }
  __m512i w[8], x[4];
  for (int i = 0; i < 8; ++i) {
    w[i] = _mm512_max_epi32(_mm512_unpacklo_epi32(v[2 * i], v[2 * i + 1]),
                            _mm512_unpackhi_epi32(v[2 * i], v[2 * i + 1]));
  }
  for (int j = 0; j < 4; ++j) {
    x[j] = _mm512_max_epi32(_mm512_unpacklo_epi64(w[2 * j], w[2 * j + 1]),
                            _mm512_unpackhi_epi64(w[2 * j], w[2 * j + 1]));
  }
  const __m512i y0 = _mm512_max_epi32(_mm512_shuffle_i32x4(x[0], x[1], 0x88), _mm512_shuffle_i32x4(x[0], x[1], 0xDD));
  const __m512i y1 = _mm512_max_epi32(_mm512_shuffle_i32x4(x[2], x[3], 0x88), _mm512_shuffle_i32x4(x[2], x[3], 0xDD));
  return _mm512_max_epi32(_mm512_shuffle_i32x4(y0, y1, 0x88), _mm512_shuffle_i32x4(y0, y1, 0xDD));
}
#endif

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#endif  // LOWBIT_KERNELS_SCALED_VEC_INL_H_
