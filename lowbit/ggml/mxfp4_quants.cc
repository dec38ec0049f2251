// ggml's MXFP4: blocks of 32 FP4 (E2M1) codes with one E8M0 exponent byte,
// the OCP MX layout as llama.cpp stores it: e, then 16 nibble bytes (byte l
// = element l | element l + 16 << 4).
//
// ggml works with doubled E2M1 values (kValues: 0, 1, 2, 3, 4, 6, 8, 12 and
// their negatives) and half the E8M0 scale, d = 2^(e - 128), so a code c is
// kValues[c] * d. quantize_row_mxfp4_ref (and gguf-py) take
//   e = floor(log2(amax)) - 2 + 127   (0 for an all-zero block)
// in float32 and then, for each element, the code with the smallest
// |kValues[c] * d - x|, the first one on ties. log2f rounds: for amax just
// below a power of two 2^k it returns k itself; lowbit rounds the exact
// log2 to float32 the same way (glibc's log2f and numpy's log2 agree with
// it on every float32 near a power of two). amax below 2^-125 makes e
// negative, which ggml's uint8 cast wraps (x86: the low byte); infinite
// amax gives e = 0.
//
// A SIMD path (Mxfp4Blocks) writes the blocks without NaN whose amax is
// finite, with the scalar model's operations; the scalar model writes the
// rest.

#ifndef LOWBIT_GGML_MXFP4_SCALE_
#define LOWBIT_GGML_MXFP4_SCALE_
// Outside the per-target section (foreach_target includes this file once
// per target): the scale rule that the kernels and the scalar model share.
#include <algorithm>
#include <cmath>

#include "lowbit/ggml/fp4_codes.h"
#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit::ggml_internal {
namespace {

constexpr const int8_t* kValues = kFp4Values;

// GGML_E8M0_TO_FP32_HALF.
float e8m0_half(uint8_t e) { return f32_from_bits(e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23); }

uint8_t block_exponent(float amax) {
  if (!(amax > 0.0f)) return 0;
  const float log2_amax = static_cast<float>(std::log2(static_cast<double>(amax)));
  return cvtt_u8(std::floor(log2_amax) - 2 + 127);
}

}  // namespace
}  // namespace lowbit::ggml_internal
#endif  // LOWBIT_GGML_MXFP4_SCALE_

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/ggml/mxfp4_quants.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "lowbit/ggml/fp4_codes-inl.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit::ggml_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// block_exponent without the double log2 where the float32 log2 cannot round
// up to the next integer: for a normal amax = 2^E (1 + f) with f at least
// 256 ulps below 1, log2 amax = E + y with y <= 1 - 2.2e-5, more than half
// an ulp (at most 2^-18 for |E| <= 127) below E + 1, so floor(log2f) = E
// and e = E - 2 + 127 = the biased exponent - 2, wrapped to a byte as the
// uint8 cast does. Zero, subnormal and near-power-of-two amax take the
// model's function.
uint8_t FastBlockExponent(float amax) {
  const uint32_t u = f32_bits(amax);
  const uint32_t biased = u >> 23, mant = u & 0x7FFFFF;
  if (biased == 0 || biased == 255 || mant >= 0x7FFF00) return block_exponent(amax);
  return static_cast<uint8_t>(biased - 2);
}

