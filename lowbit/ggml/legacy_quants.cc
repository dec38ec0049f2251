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
// Without weights every legacy type also has a SIMD path (LegacyBlocks
// below, one routine over the type's parameters) for the blocks whose
// arithmetic it reproduces exactly; every other block, and the weighted
// path, takes the scalar model.

#ifndef LOWBIT_GGML_LEGACY_TYPES_
#define LOWBIT_GGML_LEGACY_TYPES_
// Outside the per-target section (foreach_target includes this file once
// per target), so that the kernels and the scalar model read one table.
#include <algorithm>
#include <cfloat>
#include <cstdint>
namespace lowbit::ggml_internal {
namespace {
struct Legacy {
  int bits;      // 4, 5 or 8
  bool has_min;  // the _1 types
  uint64_t bytes;
  constexpr int offset() const { return bits == 8 || has_min ? 0 : 1 << (bits - 1); }
  constexpr uint64_t codes_at() const { return qh_at() + (bits == 5 ? 4 : 0); }
  constexpr uint64_t qh_at() const { return has_min ? 4 : 2; }
};
constexpr Legacy kQ4_0{4, false, 18}, kQ4_1{4, true, 20}, kQ5_0{5, false, 22}, kQ5_1{5, true, 24}, kQ8_0{8, false, 34};
}  // namespace
}  // namespace lowbit::ggml_internal
#endif  // LOWBIT_GGML_LEGACY_TYPES_

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/ggml/legacy_quants.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
#include "lowbit/ggml/row_codec_internal.h"

