// The generic rounding routines shared by the SIMD kernels, compiled once per
// Highway target by each kernel file that includes it (fakequant_kernels.cc,
// encode_kernels.cc). Per-target include guard, as Highway's -inl.h files do.
// SIMD kernels for encode, decode and fakequant, compiled once per target by
// Highway (EMU128, AVX2, AVX-512) and selected at run time.
//
// One generic routine, Lattice<>, rounds every binade format (minifloats,
// integers, posits, HiFloat8); only where the shift s comes from differs
// (closed form or table, see kernel_plan.h). The rounding decision is
// integer arithmetic on the dropped bits `rem` of the significand, which is
// exactly what the scalar model's bracket decides:
//   rne: rem > half, or rem == half and the lower code is odd
//   rna: rem >= half        odd: inexact and the lower code is even
//   up/down: inexact and the sign says away from zero
//   stochastic: the dropped bits, aligned to the top of a 32-bit word and
//   truncated to r bits, plus r random bits carry out.
// All arithmetic stays in int32 lanes on non-negative values below 2^31, so
// signed compares are exact and arithmetic shifts are logical shifts.


#if defined(LOWBIT_KERNELS_LATTICE_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWBIT_KERNELS_LATTICE_INL_H_
#undef LOWBIT_KERNELS_LATTICE_INL_H_
#else
#define LOWBIT_KERNELS_LATTICE_INL_H_
#endif

#include <algorithm>
#include <bit>
#include <type_traits>
#include <vector>
#if HWY_ARCH_X86
#include <immintrin.h>
#endif

#include "hwy/highway.h"
#include "lowbit/core/error.h"
#include "lowbit/format/stochastic_bits.h"
#include "lowbit/kernels/kernel_plan.h"
#include "lowbit/kernels/simd_types-inl.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {

constexpr int kRne = static_cast<int>(Rounding::kNearestEven);
constexpr int kRna = static_cast<int>(Rounding::kNearestAway);
constexpr int kRtz = static_cast<int>(Rounding::kTowardZero);
constexpr int kUp = static_cast<int>(Rounding::kUp);
constexpr int kDown = static_cast<int>(Rounding::kDown);
constexpr int kOdd = static_cast<int>(Rounding::kOdd);
constexpr int kSr = static_cast<int>(Rounding::kStochastic);

enum Fam { kClosed = 0, kTable = 1 };

// The fast path's float addition relies on round-to-nearest-even without
// flush-to-zero or denormals-are-zero; anything else takes the generic path.
inline bool DefaultFloatEnvironment() {
#if HWY_ARCH_X86
  return (_mm_getcsr() & 0xE040u) == 0;  // RC = nearest, FTZ and DAZ off
#else
  return false;
#endif
}

// What overflowing (clamp: toward zero, away: otherwise), NaN and inf lanes
// become, per sign (0: +, 1: -), broadcast.
struct Edges {
  Edges() = default;
  Edges(const uint32_t (&clamp_)[2], const uint32_t (&away_)[2], const uint32_t (&nan_)[2],
        const uint32_t (&inf_)[2]) {
    const DI di;
    for (int s = 0; s < 2; ++s) {
      clamp[s] = hn::Set(di, static_cast<int32_t>(clamp_[s]));
      away[s] = hn::Set(di, static_cast<int32_t>(away_[s]));
      nan[s] = hn::Set(di, static_cast<int32_t>(nan_[s]));
      inf[s] = hn::Set(di, static_cast<int32_t>(inf_[s]));
    }
  }
  VI clamp[2], away[2], nan[2], inf[2];
};

// Replaces overflowing and special (NaN, inf) lanes by their results.
HWY_INLINE VI ApplyEdges(const Edges& e, VI v, MI neg, MI over, MI toward, MI special, MI isnan) {
  const auto by_sign = [&](const VI (&x)[2]) { return hn::IfThenElse(neg, x[1], x[0]); };
  v = hn::IfThenElse(over, hn::IfThenElse(toward, by_sign(e.clamp), by_sign(e.away)), v);
  return hn::IfThenElse(special, hn::IfThenElse(isnan, by_sign(e.nan), by_sign(e.inf)), v);
}

