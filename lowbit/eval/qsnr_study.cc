#include "lowbit/eval/qsnr_study.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <memory>

#include "lowbit/core/error.h"
#include "lowbit/ggml/codec_registry.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

namespace {

// Per-block signal and error sums, for the crest bins.
struct BlockSums {
  std::vector<double> x2, e2;
};

BlockSums block_sums(const float* x, const float* y, uint64_t n, uint64_t block) {
  BlockSums s;
  const uint64_t nb = n / block;
  s.x2.assign(nb, 0.0);
  s.e2.assign(nb, 0.0);
  for (uint64_t b = 0; b < nb; ++b) {
    double a = 0, e = 0;
    for (uint64_t j = b * block; j < (b + 1) * block; ++j) {
      a += static_cast<double>(x[j]) * x[j];
      const double d = static_cast<double>(y[j]) - x[j];
      e += d * d;
    }
    s.x2[b] = a;
    s.e2[b] = e;
  }
  return s;
}

}  // namespace

StudyResult run_qsnr_study(const std::vector<float>& x, const std::vector<uint64_t>& shape,
                           const std::vector<std::string>& schemes, const StudyOptions& opt) {
  StudyResult r;
  r.shape = shape;
  const uint64_t n = x.size();
  std::vector<std::shared_ptr<const TensorCodec>> parsed;
  for (const auto& s : schemes) parsed.push_back(parse_codec(s));  // all errors before any work
  // Crest factors of the data's blocks (and their bins for a sweep).
  const uint64_t cb = std::max<uint64_t>(1, opt.crest_block);
  const uint64_t nb = n / cb;
  std::vector<double> crest(nb);
  for (uint64_t b = 0; b < nb; ++b) {
    crest[b] = CrestStats::crest_factor(x.data() + b * cb, cb);
    r.crest.add_block(x.data() + b * cb, cb);
  }
  std::vector<int> bin_of;
  if (opt.sweep_crest) {
    // Equal-count bins over the sorted crest factors. All-zero blocks have
    // no crest factor (and blocks with a non-finite value no meaningful
    // one): they sit out the sweep.
    std::vector<double> sorted;
    for (double c : crest) {
      if (std::isfinite(c) && c > 0) sorted.push_back(c);
    }
    // One block is no sweep: with fewer than two there is nothing to
    // compare, and an empty table would look like success.
    if (sorted.size() < kMinCrestSweepBlocks) {
      fail_input("the crest sweep needs at least " + std::to_string(kMinCrestSweepBlocks) + " blocks of " +
                 std::to_string(cb) + " elements that have a crest factor (not all zero, all finite); only " +
                 std::to_string(sorted.size()) + " of the data's " + std::to_string(nb) + " blocks do");
    }
    std::sort(sorted.begin(), sorted.end());
    const int bins = static_cast<int>(std::min<uint64_t>(std::max(1, opt.crest_bins), sorted.size()));
    std::vector<double> edges(bins + 1);
    for (int k = 0; k <= bins; ++k) edges[k] = sorted[std::min(sorted.size() - 1, sorted.size() * k / bins)];
    edges[bins] = std::numeric_limits<double>::infinity();
    std::vector<CrestBin> all(bins);
    for (int k = 0; k < bins; ++k) {
      all[k].lo = edges[k];
      all[k].hi = k + 1 < bins ? edges[k + 1] : sorted.back();
    }
    bin_of.assign(nb, -1);
    for (uint64_t b = 0; b < nb; ++b) {
      if (!std::isfinite(crest[b]) || !(crest[b] > 0)) continue;
      const int k = static_cast<int>(std::upper_bound(edges.begin(), edges.end(), crest[b]) - edges.begin()) - 1;
      bin_of[b] = std::clamp(k, 0, bins - 1);
      all[bin_of[b]].blocks++;
    }
    // Blocks with equal crest factors (few blocks, or data with repeated
    // blocks) can leave an edge duplicated and its bin empty: an empty bin
    // has no QSNR, so it is dropped rather than reported as inf.
    std::vector<int> renumber(bins, -1);
    for (int k = 0; k < bins; ++k) {
      if (all[k].blocks == 0) continue;
      renumber[k] = static_cast<int>(r.crest_bins.size());
      r.crest_bins.push_back(all[k]);
    }
    for (int& k : bin_of) {
      if (k >= 0) k = renumber[k];
    }
  }
  std::vector<float> y(n);
  QuantizeOptions qo;
  qo.threads = opt.threads;
  for (size_t i = 0; i < parsed.size(); ++i) {
    const TensorCodec& c = *parsed[i];
    const Scheme& s = c.scheme();
    StudyRecord rec;
    rec.scheme = schemes[i];
    rec.spec = c.spec();
    const auto t0 = std::chrono::steady_clock::now();
    if (s.outliers.kind != OutlierPolicy::Kind::kNone) {
      // The outlier count, and so the bits, are known only once quantized.
      const QuantizedTensor q = c.quantize({x.data(), shape}, qo);
      dequantize(q, y.data(), opt.threads);
      rec.bits_per_element = q.bits_per_element();
    } else {
      c.fakequant({x.data(), shape}, y.data(), qo);
      rec.bits_per_element = n ? static_cast<double>(scheme_bits(s, shape).total()) / static_cast<double>(n) : 0.0;
    }
    rec.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rec.error = error_stats(x.data(), y.data(), n, opt.threads);
    if (!r.crest_bins.empty()) {
      const BlockSums bs = block_sums(x.data(), y.data(), n, cb);
      std::vector<double> sx(r.crest_bins.size(), 0.0), se(r.crest_bins.size(), 0.0);
      for (uint64_t b = 0; b < nb; ++b) {
        if (bin_of[b] < 0) continue;
        sx[bin_of[b]] += bs.x2[b];
        se[bin_of[b]] += bs.e2[b];
      }
      for (size_t k = 0; k < r.crest_bins.size(); ++k) {
        const double q = se[k] > 0 ? -10.0 * std::log10(se[k] / sx[k]) : std::numeric_limits<double>::infinity();
        r.crest_bins[k].qsnr_db.push_back(q);
      }
    }
    r.records.push_back(std::move(rec));
  }
  return r;
}

}  // namespace lowbit
