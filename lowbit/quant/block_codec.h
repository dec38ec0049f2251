// The quantizer's arithmetic one level down, for methods that choose block
// parameters themselves (HQQ's zero points now; GPTQ's column sweep and
// AWQ's scales next): given fixed block parameters, produce codes (and
// x_hat, and errors); given codes and parameters, produce values.
//
//   BlockCodec c(scheme, shape);
//   std::vector<BlockParams> p = c.read(quantize(x, scheme));  // start from RTN
//   p[b] = c.from_values(my_scale, my_zero);                   // rounded as stored
//   c.encode(x, p, threads, q);                                // codes, as quantize() emits them
//   c.write(p, q);                                             // scales, zeros
//   dequantize(q, x_hat);                                      // the values
//
// Every result is the quantizer's own: the same element kernel
// (scaled_kernels.h) in the same canonical order, the same rounding of
// scales and zero points to their formats, element indices counted over the
// whole tensor (stochastic rounding depends on them). So a method that keeps
// quantize()'s parameters reproduces quantize() bit for bit.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "lowbit/core/tensor.h"
#include "lowbit/kernels/kernel_plan.h"
#include "lowbit/kernels/scaled_kernels.h"
#include "lowbit/quant/block_grid.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/scale_coder.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

// One block's parameters: as the element kernel uses them, and as stored.
struct BlockParams {
  kernels::BlockScale value;  // scale (times the tensor scale), inv, z_in, z_post
  uint32_t scale_code = 0;    // code of the scheme's scale format (its NaN code: the block held inf or NaN)
  uint32_t zero_code = 0;     // asym: the integer zero (code format) or the float zero (scale format); else 0
};

class BlockCodec {
 public:
  // kUsage for schemes with outliers (a tensor-level step: take them out
  // first, as quantize() does). (llama.cpp's fixed layouts are codecs, not
  // schemes: their blocks are not set one by one.)
  BlockCodec(const Scheme& s, std::vector<uint64_t> shape);

  const Scheme& scheme() const noexcept { return s_; }
  const BlockGrid& grid() const noexcept { return grid_; }

  // The tensor scale of a two-level scheme (QuantizedTensor::tensor_scale);
  // the block scales are relative to it.
  void set_tensor_scale_code(uint32_t code);

  // A block's parameters from stored codes, as dequantize() reads them (a
  // NaN or inf scale: the NaN block, zero 0).
  BlockParams from_codes(uint32_t scale_code, uint32_t zero_code) const;
  // From values: the scale rounded to the scale format (nearest even, as
  // quantize() rounds), the zero to the integer codes (nearest, clamped) or
  // to the scale format. A scale the format cannot hold comes back
  // non-finite: the caller decides what to do then.
  BlockParams from_values(float scale, float zero) const;
  // The same one half at a time: p with its scale (or its zero) replaced,
  // rounded as above; the other half is kept as it is.
  BlockParams with_scale(const BlockParams& p, float scale) const;
  BlockParams with_zero(const BlockParams& p, float zero) const;

  // Every block's parameters of a QuantizedTensor of this scheme and shape
  // (kInput when its components have the wrong sizes).
  std::vector<BlockParams> read(const QuantizedTensor& q) const;
  // Stores the parameters' codes into q.scales and q.zeros.
  void write(std::span<const BlockParams> p, QuantizedTensor& q) const;

  // The codes of the whole tensor under fixed parameters (one per block of
  // the grid, in block order), into q.codes; q's scheme and shape are set.
  // Rows are independent tasks in a fixed split: no result depends on the
  // thread count.
  void encode(const TensorView& x, std::span<const BlockParams> p, int threads, QuantizedTensor& q) const;

  // Sum of (x - x_hat)^2 of n elements of one block held contiguously,
  // whose first element has global index `first_index`, by the element
  // kernel in its canonical order.
  double block_sq_error(const float* x, uint64_t n, const BlockParams& p, uint64_t first_index = 0) const;

  // x_hat of n elements of one block (contiguous, global index of the
  // first), and optionally their codes (one uint32 each): GPTQ quantizes a
  // column at a time with fixed group parameters.
  void quantize_run(const float* x, uint64_t n, const BlockParams& p, uint64_t first_index, float* x_hat,
                    uint32_t* codes = nullptr) const;

  // x_hat of n elements that each lie in a block of their own parameters
  // (params[i] for x[i]): GPTQ's column of a row-major weight, one element
  // per row. Deterministic element roundings only (kUsage for stochastic
  // rounding, whose bits depend on each element's index).
  void quantize_elements(const float* x, uint64_t n, const kernels::BlockScale* params, float* x_hat) const;

 private:
  BlockParams decode_params(uint32_t scale_code, uint32_t zero_code, float tensor_scale) const;

  Scheme s_;
  std::vector<uint64_t> shape_;
  BlockGrid grid_;
  KernelPlan elem_;
  kernels::ScaledSpec spec_;
  ScaleCoder sc_;
  Format code_format_, zero_format_;
  float tensor_scale_ = 1;
};

}  // namespace lowbit
