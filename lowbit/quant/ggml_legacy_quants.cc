// ggml's legacy block formats Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0: blocks of
// 32 with a float16 scale d (and a float16 min m for the _1 types).
//
// Layout of a block: d, [m], [qh: the fifth bits, bit j = element j, a
// little-endian uint32], then the codes: nibbles (byte l = element l | element
// l + 16 << 4) or, for Q8_0, 32 int8. Values: Q4_0 (q - 8) d, Q5_0 (q - 16)
// d, Q8_0 q d, Q4_1/Q5_1 q d + m.
//
// Quantization is quantize_row_*_ref of ggml-quants.c (gguf-py's numpy port
// gives the same bytes):
//   Q4_0/Q5_0: max = the first element of largest |x|, d = max / -8 (-16),
//              q = min(15 (31), (int8)(x / d + 8.5 (16.5))) in float32.
//   Q4_1/Q5_1: d = (max - min) / 15 (31), q = (int)((x - min) / d + 0.5),
//              capped at 15 for Q4_1.
//   Q8_0:      d = amax / 127, q = roundf(x / d) (ties away from zero).
// where "/ d" is a multiplication by id = 1/d (0 when d is 0). With
// importance weights Q4_0..Q5_1 run quantize_row_*_impl instead: the weights
// qw * sqrt(sigma^2 + x^2), sigma^2 being the mean square of the whole row,
// and make_qx_quants (Q4_0, Q5_0) or make_qkx3_quants (Q4_1, Q5_1). Q8_0
// ignores importance, as llama.cpp does.
//
// Q8_0 without weights is the one legacy type whose reference runs at memory
// speed in llama.cpp's users' hands, so it also has a SIMD path (Q8_0Blocks
// below) for the blocks whose arithmetic stays in range; every other block
// takes the scalar model.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/quant/ggml_legacy_quants.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "lowbit/quant/ggml_codec_internal.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit::ggml_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// Q8_0 blocks from the first on, up to `blocks`, stopping before the first
// block the SIMD arithmetic cannot reproduce: one holding a NaN (ggml's
// running `amax > |x| ? amax : |x|` then depends on where the NaN sits) or
// one whose x * id reaches 2^22 or NaN (an id that overflowed, inf input),
// where roundf's and the int8 cast's corner cases live. Returns the number
// of blocks written. The rest is the scalar model's operations: amax is an
// exact maximum (order does not matter without NaN), d and id are computed
// in float32 as ggml does, and roundf is trunc(|v|) + (|v| - trunc(|v|) >=
// 0.5) with v's sign, exact below 2^22.
uint64_t Q8_0Blocks(const float* x, uint64_t blocks, uint8_t* out) {
  const hn::ScalableTag<float> df;
  const hn::RebindToSigned<decltype(df)> di;
  const hn::RebindToUnsigned<decltype(df)> du;
  const hn::Rebind<uint8_t, decltype(df)> du8;
  using VF = hn::Vec<decltype(df)>;
  constexpr int kQK = 32;
  const size_t N = hn::Lanes(df);
  const VF half = hn::Set(df, 0.5f), one = hn::Set(df, 1.0f), limit = hn::Set(df, 4194304.0f);
  for (uint64_t b = 0; b < blocks; ++b) {
    const float* xb = x + b * kQK;
    VF amax = hn::Zero(df);
    auto nan = hn::Ne(amax, amax);  // all false
    for (size_t j = 0; j < kQK; j += N) {
      const VF v = hn::LoadU(df, xb + j);
      amax = hn::Max(amax, hn::Abs(v));
      nan = hn::Or(nan, hn::Ne(v, v));
    }
    if (!hn::AllFalse(df, nan)) return b;
    const float d = hn::GetLane(hn::MaxOfLanes(df, amax)) / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    const VF vid = hn::Set(df, id);
    auto in_range = hn::Eq(vid, vid);  // all true
    uint8_t* y = out + b * 34;
    for (size_t j = 0; j < kQK; j += N) {
      const VF v = hn::Mul(hn::LoadU(df, xb + j), vid);
      const VF a = hn::Abs(v);
      in_range = hn::And(in_range, hn::Lt(a, limit));
      const VF t = hn::Trunc(a);
      const VF r = hn::IfThenElse(hn::Ge(hn::Sub(a, t), half), hn::Add(t, one), t);
      // The int8 cast keeps the low byte (ggml's (int8_t) of an int).
      const auto q = hn::BitCast(du, hn::ConvertTo(di, hn::CopySignToAbs(r, v)));
      hn::StoreU(hn::TruncateTo(du8, q), du8, y + 2 + j);
    }
    if (!hn::AllTrue(df, in_range)) return b;
    store_u16(y, fp32_to_fp16(d));
  }
  return blocks;
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::ggml_internal
HWY_AFTER_NAMESPACE();

#if HWY_ONCE

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstring>

namespace lowbit::ggml_internal {

HWY_EXPORT(Q8_0Blocks);

namespace {

constexpr int kQK = 32;

struct Legacy {
  int bits;      // 4, 5 or 8
  bool has_min;  // the _1 types
  uint64_t bytes;
  int offset() const { return bits == 8 || has_min ? 0 : 1 << (bits - 1); }
  uint64_t codes_at() const { return (has_min ? 4 : 2) + (bits == 5 ? 4 : 0); }
};
constexpr Legacy kQ4_0{4, false, 18}, kQ4_1{4, true, 20}, kQ5_0{5, false, 22}, kQ5_1{5, true, 24}, kQ8_0{8, false, 34};

// The block functions take the type as a template argument so that every
// per-element loop is branch-free and vectorizes.
template <const Legacy& t>
void write_block(uint16_t d16, uint16_t m16, const uint8_t* codes, uint8_t* y) {
  store_u16(y, d16);
  if constexpr (t.has_min) store_u16(y + 2, m16);
  if constexpr (t.bits == 8) {
    std::memcpy(y + t.codes_at(), codes, kQK);
    return;
  }
  if constexpr (t.bits == 5) {
    uint32_t qh = 0;
    for (int j = 0; j < kQK; ++j) qh |= static_cast<uint32_t>((codes[j] >> 4) & 1) << j;
    store_u32(y + (t.has_min ? 4 : 2), qh);
  }
  pack_nibbles(codes, kQK, kQK, y + t.codes_at());
}

// The _ref quantizers: codes of one block and its d (and m).
template <const Legacy& t>
void quantize_block_ref(const float* x, uint8_t* codes, uint16_t* d16, uint16_t* m16) {
  if constexpr (t.bits == 8) {
    float amax = 0;
    for (int j = 0; j < kQK; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);  // ggml's MAX
    const float d = amax / 127;
    const float id = d != 0 ? 1.0f / d : 0.0f;
    int r[kQK];
    const bool fast = round_block_away(x, id, kQK, r);
    for (int j = 0; j < kQK; ++j) {
      codes[j] = static_cast<uint8_t>(fast ? static_cast<int8_t>(r[j]) : cvtt_i8(std::round(x[j] * id)));
    }
    *d16 = fp32_to_fp16(d);
    return;
  }
  const int top = (1 << t.bits) - 1;
  if constexpr (t.has_min) {
    float min = FLT_MAX, max = -FLT_MAX;
    for (int j = 0; j < kQK; ++j) {
      if (x[j] < min) min = x[j];
      if (x[j] > max) max = x[j];
    }
    const float d = (max - min) / static_cast<float>(top);
    const float id = d != 0 ? 1.0f / d : 0.0f;
    for (int j = 0; j < kQK; ++j) {
      const float v = (x[j] - min) * id + 0.5f;
      // Q4_1 caps its int8 cast at 15; Q5_1 stores the uint8 cast as is.
      if constexpr (t.bits == 4) {
        codes[j] = static_cast<uint8_t>(std::min(15, static_cast<int>(cvtt_i8(v))));
      } else {
        codes[j] = cvtt_u8(v);
      }
    }
    *d16 = fp32_to_fp16(d);
    *m16 = fp32_to_fp16(min);
    return;
  }
  float amax;
  const float max = signed_absmax(x, kQK, &amax);
  const float half = static_cast<float>(1 << (t.bits - 1));
  const float d = max / -half;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  for (int j = 0; j < kQK; ++j) {
    codes[j] = static_cast<uint8_t>(std::min(top, static_cast<int>(cvtt_i8(x[j] * id + (half + 0.5f)))));
  }
  *d16 = fp32_to_fp16(d);
}

// The _impl quantizers with importance weights (the row's sigma^2 given).
void quantize_block_weighted(const Legacy& t, const float* x, const float* qw, float sigma2, uint8_t* codes,
                             uint16_t* d16, uint16_t* m16) {
  float w[kQK];
  for (int j = 0; j < kQK; ++j) w[j] = qw[j] * std::sqrt(sigma2 + x[j] * x[j]);
  const int nmax = (1 << t.bits) - 1;
  if (t.has_min) {
    float min;
    const float d = make_qkx_quants(kQK, {nmax, -0.9f, 0.05f, 36, false, true}, x, w, codes, &min);
    *d16 = fp32_to_fp16(d);
    *m16 = fp32_to_fp16(-min);
  } else {
    int8_t L[kQK];
    const float d = make_qx_quants(kQK, (nmax + 1) / 2, x, L, w);
    std::memcpy(codes, L, kQK);
    *d16 = fp32_to_fp16(d);
  }
}

template <const Legacy& t>
void quantize(const float* x, uint64_t n, uint8_t* out, const float* imp) {
  if constexpr (t.bits == 8) {
    // The SIMD path, with the scalar model for the blocks it leaves.
    uint8_t codes[kQK];
    for (uint64_t b = 0; b < n / kQK;) {
      if (!scalar_model_forced()) b += HWY_DYNAMIC_DISPATCH(Q8_0Blocks)(x + b * kQK, n / kQK - b, out + b * t.bytes);
      if (b == n / kQK) break;
      uint16_t d16 = 0, m16 = 0;
      quantize_block_ref<t>(x + b * kQK, codes, &d16, &m16);
      write_block<t>(d16, m16, codes, out + b * t.bytes);
      ++b;
    }
    return;
  }
  float sigma2 = 0;
  if (imp && t.bits != 8) {
    float sum_x2 = 0;
    for (uint64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
    sigma2 = sum_x2 / static_cast<float>(n);
  }
  uint8_t codes[kQK];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    uint16_t d16 = 0, m16 = 0;
    if (imp && t.bits != 8) {
      quantize_block_weighted(t, x + b * kQK, imp + b * kQK, sigma2, codes, &d16, &m16);
    } else {
      quantize_block_ref<t>(x + b * kQK, codes, &d16, &m16);
    }
    write_block<t>(d16, m16, codes, out + b * t.bytes);
  }
}

template <const Legacy& t>
void dequantize(const uint8_t* in, uint64_t n, float* out) {
  uint8_t codes[kQK];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* y = in + b * t.bytes;
    const float d = fp16_to_fp32(load_u16(y));
    const float m = t.has_min ? fp16_to_fp32(load_u16(y + 2)) : 0.0f;
    float* o = out + b * kQK;
    if constexpr (t.bits == 8) {
      for (int j = 0; j < kQK; ++j) o[j] = static_cast<float>(static_cast<int8_t>(y[2 + j])) * d;
      continue;
    }
    unpack_nibbles(y + t.codes_at(), kQK, kQK, codes);
    if constexpr (t.bits == 5) {
      const uint32_t qh = load_u32(y + (t.has_min ? 4 : 2));
      for (int j = 0; j < kQK; ++j) codes[j] = static_cast<uint8_t>(codes[j] | (((qh >> j) & 1) << 4));
    }
    for (int j = 0; j < kQK; ++j) {
      const float v = static_cast<float>(codes[j] - t.offset()) * d;
      if constexpr (t.has_min) {
        o[j] = v + m;
      } else {
        o[j] = v;
      }
    }
  }
}

const RowCodec kCodecs[] = {
    {GgmlType::kQ4_0, quantize<kQ4_0>, dequantize<kQ4_0>, true},
    {GgmlType::kQ4_1, quantize<kQ4_1>, dequantize<kQ4_1>, true},
    {GgmlType::kQ5_0, quantize<kQ5_0>, dequantize<kQ5_0>, true},
    {GgmlType::kQ5_1, quantize<kQ5_1>, dequantize<kQ5_1>, true},
    {GgmlType::kQ8_0, quantize<kQ8_0>, dequantize<kQ8_0>, false},
};

}  // namespace

std::span<const RowCodec> legacy_codecs() { return kCodecs; }

}  // namespace lowbit::ggml_internal

#endif  // HWY_ONCE
