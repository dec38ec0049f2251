// Static activation scales: the |x| a per-tensor scale maps onto the
// element format's largest value (s = amax / max), chosen once from the
// calibration statistics of a Linear's input.
//
// Rules ("@static:<rule>" in study model, "static": "<rule>" in a plan):
//   absmax            the largest |x| seen (exact, from in_absmax)
//   percentile:<p>    the p-th percentile of |x| (from the histogram,
//                     within a bin's 4.4%); values beyond saturate
//   mse               the amax minimizing the squared error of the
//                     histogram's values through the scheme's format
//   kl                the amax minimizing KL(P || Q), TensorRT's entropy
//                     calibration generalized to any format (below)
//
// mse tries as candidates the upper edges of the non-empty bins from the
// median of |x| up to the largest, plus the largest |x|. Each bin stands
// for its count of values at its midpoint, quantized through the format
// engine (fakequant of v / s, times s).
//   kl is TensorRT's entropy calibration, with the format's own grid in
//   place of its 128 int8 levels: the histogram is redistributed onto 2048
//   equal bins up to absmax (each log bin's count to the equal bin of its
//   midpoint); for clips at every 8th bin edge from 128 bins on, P is the
//   histogram up to the clip with the counts beyond added to its last bin,
//   and Q merges the bins whose midpoints quantize to the same value and
//   spreads each run's count (without the clipped values) evenly over its
//   non-empty bins. Bins of P where Q is empty take 1e-4 of Q's smallest
//   mass (smoothing). The clip of least KL(P || Q) wins; ties go to the
//   larger amax. Equal bins, as in TensorRT, make P blind to the detail of
//   small values, which the log bins would over-weight.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "lowbit/calib/abs_histogram.h"
#include "lowbit/calib/imatrix_file.h"
#include "lowbit/model/quant_plan.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

struct StaticRule {
  enum class Kind : uint8_t { kAbsmax, kPercentile, kMse, kKl };
  Kind kind = Kind::kAbsmax;
  double percentile = 99.99;
  // kUsage naming the rule and the valid forms.
  static StaticRule parse(std::string_view text);
  std::string name() const;
};

// The amax of `rule` for a tensor with these statistics; `absmax` is the
// exact largest |x| (the histogram's last bin only bounds it). A
// histogram is needed by every rule but absmax: kInput without one
// (`hist` null, as in a file from llama-imatrix or an older lowbit).
float static_amax(const StaticRule& rule, float absmax, const AbsHistogram* hist, const Scheme& scheme);

// A QuantPlan's source of static scales from a calibration file read by
// read_imatrix (`file` names it in messages): each Linear's amax by its
// rule, from the entry "<linear>.weight".
QuantPlan::StaticAmax static_amax_from(std::shared_ptr<const Imatrix> calib, std::string file);

}  // namespace lowbit
