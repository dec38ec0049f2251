// Integers: two's complement intB (optionally narrow, without the most
// negative code), unsigned uintB, and ternary {-1, 0, 1}, which is int2
// narrow with its own packing. Codes are the value's two's complement bits,
// so neighbouring integers have consecutive codes and "ties to the even code"
// is the usual round-half-to-even.
#include <cmath>

#include "lowbit/format/families.h"

namespace lowbit::family {

int64_t int_min(const Format& f) {
  if (!f.is_signed) return 0;
  const int64_t m = -(int64_t{1} << (f.bits - 1));
  return f.narrow ? m + 1 : m;
}

int64_t int_max(const Format& f) {
  return f.is_signed ? (int64_t{1} << (f.bits - 1)) - 1 : (int64_t{1} << f.bits) - 1;
}

namespace {
uint32_t int_code(const Format& f, int64_t v) {
  const uint64_t mask = (uint64_t{1} << f.bits) - 1;
  return static_cast<uint32_t>(static_cast<uint64_t>(v) & mask);
}
}  // namespace

double int_decode(const Format& f, uint32_t code) {
  const uint32_t mask = static_cast<uint32_t>((uint64_t{1} << f.bits) - 1);
  if (code > mask) return std::numeric_limits<double>::quiet_NaN();
  int64_t v = code;
  if (f.is_signed && (code >> (f.bits - 1)) != 0) v -= int64_t{1} << f.bits;
  // The code a narrow format leaves out decodes as invalid, not as a number.
  if (v < int_min(f)) return std::numeric_limits<double>::quiet_NaN();
  return static_cast<double>(v);
}

Bracket int_bracket(const Format& f, double x) {
  Bracket b;
  const double lo = std::floor(x);
  b.lo = lo;
  b.lo_code = int_code(f, static_cast<int64_t>(lo));
  if (lo == x) {
    b.hi = b.mid = lo;
    b.hi_code = b.lo_code;
    return b;
  }
  b.hi = lo + 1;
  b.hi_code = int_code(f, static_cast<int64_t>(lo) + 1);
  b.mid = lo + 0.5;
  return b;
}

}  // namespace lowbit::family
