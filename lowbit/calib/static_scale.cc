#include "lowbit/calib/static_scale.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit {

namespace {

// The histogram's non-empty bins: midpoints and counts, in order.
struct Bins {
  std::vector<size_t> index;
  std::vector<float> mid;
  std::vector<double> count;
};

Bins nonempty(const AbsHistogram& h) {
  Bins b;
  for (size_t i = 0; i < AbsHistogram::kBins; ++i) {
    if (h.counts()[i] == 0) continue;
    b.index.push_back(i);
    b.mid.push_back(AbsHistogram::middle(i));
    b.count.push_back(static_cast<double>(h.counts()[i]));
  }
  return b;
}

// Each value v quantized with amax t: fakequant(v / s) * s.
std::vector<float> quantized(const std::vector<float>& v, float t, const Scheme& scheme) {
  const float s = static_cast<float>(t / scheme.element_max());
  const float inv = 1.0f / s;
  std::vector<float> q(v.size());
  for (size_t i = 0; i < v.size(); ++i) q[i] = v[i] * inv;
  ArrayOptions o;
  o.round = scheme.round;
  o.threads = 1;
  fakequant_array(scheme.element, q.data(), q.data(), q.size(), o);
  for (float& x : q) x *= s;
  return q;
}

double squared_error(const Bins& b, float t, const Scheme& scheme) {
  const std::vector<float> q = quantized(b.mid, t, scheme);
  double e = 0;
  for (size_t i = 0; i < q.size(); ++i) {
    const double d = static_cast<double>(q[i]) - b.mid[i];
    e += b.count[i] * d * d;
  }
  return e;
}

// TensorRT's entropy calibration over `linear` (kLinearBins counts of
// |x| in equal bins up to absmax): the amax minimizing KL(P || Q) (see the
// header).
constexpr size_t kLinearBins = 2048;

float kl_amax(const Bins& b, float absmax, const Scheme& scheme) {
  // The histogram on equal bins of width absmax / 2048: each log bin's
  // count goes to the equal bin of its midpoint.
  const double width = static_cast<double>(absmax) / kLinearBins;
  std::vector<double> lin(kLinearBins, 0.0);
  for (size_t i = 0; i < b.mid.size(); ++i) {
    const size_t j = std::min(kLinearBins - 1, static_cast<size_t>(static_cast<double>(b.mid[i]) / width));
    lin[j] += b.count[i];
  }
  std::vector<float> mids(kLinearBins);
  for (size_t j = 0; j < kLinearBins; ++j) mids[j] = static_cast<float>((static_cast<double>(j) + 0.5) * width);
  // Candidates: clips at bin edges from 128 bins on (TensorRT's start),
  // every 8th edge and the last (absmax).
  float best_t = absmax;
  double best = std::numeric_limits<double>::infinity();
  for (size_t n = 128; n <= kLinearBins; n += (n + 8 <= kLinearBins || n == kLinearBins) ? 8 : kLinearBins - n) {
    const float t = n == kLinearBins ? absmax : static_cast<float>(static_cast<double>(n) * width);
    std::vector<double> p(lin.begin(), lin.begin() + static_cast<std::ptrdiff_t>(n));
    for (size_t j = n; j < kLinearBins; ++j) p[n - 1] += lin[j];
    const std::vector<float> qv = quantized(std::vector<float>(mids.begin(), mids.begin() + static_cast<std::ptrdiff_t>(n)), t, scheme);
    // Q: each run of bins with one quantized value shares the run's count
    // (without the clipped values) evenly over its non-empty bins.
    std::vector<double> q(n, 0.0);
    for (size_t g0 = 0; g0 < n;) {
      size_t g1 = g0, nonzero = 0;
      double mass = 0;
      while (g1 < n && qv[g1] == qv[g0]) {
        mass += lin[g1];
        nonzero += lin[g1] > 0;
        ++g1;
      }
      for (size_t j = g0; j < g1; ++j) q[j] = lin[j] > 0 ? mass / static_cast<double>(nonzero) : 0.0;
      g0 = g1;
    }
    double sp = 0, sq = 0, min_q = std::numeric_limits<double>::infinity();
    for (size_t j = 0; j < n; ++j) {
      sp += p[j];
      sq += q[j];
      if (q[j] > 0) min_q = std::min(min_q, q[j]);
    }
    if (!(sp > 0) || !(sq > 0)) continue;
    double kl = 0;
    for (size_t j = 0; j < n; ++j) {
      if (p[j] <= 0) continue;
      const double pj = p[j] / sp, qj = (q[j] > 0 ? q[j] : 1e-4 * min_q) / sq;
      kl += pj * std::log(pj / qj);
    }
    if (kl <= best) {  // ties: the larger amax
      best = kl;
      best_t = t;
    }
  }
  return best_t;
}

}  // namespace