// Broadcast constants of one plan.
struct Ctx {
  explicit Ctx(const KernelPlan& p, uint32_t sr_key)
      : p(p),
        man_bits(static_cast<int>(p.man_bits)),
        emin(hn::Set(di, p.emin_biased)),
        s_closed_base(hn::Set(di, 23 - p.man_bits)),
        tiny(hn::Set(di, static_cast<int32_t>(p.tiny_bits))),
        max_pos(hn::Set(di, static_cast<int32_t>(p.max_mag_bits[0]))),
        max_neg(hn::Set(di, static_cast<int32_t>(p.max_mag_bits[1]))),
        sign_bit(hn::Set(di, static_cast<int32_t>(p.sign_bit))),
        code_mask(hn::Set(di, static_cast<int32_t>(p.code_mask))),
        clamp_lo(hn::Set(di, static_cast<int32_t>(p.clamp_lo_bits))),
        clamp_hi(hn::Set(di, static_cast<int32_t>(p.clamp_hi_bits))),
        top_mask(hn::Set(di, static_cast<int32_t>(0xffffffffu << (32 - p.opt.sr_bits)))),
        key(hn::Set(du, sr_key)),
        negative_zero(p.negative_zero),
        fast(p.fast_minifloat && DefaultFloatEnvironment()),
        s0(p.fast_minifloat ? 23 - p.man_bits : 0),  // only the fast path uses it
        mask0(hn::Set(di, static_cast<int32_t>((1u << s0) - 1))),
        half_m1(hn::Set(di, s0 > 0 ? static_cast<int32_t>((1u << (s0 - 1)) - 1) : 0)),
        step0(hn::Set(di, static_cast<int32_t>(1u << s0))),
        min_normal(hn::Set(di, static_cast<int32_t>(p.min_normal_bits))),
        magic_bits(hn::Set(di, static_cast<int32_t>(p.magic_bits))),
        magic(hn::BitCast(DF(), magic_bits)),
        code_off(hn::Set(di, p.fast_minifloat ? (p.emin_biased - 1) << p.man_bits : 0)),
        fast_saturate(SaturatesInPlace(p, s0)) {
    codes = Edges(p.clamp_code, p.away_code, p.nan_code, p.inf_code);
    bits = Edges(p.clamp_bits, p.away_bits, p.nan_bits, p.inf_bits);
  }
  DI di;
  DU du;
  const KernelPlan& p;
  int man_bits;
  VI emin, s_closed_base, tiny, max_pos, max_neg, sign_bit, code_mask, clamp_lo, clamp_hi, top_mask;
  hn::Vec<DU> key;
  bool negative_zero;  // the plan's, copied: kernels keep Ctx in registers, not behind a pointer
  bool fast;
  int s0;
  VI mask0, half_m1, step0, min_normal, magic_bits;
  hn::Vec<DF> magic;
  VI code_off;
  // The fast path may clamp overflowing lanes to the largest magnitude
  // itself (see SaturatesInPlace).
  bool fast_saturate;
  Edges codes, bits;  // the edge results as codes and as float32 bits

  // True when an overflowing lane of the fast minifloat path becomes, for
  // either sign, exactly the largest magnitude with the lane's sign, as
  // value and as code: a symmetric sign-magnitude format whose overflow
  // policy saturates. Then min(r, max) in the fast path is what ApplyEdges
  // would give (rne and stochastic never round toward zero on overflow), and
  // blocks whose maximum rounds past the format's (MX floor scales, NVFP4's
  // rounded block scales) stay on the fast path. Checked from the plan's
  // own edge results, so any other policy keeps the generic route.
  static bool SaturatesInPlace(const KernelPlan& p, int s0) {
    if (!p.fast_minifloat || p.twos_complement || p.max_mag_bits[0] != p.max_mag_bits[1]) return false;
    const uint32_t max = p.max_mag_bits[0];
    if (max < p.min_normal_bits) return false;  // the clamped lane must take the normal-code formula
    const uint32_t max_code = (max >> s0) - (static_cast<uint32_t>(p.emin_biased - 1) << p.man_bits);
    return p.away_bits[0] == max && p.away_bits[1] == (max | 0x80000000u) && p.away_code[0] == max_code &&
           p.away_code[1] == (max_code | p.sign_bit);
  }
};

HWY_INLINE VI Sel(MI m, VI yes, VI no) { return hn::IfThenElse(m, yes, no); }


HWY_INLINE MI Ge(VI a, VI b) { return hn::Not(a < b); }

// The stochastic-rounding bits of the lanes' element indices (mix32 of
// index ^ key, as stochastic_bits.h).
HWY_INLINE VI RandomBits(const Ctx& c, hn::Vec<DU> index_lo) {
  const DU du;
  auto x = hn::Xor(index_lo, c.key);
  x = hn::Xor(x, hn::ShiftRight<16>(x));
  x = hn::operator*(x, hn::Set(du, 0x7feb352dU));
  x = hn::Xor(x, hn::ShiftRight<15>(x));
  x = hn::operator*(x, hn::Set(du, 0x846ca68bU));
  x = hn::Xor(x, hn::ShiftRight<16>(x));
  return hn::BitCast(DI(), x);
}

// Stochastic rounding's decision: t holds the dropped bits aligned to the
// top of a 32-bit word; truncated to r bits and added to r random bits, a
// carry out means away from zero.
HWY_INLINE MI StochasticUp(const Ctx& c, VI t, hn::Vec<DU> index_lo) {
  VI rnd = RandomBits(c, index_lo);
  if (c.p.opt.sr_bits < 32) {
    t = hn::And(t, c.top_mask);
    rnd = hn::And(rnd, c.top_mask);
  }
  const DI di;
  const DU du;
  return hn::RebindMask(di, hn::BitCast(du, hn::Add(t, rnd)) < hn::BitCast(du, t));
}

