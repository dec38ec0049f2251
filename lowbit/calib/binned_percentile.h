// The p-th percentile of values known only by the bin they fell in: the
// bins' counts walked in order until p percent of the total lie below,
// then interpolated linearly inside that bin (the values of a bin taken
// as spread evenly over it). p = 100 gives the upper edge of the last
// non-empty bin; an empty histogram gives 0. Shared by the per-tensor
// (abs_histogram.h) and per-column (column_histograms.h) histograms.
#pragma once

#include <cstddef>
#include <span>

namespace lowbit {

// lower(b) and upper(b) are bin b's edges.
template <class Count, class Lower, class Upper>
float binned_percentile(std::span<const Count> counts, double p, const Lower& lower, const Upper& upper) {
  double n = 0;
  for (Count c : counts) n += static_cast<double>(c);
  if (n == 0) return 0;
  const double want = p / 100.0 * n;
  double below = 0;
  size_t last = 0;
  for (size_t b = 0; b < counts.size(); ++b) {
    if (counts[b] == 0) continue;
    last = b;
    const double c = static_cast<double>(counts[b]);
    if (below + c >= want && p < 100) {
      const double f = (want - below) / c;
      const double lo = lower(b);
      return static_cast<float>(lo + f * (static_cast<double>(upper(b)) - lo));
    }
    below += c;
  }
  return static_cast<float>(upper(last));
}

}  // namespace lowbit
