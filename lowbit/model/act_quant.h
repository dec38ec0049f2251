// One quantization point of a tensor the runtime computes: a Linear's
// input, an operand of attention (Q, K, the softmax output P, V). The
// runtime calls apply() on the [rows, cols] matrix it is about to use,
// rows being tokens (or, for P, a head's query rows) and cols the
// reduction axis of the product that follows.
//
// Two kinds of scales:
//   dynamic  the scheme's own, computed from the values at hand: /tensor
//            (the whole matrix), /channel (one per row: per token), /gN,
//            MX and NVFP4 blocks (along a row: the reduction axis);
//   static   one per-tensor scale fixed in advance from calibration
//            (s = amax / the element's max, amax by a rule of
//            lowbit/calib/static_scale.h); values beyond it saturate.
// Every value goes through the format engine (lowbit/quant/, so every
// rounding mode works, stochastic included) and the result is the same for
// every thread count.
//
// A float32 element format is the identity: float32 holds every float32,
// and a scale would only add a rounding. So "float32/tensor" gives exactly
// the outputs of no quantization at all, as a plan's `none` does.
#pragma once

#include <cstdint>
#include <string>

#include "lowbit/quant/scheme.h"

namespace lowbit {

struct ActQuant {
  Scheme scheme;
  // > 0: a static per-tensor scale from this calibrated |x| (the rule that
  // chose it, for reports: absmax, percentile:<p>, mse, kl).
  float static_amax = 0;
  std::string static_rule;

  // The point's scheme, parsed and checked: kUsage for schemes a runtime
  // tensor cannot take (outliers, which need a stored position list; a 2-D
  // block grid, which has no meaning across tokens).
  static ActQuant dynamic(const std::string& spec);
  // A static per-tensor scale: kUsage unless the scheme is per tensor and
  // symmetric, or amax is not a positive finite number.
  static ActQuant fixed(const std::string& spec, float amax);

  bool identity() const noexcept;
  // out[rows, cols] = quantize(x); out must not alias x.
  void apply(const float* x, int64_t rows, int64_t cols, float* out, int threads) const;
  // Bits per element as stored (codes + scales, the scales' share for a
  // matrix of this many columns; one per tensor counts nothing).
  double bits_per_element(int64_t cols) const;
  std::string describe() const;
};

}  // namespace lowbit