struct LatticeOut {
  VI value;   // float32 bits of the rounded value
  VI code;    // the code
  MI fallback;  // lanes the scalar model must redo
};

// kParityFromK: the lower neighbour's code has the parity of k = sig >> s
// (minifloats with a mantissa, integers), so the code base is not needed to
// round. Otherwise (M = 0 minifloats, tables) parity comes from base + k.
template <int kMode, int kFam, bool kWantCode, bool kParityFromK>
HWY_INLINE LatticeOut Lattice(const Ctx& c, VI xb, hn::Vec<DU> index_lo) {
  const DI di;
  const VI zero = hn::Zero(di);
  const VI one = hn::Set(di, 1);
  const VI sign = hn::And(xb, hn::Set(di, static_cast<int32_t>(0x80000000u)));
  const MI neg = hn::Ne(sign, zero);
  VI a = hn::And(xb, hn::Set(di, 0x7fffffff));
  const MI special = a > hn::Set(di, 0x7f7fffff);  // inf or NaN
  if (kFam == kTable && c.p.clamp_input) {
    // Posits: never 0 from nonzero, never past maxpos.
    const MI clampable = hn::AndNot(special, hn::Ne(a, zero));
    a = Sel(clampable, hn::Min(hn::Max(a, c.clamp_lo), c.clamp_hi), a);
  }
  const VI eb = hn::ShiftRight<23>(a);
  const VI sig = hn::Or(hn::And(a, hn::Set(di, 0x7fffff)), hn::IfThenElseZero(hn::Ne(eb, zero), hn::Set(di, 0x800000)));
  VI s, base = zero;
  MI fallback = hn::FirstN(di, 0);
  MI sparse = hn::FirstN(di, 0);
  constexpr bool kNeedBase = kWantCode || (!kParityFromK && (kMode == kRne || kMode == kOdd));
  if (kFam == kClosed) {
    const VI ebp = hn::Max(eb, one);
    s = hn::Max(zero, hn::Add(c.s_closed_base, hn::Max(zero, hn::Sub(c.emin, ebp))));
    if (kNeedBase) base = hn::ShiftLeftSame(hn::Sub(hn::Max(ebp, c.emin), c.emin), c.man_bits);
  } else {
    s = hn::GatherIndex(di, c.p.s_tab.data(), eb);
    sparse = hn::AndNot(special, hn::Eq(s, hn::Set(di, KernelPlan::kSparse)));
    fallback = hn::AndNot(special, hn::Eq(s, hn::Set(di, KernelPlan::kFallback)));
    // Stochastic rounding between sparse neighbours needs a fraction of a
    // non-power-of-two gap: the scalar model does it.
    if constexpr (kMode == kSr) fallback = hn::Or(fallback, sparse);
    s = hn::Max(s, zero);
    if (kNeedBase) base = hn::BitCast(di, hn::GatherIndex(DU(), c.p.code_tab.data(), eb));
  }
  const VI sc = hn::Min(s, hn::Set(di, 31));
  const VI mask = hn::Sub(one << sc, one);  // the s dropped bits
  const VI k = sig >> sc;                   // quanta in the lower neighbour
  const VI parity = hn::And(kParityFromK ? k : hn::Add(base, k), one);
  const VI trunc = hn::AndNot(mask, a);
  // Dense lanes (s <= 23) round by adding a bias to |x|'s bits and dropping
  // the low s bits: the carry runs into the exponent exactly as the next
  // quantum up. Tiny lanes (s >= 24, below the smallest positive value)
  // become 0 or that value, per tiny_up.
  VI dense;
  MI tiny_up;
  const VI s24 = hn::Set(di, 24);
  if constexpr (kMode == kRne) {
    // (mask + parity) >> 1 is half - 1 + parity, and 0 when s = 0.
    dense = hn::AndNot(mask, hn::Add(a, hn::ShiftRight<1>(hn::Add(mask, parity))));
    tiny_up = hn::And(hn::Eq(s, s24), sig > hn::Set(di, 0x800000));
  } else if constexpr (kMode == kRna) {
    dense = hn::AndNot(mask, hn::Add(a, hn::ShiftRight<1>(hn::Add(mask, one))));
    tiny_up = hn::And(hn::Eq(s, s24), Ge(sig, hn::Set(di, 0x800000)));
  } else if constexpr (kMode == kRtz) {
    dense = trunc;
    tiny_up = hn::FirstN(di, 0);
  } else if constexpr (kMode == kUp) {
    dense = hn::AndNot(mask, hn::Add(a, hn::IfThenZeroElse(neg, mask)));
    tiny_up = hn::AndNot(neg, hn::Ne(sig, zero));
  } else if constexpr (kMode == kDown) {
    dense = hn::AndNot(mask, hn::Add(a, hn::IfThenElseZero(neg, mask)));
    tiny_up = hn::And(neg, hn::Ne(sig, zero));
  } else if constexpr (kMode == kOdd) {
    dense = hn::AndNot(mask, hn::Add(a, hn::IfThenElseZero(hn::Eq(parity, zero), mask)));
    tiny_up = hn::Ne(sig, zero);
  } else {  // stochastic
    // The dropped bits aligned to the top of a 32-bit word, truncated to r
    // bits, plus r random bits: a carry out rounds away from zero. Lanes
    // with s > 32 (far below the smallest value) need a right shift instead.
    const VI rem = hn::And(sig, mask);
    const VI n32 = hn::Set(di, 32);
    // Clamped at 0: lanes with s > 32 take the right shift below (a negative
    // shift count is undefined on the one-lane target).
    VI t = rem << hn::Max(hn::Min(hn::Sub(n32, s), hn::Set(di, 31)), zero);
    const MI far = s > n32;
    if (HWY_UNLIKELY(!hn::AllFalse(di, far))) {
      t = Sel(far, rem >> hn::Min(hn::Sub(s, n32), hn::Set(di, 31)), t);
    }
    const MI up = StochasticUp(c, t, index_lo);
    dense = hn::Add(trunc, hn::IfThenElseZero(up, one) << sc);
    tiny_up = up;
  }
  (void)parity;
  const MI tiny = s > hn::Set(di, 23);
  VI r = Sel(tiny, hn::IfThenElseZero(tiny_up, c.tiny), dense);
  VI sparse_code = zero;
  if (kFam == kTable && kMode != kSr && HWY_UNLIKELY(!hn::AllFalse(di, sparse))) {
    // Same neighbours for the whole binade: pick by the mode, from tables.
    const auto g = [&](const std::array<uint32_t, 256>& t) {
      return hn::BitCast(di, hn::GatherIndex(DU(), t.data(), eb));
    };
    const VI lo = g(c.p.sp_lo), hi = g(c.p.sp_hi), mid = g(c.p.sp_mid);
    const VI lo_code = g(c.p.sp_lo_code), hi_code = g(c.p.sp_hi_code);
    const MI lo_even = hn::Eq(hn::And(lo_code, one), zero);
    MI pick;
    if constexpr (kMode == kRne) {
      pick = hn::Or(a > mid, hn::AndNot(lo_even, hn::Eq(a, mid)));
    } else if constexpr (kMode == kRna) {
      pick = Ge(a, mid);
    } else if constexpr (kMode == kRtz) {
      pick = hn::FirstN(di, 0);
    } else if constexpr (kMode == kUp) {
      pick = hn::Not(neg);
    } else if constexpr (kMode == kDown) {
      pick = neg;
    } else {  // odd
      pick = lo_even;
    }
    pick = hn::AndNot(hn::Eq(a, lo), pick);  // exact values stay
    r = Sel(sparse, Sel(pick, hi, lo), r);
    sparse_code = Sel(pick, hi_code, lo_code);
  }

  const MI over = r > Sel(neg, c.max_neg, c.max_pos);
  MI toward;
  if constexpr (kMode == kRtz || kMode == kOdd) {
    toward = hn::Not(hn::FirstN(di, 0));
  } else if constexpr (kMode == kUp) {
    toward = neg;
  } else if constexpr (kMode == kDown) {
    toward = hn::Not(neg);
  } else {
    toward = hn::FirstN(di, 0);
  }
  const MI rare = hn::Or(special, over);
  const bool any_rare = !hn::AllFalse(di, rare);
  const MI isnan = a > hn::Set(di, 0x7f800000);

  LatticeOut out;
  out.fallback = fallback;
  const MI keep_sign = c.negative_zero ? neg : hn::And(neg, hn::Ne(r, zero));
  {
    VI v = hn::Or(r, hn::IfThenElseZero(keep_sign, sign));
    if (HWY_UNLIKELY(any_rare)) v = ApplyEdges(c.bits, v, neg, over, toward, special, isnan);
    out.value = v;
  }
  if constexpr (kWantCode) {
    VI mag;
    if (kFam == kTable && !c.p.codes_monotonic) {
      // HiFloat8: a carry into the next binade does not add 1 to the code;
      // look the result's code up from its own binade.
      const VI er = hn::ShiftRight<23>(r);
      const VI s2 = hn::Min(hn::Max(hn::GatherIndex(di, c.p.s_tab.data(), er), zero), hn::Set(di, 31));
      const VI sig_r = hn::Or(hn::And(r, hn::Set(di, 0x7fffff)),
                              hn::IfThenElseZero(hn::Ne(er, zero), hn::Set(di, 0x800000)));
      mag = hn::Add(hn::BitCast(di, hn::GatherIndex(DU(), c.p.code_tab.data(), er)), sig_r >> s2);
    } else {
      // dense - trunc is 0 or 2^s: one more quantum, one more code.
      const VI up1 = Sel(tiny, hn::IfThenElseZero(tiny_up, one), hn::Sub(dense, trunc) >> sc);
      mag = hn::Add(hn::Add(base, k), up1);
    }
    if (kFam == kTable) mag = Sel(sparse, sparse_code, mag);
    VI code;
    if (c.p.twos_complement) {
      code = Sel(neg, hn::And(hn::Sub(zero, mag), c.code_mask), mag);
    } else {
      code = hn::Or(mag, hn::IfThenElseZero(keep_sign, c.sign_bit));
    }
    if (HWY_UNLIKELY(any_rare)) code = ApplyEdges(c.codes, code, neg, over, toward, special, isnan);
    out.code = code;
  }
  return out;
}

