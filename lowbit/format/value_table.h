// ValueTable: every finite value of a format, sorted, with its code.
//
// Formats whose values are not a simple arithmetic grid (posits, HiFloat8,
// codebooks) round by searching this table. Tests also use it as a brute-force
// oracle for the arithmetic minifloat and integer models: it is built from the
// decoder alone, so it shares no rounding code with them.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "lowbit/format/lattice.h"

namespace lowbit {

class ValueTable {
 public:
  struct Entry {
    double value;
    uint32_t code;
  };

  // Decodes every code in [0, num_codes) and keeps the finite ones. When two
  // codes decode to the same value (+0 and -0), the first code is kept unless
  // `prefer` says otherwise.
  ValueTable(uint32_t num_codes, const std::function<double(uint32_t)>& decode);

  const std::vector<Entry>& entries() const { return entries_; }
  double min() const { return entries_.front().value; }
  double max() const { return entries_.back().value; }
  const Entry& min_entry() const { return entries_.front(); }
  const Entry& max_entry() const { return entries_.back(); }

  // Bracket of x, with x clamped to [min, max] first (finite-only semantics);
  // mid is the arithmetic midpoint. Zero decodes as +0's code unless x is
  // negative and the table holds a -0 code (negative_zero_code >= 0).
  Bracket bracket(double x) const;

  // Index of the entry with the largest value <= x (x within [min, max]).
  size_t floor_index(double x) const;

  // The code of the value with the smallest magnitude (what NaN maps to in
  // formats without NaN); ties go to the smaller code.
  uint32_t smallest_magnitude_code() const;

 private:
  std::vector<Entry> entries_;
};

}  // namespace lowbit
