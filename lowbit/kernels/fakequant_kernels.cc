// Fakequant over a chunk: float32 -> the nearest representable float32
// (decode(encode(x))), by the generic routines of lattice-inl.h.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/kernels/fakequant_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Highway's headers first: lattice-inl.h is compiled once per target.
#include "lowbit/kernels/array_kernels.h"
#include "lowbit/kernels/lattice-inl.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {

void FakequantChunk(const KernelPlan& p, const float* in, float* out, size_t n, uint64_t index0) {
  ByFamily<false, uint32_t>(p, in, nullptr, out, n, index0);
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

HWY_EXPORT(FakequantChunk);

void fakequant_chunk(const KernelPlan& p, const float* in, float* out, size_t n, uint64_t index0) {
  if (p.family == SimdFamily::kScalarOnly) {
    for (size_t i = 0; i < n; ++i) {
      out[i] = static_cast<float>(p.codec->fakequant(in[i], p.opt, index0 + i));
    }
    return;
  }
  HWY_DYNAMIC_DISPATCH(FakequantChunk)(p, in, out, n, index0);
}

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
