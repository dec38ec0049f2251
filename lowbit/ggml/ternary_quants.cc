// ggml's ternary formats for BitNet b1.58 / TriLM weights: super-blocks of
// 256 values in {-1, 0, 1} times one float16 d = amax.
//
//  - TQ2_0 (66 bytes): qs[64] with 2 bits per element (code = value + 1, the
//    2-bit layout of Q2_K: byte l of each 32-byte run holds elements l,
//    l + 32, l + 64, l + 96), then d.
//  - TQ1_0 (54 bytes): five trits per byte as a fixed-point fraction
//    (byte = ceil(t * 256 / 243), t the base-3 number of the five codes,
//    first code most significant): qs[48] for elements 0..159 (five runs of
//    32 over bytes 0..31) and 160..239 (five runs of 16 over bytes 32..47);
//    qh[4] for elements 240..255 (four runs of 4, shifted up one trit);
//    then d. Decoding multiplies by 3^n and keeps the top trit:
//    ((uint8)(q * 3^n) * 3) >> 8.
//
// Quantization is quantize_row_tq{1,2}_0_ref (and gguf-py's port): code =
// lroundf(x / amax) + 1 (ties away from zero). Importance weights are
// ignored, as in llama.cpp.
#include <cmath>

#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit::ggml_internal {

namespace {

constexpr int kQK = 256;

// The block's d (stored) and codes (value + 1), as the _ref quantizers
// compute them; ggml's MAX keeps a NaN only until the next element.
uint16_t ternary_codes(const float* x, uint8_t* codes) {
  float amax = 0;
  for (int j = 0; j < kQK; ++j) amax = amax > std::fabs(x[j]) ? amax : std::fabs(x[j]);
  const float id = amax != 0 ? 1.0f / amax : 0.0f;
  int r[kQK];
  const bool fast = round_block_away(x, id, kQK, r);
  for (int j = 0; j < kQK; ++j) codes[j] = static_cast<uint8_t>(fast ? r[j] + 1 : lround_plus1(x[j] * id));
  return fp32_to_fp16(amax);
}

void quantize_tq2_0(const float* x, uint64_t n, uint8_t* out, const float*) {
  uint8_t codes[kQK];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    const uint16_t d16 = ternary_codes(x + kQK * b, codes);
    pack_crumbs(codes, kQK, out + 66 * b);
    store_u16(out + 66 * b + 64, d16);
  }
}

void dequantize_tq2_0(const uint8_t* in, uint64_t n, float* out) {
  uint8_t codes[kQK];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    const float d = fp16_to_fp32(load_u16(in + 66 * b + 64));
    unpack_crumbs(in + 66 * b, kQK, codes);
    for (int j = 0; j < kQK; ++j) out[kQK * b + j] = static_cast<float>(codes[j] - 1) * d;
  }
}

// TQ1_0's trit runs: `bytes` bytes of `trits` codes each, code t of byte m
// being element first + m + t * bytes; `shift` appends zero trits.
struct TritRun {
  int first, bytes, out, trits, shift;
};
constexpr TritRun kRuns[] = {{0, 32, 0, 5, 0}, {160, 16, 32, 5, 0}, {240, 4, 48, 4, 1}};

void quantize_tq1_0(const float* x, uint64_t n, uint8_t* out, const float*) {
  uint8_t codes[kQK];
  for (uint64_t b = 0; b < n / kQK; ++b) {
    uint8_t* y = out + 54 * b;
    const uint16_t d16 = ternary_codes(x + kQK * b, codes);
    for (const TritRun& r : kRuns) {
      for (int m = 0; m < r.bytes; ++m) {
        uint8_t q = 0;  // ggml's uint8 arithmetic: wraps for garbage codes
        for (int t = 0; t < r.trits; ++t) q = static_cast<uint8_t>(q * 3 + codes[r.first + m + t * r.bytes]);
        for (int t = 0; t < r.shift; ++t) q = static_cast<uint8_t>(q * 3);
        y[r.out + m] = static_cast<uint8_t>((q * 256 + 242) / 243);
      }
    }
    store_u16(y + 52, d16);
  }
}

void dequantize_tq1_0(const uint8_t* in, uint64_t n, float* out) {
  static constexpr uint8_t kPow3[5] = {1, 3, 9, 27, 81};
  for (uint64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* y = in + 54 * b;
    const float d = fp16_to_fp32(load_u16(y + 52));
    for (const TritRun& r : kRuns) {
      for (int t = 0; t < r.trits; ++t) {
        for (int m = 0; m < r.bytes; ++m) {
          const uint8_t q = static_cast<uint8_t>(y[r.out + m] * kPow3[t]);
          const int xi = (q * 3) >> 8;
          out[kQK * b + r.first + m + t * r.bytes] = static_cast<float>(xi - 1) * d;
        }
      }
    }
  }
}

const RowCodec kCodecs[] = {
    {GgmlType::kTQ1_0, quantize_tq1_0, dequantize_tq1_0},
    {GgmlType::kTQ2_0, quantize_tq2_0, dequantize_tq2_0},
};

}  // namespace

std::span<const RowCodec> ternary_codecs() { return kCodecs; }

}  // namespace lowbit::ggml_internal
