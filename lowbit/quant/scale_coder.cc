#include "lowbit/quant/scale_coder.h"

#include <bit>
#include <cmath>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/kernels/array_kernels.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit {

ScaleCoder::ScaleCoder(const Format& f) {
  plan_ = std::make_shared<const KernelPlan>(make_kernel_plan(f, RoundOptions{}));
  e8m0_ = f.family == Family::kMinifloat && !f.subnormals && f.man_bits == 0 && f.exp_bits == 8 && f.bias == 127 &&
          !f.is_signed;
}

uint32_t ScaleCoder::nan_code() const {
  const Format& f = format();
  if (!f.has_nan()) {
    fail_input("a block holds inf or NaN, and its scale format " + f.name +
               " has no NaN to mark it (choose a scale format with NaN, e.g. float16 or e8m0)");
  }
  return plan_->codec->nan_result(false);
}

float ScaleCoder::decode(uint32_t code) const {
  if (plan_->decode_lut && code < plan_->decode_lut->size()) {
    return std::bit_cast<float>((*plan_->decode_lut)[code]);
  }
  return static_cast<float>(plan_->codec->decode(code));
}

void ScaleCoder::round(const float* raw, size_t n, float* values, uint32_t* codes) const {
  const Codec& codec = *plan_->codec;
  if (e8m0_) {
    // Powers of two in [2^-127, 2^127] are E8M0 codes as they are: the
    // float32 exponent field (2^-127 is the float32 subnormal 0x00400000).
    for (size_t i = 0; i < n; ++i) {
      const uint32_t b = std::bit_cast<uint32_t>(raw[i]);
      uint32_t code;
      if (b >= 0x00800000u && b < 0x7f800000u && (b & 0x7fffffu) == 0 && (b >> 23) <= 254) {
        code = b >> 23;
      } else if (b == 0x00400000u) {
        code = 0;
      } else {
        if (std::isnan(raw[i])) (void)nan_code();
        code = codec.encode(raw[i], plan_->opt);
      }
      values[i] = decode(code);
      if (codes) codes[i] = code;
    }
    return;
  }
  if (format().bits == 32 && format().exp_bits == 8 && format().man_bits == 23) {
    for (size_t i = 0; i < n; ++i) {  // float32 scales are the raw scales
      values[i] = raw[i];
      if (codes) codes[i] = std::bit_cast<uint32_t>(raw[i]);
    }
    return;
  }
  bool any_nan = false;
  for (size_t i = 0; i < n; ++i) any_nan |= std::isnan(raw[i]);
  if (any_nan) (void)nan_code();
  if (plan_->family == SimdFamily::kScalarOnly || !plan_->decode_lut) {
    for (size_t i = 0; i < n; ++i) {
      const uint32_t code = codec.encode(raw[i], plan_->opt);
      values[i] = static_cast<float>(codec.decode(code));
      if (codes) codes[i] = code;
    }
    return;
  }
  if (!codes) {
    kernels::fakequant_chunk(*plan_, raw, values, n, 0);
    return;
  }
  kernels::encode_chunk(*plan_, raw, codes, 4, n, 0);
  const auto& lut = *plan_->decode_lut;
  for (size_t i = 0; i < n; ++i) values[i] = std::bit_cast<float>(lut[codes[i]]);
}

}  // namespace lowbit