HWY_BEFORE_NAMESPACE();
namespace lowbit::ggml_internal {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most 16 lanes, so that the two halves of a block (elements j and j + 16
// share a nibble byte) are whole vectors.
using DF = hn::CappedTag<float, 16>;

// The first element of the block equal to `value` (under |x| when `abs`),
// which must be one of the block's: the one the scalar model's strict
// comparisons keep. Equal floats are the same bits except for +0 and -0, so
// callers ask only where that matters (a zero, or the sign of the largest
// magnitude). Branch-free (the index is random in real data): the match
// bits of the whole block in one word.
HWY_INLINE float FirstEqual(const float* xb, float value, bool abs) {
  const DF df;
  const auto target = hn::Set(df, value);
  uint64_t bits = 0;
  for (size_t j = 0; j < 32; j += hn::Lanes(df)) {
    const auto v = hn::LoadU(df, xb + j);
    uint8_t b[8] = {};
    hn::StoreMaskBits(df, hn::Eq(abs ? hn::Abs(v) : v, target), b);
    bits |= (static_cast<uint64_t>(b[0]) | static_cast<uint64_t>(b[1]) << 8) << j;
  }
  return xb[__builtin_ctzll(bits | uint64_t{1} << 31)];
}

// Blocks of type t from the first on, up to `blocks`, stopping before the
// first block the SIMD arithmetic cannot reproduce, and returning the
// number written; the caller runs the scalar model on that block. Handed
// back are blocks holding a NaN (the model's comparisons skip it, a
// position-dependent result) and blocks where some x * id (+ offset)
// leaves the range in which a vector conversion equals the model's (an id
// that overflowed, inf input: NaN or huge). The rest is the scalar model's
// float32 operations in its order per element:
//  - the block statistic: amax (Q8_0), the first element of largest |x|
//    (Q4_0, Q5_0), or min and max (Q4_1, Q5_1), all exact maxima and
//    minima, so order-free except for which element a tie keeps (only the
//    sign matters, found with FirstEqual);
//  - d and id in float32 as the model computes them, scalar;
//  - the codes: Q8_0's roundf is trunc(|v|) + (|v| - trunc(|v|) >= 0.5) with
//    v's sign, exact below 2^22; the others truncate to int32 (exact below
//    2^31), keep the low byte as the model's int8 (uint8 for Q5_1) cast
//    does, and cap at the top code where the model does.
template <const Legacy& t>
uint64_t Blocks(const float* x, uint64_t blocks, uint8_t* out) {
  const DF df;
  const hn::RebindToSigned<DF> di;
  const hn::RebindToUnsigned<DF> du;
  const hn::Rebind<uint8_t, DF> du8;
  using VF = hn::Vec<DF>;
  using VI = hn::Vec<decltype(di)>;
  constexpr int kQK = 32;
  constexpr int kTop = (1 << t.bits) - 1;
  const size_t N = hn::Lanes(df);
  // Three passes over a batch of blocks (statistics, then the divisions,
  // then the codes), so that no block's chain of dependent latencies (a
  // reduction, a lookup, two divisions) stalls the next block's work.
  constexpr size_t kBatch = 16;
  for (uint64_t b0 = 0; b0 < blocks; b0 += kBatch) {
    const size_t nb = static_cast<size_t>(std::min<uint64_t>(kBatch, blocks - b0));
    float ds[kBatch] = {}, ms[kBatch] = {}, ids[kBatch] = {};
    size_t ok = nb;  // blocks before the first NaN
    for (size_t i = 0; i < nb; ++i) {
      const float* xb = x + (b0 + i) * kQK;
      // min and max from the model's starting values, or hi = amax from 0.
      VF lo = hn::Set(df, FLT_MAX), hi = hn::Set(df, t.has_min ? -FLT_MAX : 0.0f);
      auto nan = hn::Ne(hi, hi);  // all false
      for (size_t j = 0; j < kQK; j += N) {
        const VF v = hn::LoadU(df, xb + j);
        // IsNaN, not Ne(v, v): Highway 1.0.3's x86 Ne compares ordered, false on NaN.
        nan = hn::Or(nan, hn::IsNaN(v));
        if constexpr (t.has_min) {
          lo = hn::Min(lo, v);
          hi = hn::Max(hi, v);
        } else {
          hi = hn::Max(hi, hn::Abs(v));
        }
      }
      if (!hn::AllFalse(df, nan)) {
        ok = i;
        break;
      }
      if constexpr (t.bits == 8) {
        ds[i] = hn::GetLane(hn::MaxOfLanes(df, hi)) / 127;
      } else if constexpr (t.has_min) {
        float m = hn::GetLane(hn::MinOfLanes(df, lo));
        float max = hn::GetLane(hn::MaxOfLanes(df, hi));
        if (m == 0) m = FirstEqual(xb, 0.0f, false);
        if (max == 0) max = FirstEqual(xb, 0.0f, false);
        ds[i] = (max - m) / static_cast<float>(kTop);
        ms[i] = m;
      } else {
        // The model keeps its initial max = 0 when every |x| is 0.
        const float amax = hn::GetLane(hn::MaxOfLanes(df, hi));
        const float max = amax == 0 ? 0.0f : FirstEqual(xb, amax, true);
        ds[i] = max / -static_cast<float>(1 << (t.bits - 1));
      }
    }
    for (size_t i = 0; i < ok; ++i) ids[i] = ds[i] != 0 ? 1.0f / ds[i] : 0.0f;
    // What the codes add after the multiplication by id.
    const VF add = hn::Set(df, t.bits == 8 ? 0.0f : t.has_min ? 0.5f : static_cast<float>(1 << (t.bits - 1)) + 0.5f);
    for (size_t i = 0; i < ok; ++i) {
      const float* xb = x + (b0 + i) * kQK;
      uint8_t* y = out + (b0 + i) * t.bytes;
      const VF vid = hn::Set(df, ids[i]), vm = hn::Set(df, ms[i]);
      auto in_range = hn::Eq(vid, vid);  // all true
      // The model's code of x as an int32 whose low byte is the stored code.
      const auto code = [&](VF v) -> VI {
        if constexpr (t.bits == 8) {
          v = hn::Mul(v, vid);
          const VF a = hn::Abs(v);
          in_range = hn::And(in_range, hn::Lt(a, hn::Set(df, 4194304.0f)));
          const VF tr = hn::Trunc(a);
          const VF r = hn::IfThenElse(hn::Ge(hn::Sub(a, tr), hn::Set(df, 0.5f)), hn::Add(tr, hn::Set(df, 1.0f)), tr);
          return hn::ConvertTo(di, hn::CopySignToAbs(r, v));
        } else {
          if constexpr (t.has_min) v = hn::Sub(v, vm);
          v = hn::Add(hn::Mul(v, vid), add);
          in_range = hn::And(in_range, hn::Lt(hn::Abs(v), hn::Set(df, 2147483648.0f)));
          const VI q = hn::ConvertTo(di, v);
          // Q5_1 stores its uint8 cast as is; the others cap their int8 cast.
          if constexpr (t.bits == 5 && t.has_min) return q;
          return hn::Min(hn::ShiftRight<24>(hn::ShiftLeft<24>(q)), hn::Set(di, kTop));
        }
      };
      if constexpr (t.bits == 8) {
        for (size_t j = 0; j < kQK; j += N) {
          const VI q = code(hn::LoadU(df, xb + j));
          hn::StoreU(hn::TruncateTo(du8, hn::BitCast(du, q)), du8, y + t.codes_at() + j);
        }
      } else {
        uint32_t qh = 0;
        for (size_t j = 0; j < kQK / 2; j += N) {
          const VI ql = code(hn::LoadU(df, xb + j)), qu = code(hn::LoadU(df, xb + j + kQK / 2));
          const VI byte = hn::Or(hn::And(ql, hn::Set(di, 0xF)), hn::ShiftLeft<4>(qu));
          hn::StoreU(hn::TruncateTo(du8, hn::BitCast(du, byte)), du8, y + t.codes_at() + j);
          if constexpr (t.bits == 5) {
            // The fifth bits, N at a time (StoreMaskBits writes whole bytes).
            const auto fifth = [&](VI q, size_t at) {
              uint8_t bits[8] = {};
              hn::StoreMaskBits(di, hn::TestBit(q, hn::Set(di, 16)), bits);
              qh |= (static_cast<uint32_t>(bits[0]) | static_cast<uint32_t>(bits[1]) << 8) << at;
            };
            fifth(ql, j);
            fifth(qu, j + kQK / 2);
          }
        }
        if constexpr (t.bits == 5) store_u32(y + t.qh_at(), qh);
      }
      if (!hn::AllTrue(df, in_range)) return b0 + i;
      store_u16(y, fp32_to_fp16(ds[i]));
      if constexpr (t.has_min) store_u16(y + 2, fp32_to_fp16(ms[i]));
    }
    if (ok < nb) return b0 + ok;
  }
  return blocks;
}

uint64_t LegacyBlocks(const Legacy& t, const float* x, uint64_t blocks, uint8_t* out) {
  if (&t == &kQ4_0) return Blocks<kQ4_0>(x, blocks, out);
  if (&t == &kQ4_1) return Blocks<kQ4_1>(x, blocks, out);
  if (&t == &kQ5_0) return Blocks<kQ5_0>(x, blocks, out);
  if (&t == &kQ5_1) return Blocks<kQ5_1>(x, blocks, out);
  return Blocks<kQ8_0>(x, blocks, out);
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

HWY_EXPORT(LegacyBlocks);

namespace {

constexpr int kQK = 32;


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
    store_u32(y + t.qh_at(), qh);
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
  if (!imp || t.bits == 8) {
    // The SIMD path, with the scalar model for the blocks it leaves.
    uint8_t codes[kQK];
    for (uint64_t b = 0; b < n / kQK;) {
      if (!scalar_model_forced()) b += HWY_DYNAMIC_DISPATCH(LegacyBlocks)(t, x + b * kQK, n / kQK - b, out + b * t.bytes);
      if (b == n / kQK) break;
      uint16_t d16 = 0, m16 = 0;
      quantize_block_ref<t>(x + b * kQK, codes, &d16, &m16);
      write_block<t>(d16, m16, codes, out + b * t.bytes);
      ++b;
    }
    return;
  }
  float sum_x2 = 0;
  for (uint64_t j = 0; j < n; ++j) sum_x2 += x[j] * x[j];
  const float sigma2 = sum_x2 / static_cast<float>(n);
  uint8_t codes[kQK];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    uint16_t d16 = 0, m16 = 0;
    quantize_block_weighted(t, x + b * kQK, imp + b * kQK, sigma2, codes, &d16, &m16);
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
      const uint32_t qh = load_u32(y + t.qh_at());
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
