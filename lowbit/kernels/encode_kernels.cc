// Encode over a chunk: float32 -> codes of 1, 2 or 4 bytes, or 4-bit codes
// packed in registers, by the generic routines of lattice-inl.h.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/kernels/encode_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Highway's headers first: lattice-inl.h is compiled once per target.
#include "lowbit/kernels/array_kernels.h"
#include "lowbit/kernels/lattice-inl.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {

void EncodeChunk(const KernelPlan& p, const float* in, void* out, int code_bytes, size_t n,
                 uint64_t index0) {
  if (code_bytes == 0) {
#if HWY_TARGET == HWY_SCALAR
    // One lane cannot fill a byte: round to a tile, then pack.
    std::vector<uint8_t> tile(n);
    ByFamily<true>(p, in, tile.data(), nullptr, n, index0);
    uint8_t* o = static_cast<uint8_t*>(out);
    for (size_t j = 0; j < n; j += 2) {
      o[j / 2] = static_cast<uint8_t>((tile[j] & 0xFu) | (j + 1 < n ? (tile[j + 1] & 0xFu) << 4 : 0u));
    }
    return;
#else
    return ByFamily<true>(p, in, static_cast<Nibbles*>(out), nullptr, n, index0);
#endif
  }
  if (code_bytes == 1) return ByFamily<true>(p, in, static_cast<uint8_t*>(out), nullptr, n, index0);
  if (code_bytes == 2) return ByFamily<true>(p, in, static_cast<uint16_t*>(out), nullptr, n, index0);
  ByFamily<true>(p, in, static_cast<uint32_t*>(out), nullptr, n, index0);
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

HWY_EXPORT(EncodeChunk);

void encode_chunk(const KernelPlan& p, const float* in, void* out, int code_bytes, size_t n,
                  uint64_t index0) {
  if (p.family == SimdFamily::kScalarOnly || (code_bytes == 0 && p.family == SimdFamily::kBinadeTable)) {
    if (code_bytes == 0) fail_internal("packed nibbles need a SIMD family without fallback lanes");
    for (size_t i = 0; i < n; ++i) {
      const uint32_t code = p.codec->encode(in[i], p.opt, index0 + i);
      if (code_bytes == 1) static_cast<uint8_t*>(out)[i] = static_cast<uint8_t>(code);
      else if (code_bytes == 2) static_cast<uint16_t*>(out)[i] = static_cast<uint16_t>(code);
      else static_cast<uint32_t*>(out)[i] = code;
    }
    return;
  }
  HWY_DYNAMIC_DISPATCH(EncodeChunk)(p, in, out, code_bytes, n, index0);
}

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
