// The vector types every kernel file uses: int32 lanes (the rounding works on
// float32 bit patterns as integers) and their unsigned and float twins.
// Compiled once per Highway target, hence the toggling include guard.
#if defined(LOWBIT_KERNELS_SIMD_TYPES_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef LOWBIT_KERNELS_SIMD_TYPES_INL_H_
#undef LOWBIT_KERNELS_SIMD_TYPES_INL_H_
#else
#define LOWBIT_KERNELS_SIMD_TYPES_INL_H_
#endif

#include "hwy/highway.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DI = hn::ScalableTag<int32_t>;
using DU = hn::RebindToUnsigned<DI>;
using DF = hn::RebindToFloat<DI>;
using VI = hn::Vec<DI>;
using MI = hn::Mask<DI>;

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#endif  // LOWBIT_KERNELS_SIMD_TYPES_INL_H_
