// Decode over a chunk (a table lookup of the scalar decoder's values), the
// SIMD nibble packer and the streaming copy that `lowbit bench` measures
// against. These need none of the rounding code.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/kernels/decode_kernels.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include <bit>
#if HWY_ARCH_X86
#include <immintrin.h>
#endif

#include "lowbit/kernels/array_kernels.h"
#include "lowbit/kernels/simd_types-inl.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
void StreamCopy(const float* HWY_RESTRICT in, float* HWY_RESTRICT out, size_t n) {
  const DF df;
  const size_t N = hn::Lanes(df);
  size_t i = 0;
  while (i < n && reinterpret_cast<uintptr_t>(out + i) % (N * sizeof(float)) != 0) {
    out[i] = in[i];
    ++i;
  }
  for (; i + N <= n; i += N) hn::Stream(hn::LoadU(df, in + i), df, out + i);
#if HWY_ARCH_X86
  _mm_sfence();
#endif
  for (; i < n; ++i) out[i] = in[i];
}

void PackNibbles(const uint8_t* HWY_RESTRICT codes, size_t n, uint8_t* HWY_RESTRICT out) {
  const hn::ScalableTag<uint16_t> d16;
  const hn::Rebind<uint8_t, decltype(d16)> d8;
  const hn::RebindToSigned<decltype(d16)> di16;
  const size_t N = hn::Lanes(d16);
  size_t i = 0;  // pairs done
  for (; i + N <= n / 2; i += N) {
    // Each u16 lane holds (c0 | c1 << 8); fold c1 down to bits 4..7.
    const auto v = hn::LoadU(d16, reinterpret_cast<const uint16_t*>(codes + 2 * i));
    const auto p = hn::And(hn::Or(v, hn::ShiftRight<4>(v)), hn::Set(d16, 0xFF));
    hn::StoreU(hn::DemoteTo(d8, hn::BitCast(di16, p)), d8, out + i);
  }
  for (; i < n / 2; ++i) out[i] = static_cast<uint8_t>((codes[2 * i] & 0xF) | (codes[2 * i + 1] << 4));
  if (n & 1) out[n / 2] = codes[n - 1] & 0xF;
}

// Decode is a table lookup: the table holds the scalar decoder's output for
// every code, so it is exact by construction.
template <typename TIn>
HWY_NOINLINE void DecodeLut(const uint32_t* HWY_RESTRICT lut, uint32_t mask, const TIn* HWY_RESTRICT codes,
                            float* HWY_RESTRICT out, size_t n) {
  const DI di;
  const DF df;
  const size_t N = hn::Lanes(di);
  const VI m = hn::Set(di, static_cast<int32_t>(mask));
  const hn::Rebind<TIn, DI> dn;
  size_t i = 0;
  for (; i + N <= n; i += N) {
    const VI c = hn::And(hn::BitCast(di, hn::PromoteTo(DU(), hn::LoadU(dn, codes + i))), m);
    const VI v = hn::GatherIndex(di, reinterpret_cast<const int32_t*>(lut), c);
    hn::StoreU(hn::BitCast(df, v), df, out + i);
  }
  for (; i < n; ++i) out[i] = std::bit_cast<float>(lut[codes[i] & mask]);
}

void DecodeChunk(const KernelPlan& p, const void* codes, int code_bytes, float* out, size_t n) {
  const uint32_t* lut = p.decode_lut->data();
  const uint32_t mask = p.code_mask;
  // Codes wider than the format decode through the mask; codes that are
  // out of range for a codebook map to entries past its end, which the
  // caller rules out by validating input codes first.
  if (code_bytes == 1) return DecodeLut(lut, mask, static_cast<const uint8_t*>(codes), out, n);
  DecodeLut(lut, mask, static_cast<const uint16_t*>(codes), out, n);
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

HWY_EXPORT(DecodeChunk);
HWY_EXPORT(PackNibbles);
HWY_EXPORT(StreamCopy);

void decode_chunk(const KernelPlan& p, const void* codes, int code_bytes, float* out, size_t n) {
  if (!p.decode_lut) {
    const auto* c = static_cast<const uint32_t*>(codes);
    for (size_t i = 0; i < n; ++i) out[i] = static_cast<float>(p.codec->decode(c[i]));
    return;
  }
  HWY_DYNAMIC_DISPATCH(DecodeChunk)(p, codes, code_bytes, out, n);
}

void pack_nibbles(const uint8_t* codes, size_t n, uint8_t* out) {
  HWY_DYNAMIC_DISPATCH(PackNibbles)(codes, n, out);
}

void stream_copy(const float* in, float* out, size_t n) { HWY_DYNAMIC_DISPATCH(StreamCopy)(in, out, n); }

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
