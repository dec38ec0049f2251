// Pieces shared by the ggml block codecs (row_codec.h): the per-family
// tables the dispatcher reads, ggml's scalar conversions, and the bit
// packers that several block layouts share.
//
// Exactness notes that hold for every family:
//  - ggml's arithmetic is reproduced operation by operation in float32, in
//    the same order, without fused multiply-adds (the project builds with
//    -ffp-contract=off; llama.cpp's ggml-base is built for plain x86-64,
//    which has no FMA, so it never contracts either).
//  - Where ggml converts an out-of-range float to an integer (undefined in
//    C; it happens for NaN inputs and for blocks whose scale reciprocal
//    overflows), lowbit does what x86-64 compilers emit for those casts
//    (cvttss2si: INT32_MIN, so an int8/uint8 cast keeps its low byte, 0).
//    gguf-py's numpy port gives the same bytes on x86-64.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <span>

#include "lowbit/core/float16.h"
#include "lowbit/ggml/type.h"

namespace lowbit::ggml_internal {

// One type's codec. Both functions take whole blocks. `quantize` encodes
// n elements of one row (or, when !row_statistics, any block-aligned piece
// of a row); importance is null or n per-element weights for those
// elements.
struct RowCodec {
  GgmlType type;
  void (*quantize)(const float* x, uint64_t n, uint8_t* out, const float* importance);  // null: read-only type
  void (*dequantize)(const uint8_t* in, uint64_t n, float* out);
  // True when the weighted (importance) path uses statistics of the whole
  // row, as llama.cpp's legacy Q4_0..Q5_1 do (their sigma^2 is the row's
  // mean square): such a row is never split across threads.
  bool row_statistics = false;
};

std::span<const RowCodec> plain_codecs();
std::span<const RowCodec> legacy_codecs();
std::span<const RowCodec> k_quant_codecs();
std::span<const RowCodec> iq4_codecs();
std::span<const RowCodec> mxfp4_codecs();
std::span<const RowCodec> ternary_codecs();
std::span<const RowCodec> nvfp4_codecs();
std::span<const RowCodec> binary_codecs();

// ---------------------------------------------------------------- maxima

// The element of largest magnitude, the first one on ties, NaNs skipped:
// ggml's `if (|x| > amax) { amax = |x|; max = x; }`. Returns that element
// (0 if there is none) and stores its magnitude in *amax.
inline float signed_absmax(const float* x, int n, float* amax) {
  float a = 0, max = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > a) {
      a = ax;
      max = x[i];
    }
  }
  *amax = a;
  return max;
}

// ---------------------------------------------------------------- searches
//
// llama.cpp's scale searches (ggml-quants.c), shared by the K-quants and the
// weighted paths of the legacy types; defined in ggml_k_quants.cc. Each
// works on one group of n elements, exactly as its namesake.

// Below this a group counts as all zero (ggml's GROUP_MAX_EPS).
inline constexpr float kGroupMaxEps = 1e-15f;

// make_qx_quants with rmse_type 1: a symmetric scale for codes
// -nmax..nmax-1 (stored + nmax in L), searched over 19 candidates with
// weights qw (or x^2 when qw is null). Returns the scale.
float make_qx_quants(int n, int nmax, const float* x, int8_t* L, const float* qw);

// make_qkx2_quants (qkx3 = false) and make_qkx3_quants (qkx3 = true): a
// scale and a min for codes 0..nmax under weights w; *the_min gets the
// (non-negative) min to subtract. Returns the scale.
struct QkxParams {
  int nmax;
  float rmin, rdelta;
  int nstep;
  bool use_mad;
  bool qkx3;
};
float make_qkx_quants(int n, const QkxParams& p, const float* x, const float* w, uint8_t* L, float* the_min);

// make_qp_quants: codes 0..nmax for the non-negative x with weights qw.
float make_qp_quants(int n, int nmax, const float* x, uint8_t* L, const float* qw);