// Codebooks: binary search for the largest entry <= x, then the pair's
// precomputed decisions (kernel_plan.cc derives them from the shared rule).
template <int kMode>
HWY_INLINE LatticeOut Codebook(const Ctx& c, VI xb) {
  const KernelPlan& p = c.p;
  const DI di;
  const DF df;
  const VI zero = hn::Zero(di);
  const auto x = hn::BitCast(df, xb);
  const int32_t n = static_cast<int32_t>(p.cb_values.size());
  const VI last = hn::Set(di, n - 1);
  VI idx = zero;
  for (int32_t step = static_cast<int32_t>(p.cb_size_pow2 / 2); step >= 1; step /= 2) {
    const VI cand = hn::Add(idx, hn::Set(di, step));
    const auto v = hn::GatherIndex(df, p.cb_values.data(), hn::Min(cand, last));
    const MI ok = hn::And(cand < hn::Set(di, n), hn::RebindMask(di, v <= x));
    idx = Sel(ok, cand, idx);
  }
  const auto lo_v = hn::GatherIndex(df, p.cb_values.data(), idx);
  const MI exact = hn::Or(hn::RebindMask(di, hn::Or(lo_v == x, x < lo_v)), hn::Eq(idx, last));
  const VI flags = hn::GatherIndex(di, reinterpret_cast<const int32_t*>(p.cb_pair_flags.data()), idx);
  auto flag = [&](uint32_t f) { return hn::Ne(hn::And(flags, hn::Set(di, static_cast<int32_t>(f))), zero); };
  MI hi;
  if constexpr (kMode == kRne || kMode == kRna) {
    const auto mid = hn::GatherIndex(df, p.cb_mid_floor.data(), idx);
    const MI gt = hn::RebindMask(di, x > mid);
    const MI tie = hn::And(flag(KernelPlan::kPairMidExact), hn::RebindMask(di, x == mid));
    hi = hn::Or(gt, hn::And(tie, flag(kMode == kRne ? KernelPlan::kPairRneTieHi : KernelPlan::kPairRnaTieHi)));
  } else if constexpr (kMode == kRtz) {
    hi = flag(KernelPlan::kPairRtzHi);
  } else if constexpr (kMode == kUp) {
    hi = hn::Not(hn::FirstN(di, 0));
  } else if constexpr (kMode == kDown) {
    hi = hn::FirstN(di, 0);
  } else {
    hi = flag(KernelPlan::kPairOddHi);
  }
  const VI pick = Sel(hn::AndNot(exact, hi), hn::Add(idx, hn::Set(di, 1)), idx);
  LatticeOut out;
  out.fallback = hn::FirstN(di, 0);
  out.value = hn::BitCast(di, hn::GatherIndex(df, p.cb_values.data(), pick));
  out.code = hn::GatherIndex(di, reinterpret_cast<const int32_t*>(p.cb_codes.data()), pick);
  const VI a = hn::And(xb, hn::Set(di, 0x7fffffff));
  const MI special = Ge(a, hn::Set(di, 0x7f800000));
  const MI isnan = a > hn::Set(di, 0x7f800000);
  const MI neg = hn::Ne(hn::And(xb, hn::Set(di, static_cast<int32_t>(0x80000000u))), zero);
  const MI none = hn::FirstN(di, 0);
  out.value = ApplyEdges(c.bits, out.value, neg, none, none, special, isnan);
  out.code = ApplyEdges(c.codes, out.code, neg, none, none, special, isnan);
  return out;
}

