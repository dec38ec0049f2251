// Tensor quantization: a float32 tensor and a Scheme in, a QuantizedTensor
// (or the dequantized tensor directly) out.
//
// The arithmetic, for each block with scale s (docs/schemes.md):
//   symmetric   code = round(x * (1/s)),            x_hat = value(code) * s
//   asym int    q = clamp(round(x * (1/s)) + z, 0, 2^b - 1),  x_hat = (q - z) s
//   asym float  q = clamp(round(x * (1/s) + z), 0, 2^b - 1),  x_hat = (q - z) s
// in float32, with 1/s computed once per block (0 when s is 0) and the
// element rounding of the scalar model. A block holding inf or NaN gets a
// NaN scale and dequantizes to NaN. The scale of a block comes from its
// rule; the search rules (mse, wmse) are documented in docs/schemes.md.
//
// Results never depend on the thread count or the SIMD target: work units
// are fixed (block_grid.h), error sums have one canonical order
// (scaled_kernels.h), and every kernel equals the scalar model.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/core/tensor.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

struct QuantizeOptions {
  int threads = 0;  // 0: default_thread_count()
  // Importance weights for scale=wmse: one per element (same shape as the
  // tensor) or, with importance_per_column, one per column (last axis).
  const float* importance = nullptr;
  uint64_t importance_count = 0;  // number of floats behind `importance`
  bool importance_per_column = false;
  // Two-level schemes (nvfp4, nvint4): the tensor scale comes from
  // max(this, the tensor's own finite amax). Tensors that a runtime fuses
  // into one layer (vLLM's q/k/v and gate/up projections) must share one
  // tensor scale: each passes the group's largest amax, and each then
  // quantizes exactly as its rows would inside the concatenated tensor.
  // Finite and >= 0; 0 leaves the tensor's own amax.
  float min_tensor_amax = 0;
  // Two-level schemes with a float32 tensor scale: s_t is taken as
  // 1.0f / g for the float32 g = 1.0f / s_t (reciprocal_scale.h), so that a
  // runtime that stores g and computes 1.0f / g (vLLM's NVFP4 global scale)
  // gets exactly the s_t the blocks were quantized with. That moves s_t by
  // one ulp in about one tensor in six. Refused for other tensor formats.
  bool reciprocal_tensor_scale = false;
};

QuantizedTensor quantize(const TensorView& x, const Scheme& scheme, const QuantizeOptions& opt = {});

// The same into an existing QuantizedTensor, reusing its buffers: repeated
// quantization of tensors of one shape (training emulation, benchmarks)
// then allocates nothing.
void quantize_into(const TensorView& x, const Scheme& scheme, const QuantizeOptions& opt, QuantizedTensor& out);

// x_hat of a quantized tensor; out holds q.numel() floats.
void dequantize(const QuantizedTensor& q, float* out, int threads = 0);

// dequantize(quantize(x)) without storing codes: the fast path for
// studies. Bit-identical to the two-step form.
void fakequant_tensor(const TensorView& x, float* out, const Scheme& scheme, const QuantizeOptions& opt = {});

}  // namespace lowbit
