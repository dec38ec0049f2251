// The rounding rule shared by every format.
//
// Every format reduces rounding to the same question: x lies in a bracket
// [lo, hi] of two neighbouring values (one of which may be "virtual": the
// value just beyond the format's range, standing for overflow). This file
// answers which neighbour each rounding mode picks. Keeping the rule in one
// place is what makes "rne means ties to the even code" hold identically for
// minifloats, integers, posits, HiFloat8 and codebooks.
#pragma once

#include <cstdint>

#include "lowbit/format/rounding.h"

namespace lowbit {

struct Bracket {
  double lo = 0, hi = 0;            // lo <= hi; lo == hi == x when x is exact
  uint32_t lo_code = 0, hi_code = 0;  // codes (only the parity of a virtual one matters)
  double mid = 0;                   // where rne/rna tie; (lo + hi) / 2 except for posits
  bool lo_virtual = false;          // lo lies beyond the range (below / negative overflow)
  bool hi_virtual = false;          // hi lies beyond the range (overflow)

  bool exact() const { return lo == hi; }
};

// Which neighbour the mode picks for x; x may lie outside [lo, hi] when it is
// beyond a virtual neighbour (then every mode but the toward-zero ones picks
// the virtual side). `index` is the element index for stochastic rounding.
// Returns true for hi.
bool pick_hi(const Bracket& b, double x, const RoundOptions& opt, uint64_t index);

// floor(frac * 2^bits) clamped to [0, 2^bits], where frac is the position of
// x between near (0) and far (1), computed in double arithmetic. For brackets
// whose width is a power of two and float32 inputs this is exact, which is
// what lets the SIMD kernels reproduce it with integer shifts.
uint64_t stochastic_fraction(double x, double near, double far, int bits);

}  // namespace lowbit