// What a kernel's caller has checked about a plan outside its loops, so
// that the fast path need not test it per vector: nothing, or c.fast and
// c.fast_saturate with c.negative_zero true or false.
enum KnownFast { kFastUnknown = 0, kFastSatNegZero = 1, kFastSatNoNegZero = 2 };

// The fast path for minifloats with a mantissa under rne and stochastic
// rounding. Returns false when some lane needs the generic routine: a NaN,
// inf or overflowing lane (overflow is handled here when c.fast_saturate),
// or (stochastic) a lane below the smallest normal.
template <int kMode, bool kWantCode, int kKnown = kFastUnknown>
HWY_INLINE bool FastMinifloat(const Ctx& c, VI xb, hn::Vec<DU> index_lo, LatticeOut& out) {
  const DI di;
  const DF df;
  const VI zero = hn::Zero(di);
  const VI one = hn::Set(di, 1);
  const VI sign = hn::And(xb, hn::Set(di, static_cast<int32_t>(0x80000000u)));
  const MI neg = hn::Ne(sign, zero);
  const VI a = hn::And(xb, hn::Set(di, 0x7fffffff));
  const MI sub = a < c.min_normal;
  VI r, y_bits;
  if constexpr (kMode == kRne) {
    const VI parity = hn::And(hn::ShiftRightSame(a, c.s0), one);
    const VI rn = hn::AndNot(c.mask0, hn::Add(a, hn::Add(c.half_m1, parity)));
    const auto y = hn::Add(hn::BitCast(df, a), c.magic);  // exact rne to the subnormal quantum
    y_bits = hn::BitCast(di, y);
    r = Sel(sub, hn::BitCast(di, hn::Sub(y, c.magic)), rn);
  } else {  // stochastic
    // Normal lanes drop a constant s0 bits. Vectors with a subnormal lane
    // (rare once data is scaled to the format's range) take the generic
    // routine: per-lane shifts cost more here than the occasional branch.
    if (!hn::AllFalse(di, sub)) return false;
    VI t = hn::ShiftLeftSame(hn::And(a, c.mask0), std::min(32 - c.s0, 31));
    const MI up = StochasticUp(c, t, index_lo);
    r = hn::Add(hn::AndNot(c.mask0, a), hn::IfThenElseZero(up, c.step0));
  }
  MI rare = a > hn::Set(di, 0x7f7fffff);
  if (kKnown != kFastUnknown || c.fast_saturate) {
    r = hn::Min(r, c.max_pos);  // symmetric: max_neg is max_pos (SaturatesInPlace)
  } else {
    rare = hn::Or(rare, r > Sel(neg, c.max_neg, c.max_pos));
  }
  if (HWY_UNLIKELY(!hn::AllFalse(di, rare))) return false;
  const bool negative_zero = kKnown == kFastUnknown ? c.negative_zero : kKnown == kFastSatNegZero;
  const MI keep_sign = negative_zero ? neg : hn::And(neg, hn::Ne(r, zero));
  out.value = hn::Or(r, hn::IfThenElseZero(keep_sign, sign));
  out.fallback = hn::FirstN(di, 0);
  if constexpr (kWantCode) {
    // Normal results: (exponent, mantissa) bits re-biased; subnormal ones:
    // the quanta above the magic constant.
    VI mag = hn::Sub(hn::ShiftRightSame(r, c.s0), c.code_off);
    if constexpr (kMode == kRne) mag = Sel(sub, hn::Sub(y_bits, c.magic_bits), mag);
    out.code = hn::Or(mag, hn::IfThenElseZero(keep_sign, c.sign_bit));
  }
  return true;
}