StaticRule StaticRule::parse(std::string_view text) {
  StaticRule r;
  if (text == "absmax" || text.empty()) return r;
  if (text == "mse") {
    r.kind = Kind::kMse;
    return r;
  }
  if (text == "kl") {
    r.kind = Kind::kKl;
    return r;
  }
  if (text.starts_with("percentile:")) {
    const std::string v(text.substr(11));
    try {
      size_t used = 0;
      r.percentile = std::stod(v, &used);
      if (used == v.size() && r.percentile > 0 && r.percentile <= 100) {
        r.kind = Kind::kPercentile;
        return r;
      }
    } catch (const std::exception&) {
    }
  }
  fail_usage(fmt::format("static scale rule '{}' is not absmax, percentile:<p> (0 < p <= 100), mse or kl", text));
}

std::string StaticRule::name() const {
  switch (kind) {
    case Kind::kAbsmax: return "absmax";
    case Kind::kPercentile: return fmt::format("percentile:{}", percentile);
    case Kind::kMse: return "mse";
    case Kind::kKl: return "kl";
  }
  return "?";
}

float static_amax(const StaticRule& rule, float absmax, const AbsHistogram* hist, const Scheme& scheme) {
  if (rule.kind == StaticRule::Kind::kAbsmax) return absmax;
  if (!hist || hist->total() == 0) {
    fail_input(fmt::format("static scale rule {} needs a histogram of |x| (a calibration file of this lowbit "
                           "calibrate; llama-imatrix records none)",
                           rule.name()));
  }
  if (rule.kind == StaticRule::Kind::kPercentile) return std::min(absmax, hist->percentile(rule.percentile));
  const Bins b = nonempty(*hist);
  if (!(absmax > 0)) return absmax;
  if (rule.kind == StaticRule::Kind::kKl) return kl_amax(b, absmax, scheme);
  // Candidates: upper edges of the bins from the median's on, and absmax.
  const float median = hist->percentile(50);
  size_t first = 0;
  while (first + 1 < b.index.size() && AbsHistogram::upper(b.index[first]) < median) ++first;
  float best_t = absmax;
  double best = std::numeric_limits<double>::infinity();
  for (size_t i = first; i <= b.index.size(); ++i) {
    const float t = i < b.index.size() ? std::min(absmax, AbsHistogram::upper(b.index[i])) : absmax;
    if (!(t > 0)) continue;
    const double cost = squared_error(b, t, scheme);
    if (cost <= best) {  // ties: the larger amax, the later candidate
      best = cost;
      best_t = t;
    }
  }
  return best_t;
}

QuantPlan::StaticAmax static_amax_from(std::shared_ptr<const Imatrix> calib, std::string file) {
  return [calib = std::move(calib), file = std::move(file)](const std::string& linear, int64_t cols,
                                                           const Scheme& scheme,
                                                           const std::string& rule_text) -> std::optional<float> {
    const StaticRule rule = StaticRule::parse(rule_text);
    const std::string weight = linear + ".weight";
    const std::optional<float> absmax = calib->input_absmax(weight, cols, file);
    if (!absmax) return std::nullopt;
    const std::optional<AbsHistogram> hist = calib->input_histogram(weight);
    if (rule.kind != StaticRule::Kind::kAbsmax && !hist) {
      fail_input(fmt::format("imatrix '{}': '{}' has no histogram of |x| ({}.in_hist), which static rule {} needs "
                             "(a file of an older lowbit calibrate?)",
                             file, weight, weight, rule.name()));
    }
    return static_amax(rule, *absmax, hist ? &*hist : nullptr, scheme);
  };
}

}  // namespace lowbit
