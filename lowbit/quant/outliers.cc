#include "lowbit/quant/outliers.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/format/codec.h"
#include "lowbit/format/registry.h"

namespace lowbit {

namespace {

const Codec& fp16() {
  static const Codec c(parse_format("float16"));
  return c;
}

// Little-endian bit stream writer/reader of fixed-width codes.
struct BitWriter {
  std::vector<uint8_t>& out;
  uint64_t bits = 0;
  void put(uint32_t v, int w) {
    for (int k = 0; k < w; ++k, ++bits) {
      if (bits % 8 == 0) out.push_back(0);
      if ((v >> k) & 1u) out.back() = static_cast<uint8_t>(out.back() | (1u << (bits % 8)));
    }
  }
};

}  // namespace

void encode_positions(const std::vector<uint64_t>& pos, uint64_t n, int gap_bits, OutlierList& out) {
  out.gap_bits = gap_bits;
  out.positions.clear();
  if (gap_bits == 0) {
    const int w = n > (uint64_t{1} << 32) ? 8 : 4;
    out.positions.resize(pos.size() * w);
    for (size_t i = 0; i < pos.size(); ++i) {
      for (int k = 0; k < w; ++k) out.positions[i * w + k] = static_cast<uint8_t>(pos[i] >> (8 * k));
    }
    out.position_bits = pos.size() * 8ull * w;
    return;
  }
  const uint32_t esc = (1u << gap_bits) - 1;
  BitWriter w{out.positions};
  uint64_t prev_end = 0;  // the first position a gap of 0 points at
  for (uint64_t p : pos) {
    uint64_t gap = p - prev_end;
    while (gap >= esc) {
      w.put(esc, gap_bits);
      gap -= esc;
    }
    w.put(static_cast<uint32_t>(gap), gap_bits);
    prev_end = p + 1;
  }
  out.position_bits = w.bits;
}

std::vector<uint64_t> outlier_positions(const OutlierList& list, uint64_t n) {
  std::vector<uint64_t> pos;
  pos.reserve(list.count);
  if (list.values.size() != list.count) fail_input("outliers: value count does not match the position count");
  if (list.gap_bits == 0) {
    const int w = n > (uint64_t{1} << 32) ? 8 : 4;
    if (list.positions.size() != list.count * w) fail_input("outliers: plain position list has the wrong size");
    for (uint64_t i = 0; i < list.count; ++i) {
      uint64_t p = 0;
      for (int k = 0; k < w; ++k) p |= static_cast<uint64_t>(list.positions[i * w + k]) << (8 * k);
      if (p >= n || (!pos.empty() && p <= pos.back())) fail_input("outliers: positions out of range or not ascending");
      pos.push_back(p);
    }
    return pos;
  }
  if (list.gap_bits < 2 || list.gap_bits > 16) fail_input("outliers: gap code width must be 2..16 bits");
  const uint32_t esc = (1u << list.gap_bits) - 1;
  const uint64_t total_bits = list.positions.size() * 8;
  uint64_t bit = 0, cur = 0;
  while (pos.size() < list.count) {
    if (bit + static_cast<uint64_t>(list.gap_bits) > total_bits) fail_input("outliers: gap stream ends early");
    uint32_t v = 0;
    for (int k = 0; k < list.gap_bits; ++k, ++bit) v |= ((list.positions[bit / 8] >> (bit % 8)) & 1u) << k;
    cur += v;
    if (cur >= n) fail_input("outliers: a gap points past the tensor");
    if (v == esc) continue;
    pos.push_back(cur);
    cur += 1;
  }
  return pos;
}

OutlierList extract_outliers(float* x, uint64_t rows, uint64_t cols, const OutlierPolicy& p) {
  const uint64_t n = rows * cols;
  std::vector<uint64_t> pos;
  if (p.kind == OutlierPolicy::Kind::kFraction) {
    const uint64_t k = std::min<uint64_t>(n, static_cast<uint64_t>(std::llround(p.value * static_cast<double>(n))));
    if (k > 0) {
      // The k-th largest |x| as float32 bits (order-preserving for |x|, NaN
      // above inf), then every element above it and the first ones equal.
      std::vector<uint32_t> mag(n);
      for (uint64_t i = 0; i < n; ++i) mag[i] = std::bit_cast<uint32_t>(x[i]) & 0x7fffffffu;
      std::nth_element(mag.begin(), mag.begin() + static_cast<std::ptrdiff_t>(k - 1), mag.end(),
                       std::greater<uint32_t>());
      const uint32_t thr = mag[k - 1];
      uint64_t above = 0;
      for (uint64_t i = 0; i < n; ++i) above += (std::bit_cast<uint32_t>(x[i]) & 0x7fffffffu) > thr;
      uint64_t ties = k - above;
      pos.reserve(k);
      for (uint64_t i = 0; i < n; ++i) {
        const uint32_t m = std::bit_cast<uint32_t>(x[i]) & 0x7fffffffu;
        if (m > thr || (m == thr && ties > 0)) {
          if (m == thr) --ties;
          pos.push_back(i);
        }
      }
    }
  } else if (p.kind == OutlierPolicy::Kind::kSigma) {
    for (uint64_t r = 0; r < rows; ++r) {
      const float* row = x + r * cols;
      double s = 0, s2 = 0;
      uint64_t cnt = 0;
      for (uint64_t j = 0; j < cols; ++j) {
        if (!std::isfinite(row[j])) continue;
        s += row[j];
        ++cnt;
      }
      const double mean = cnt ? s / static_cast<double>(cnt) : 0.0;
      for (uint64_t j = 0; j < cols; ++j) {
        if (std::isfinite(row[j])) s2 += (row[j] - mean) * (row[j] - mean);
      }
      const double sd = cnt ? std::sqrt(s2 / static_cast<double>(cnt)) : 0.0;
      const double lim = p.value * sd;
      for (uint64_t j = 0; j < cols; ++j) {
        if (!std::isfinite(row[j]) || std::fabs(row[j] - mean) > lim) pos.push_back(r * cols + j);
      }
    }
  }
  OutlierList out;
  out.count = pos.size();
  out.values.resize(pos.size());
  RoundOptions rne;
  for (size_t i = 0; i < pos.size(); ++i) {
    out.values[i] = static_cast<uint16_t>(fp16().encode(x[pos[i]], rne));
    x[pos[i]] = 0.0f;
  }
  encode_positions(pos, n, p.gap_bits, out);
  return out;
}

void restore_outliers(const OutlierList& list, float* out, uint64_t n) {
  const std::vector<uint64_t> pos = outlier_positions(list, n);
  for (size_t i = 0; i < pos.size(); ++i) out[pos[i]] = static_cast<float>(fp16().decode(list.values[i]));
}

}  // namespace lowbit
