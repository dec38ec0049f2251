#include "lowbit/format/lattice.h"

#include <cmath>

#include "lowbit/format/stochastic_bits.h"

namespace lowbit {

namespace {

// The neighbour of smaller magnitude: the toward-zero choice. For brackets
// that straddle zero (codebooks without a zero) it is still the choice that
// does not increase the magnitude.
bool smaller_magnitude_is_hi(const Bracket& b) {
  return std::fabs(b.hi) < std::fabs(b.lo);
}

bool is_odd(uint32_t code) { return (code & 1u) != 0; }

}  // namespace

uint64_t stochastic_fraction(double x, double near, double far, int bits) {
  const double frac = (x - near) / (far - near);
  const double one = std::ldexp(1.0, bits);
  if (!(frac > 0)) return 0;
  if (frac >= 1) return static_cast<uint64_t>(one);
  return static_cast<uint64_t>(std::floor(std::ldexp(frac, bits)));
}

bool pick_hi(const Bracket& b, double x, const RoundOptions& opt, uint64_t index) {
  // A virtual neighbour is never exact: x equal to it still overflows only
  // under the modes that round away.
  if (x == b.lo && !b.lo_virtual) return false;
  if (x == b.hi && !b.hi_virtual) return true;
  switch (opt.mode) {
    case Rounding::kNearestEven:
      if (x < b.mid) return false;
      if (x > b.mid) return true;
      if (is_odd(b.lo_code) != is_odd(b.hi_code)) return is_odd(b.lo_code);
      return smaller_magnitude_is_hi(b);  // same parity: only unsorted user tables
    case Rounding::kNearestAway:
      if (x < b.mid) return false;
      if (x > b.mid) return true;
      return std::fabs(b.hi) > std::fabs(b.lo);
    case Rounding::kTowardZero:
      return smaller_magnitude_is_hi(b);
    case Rounding::kUp:
      return true;
    case Rounding::kDown:
      return false;
    case Rounding::kOdd: {
      // Round to odd never produces a virtual (overflow) value: like
      // truncation, it stays inside the range.
      if (b.hi_virtual) return false;
      if (b.lo_virtual) return true;
      const bool lo_odd = is_odd(b.lo_code), hi_odd = is_odd(b.hi_code);
      if (lo_odd != hi_odd) return hi_odd;
      return smaller_magnitude_is_hi(b);
    }
    case Rounding::kStochastic: {
      // Work in the magnitude frame (near = neighbour closer to zero) so that
      // adding random bits to the dropped magnitude bits and truncating, as
      // hardware does, gives the same result. Brackets straddling zero use
      // the value frame.
      const bool hi_is_near = b.hi <= 0 && b.lo < 0;
      const double near = hi_is_near ? b.hi : b.lo;
      const double far = hi_is_near ? b.lo : b.hi;
      const int r = opt.sr_bits;
      const uint64_t t = stochastic_fraction(x, near, far, r);
      const uint64_t rnd = stochastic_bits(opt.seed, index) >> (32 - r);
      const bool to_far = t + rnd >= (uint64_t{1} << r);
      return to_far != hi_is_near;
    }
  }
  return false;
}

}  // namespace lowbit
