// HiFloat8 (Ascend HiF8, Luo et al. 2024): sign, a prefix-coded "dot" field
// that says how many exponent bits follow, a sign-magnitude exponent with an
// implicit leading 1, and the mantissa. Bits after the sign:
//   11 eeee m   |E| in 8..15, 1 mantissa bit
//   10 eee mm   |E| in 4..7,  2 mantissa bits
//   01 ee mmm   |E| in 2..3,  3 mantissa bits
//   001 e mmm   |E| = 1,      3 mantissa bits
//   0001 mmm    E = 0,        3 mantissa bits
//   0000 mmm    denormal 2^(mmm - 23) (mmm = 0 is zero)
// The first exponent bit is the exponent's sign (1 = negative). 0x80 (the
// would-be -0) is NaN and 0x6F/0xEF (where 1.5 * 2^15 would be) are +-inf,
// so the range is 2^-22 .. 2^15 with one zero. Codes are not monotonic in
// value, so rounding uses the value table; ties go to the even code, which
// is always the one with the shorter mantissa pattern ending in 0.
#include <cmath>

#include "lowbit/format/families.h"

namespace lowbit::family {

double hifloat8_decode(uint32_t code) {
  code &= 0xffu;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  if (code == kHiF8Nan) return nan;
  const double sgn = (code & 0x80u) ? -1.0 : 1.0;
  if ((code & 0x7fu) == kHiF8PosInf) return sgn * std::numeric_limits<double>::infinity();
  const uint32_t b = code & 0x7fu;
  int d;         // exponent bits
  int m_bits;    // mantissa bits
  uint32_t rest; // bits after the dot field
  if ((b >> 5) != 0) {  // two-bit dot: 11, 10, 01 -> D = 4, 3, 2
    d = static_cast<int>(b >> 5) + 1;
    m_bits = 5 - d;
    rest = b & 0x1fu;
  } else if ((b >> 4) != 0) {  // 001
    d = 1;
    m_bits = 3;
    rest = b & 0x0fu;
  } else if ((b >> 3) != 0) {  // 0001
    d = 0;
    m_bits = 3;
    rest = b & 0x07u;
  } else {  // 0000: denormal
    const uint32_t mm = b & 0x07u;
    return mm == 0 ? 0.0 : sgn * std::ldexp(1.0, static_cast<int>(mm) - 23);
  }
  const uint32_t mant = rest & ((1u << m_bits) - 1);
  int exp = 0;
  if (d > 0) {
    const uint32_t ef = rest >> m_bits;  // d bits: sign, then d-1 magnitude bits
    const bool eneg = ((ef >> (d - 1)) & 1u) != 0;
    const int mag = (1 << (d - 1)) + static_cast<int>(ef & ((1u << (d - 1)) - 1));
    exp = eneg ? -mag : mag;
  }
  return sgn * std::ldexp(1.0 + std::ldexp(static_cast<double>(mant), -m_bits), exp);
}

}  // namespace lowbit::family
