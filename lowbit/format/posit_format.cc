// Posits (Posit Standard 2022, generalised to any es): two's complement
// codes, a run-length regime, es exponent bits and a fraction. Rounding uses
// the value table (codes are monotonic in value); what is posit-specific is
// the tie point, which the standard defines on the bit string: between the
// neighbours u and u+1 it is the (n+1)-bit posit with code 2u+1. Where the
// regime has pushed exponent bits out, that point is not the arithmetic mean
// (between 2^20 and 2^24 in posit8_2 it is 2^22).
#include <cmath>

#include "lowbit/format/families.h"

namespace lowbit::family {

double posit_decode(int n, int es, uint32_t code) {
  const uint32_t mask = n >= 32 ? 0xffffffffu : ((1u << n) - 1);
  code &= mask;
  if (code == 0) return 0.0;
  const uint32_t sign_bit = 1u << (n - 1);
  if (code == sign_bit) return std::numeric_limits<double>::quiet_NaN();  // NaR
  const bool neg = (code & sign_bit) != 0;
  if (neg) code = (~code + 1) & mask;  // magnitude by two's complement negation
  // Walk the bits after the sign, most significant first.
  int pos = n - 2;
  const bool first = ((code >> pos) & 1u) != 0;
  int run = 0;
  while (pos >= 0 && (((code >> pos) & 1u) != 0) == first) {
    ++run;
    --pos;
  }
  --pos;  // skip the terminating bit (if there is one)
  const int k = first ? run - 1 : -run;
  int exp = 0;
  for (int i = 0; i < es; ++i) {
    exp <<= 1;
    if (pos >= 0) {
      exp |= static_cast<int>((code >> pos) & 1u);
      --pos;
    }  // bits cut off by the regime count as 0
  }
  const int frac_bits = pos + 1 > 0 ? pos + 1 : 0;
  const uint32_t frac = frac_bits > 0 ? (code & ((1u << frac_bits) - 1)) : 0u;
  const double sig = 1.0 + std::ldexp(static_cast<double>(frac), -frac_bits);
  const double v = std::ldexp(sig, k * (1 << es) + exp);
  return neg ? -v : v;
}

}  // namespace lowbit::family
