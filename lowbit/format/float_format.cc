// The minifloat family: every IEEE-style format with a sign (optional), an
// exponent field and a mantissa field. One parametric model covers FP8/FP6/FP4
// in all special-value conventions, FP16, BF16, TF32, FP32, the unsigned scale
// formats UE4M3/UE5M3 and E8M0 (which has no subnormals and no zero).
//
// Rounding is done on magnitudes: the quantum at |x| is 2^(max(e, emin) - M),
// and the code of k quanta is ((max(e, emin) - emin) << M) + k. That formula
// runs continuously from the subnormals into the normals and from one binade
// into the next, which is why neighbouring values always have consecutive
// codes and "ties to even code" is ties-to-even.
#include <cmath>

#include "lowbit/format/families.h"

namespace lowbit::family {

MinifloatLayout::MinifloatLayout(const Format& f)
    : e(f.exp_bits), m(f.man_bits), bias(f.bias), emin(f.subnormals ? 1 - f.bias : -f.bias) {
  const int em = e + m;
  mag_mask = (em >= 32) ? 0xffffffffu : ((1u << em) - 1);
  sign_bit = f.is_signed ? (1u << em) : 0u;
  switch (f.specials) {
    case Specials::kIeee:
      max_mag_code = (((1u << e) - 1) << m) - 1;
      break;
    case Specials::kFn:
      max_mag_code = mag_mask - 1;
      break;
    case Specials::kFnuz:
    case Specials::kFinite:
      max_mag_code = mag_mask;
      break;
  }
}

double minifloat_decode(const Format& f, uint32_t code) {
  const MinifloatLayout L(f);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (!f.is_signed && code > L.mag_mask) return nan;  // unused top bit (UE4M3)
  const bool neg = (code & L.sign_bit) != 0;
  const uint32_t mag = code & L.mag_mask;
  const double sgn = neg ? -1.0 : 1.0;
  if (f.specials == Specials::kFnuz && neg && mag == 0) return -nan;
  if (f.specials == Specials::kFn && mag == L.mag_mask) return std::copysign(nan, sgn);
  const uint32_t biased = mag >> L.m;
  const uint32_t mant = mag & ((1u << L.m) - 1);
  if (f.specials == Specials::kIeee && biased == (1u << L.e) - 1) {
    return mant == 0 ? sgn * std::numeric_limits<double>::infinity() : std::copysign(nan, sgn);
  }
  double v;
  if (biased == 0 && f.subnormals) {
    v = std::ldexp(static_cast<double>(mant), L.emin - L.m);
  } else {
    v = std::ldexp(static_cast<double>((1u << L.m) + mant),
                   static_cast<int>(biased) - L.bias - L.m);
  }
  return sgn * v;
}

Bracket minifloat_bracket(const Format& f, double x) {
  const MinifloatLayout L(f);
  const bool neg = std::signbit(x);
  const double a = std::fabs(x);
  const uint32_t sign = neg ? L.sign_bit : 0u;
  Bracket b;
  if (!f.subnormals && a < std::ldexp(1.0, L.emin)) {
    // E8M0 has no zero: everything below its smallest value becomes it.
    const double v = std::ldexp(1.0, L.emin);
    b.lo = b.hi = b.mid = v;
    b.lo_code = b.hi_code = 0;
    return b;
  }
  if (a == 0) {
    b.lo = b.hi = b.mid = x;
    b.lo_code = b.hi_code = f.has_negative_zero() ? sign : 0u;
    return b;
  }
  const int e = std::ilogb(a);
  const int eff = e > L.emin ? e : L.emin;
  const int qe = eff - L.m;
  const double k = std::floor(std::ldexp(a, -qe));
  const double lo = std::ldexp(k, qe);
  const uint32_t subnormal_offset = f.subnormals ? 0u : (1u << L.m);
  const uint32_t lo_code =
      (static_cast<uint32_t>(eff - L.emin) << L.m) + static_cast<uint32_t>(k) - subnormal_offset;
  if (lo == a) {
    b.lo = b.hi = b.mid = x;
    b.lo_code = b.hi_code = lo_code | sign;
    return b;
  }
  const double hi = std::ldexp(k + 1, qe);
  const uint32_t hi_code = lo_code + 1;
  // A magnitude that truncates to zero is -0 for negative x (or +0).
  const uint32_t zero_code = f.has_negative_zero() ? sign : 0u;
  const uint32_t lo_full = lo == 0 ? zero_code : (lo_code | sign);
  if (!neg) {
    b.lo = lo;
    b.hi = hi;
    b.lo_code = lo_full;
    b.hi_code = hi_code | sign;
  } else {
    b.lo = -hi;
    b.hi = -lo;
    b.lo_code = hi_code | sign;
    b.hi_code = lo_full;
  }
  b.mid = 0.5 * (b.lo + b.hi);
  return b;
}

uint32_t minifloat_nan_code(const Format& f, bool negative) {
  const MinifloatLayout L(f);
  const uint32_t sign = negative ? L.sign_bit : 0u;
  switch (f.specials) {
    case Specials::kIeee:  // the canonical quiet NaN: top mantissa bit set
      return (((1u << L.e) - 1) << L.m) | (L.m > 0 ? 1u << (L.m - 1) : 0u) | sign;
    case Specials::kFn:
      return L.mag_mask | sign;
    case Specials::kFnuz:
      return L.sign_bit;
    case Specials::kFinite:
      break;
  }
  return 0;  // no NaN: the caller applies the no-NaN policy
}

uint32_t minifloat_inf_code(const Format& f, bool negative) {
  const MinifloatLayout L(f);
  return (((1u << L.e) - 1) << L.m) | (negative ? L.sign_bit : 0u);
}

}  // namespace lowbit::family
