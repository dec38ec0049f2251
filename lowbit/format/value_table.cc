#include "lowbit/format/value_table.h"

#include <algorithm>
#include <cmath>

namespace lowbit {

ValueTable::ValueTable(uint32_t num_codes, const std::function<double(uint32_t)>& decode) {
  entries_.reserve(num_codes);
  for (uint32_t c = 0; c < num_codes; ++c) {
    const double v = decode(c);
    if (std::isfinite(v)) entries_.push_back({v, c});
  }
  // Sort by value; equal values (only +0/-0, or duplicates in a user table)
  // keep the smaller code first, and only that one is kept.
  std::stable_sort(entries_.begin(), entries_.end(), [](const Entry& a, const Entry& b) {
    return a.value < b.value || (a.value == b.value && a.code < b.code);
  });
  entries_.erase(std::unique(entries_.begin(), entries_.end(),
                             [](const Entry& a, const Entry& b) { return a.value == b.value; }),
                 entries_.end());
}

size_t ValueTable::floor_index(double x) const {
  // upper_bound gives the first entry > x; the one before it is <= x.
  auto it = std::upper_bound(entries_.begin(), entries_.end(), x,
                             [](double v, const Entry& e) { return v < e.value; });
  return static_cast<size_t>(it - entries_.begin()) - 1;
}

Bracket ValueTable::bracket(double x) const {
  Bracket b;
  x = std::clamp(x, min(), max());
  const size_t i = floor_index(x);
  const Entry& lo = entries_[i];
  if (lo.value == x) {
    b.lo = b.hi = b.mid = x;
    b.lo_code = b.hi_code = lo.code;
    return b;
  }
  const Entry& hi = entries_[i + 1];
  b.lo = lo.value;
  b.hi = hi.value;
  b.lo_code = lo.code;
  b.hi_code = hi.code;
  b.mid = 0.5 * (lo.value + hi.value);  // exact: values have < 53 significant bits
  return b;
}

uint32_t ValueTable::smallest_magnitude_code() const {
  const Entry* best = &entries_.front();
  for (const Entry& e : entries_) {
    const double a = std::fabs(e.value), b = std::fabs(best->value);
    if (a < b || (a == b && e.code < best->code)) best = &e;
  }
  return best->code;
}

}  // namespace lowbit
