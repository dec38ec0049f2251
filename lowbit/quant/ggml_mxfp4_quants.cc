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
#include <cmath>

#include "lowbit/quant/ggml_codec_internal.h"

namespace lowbit::ggml_internal {

namespace {

constexpr int8_t kValues[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// GGML_E8M0_TO_FP32_HALF.
float e8m0_half(uint8_t e) { return f32_from_bits(e < 2 ? 0x00200000u << e : static_cast<uint32_t>(e - 1) << 23); }

uint8_t block_exponent(float amax) {
  if (!(amax > 0.0f)) return 0;
  const float log2_amax = static_cast<float>(std::log2(static_cast<double>(amax)));
  return cvtt_u8(std::floor(log2_amax) - 2 + 127);
}

// best_index_mxfp4: the first code c with the smallest float32 error
// |kValues[c] d - x|, as ggml searches for it.
uint8_t best_index(float x, float d) {
  int best = 0;
  float best_err = std::fabs(static_cast<float>(kValues[0]) * d - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(static_cast<float>(kValues[i]) * d - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return static_cast<uint8_t>(best);
}

// The same codes for a block whose amax is below 16 d (every block but one
// with an infinite amax, whose e is 0), found without the search:
//  - Only codes of x's sign can beat code 0 (the others' errors fl(k d + |x|)
//    are never below |x|), code 8 (-0) never does, and fl(k d - |x|) is the
//    negated fl(-k d - x): so take the magnitude code of |x| and put the sign
//    back.
//  - d is a power of two, so the magnitudes m_i = k_i d are exact, and for
//    |x| < 16 d between two neighbours m_lo < m_hi both errors are exact
//    (Sterbenz: m_hi <= 2 m_lo for every pair but (0, d), |x| - 0 is exact,
//    and |x| - 12 d for |x| < 24 d). The nearer one wins, the lower on a tie,
//    and no farther magnitude comes close; so the code is the number of
//    midpoints (m_lo + m_hi) / 2 (exact floats too) that |x| exceeds. NaN
//    exceeds none.
void best_indices(const float* a, const float* x, float d, uint8_t* codes) {
  float mid[7];
  for (int i = 1; i < 8; ++i) mid[i - 1] = static_cast<float>(kValues[i - 1] + kValues[i]) * 0.5f * d;
  int c[32] = {};
  for (int i = 0; i < 7; ++i) {
    for (int j = 0; j < 32; ++j) c[j] += a[j] > mid[i];
  }
  // Branch-free (random signs would defeat branch prediction): the sign
  // bit stands for x < 0, since -0 and NaN have magnitude code 0 anyway.
  for (int j = 0; j < 32; ++j) {
    codes[j] = static_cast<uint8_t>(c[j] | ((f32_bits(x[j]) >> 28) & 8 & -static_cast<int>(c[j] != 0)));
  }
}

// The largest |x| ignoring NaNs, as ggml's `if (amax < |x|) amax = |x|`
// finds it; the order does not matter, so it runs as 8 partial maxima.
float block_amax(const float* a) {
  float acc[8] = {};
  for (int j = 0; j < 32; j += 8) {
    for (int k = 0; k < 8; ++k) acc[k] = acc[k] < a[j + k] ? a[j + k] : acc[k];
  }
  float amax = 0;
  for (int k = 0; k < 8; ++k) amax = amax < acc[k] ? acc[k] : amax;
  return amax;
}

// Importance weights are ignored, as in llama.cpp.
void quantize_mxfp4(const float* x, uint64_t n, uint8_t* out, const float*) {
  uint8_t codes[32];
  for (uint64_t b = 0; b < n / 32; ++b) {
    const float* xb = x + 32 * b;
    float a[32];
    for (int j = 0; j < 32; ++j) a[j] = std::fabs(xb[j]);
    const float amax = block_amax(a);
    const uint8_t e = block_exponent(amax);
    const float d = e8m0_half(e);
    if (amax < 16 * d) {
      best_indices(a, xb, d, codes);
    } else {
      for (int j = 0; j < 32; ++j) codes[j] = best_index(xb[j], d);
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
