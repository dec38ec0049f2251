// Internal interface of the per-family scalar models. Each family supplies a
// decoder and, for a finite x inside its range, the bracket of neighbouring
// values; codec.cc applies the shared rounding rule (lattice.h), the overflow
// policy and the NaN/inf policy on top. Not part of the public API.
#pragma once

#include <cstdint>

#include "lowbit/format/format.h"
#include "lowbit/format/lattice.h"

namespace lowbit::family {

// ---- minifloat (float_format.cc): IEEE-style sign | exponent | mantissa ----
struct MinifloatLayout {
  int e, m, bias, emin;  // emin: exponent of the smallest normal
  uint32_t mag_mask;     // the exponent and mantissa bits
  uint32_t sign_bit;     // 0 for unsigned formats
  uint32_t max_mag_code; // magnitude code of the largest finite value
  explicit MinifloatLayout(const Format& f);
};
double minifloat_decode(const Format& f, uint32_t code);
// x finite with |x| <= max; unsigned formats only get x >= 0.
Bracket minifloat_bracket(const Format& f, double x);
uint32_t minifloat_nan_code(const Format& f, bool negative);
uint32_t minifloat_inf_code(const Format& f, bool negative);

// ---- integers and ternary (int_format.cc) ----
int64_t int_min(const Format& f);
int64_t int_max(const Format& f);
double int_decode(const Format& f, uint32_t code);
Bracket int_bracket(const Format& f, double x);  // x within [min, max]

// ---- posit (posit_format.cc) ----
// Value of an n-bit posit with es exponent bits (n <= 32); NaN for NaR.
double posit_decode(int n, int es, uint32_t code);

// ---- HiFloat8 (hifloat8_format.cc) ----
double hifloat8_decode(uint32_t code);
inline constexpr uint32_t kHiF8Nan = 0x80;
inline constexpr uint32_t kHiF8PosInf = 0x6F;
inline constexpr uint32_t kHiF8MaxCode = 0x6E;

}  // namespace lowbit::family
