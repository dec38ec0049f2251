// ggml's NVFP4 (type 40): blocks of 64 FP4 (E2M1) codes in four sub-blocks
// of 16, each with a UE4M3 scale byte: d[4], then qs[32] where byte 8 s + l
// holds element l of sub-block s in its low nibble and element l + 8 in its
// high one. Unlike NVIDIA's NVFP4 (and lowbit's `nvfp4` scheme) there is no
// float32 tensor scale: the sub-block scales alone carry the magnitude.
//
// quantize_row_nvfp4_ref, which lowbit reproduces byte for byte:
//   amax = the sub-block's largest |x| (NaNs skipped),
//   ue   = ggml_fp32_to_ue4m3(amax / 6), d = ggml_ue4m3_to_fp32(ue),
//   code = best_index_mxfp4(x, d) (ggml_fp4_codes.h).
// ggml's UE4M3 conversion is its own, not round-to-nearest-even:
//  - it rounds on the first dropped mantissa bit alone: to nearest, but
//    ties go up, not to even;
//  - below 2^-6 it takes (int)(x * 512 + 0.5) as the subnormal mantissa,
//    and 0 when that is below 1 (amax < 6 * 2^-10 gives an all-zero
//    sub-block: d = 0);
//  - x >= 256 (UE4M3 exponent 15 and up) gives 0x7E (448), as does
//    anything above 448 and inf;
// and its decode returns half the UE4M3 value (the doubled E2M1 values
// make up for it), with codes 0 and 0x7F read as 0.
// Importance weights are ignored, as in llama.cpp.
//
// A SIMD path (Nvfp4Blocks) writes the blocks without NaN whose sub-blocks'
// amax lie below 16 d, with the scalar model's rules; the scalar model
// writes the rest.
#ifndef LOWBIT_GGML_NVFP4_SCALE_
#define LOWBIT_GGML_NVFP4_SCALE_
// Outside the per-target section (foreach_target includes this file once
// per target): the scale rule that the kernels and the scalar model share.
#include <array>
#include <cmath>
#include <cstring>