// MXFP4 blocks from the first on, up to `blocks`, stopping before the first
// one holding a NaN (the model's running maximum skips it) or with amax not
// below 16 d (an infinite amax, which the model searches code by code).
// Returns the number of blocks written. The rest is best_indices per lane:
// the count of midpoints below |x| (the midpoints computed as the model
// does), with x's sign bit added to a non-zero count.
uint64_t Mxfp4Blocks(const float* x, uint64_t blocks, uint8_t* out) {
  // At most 16 lanes, so that the two halves of a block (elements j and
  // j + 16 share a nibble byte) are whole vectors.
  const hn::CappedTag<float, 16> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<uint8_t, decltype(df)> du8;
  using VF = hn::Vec<decltype(df)>;
  using VI = hn::Vec<decltype(di)>;
  const size_t N = hn::Lanes(df);
  // Two passes over a batch of blocks (the scales, then the codes), so that
  // no block's chain of dependent latencies (a reduction, the exponent, the
  // midpoints) stalls the next block's work.
  constexpr size_t kBatch = 16;
  for (uint64_t b0 = 0; b0 < blocks; b0 += kBatch) {
    const size_t nb = static_cast<size_t>(std::min<uint64_t>(kBatch, blocks - b0));
    uint8_t es[kBatch];
    size_t ok = nb;  // blocks before the first one left to the model
    for (size_t i = 0; i < nb; ++i) {
      const float* xb = x + 32 * (b0 + i);
      bool nan;
      const float a = Fp4BlockAmax(df, xb, 32, &nan);
      es[i] = FastBlockExponent(a);
      if (nan || !(a < 16 * e8m0_half(es[i]))) {
        ok = i;
        break;
      }
    }
    for (size_t i = 0; i < ok; ++i) {
      const float* xb = x + 32 * (b0 + i);
      const float d = e8m0_half(es[i]);
      const Fp4Midpoints mid(df, d);
      const auto code = [&](VF v) { return Fp4Codes(df, mid, v); };
      uint8_t* y = out + 17 * (b0 + i);
      y[0] = es[i];
      for (size_t j = 0; j < 16; j += N) {
        const VI byte = hn::Or(code(hn::LoadU(df, xb + j)), hn::ShiftLeft<4>(code(hn::LoadU(df, xb + j + 16))));
        hn::StoreU(hn::TruncateTo(du8, hn::BitCast(du, byte)), du8, y + 1 + j);
      }
    }
    if (ok < nb) return b0 + ok;
  }
  return blocks;
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::ggml_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

namespace lowbit::ggml_internal {

HWY_EXPORT(Mxfp4Blocks);

namespace {

// Importance weights are ignored, as in llama.cpp.
void quantize_mxfp4(const float* x, uint64_t n, uint8_t* out, const float*) {
  uint8_t codes[32];
  for (uint64_t b = 0; b < n / 32; ++b) {
    // The SIMD path, with the scalar model for the blocks it leaves.
    if (!scalar_model_forced()) b += HWY_DYNAMIC_DISPATCH(Mxfp4Blocks)(x + 32 * b, n / 32 - b, out + 17 * b);
    if (b == n / 32) break;
    const float* xb = x + 32 * b;
    float a[32];
    for (int j = 0; j < 32; ++j) a[j] = std::fabs(xb[j]);
    const float amax = fp4_block_amax(a, 32);
    const uint8_t e = block_exponent(amax);
    const float d = e8m0_half(e);
    if (amax < 16 * d) {
      fp4_best_indices(a, xb, 32, d, codes);
    } else {
      for (int j = 0; j < 32; ++j) codes[j] = fp4_best_index(xb[j], d);
    }
    out[17 * b] = e;
    pack_nibbles(codes, 32, 32, out + 17 * b + 1);
  }
}

void dequantize_mxfp4(const uint8_t* in, uint64_t n, float* out) {
  uint8_t codes[32];
  for (uint64_t b = 0; b < n / 32; ++b) {
    const float d = e8m0_half(in[17 * b]);
    unpack_nibbles(in + 17 * b + 1, 32, 32, codes);
    for (int j = 0; j < 32; ++j) out[32 * b + j] = static_cast<float>(kValues[codes[j]]) * d;
  }
}

const RowCodec kCodecs[] = {{GgmlType::kMXFP4, quantize_mxfp4, dequantize_mxfp4}};

}  // namespace

std::span<const RowCodec> mxfp4_codecs() { return kCodecs; }

}  // namespace lowbit::ggml_internal

#endif  // HWY_ONCE
