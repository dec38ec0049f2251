// The SIMD form of fp4_best_indices (ggml_fp4_codes.h) for the MXFP4 and
// NVFP4 kernels: E2M1 codes as ggml picks them, per lane, for a block scale
// d under which the shortcut holds (amax below 16 d). Compiled once per
// Highway target, hence the toggling include guard.
#if defined(LOWBIT_GGML_FP4_CODES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWBIT_GGML_FP4_CODES_INL_H_
#undef LOWBIT_GGML_FP4_CODES_INL_H_
#else
#define LOWBIT_GGML_FP4_CODES_INL_H_
#endif

#include "hwy/highway.h"
#include "lowbit/ggml/fp4_codes.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit::ggml_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// The 7 midpoints between neighbouring magnitudes under d, computed as the
// scalar model computes them (exact floats).
template <class DF>
struct Fp4Midpoints {
  hn::Vec<DF> mid[7];
  Fp4Midpoints(DF df, float d) {
    for (int k = 1; k < 8; ++k) {
      mid[k - 1] = hn::Set(df, static_cast<float>(kFp4Values[k - 1] + kFp4Values[k]) * 0.5f * d);
    }
  }
};

// The code of each lane of v as an int32 whose low nibble is stored: the
// count of midpoints below |v|, with v's sign bit added to a non-zero count.
template <class DF>
HWY_INLINE hn::Vec<hn::RebindToSigned<DF>> Fp4Codes(DF, const Fp4Midpoints<DF>& m, hn::Vec<DF> v) {
  const hn::RebindToSigned<DF> di;
  const hn::RebindToUnsigned<DF> du;
  using VI = hn::Vec<decltype(di)>;
  const auto av = hn::Abs(v);
  VI c = hn::Zero(di);
  // A true mask is -1 as a vector: subtracting it counts.
  for (int k = 0; k < 7; ++k) c = hn::Sub(c, hn::VecFromMask(di, hn::RebindMask(di, hn::Gt(av, m.mid[k]))));
  const VI sign = hn::And(hn::BitCast(di, hn::ShiftRight<28>(hn::BitCast(du, v))), hn::Set(di, 8));
  return hn::Or(c, hn::IfThenZeroElse(hn::Eq(c, hn::Zero(di)), sign));
}

// The largest |x| of n (a multiple of the lane count) floats, and whether
// any is NaN (the kernels leave such blocks to the scalar model, whose
// running maximum skips NaNs).
template <class DF>
HWY_INLINE float Fp4BlockAmax(DF df, const float* x, size_t n, bool* has_nan) {
  auto amax = hn::Zero(df);
  auto nan = hn::Ne(amax, amax);  // all false
  for (size_t j = 0; j < n; j += hn::Lanes(df)) {
    const auto v = hn::LoadU(df, x + j);
    amax = hn::Max(amax, hn::Abs(v));
    // IsNaN, not Ne(v, v): Highway 1.0.3's x86 Ne compares ordered, false on NaN.
    nan = hn::Or(nan, hn::IsNaN(v));
  }
  *has_nan = !hn::AllFalse(df, nan);
  return hn::GetLane(hn::MaxOfLanes(df, amax));
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::ggml_internal
HWY_AFTER_NAMESPACE();

#endif  // LOWBIT_GGML_FP4_CODES_INL_H_
