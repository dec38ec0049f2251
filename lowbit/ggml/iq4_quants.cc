// ggml's 4-bit non-linear formats: IQ4_NL (blocks of 32: float16 d, 16
// nibbles) and IQ4_XS (super-blocks of 256: float16 d, 8 six-bit group
// scales split into scales_h (2 bits each, a uint16) and scales_l (4 bits
// each), 128 nibbles). A code c means kValues[c] * scale.
//
// Quantization is llama.cpp's quantize_iq4_nl / quantize_iq4_xs (what
// llama-quantize runs, with or without an importance matrix: ntry = 7; note
// that quantize_row_iq4_nl_ref, which ggml uses elsewhere, searches less):
// quantize_row_iq4_nl_impl tries 15 scales per group of 32, weighting each
// element by x^2, or by qw * sqrt(sigma^2 + x^2) with importance weights
// (sigma^2 = twice the block's mean square). The nearest table entry is
// best_index_int8 as current llama.cpp has it: the exact midpoint rule
// (2x >= v[i-1] + v[i] picks i); older releases compared rounded
// differences and differ from it in rare ties.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit::ggml_internal {

namespace {

constexpr int8_t kValues[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
constexpr int kNtry = 7;

// best_index_int8: entry i once 2x >= v[i-1] + v[i]. Its binary search over
// the increasing midpoints finds the number of midpoints that 2x reaches
// (none for NaN), which is what this counts, without a dependent chain.
struct Midpoints {
  float twice[15];
  constexpr Midpoints() : twice() {
    for (int i = 1; i < 16; ++i) twice[i - 1] = static_cast<float>(kValues[i - 1] + kValues[i]);
  }
};
constexpr Midpoints kMid;

int best_index(float x) {
  const float x2 = x + x;
  int idx = 0;
  for (int i = 0; i < 15; ++i) idx += x2 >= kMid.twice[i];
  return idx;
}

// The best scale of one group of 32 (0 for an all-zero group), its codes in L.
float search_group(const float* x, const float* w, uint8_t* L) {
  float amax;
  const float max = signed_absmax(x, 32, &amax);
  if (amax < kGroupMaxEps) {
    std::memset(L, 0, 32);
    return 0;
  }
  uint8_t codes[32];
  const auto sums = [&](float id, float& sumqx, float& sumq2) {
    for (int j = 0; j < 32; ++j) codes[j] = static_cast<uint8_t>(best_index(id * x[j]));
    sumqx = sumq2 = 0;
    for (int j = 0; j < 32; ++j) {
      const float q = kValues[codes[j]];
      sumqx += w[j] * q * x[j];
      sumq2 += w[j] * q * q;
    }
  };
  float sumqx, sumq2;
  sums(1 / (-max / static_cast<float>(kValues[0])), sumqx, sumq2);
  std::memcpy(L, codes, 32);
  float d = sumq2 > 0 ? sumqx / sumq2 : 0.f;
  float best = d * sumqx;
  for (int itry = -kNtry; itry <= kNtry; ++itry) {
    sums(static_cast<float>(itry + kValues[0]) / max, sumqx, sumq2);
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

// quantize_row_iq4_nl_impl for one super-block of `size` (32: IQ4_NL, 256:
// IQ4_XS). Writes d to y[0..1]; for IQ4_XS the group scales to y[2..7]; the
// nibbles to `q4`.
void quantize_super_block(int size, const float* x, const float* qw, uint8_t* y, uint8_t* q4) {
  float sigma2 = 0;
  for (int j = 0; j < size; ++j) sigma2 += x[j] * x[j];
  sigma2 *= 2.f / static_cast<float>(size);
  float w[32], scales[8];
  uint8_t L[256];
  for (int ib = 0; ib < size / 32; ++ib) {
    const float* xb = x + 32 * ib;
    for (int j = 0; j < 32; ++j) w[j] = qw ? qw[32 * ib + j] * std::sqrt(sigma2 + xb[j] * xb[j]) : xb[j] * xb[j];
    scales[ib] = search_group(xb, w, L + 32 * ib);
  }
  float amax_scale;
  const float max_scale = signed_absmax(scales, size / 32, &amax_scale);
  if (size > 32) {
    uint16_t scales_h = 0;
    uint8_t* scales_l = y + 4;
    const float d = -max_scale / 32;
    store_u16(y, fp32_to_fp16(d));
    const float id = d != 0 ? 1 / d : 0.f;
    for (int ib = 0; ib < size / 32; ++ib) {
      int l = std::max(-32, std::min(31, nearest_int(id * scales[ib])));
      const float dl = d * static_cast<float>(l);
      const float idl = dl != 0 ? 1 / dl : 0.f;
      for (int j = 0; j < 32; ++j) L[32 * ib + j] = static_cast<uint8_t>(best_index(idl * x[32 * ib + j]));
      l += 32;
      const uint8_t l_l = l & 0xF, l_h = static_cast<uint8_t>(l >> 4);
      scales_l[ib / 2] = ib % 2 == 0 ? l_l : static_cast<uint8_t>(scales_l[ib / 2] | (l_l << 4));
      scales_h = static_cast<uint16_t>(scales_h | (l_h << (2 * (ib % 8))));
    }
    store_u16(y + 2, scales_h);
  } else {
    store_u16(y, fp32_to_fp16(scales[0]));
    const float id = scales[0] != 0 ? 1 / scales[0] : 0;
    for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>(best_index(id * x[j]));
  }
  pack_nibbles(L, static_cast<uint64_t>(size), 32, q4);
}

void quantize_iq4_nl(const float* x, uint64_t n, uint8_t* out, const float* imp) {
  for (uint64_t b = 0; b < n / 32; ++b) {
    quantize_super_block(32, x + 32 * b, imp ? imp + 32 * b : nullptr, out + 18 * b, out + 18 * b + 2);
  }
}
void quantize_iq4_xs(const float* x, uint64_t n, uint8_t* out, const float* imp) {
  for (uint64_t b = 0; b < n / 256; ++b) {
    quantize_super_block(256, x + 256 * b, imp ? imp + 256 * b : nullptr, out + 136 * b, out + 136 * b + 8);
  }
}

void dequantize_iq4_nl(const uint8_t* in, uint64_t n, float* out) {
  uint8_t codes[32];
  for (uint64_t b = 0; b < n / 32; ++b) {
    const float d = fp16_to_fp32(load_u16(in + 18 * b));
    unpack_nibbles(in + 18 * b + 2, 32, 32, codes);
    for (int j = 0; j < 32; ++j) out[32 * b + j] = d * static_cast<float>(kValues[codes[j]]);
  }
}
void dequantize_iq4_xs(const uint8_t* in, uint64_t n, float* out) {
  uint8_t codes[256];
  for (uint64_t b = 0; b < n / 256; ++b) {
    const uint8_t* y = in + 136 * b;
    const float d = fp16_to_fp32(load_u16(y));
    const uint16_t scales_h = load_u16(y + 2);
    unpack_nibbles(y + 8, 256, 32, codes);
    for (int ib = 0; ib < 8; ++ib) {
      const int ls = ((y[4 + ib / 2] >> (4 * (ib % 2))) & 0xF) | (((scales_h >> (2 * ib)) & 3) << 4);
      const float dl = d * static_cast<float>(ls - 32);
      for (int j = 32 * ib; j < 32 * ib + 32; ++j) out[256 * b + j] = dl * static_cast<float>(kValues[codes[j]]);
    }
  }
}

const RowCodec kCodecs[] = {
    {GgmlType::kIQ4_NL, quantize_iq4_nl, dequantize_iq4_nl},
    {GgmlType::kIQ4_XS, quantize_iq4_xs, dequantize_iq4_xs},
};

}  // namespace

std::span<const RowCodec> iq4_codecs() { return kCodecs; }

}  // namespace lowbit::ggml_internal