// kFam: kClosed with the parity of k, kClosedM0 (parity from the code), kTable, kCodebook.
enum FamSel { kClosedK = 0, kTableSel = 1, kCodebookSel = 2, kClosedM0 = 3 };

// Round for kClosedK under rne on a plan whose fast-path flags the caller
// has checked (kKnown, not kFastUnknown).
template <bool kWantCode, int kKnown>
HWY_INLINE LatticeOut RoundFastSaturate(const Ctx& c, VI xb) {
  LatticeOut o;
  const hn::Vec<DU> none = hn::Zero(DU());
  if (FastMinifloat<kRne, kWantCode, kKnown>(c, xb, none, o)) return o;
  return Lattice<kRne, kClosed, kWantCode, true>(c, xb, none);
}

template <int kMode, int kFam, bool kWantCode>
HWY_INLINE LatticeOut Round(const Ctx& c, VI xb, hn::Vec<DU> index_lo) {
  if constexpr (kFam == kCodebookSel) {
    return Codebook<kMode == kSr ? kRne : kMode>(c, xb);
  } else if constexpr (kFam == kClosedM0) {
    return Lattice<kMode, kClosed, kWantCode, false>(c, xb, index_lo);
  } else if constexpr (kFam == kTableSel) {
    return Lattice<kMode, kTable, kWantCode, false>(c, xb, index_lo);
  } else {
    if constexpr (kMode == kRne || kMode == kSr) {
      LatticeOut o;
      if (c.fast && FastMinifloat<kMode, kWantCode>(c, xb, index_lo, o)) return o;
    }
    return Lattice<kMode, kClosed, kWantCode, true>(c, xb, index_lo);
  }
}

// Output tag: 4-bit codes packed two per byte (low nibble first).
struct Nibbles {
  uint8_t byte;
};

