// ScaleCoder: rounds raw (real-valued) scales into a scale format, many at a
// time, by the same SIMD kernels as elements (round to nearest even,
// saturating), with a direct path for the powers of two of E8M0.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "lowbit/format/format.h"
#include "lowbit/kernels/kernel_plan.h"

namespace lowbit {

class ScaleCoder {
 public:
  explicit ScaleCoder(const Format& f);

  const Format& format() const { return plan_->codec->format(); }
  // Rounds n raw scales: values[i] = the scale format's value nearest
  // raw[i] (NaN stays NaN and needs a format with NaN), codes[i] its code
  // (codes may be null). Raw scales are >= 0 or NaN.
  void round(const float* raw, size_t n, float* values, uint32_t* codes) const;
  float decode(uint32_t code) const;
  // Every code's value as float32 bits for formats of up to 16 bits (null
  // otherwise): decode without a call in per-block loops.
  const uint32_t* value_bits() const { return plan_->decode_lut ? plan_->decode_lut->data() : nullptr; }
  uint32_t code_mask() const { return plan_->code_mask; }
  bool is_power_of_two_format() const { return e8m0_; }
  // The code that marks a block holding inf or NaN; throws Error(kInput)
  // when the format has no NaN.
  uint32_t nan_code() const;

 private:
  std::shared_ptr<const KernelPlan> plan_;
  bool e8m0_ = false;
};

}  // namespace lowbit