// The hot searches run one group per SIMD lane, and Q8_0 and the Q4_K/Q5_K
// super-block step have SIMD paths, all bit-identical to the scalar
// functions; tests call force_scalar_model(true) to run the scalar model
// instead (and set_kernel_target to pick the SIMD target). Process-wide.
void force_scalar_model(bool on);
bool scalar_model_forced();

// ---------------------------------------------------------------- bytes

inline uint16_t load_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
inline void store_u16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v);
  p[1] = static_cast<uint8_t>(v >> 8);
}
inline uint32_t load_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
inline void store_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Float bits and exact float16 widening live in core (the GEMV kernels use
// them too).
using lowbit::f32_bits;
using lowbit::f32_from_bits;
using lowbit::fp16_to_fp32;

// ---------------------------------------------------------------- fp16

// GGML_FP32_TO_FP16 (ggml_compute_fp32_to_fp16): round to nearest even,
// inf beyond float16's range, and every NaN becomes the sign | 0x7E00.
// Equal to lowbit's float16 format under rne/ieee (plain_types_test
// checks it against the format engine).
inline uint16_t fp32_to_fp16(float f) {
  const uint32_t u = f32_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000);
  const uint32_t a = u & 0x7FFFFFFF;
  if (a > 0x7F800000) return sign | 0x7E00;
  if (a >= 0x477FF000) return sign | 0x7C00;  // >= 65520 (the midpoint past 65504) or inf
  if (a < 0x38800000) {                        // below 2^-14: a float16 subnormal (or 0)
    // Value / 2^-24 rounded to nearest even, as an integer mantissa.
    const int exp = static_cast<int>(a >> 23);
    if (exp < 102) return sign;  // below 2^-25: rounds to 0 (2^-25 itself ties to 0)
    const uint32_t mant = (a & 0x7FFFFF) | 0x800000;
    const int shift = 126 - exp;  // 14..24
    const uint32_t q = mant >> shift, rem = mant & ((1u << shift) - 1), half = 1u << (shift - 1);
    return sign | static_cast<uint16_t>(q + (rem > half || (rem == half && (q & 1))));
  }
  // Normal: rebias the exponent, round the 13 dropped bits to nearest even;
  // a carry out of the mantissa bumps the exponent (up to inf) by itself.
  const uint32_t r = a - 0x38000000;  // exponent 127 -> 15
  const uint32_t q = r >> 13, rem = r & 0x1FFF;
  return sign | static_cast<uint16_t>(q + (rem > 0x1000 || (rem == 0x1000 && (q & 1))));
}

// ---------------------------------------------------------------- integers

// ggml's nearest_int: the float plus 1.5 * 2^23, read back as bits. Rounds to
// nearest even for |x| <= 2^22; other inputs (ggml asserts they never occur,
// but NaN and huge values do reach it) give these bits' garbage, reproduced.
inline int nearest_int(float f) {
  const float v = f + 12582912.f;
  return static_cast<int>(f32_bits(v) & 0x007FFFFF) - 0x00400000;
}

// A C cast of float to a 32-bit integer as x86-64 executes it (cvttss2si):
// truncation, and INT32_MIN for NaN and out-of-range values.
inline int32_t cvtt_i32(float f) {
  // A select rather than a branch, so that loops over blocks vectorize.
  return static_cast<int32_t>(f >= -2147483648.0f && f < 2147483648.0f ? f : -2147483648.0f);
}
// (int8_t)f and (uint8_t)f as x86-64 executes them: the low byte of the above.
inline int8_t cvtt_i8(float f) { return static_cast<int8_t>(static_cast<uint32_t>(cvtt_i32(f)) & 0xFF); }
inline uint8_t cvtt_u8(float f) { return static_cast<uint8_t>(static_cast<uint32_t>(cvtt_i32(f)) & 0xFF); }