template <typename TOut>
HWY_INLINE void StoreCodes(VI code, TOut* HWY_RESTRICT out) {
  const DI di;
  if constexpr (std::is_same_v<TOut, Nibbles>) {
#if HWY_TARGET == HWY_SCALAR
    (void)code;
    (void)out;  // EncodeChunk never packs on the one-lane target
#else
    // out points at the element, i.e. byte index * 2 for the packed layout;
    // callers pass the byte pointer reinterpreted. Each i64 lane holds two
    // codes c0 | c1 << 32; fold c1 down next to c0 and keep the low byte.
    const hn::Repartition<uint64_t, DI> d64;
    const hn::Rebind<uint8_t, decltype(d64)> d8;
    const auto v = hn::BitCast(d64, code);
    const auto p = hn::Or(v, hn::ShiftRight<28>(v));
#if HWY_TARGET == HWY_AVX3 || HWY_TARGET == HWY_AVX3_DL || HWY_TARGET == HWY_AVX3_ZEN4
    // One VPMOVQB; this Highway's TruncateTo takes a four-shuffle detour.
    _mm_storel_epi64(reinterpret_cast<__m128i*>(out), _mm512_cvtepi64_epi8(p.raw));
    (void)d8;
#else
    hn::StoreU(hn::TruncateTo(d8, p), d8, reinterpret_cast<uint8_t*>(out));
#endif
#endif
  } else if constexpr (sizeof(TOut) == 4) {
    hn::StoreU(code, di, reinterpret_cast<int32_t*>(out));
  } else if constexpr (sizeof(TOut) == 2) {
    const hn::Rebind<uint16_t, DI> d16;
    hn::StoreU(hn::DemoteTo(d16, code), d16, reinterpret_cast<uint16_t*>(out));
  } else {
    const hn::Rebind<uint8_t, DI> d8;
    hn::StoreU(hn::DemoteTo(d8, code), d8, reinterpret_cast<uint8_t*>(out));
  }
}

// Runs the scalar model on the lanes marked for fallback. It takes the
// input vector itself, not the memory it came from: in-place calls have
// already overwritten that memory with the vector's results.
template <bool kEncode, typename TOut>
HWY_NOINLINE void FixLanes(const KernelPlan& p, VI xb, MI fallback, size_t lanes, uint64_t index,
                           TOut* out_codes, float* out_values) {
  const DI di;
  HWY_ALIGN int32_t flags[HWY_MAX_BYTES / 4] = {};
  HWY_ALIGN int32_t in[HWY_MAX_BYTES / 4] = {};
  hn::Store(hn::VecFromMask(di, fallback), di, flags);
  hn::Store(xb, di, in);
  for (size_t i = 0; i < lanes; ++i) {
    if (!flags[i]) continue;
    const uint32_t code = p.codec->encode(std::bit_cast<float>(in[i]), p.opt, index + i);
    if constexpr (kEncode) {
      if constexpr (!std::is_same_v<TOut, Nibbles>) out_codes[i] = static_cast<TOut>(code);
    } else {
      out_values[i] = static_cast<float>(p.codec->decode(code));
    }
  }
}

// Where element i's code goes: element i of the output, or for packed
// nibbles byte i / 2 (i is always even at a vector boundary).
template <typename TOut>
HWY_INLINE TOut* CodeAt(TOut* codes, size_t i) {
  if constexpr (std::is_same_v<TOut, Nibbles>) {
    return reinterpret_cast<TOut*>(reinterpret_cast<uint8_t*>(codes) + i / 2);
  } else {
    return codes + i;
  }
}

// Rounds elements [i, i + count) with count < one vector, through padded
// buffers so that every lane sees defined input.
template <int kMode, int kFam, bool kEncode, typename TOut>
HWY_INLINE void RunPartial(const Ctx& c, const float* HWY_RESTRICT in, TOut* HWY_RESTRICT codes,
                           float* HWY_RESTRICT values, size_t i, size_t count, uint64_t index0) {
  using TBuf = std::conditional_t<std::is_same_v<TOut, Nibbles>, uint8_t, TOut>;
  const DI di;
  const DU du;
  const DF df;
  HWY_ALIGN float buf_in[HWY_MAX_BYTES / 4] = {};
  HWY_ALIGN float buf_out[HWY_MAX_BYTES / 4];
  HWY_ALIGN TBuf buf_codes[HWY_MAX_BYTES / 4];
  for (size_t j = 0; j < count; ++j) buf_in[j] = in[i + j];
  const auto idx = hn::Add(hn::Iota(du, 0), hn::Set(du, static_cast<uint32_t>(index0 + i)));
  const LatticeOut o = Round<kMode, kFam, kEncode>(c, hn::BitCast(di, hn::Load(df, buf_in)), idx);
  if constexpr (kEncode) {
    StoreCodes(o.code, buf_codes);
  } else {
    hn::Store(hn::BitCast(df, o.value), df, buf_out);
  }
  if (kFam == kTableSel && !hn::AllFalse(di, o.fallback)) {
    FixLanes<kEncode>(c.p, hn::BitCast(di, hn::Load(df, buf_in)), hn::And(o.fallback, hn::FirstN(di, count)), count,
                      index0 + i, buf_codes, buf_out);
  }
  if constexpr (std::is_same_v<TOut, Nibbles>) {
    uint8_t* bytes = reinterpret_cast<uint8_t*>(codes) + i / 2;
    for (size_t j = 0; j < count; j += 2) {
      const unsigned hi = j + 1 < count ? buf_codes[j + 1] & 0xFu : 0u;  // pad with code 0
      bytes[j / 2] = static_cast<uint8_t>((buf_codes[j] & 0xFu) | (hi << 4));
    }
  } else {
    for (size_t j = 0; j < count; ++j) {
      if constexpr (kEncode) {
        codes[i + j] = buf_codes[j];
      } else {
        values[i + j] = buf_out[j];
      }
    }
  }
}