#include "lowbit/ggml/fp4_codes.h"
#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit::ggml_internal {
namespace {

constexpr int kQK = 64, kSub = 16;
constexpr uint64_t kBlockBytes = 36;

// ggml_fp32_to_ue4m3.
uint8_t fp32_to_ue4m3(float x) {
  if (!(x > 0.0f)) return 0;
  if (x > 448.0f) x = 448.0f;
  const uint32_t bits = f32_bits(x);
  const int fp32_exp = static_cast<int>((bits >> 23) & 0xFF) - 127;
  const int fp32_man = static_cast<int>((bits >> 20) & 0x7);
  int ue4m3_exp = fp32_exp + 7;
  if (ue4m3_exp <= 0) {
    int man = static_cast<int>(x * 512.0f + 0.5f);  // x < 2^-6: no overflow
    if (man > 7) man = 7;
    if (man < 1) return 0;
    return static_cast<uint8_t>(man);
  }
  if (ue4m3_exp >= 15) return 0x7E;
  int ue4m3_man = fp32_man + static_cast<int>((bits >> 19) & 1);
  if (ue4m3_man > 7) {
    ue4m3_man = 0;
    if (++ue4m3_exp >= 15) return 0x7E;
  }
  return static_cast<uint8_t>((ue4m3_exp << 3) | ue4m3_man);
}

// ggml_ue4m3_to_fp32: half the UE4M3 value (exact), 0 for codes 0 and 0x7F
// (the top bit is ignored otherwise: 0x80 is 0, 0xFF is 240).
float ue4m3_to_fp32_model(uint8_t x) {
  if (x == 0 || x == 0x7F) return 0.0f;
  const int exp = (x >> 3) & 0xF, man = x & 0x7;
  const float raw = exp == 0 ? std::ldexp(static_cast<float>(man), -9)
                             : std::ldexp(1.0f + static_cast<float>(man) / 8.0f, exp - 7);
  return raw * 0.5f;
}
// The same from a table of all 256 bytes (ldexp is a libm call).
float ue4m3_to_fp32(uint8_t x) {
  static const auto table = [] {
    std::array<float, 256> t{};
    for (int i = 0; i < 256; ++i) t[i] = ue4m3_to_fp32_model(static_cast<uint8_t>(i));
    return t;
  }();
  return table[x];
}

}  // namespace
}  // namespace lowbit::ggml_internal
#endif  // LOWBIT_GGML_NVFP4_SCALE_

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/ggml/nvfp4_quants.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "lowbit/ggml/fp4_codes-inl.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit::ggml_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// NVFP4 blocks from the first on, up to `blocks`, stopping before the first
// one with a NaN (the model's running maximum skips it) or with a sub-block
// whose d is 0 or not above amax / 16 (all zero, or a saturated scale),
// which the model handles. Returns the number of blocks written. Codes are
// fp4_best_indices per lane: the count of the midpoints below |x| (computed
// as the model computes them), with x's sign bit added to a non-zero count.
uint64_t Nvfp4Blocks(const float* x, uint64_t blocks, uint8_t* out) {
  // At most 8 lanes, so that the two halves of a sub-block (elements l and
  // l + 8 share a nibble byte) are whole vectors.
  const hn::CappedTag<float, 8> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<uint8_t, decltype(df)> du8;
  using VF = hn::Vec<decltype(df)>;
  using VI = hn::Vec<decltype(di)>;
  const size_t N = hn::Lanes(df);
  for (uint64_t b = 0; b < blocks; ++b) {
    const float* xb = x + kQK * b;
    uint8_t ue[4];
    float d[4];
    for (int s = 0; s < 4; ++s) {
      bool nan;
      const float a = Fp4BlockAmax(df, xb + kSub * s, kSub, &nan);
      ue[s] = fp32_to_ue4m3(a / 6.0f);
      d[s] = ue4m3_to_fp32(ue[s]);
      if (nan || !(d[s] > 0.0f) || !(a < 16 * d[s])) return b;
    }
    uint8_t* y = out + kBlockBytes * b;
    for (int s = 0; s < 4; ++s) {
      const Fp4Midpoints mid(df, d[s]);
      const auto code = [&](VF v) { return Fp4Codes(df, mid, v); };
      y[s] = ue[s];
      const float* xs = xb + kSub * s;
      for (size_t j = 0; j < static_cast<size_t>(kSub / 2); j += N) {
        const VI byte = hn::Or(code(hn::LoadU(df, xs + j)), hn::ShiftLeft<4>(code(hn::LoadU(df, xs + kSub / 2 + j))));
        hn::StoreU(hn::TruncateTo(du8, hn::BitCast(du, byte)), du8, y + 4 + (kSub / 2) * s + j);
      }
    }
  }
  return blocks;
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::ggml_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

namespace lowbit::ggml_internal {

HWY_EXPORT(Nvfp4Blocks);

namespace {

void quantize_nvfp4(const float* x, uint64_t n, uint8_t* out, const float*) {
  uint8_t codes[kSub];
  float a[kSub];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    // The SIMD path, with the scalar model for the blocks it leaves.
    if (!scalar_model_forced()) b += HWY_DYNAMIC_DISPATCH(Nvfp4Blocks)(x + kQK * b, n / kQK - b, out + kBlockBytes * b);
    if (b == n / kQK) break;
    uint8_t* y = out + kBlockBytes * b;
    for (int s = 0; s < kQK / kSub; ++s) {
      const float* xb = x + kQK * b + kSub * s;
      for (int j = 0; j < kSub; ++j) a[j] = std::fabs(xb[j]);
      const float amax = fp4_block_amax(a, kSub);
      const uint8_t ue = fp32_to_ue4m3(amax / 6.0f);
      const float d = ue4m3_to_fp32(ue);
      y[s] = ue;
      if (d == 0.0f) {
        // Every error is |x| (NaN for NaN): none beats code 0.
        std::memset(codes, 0, sizeof codes);
      } else if (amax < 16 * d) {
        fp4_best_indices(a, xb, kSub, d, codes);
      } else {  // amax beyond the saturated scale's reach, or infinite
        for (int j = 0; j < kSub; ++j) codes[j] = fp4_best_index(xb[j], d);
      }
      pack_nibbles(codes, kSub, kSub, y + 4 + (kSub / 2) * s);
    }
  }
}

void dequantize_nvfp4(const uint8_t* in, uint64_t n, float* out) {
  uint8_t codes[kSub];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* y = in + kBlockBytes * b;
    for (int s = 0; s < kQK / kSub; ++s) {
      const float d = ue4m3_to_fp32(y[s]);
      unpack_nibbles(y + 4 + (kSub / 2) * s, kSub, kSub, codes);
      float* o = out + kQK * b + kSub * s;
      for (int j = 0; j < kSub; ++j) o[j] = static_cast<float>(kFp4Values[codes[j]]) * d;
    }
  }
}

const RowCodec kCodecs[] = {{GgmlType::kNVFP4, quantize_nvfp4, dequantize_nvfp4}};

}  // namespace

std::span<const RowCodec> nvfp4_codecs() { return kCodecs; }

}  // namespace lowbit::ggml_internal

#endif  // HWY_ONCE