// roundf (half away from zero) of v_j = x_j * id over a block, without a
// libm call, in a loop the compiler vectorizes: for |v| < 2^22, |v| -
// trunc(|v|) is exact. Returns false when some v_j is NaN or larger (an id
// that overflowed, NaN input); the caller then takes ggml's path for the
// whole block.
inline bool round_block_away(const float* x, float id, int n, int* out) {
  bool in_range = true;
  for (int j = 0; j < n; ++j) {
    const float v = x[j] * id;
    const float a = std::fabs(v);
    in_range &= a < 4194304.0f;
    const float ac = a < 4194304.0f ? a : 0.0f;
    const int t = static_cast<int>(ac);
    const int r = t + (ac - static_cast<float>(t) >= 0.5f);
    out[j] = v < 0 ? -r : r;
  }
  return in_range;
}

// lroundf(f) + 1 stored in an int, as glibc on x86-64 computes it: rounding
// half away from zero; NaN and infinities give LONG_MIN, whose + 1 keeps only
// the low 32 bits, 1.
inline int lround_plus1(float f) {
  if (!(std::fabs(f) < 9.2233720e18f)) return 1;
  return static_cast<int>(static_cast<uint64_t>(std::lround(f) + 1) & 0xFFFFFFFF);
}

// ---------------------------------------------------------------- packing

// ggml's nibble layout: in each group of g codes, byte l (l < g/2) holds
// code l in its low nibble and code l + g/2 in its high one. Q4_0, Q4_1,
// IQ4_NL, MXFP4, IQ4_XS (g = 32) and Q4_K (g = 64) share it. Codes are
// masked to 4 bits (Q5 types keep the fifth bit elsewhere).
inline void pack_nibbles(const uint8_t* codes, uint64_t n, uint64_t g, uint8_t* out) {
  for (uint64_t b = 0; b < n; b += g) {
    // Plain unit-stride loads and stores, so that the compiler vectorizes.
    const uint8_t* lo = codes + b;
    const uint8_t* hi = lo + g / 2;
    uint8_t* o = out + b / 2;
    for (uint64_t l = 0; l < g / 2; ++l) o[l] = static_cast<uint8_t>((lo[l] & 0xF) | (hi[l] << 4));
  }
}
inline void unpack_nibbles(const uint8_t* in, uint64_t n, uint64_t g, uint8_t* codes) {
  for (uint64_t b = 0; b < n; b += g) {
    for (uint64_t l = 0; l < g / 2; ++l) {
      const uint8_t v = in[(b + l * 2) / 2];
      codes[b + l] = v & 0xF;
      codes[b + l + g / 2] = v >> 4;
    }
  }
}

// ggml's 2-bit layout (Q2_K, Q3_K, TQ2_0): in each group of 128 codes,
// byte l (l < 32) holds codes l, l + 32, l + 64 and l + 96 from its low bits
// up.
inline void pack_crumbs(const uint8_t* codes, uint64_t n, uint8_t* out) {
  for (uint64_t b = 0; b < n; b += 128) {
    for (uint64_t l = 0; l < 32; ++l) {
      out[b / 4 + l] = static_cast<uint8_t>((codes[b + l] & 3) | ((codes[b + l + 32] & 3) << 2) |
                                            ((codes[b + l + 64] & 3) << 4) | ((codes[b + l + 96] & 3) << 6));
    }
  }
}
inline void unpack_crumbs(const uint8_t* in, uint64_t n, uint8_t* codes) {
  for (uint64_t b = 0; b < n; b += 128) {
    for (uint64_t l = 0; l < 32; ++l) {
      const uint8_t v = in[b / 4 + l];
      for (int s = 0; s < 4; ++s) codes[b + l + 32 * s] = (v >> (2 * s)) & 3;
    }
  }
}

// The K-quant bit plane (Q5_K's qh, Q3_K's hmask): bit `bit` of code i
// (i < 256) goes to bit i / 32 of byte i % 32.
inline void pack_bit_plane(const uint8_t* codes, int bit, uint8_t* out) {
  std::memset(out, 0, 32);
  for (int i = 0; i < 256; ++i) out[i % 32] = static_cast<uint8_t>(out[i % 32] | (((codes[i] >> bit) & 1) << (i / 32)));
}
inline uint8_t bit_plane(const uint8_t* in, int i) { return (in[i % 32] >> (i / 32)) & 1; }

}  // namespace lowbit::ggml_internal
