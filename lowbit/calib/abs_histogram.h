// A histogram of |x| over every finite float32 magnitude, for static
// activation scales (static_scale.h): 16 bins per octave, a bin being the
// top bits of |x|'s encoding (its 8 exponent bits and first 4 mantissa
// bits), so a bin spans at most 1/16 of an octave (4.4%) and needs no
// range chosen in advance. Counts are exact integers: adding in any order,
// or merging partial histograms, gives the same histogram. Infinities and
// NaNs are not counted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace lowbit {

class AbsHistogram {
 public:
  static constexpr int kMantissaBits = 4;
  // Exponent codes 0..254 times 16 mantissa prefixes.
  static constexpr size_t kBins = size_t{255} << kMantissaBits;

  AbsHistogram() : counts_(kBins, 0) {}

  // The bin of a finite |x|.
  static size_t bin_of(float x) noexcept;
  // Bin b holds the magnitudes [lower(b), upper(b)).
  static float lower(size_t b) noexcept;
  static float upper(size_t b) noexcept;
  // The value a bin stands for: its midpoint.
  static float middle(size_t b) noexcept;

  void add(const float* x, int64_t n) noexcept;
  void merge(const AbsHistogram& o) noexcept;
  // kInput unless `counts` holds kBins values.
  static AbsHistogram from_counts(std::vector<uint64_t> counts);

  const std::vector<uint64_t>& counts() const noexcept { return counts_; }
  uint64_t total() const noexcept;
  // The |x| below which `p` percent of the counted values lie (0 < p <=
  // 100), interpolated linearly inside its bin; 100 gives the upper edge
  // of the last non-empty bin. 0 for an empty histogram.
  float percentile(double p) const noexcept;

 private:
  std::vector<uint64_t> counts_;
};

}  // namespace lowbit