template <int kMode, int kFam, bool kEncode, typename TOut>
HWY_NOINLINE void RunChunk(const KernelPlan& p, const float* HWY_RESTRICT in, TOut* HWY_RESTRICT codes,
                           float* HWY_RESTRICT values, size_t n, uint64_t index0) {
  const DI di;
  const DU du;
  const DF df;
  const size_t N = hn::Lanes(di);
  const Ctx c(p, stochastic_key(p.opt.seed, static_cast<uint32_t>(index0 >> 32)));
  size_t i = 0;
  const bool stream = !kEncode && p.stream_stores;
  if (stream) {
    // Peel elements until the output is vector-aligned, as Stream needs.
    const size_t mis = (reinterpret_cast<uintptr_t>(values) / 4) % N;
    const size_t head = std::min(n, mis == 0 ? 0 : N - mis);
    if (head) RunPartial<kMode, kFam, kEncode>(c, in, codes, values, 0, head, index0);
    i = head;
  }
  auto idx = hn::Add(hn::Iota(du, 0), hn::Set(du, static_cast<uint32_t>(index0 + i)));
  const auto step = hn::Set(du, static_cast<uint32_t>(N));
  for (; i + N <= n; i += N) {
    const VI xb = hn::BitCast(di, hn::LoadU(df, in + i));
    const LatticeOut o = Round<kMode, kFam, kEncode>(c, xb, idx);
    if constexpr (kEncode) {
      StoreCodes(o.code, CodeAt(codes, i));
    } else {
      if (stream) {
        hn::Stream(hn::BitCast(df, o.value), df, values + i);
      } else {
        hn::StoreU(hn::BitCast(df, o.value), df, values + i);
      }
    }
    if constexpr (kFam == kTableSel) {
      if (HWY_UNLIKELY(!hn::AllFalse(di, o.fallback))) {
        FixLanes<kEncode>(p, xb, o.fallback, N, index0 + i, kEncode ? codes + i : nullptr,
                          kEncode ? nullptr : values + i);
      }
    }
    idx = hn::Add(idx, step);
  }
#if HWY_ARCH_X86
  if (stream) _mm_sfence();  // order the non-temporal stores before returning
#endif
  if (i < n) RunPartial<kMode, kFam, kEncode>(c, in, codes, values, i, n - i, index0);
}

template <int kFam, bool kEncode, typename TOut>
void ByMode(const KernelPlan& p, const float* in, TOut* codes, float* values, size_t n, uint64_t index0) {
  switch (static_cast<int>(p.opt.mode)) {
    case kRne:
      return RunChunk<kRne, kFam, kEncode>(p, in, codes, values, n, index0);
    case kRna:
      return RunChunk<kRna, kFam, kEncode>(p, in, codes, values, n, index0);
    case kRtz:
      return RunChunk<kRtz, kFam, kEncode>(p, in, codes, values, n, index0);
    case kUp:
      return RunChunk<kUp, kFam, kEncode>(p, in, codes, values, n, index0);
    case kDown:
      return RunChunk<kDown, kFam, kEncode>(p, in, codes, values, n, index0);
    case kOdd:
      return RunChunk<kOdd, kFam, kEncode>(p, in, codes, values, n, index0);
    default:
      if constexpr (kFam != kCodebookSel) return RunChunk<kSr, kFam, kEncode>(p, in, codes, values, n, index0);
  }
}

// Dispatches to the family's kernel. Encode instantiates only the code
// widths a family can have (codebooks and HiF8 fit a byte, only float32 and
// tfloat32 need four), which keeps compile time in check.
template <bool kEncode, typename TOut>
void ByFamily(const KernelPlan& p, const float* in, TOut* codes, float* values, size_t n, uint64_t index0) {
  constexpr bool kNibbles = std::is_same_v<TOut, Nibbles>;
  constexpr bool kByte = sizeof(TOut) == 1 && !kNibbles;
  constexpr bool kHalf = sizeof(TOut) == 2;
  switch (p.family) {
    case SimdFamily::kClosedForm:
      if (p.man_bits != 0) return ByMode<kClosedK, kEncode>(p, in, codes, values, n, index0);
      if constexpr (!kEncode || kByte || kHalf || kNibbles) {
        return ByMode<kClosedM0, kEncode>(p, in, codes, values, n, index0);
      }
      break;
    case SimdFamily::kBinadeTable:
      if constexpr (!kEncode || kByte || kHalf) return ByMode<kTableSel, kEncode>(p, in, codes, values, n, index0);
      break;
    case SimdFamily::kCodebook:
      if constexpr (!kEncode || kByte || kNibbles) {
        return ByMode<kCodebookSel, kEncode>(p, in, codes, values, n, index0);
      }
      break;
    case SimdFamily::kScalarOnly:
      break;
  }
  fail_internal("no SIMD kernel for this family and code width");
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#endif  // LOWBIT_KERNELS_LATTICE_INL_H_
