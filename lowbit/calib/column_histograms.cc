#include "lowbit/calib/column_histograms.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "lowbit/calib/binned_percentile.h"
#include "lowbit/core/error.h"
#include "lowbit/core/float16.h"

namespace lowbit {

ColumnHistograms::ColumnHistograms(int64_t cols) : cols_(cols), counts_(static_cast<size_t>(cols) * kBins, 0) {}

size_t ColumnHistograms::bin_of(float magnitude) noexcept {
  const uint32_t bits = f32_bits(magnitude) & 0x7fffffffu;
  const int exponent = static_cast<int>(bits >> 23) - 127;  // 128 for inf and NaN
  if (exponent < kMinExponent) return 0;
  if (exponent >= kMaxExponent) return kBins - 1;
  const auto top = static_cast<size_t>((bits >> 20) & 7u);
  return 1 + static_cast<size_t>(exponent - kMinExponent) * kBinsPerOctave + top;
}

float ColumnHistograms::lower(size_t b) noexcept {
  if (b == 0) return 0.0f;
  const auto i = static_cast<int>(b - 1);
  return std::ldexp(1.0f + static_cast<float>(i % kBinsPerOctave) / kBinsPerOctave,
                    kMinExponent + i / kBinsPerOctave);
}

float ColumnHistograms::upper(size_t b) noexcept {
  return b + 1 < kBins ? lower(b + 1) : std::numeric_limits<float>::infinity();
}

void ColumnHistograms::add(const float* x, int64_t rows) {
  if (rows_ + static_cast<uint64_t>(rows) > std::numeric_limits<uint32_t>::max()) {
    fail_input(fmt::format("per-column histograms count at most {} values per column",
                           std::numeric_limits<uint32_t>::max()));
  }
  rows_ += static_cast<uint64_t>(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const float* row = x + r * cols_;
    uint32_t* c = counts_.data();
    for (int64_t j = 0; j < cols_; ++j, c += kBins) {
      if (!std::isnan(row[j])) ++c[bin_of(row[j])];
    }
  }
}

float ColumnHistograms::percentile(int64_t col, double p) const noexcept {
  return binned_percentile(counts(col), p, lower, upper);
}

}  // namespace lowbit
