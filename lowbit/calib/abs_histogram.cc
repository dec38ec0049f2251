#include "lowbit/calib/abs_histogram.h"

#include <cmath>
#include <cstring>

#include <fmt/format.h>

#include "lowbit/calib/binned_percentile.h"
#include "lowbit/core/error.h"
#include "lowbit/core/float16.h"

namespace lowbit {

namespace {
constexpr int kShift = 23 - AbsHistogram::kMantissaBits;
}

size_t AbsHistogram::bin_of(float x) noexcept { return (f32_bits(x) & 0x7fffffffu) >> kShift; }

float AbsHistogram::lower(size_t b) noexcept { return f32_from_bits(static_cast<uint32_t>(b) << kShift); }

float AbsHistogram::upper(size_t b) noexcept {
  // The next bin's lower edge; the last bin ends at the largest float.
  return b + 1 < kBins ? lower(b + 1) : f32_from_bits(0x7f7fffffu);
}

float AbsHistogram::middle(size_t b) noexcept {
  return static_cast<float>((static_cast<double>(lower(b)) + static_cast<double>(upper(b))) / 2);
}

void AbsHistogram::add(const float* x, int64_t n) noexcept {
  for (int64_t i = 0; i < n; ++i) {
    const size_t b = bin_of(x[i]);
    if (b < kBins) ++counts_[b];  // exponent 255: inf or NaN
  }
}

void AbsHistogram::merge(const AbsHistogram& o) noexcept {
  for (size_t b = 0; b < kBins; ++b) counts_[b] += o.counts_[b];
}

AbsHistogram AbsHistogram::from_counts(std::vector<uint64_t> counts) {
  if (counts.size() != kBins) {
    fail_input(fmt::format("a histogram of |x| has {} bins, not {}", kBins, counts.size()));
  }
  AbsHistogram h;
  h.counts_ = std::move(counts);
  return h;
}

uint64_t AbsHistogram::total() const noexcept {
  uint64_t t = 0;
  for (uint64_t c : counts_) t += c;
  return t;
}

float AbsHistogram::percentile(double p) const noexcept {
  return binned_percentile(std::span<const uint64_t>(counts_), p, lower, upper);
}

}  // namespace lowbit
