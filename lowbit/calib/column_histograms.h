// Per input column, a histogram of |x| coarse enough to keep one for every
// column of a model (for per-column percentiles; abs_histogram.h is the
// fine per-tensor one): 8 bins per octave (a bin is |x|'s exponent and
// first 3 mantissa bits, so at most 1/8 of an octave, 9%, wide) over
// [2^-32, 2^32), one bin below (zero included) and one above (infinities
// included); NaNs are not counted. 514 uint32 counts, about 2 KB per
// column: SmolLM2-135M's 97,920 distinct input columns take 200 MB, so
// calibration records them only when asked (calibrate --col-percentiles).
//
// Counts are exact integers: the same histogram for any order of adding,
// so for any thread count and batching. A column may count at most 2^32 - 1
// values; add() refuses more (ErrorKind::kInput).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

namespace lowbit {

class ColumnHistograms {
 public:
  static constexpr int kBinsPerOctave = 8;
  static constexpr int kMinExponent = -32, kMaxExponent = 32;
  static constexpr size_t kBins = 2 + static_cast<size_t>(kMaxExponent - kMinExponent) * kBinsPerOctave;

  explicit ColumnHistograms(int64_t cols);

  static size_t bin_of(float magnitude) noexcept;
  // Bin b holds [lower(b), upper(b)); the top bin's upper edge is +inf.
  static float lower(size_t b) noexcept;
  static float upper(size_t b) noexcept;

  // Adds the rows of x [rows, cols()].
  void add(const float* x, int64_t rows);
  int64_t cols() const noexcept { return cols_; }
  std::span<const uint32_t> counts(int64_t col) const noexcept {
    return {counts_.data() + static_cast<size_t>(col) * kBins, kBins};
  }
  // The p-th percentile of column col's |x| (binned_percentile.h), within
  // its bin's 9%.
  float percentile(int64_t col, double p) const noexcept;

 private:
  int64_t cols_;
  uint64_t rows_ = 0;
  std::vector<uint32_t> counts_;  // [cols][kBins]
};

}  // namespace lowbit
