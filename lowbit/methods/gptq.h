// GPTQ (Frantar et al., 2022): quantizes a weight one input column at a
// time and spreads each column's rounding error over the columns not yet
// quantized, weighted by the inverse Hessian of the layer's output error.
//
// For a Linear y = x Wᵀ (W [rows = out, cols = in]) the error on
// calibration inputs X [n, cols] is ||X (W - Q)ᵀ||², whose Hessian in each
// row of W is H = Xᵀ X (calibrate --gram records it). With U the upper
// Cholesky factor of H⁻¹ (H⁻¹ = Uᵀ U, kernels/cholesky.h), column i is
// rounded and the rest of the row takes its error:
//
//   q_i = Q(w_i);  e_i = (w_i - q_i) / U_ii;  w_j -= e_i U_ij  for j > i
//
// which is the optimal update of the remaining columns for that one
// rounding (OBS). Lazy batches: the update reaches the columns of the
// current block of `block` columns at once and the rest of the row after
// the block, as one matrix product (kernels/matmul.h, thread-invariant).
//
// As the reference (and GPTQModel) does it:
//   - damping: H += damp * mean(diag H) * I before factoring;
//   - a column no input reaches (H_ii = 0) is set to 0 and H_ii to 1;
//   - act-order: columns in order of decreasing H_ii (ties by index);
//   - group parameters: without act-order each group's scales (and zero
//     points) come from the scheme's own rule on the group's weights as
//     they are when the sweep reaches it, the error of the groups before
//     included; with act-order, or `static_groups`, from the original
//     weights, once ("static groups": the stored layout needs no g_idx,
//     every column keeps its own group). Other granularities (channel,
//     tensor, 2-D blocks) take their parameters from the original weights.
// lowbit's additions:
//   - the factorization is in float64 (the reference: float32), and a
//     Hessian that is not positive definite after damping is damped again,
//     10x each time, up to damp = 1 (GptqStats says how far it went);
//     when even that fails, every weight gets the scheme's plain rounding
//     (GptqStats::fallback names it);
//   - any scheme of lowbit's grammar: integer, fp8/fp6/fp4, codebooks, MX,
//     NVFP4 (two-level: the tensor scale is the original weight's); the
//     scale rule is the scheme's (absmax, mse, wmse with the Hessian's
//     diagonal as the importance...).
// The result is a QuantizedTensor of the scheme exactly as dequantize()
// reads it. No result depends on the thread count.
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "lowbit/core/tensor.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

struct GptqOptions {
  double damp = 0.01;     // relative damping (the reference's percdamp), > 0
  // Columns per lazy batch (the reference's blocksize), >= 1. With dynamic
  // groups it is rounded down to whole groups (at least one), so that a
  // group's parameters are always computed from fully updated weights.
  int block = 128;
  // Columns by decreasing H_ii; implies static groups. On by default: on
  // lowbit-lm int4/g128 it halves RTN's KLD where the natural order takes
  // 0.63 of it (docs/gptq.md).
  bool act_order = true;
  bool static_groups = false;  // group parameters from the original weights
  int threads = 0;        // 0: default_thread_count()
  // Two-level schemes (nvfp4): QuantizeOptions' min_tensor_amax (the
  // shards a runtime fuses share one tensor scale) and
  // reciprocal_tensor_scale (vLLM stores 1 / s_t), applied to the weight's
  // tensor scale, which every group keeps through the sweep.
  float min_tensor_amax = 0;
  bool reciprocal_tensor_scale = false;
  // Fill GptqStats' rtn_error and gptq_error: two products of the weight's
  // size with the Hessian (as long as the lazy updates themselves).
  bool measure_error = true;
};

struct GptqStats {
  uint64_t dead_columns = 0;  // columns with H_ii = 0, set to 0
  double damp = 0;            // the relative damping that factored
  int damp_retries = 0;       // times the damping was raised
  // Non-empty when the Hessian did not factor at any damping and the
  // weight was rounded without error feedback: why.
  std::string fallback;
  // The layer's output error on the calibration data, tr((W - Q) H (W - Q)ᵀ)
  // with the undamped H, of the scheme's plain rounding and of GPTQ's
  // result (dead columns counted as GPTQ stores them); 0 unless
  // GptqOptions::measure_error.
  double rtn_error = 0, gptq_error = 0;
  // Where the time went: the damped factorization, the column sweep.
  double factor_seconds = 0, sweep_seconds = 0;
};

// kUsage, naming why, when gptq cannot run with the scheme or options:
// checked before any work.
void check_gptq(const Scheme& scheme, const GptqOptions& opt);

// Quantizes w [rows, cols] (a 2-D weight, or any tensor viewed as rows x
// last axis) with the scheme and the Hessian `gram` (cols x cols,
// row-major, symmetric: the sum over calibration rows of x xᵀ; its scale
// does not matter). kUsage for stochastic element rounding, outliers, and
// options out of range; kInput when gram has the wrong size or holds a
// non-finite value, or w does.
QuantizedTensor gptq_quantize(const TensorView& w, const Scheme& scheme, std::span<const float> gram,
                              const GptqOptions& opt = {}, GptqStats* stats = nullptr);

// tr((W - Q) H (W - Q)ᵀ) for W, Q [rows, cols] and H [cols, cols]
// (symmetric), in float64: the output error of a Linear on the data H came
// from. Exposed for tests and reports.
double hessian_error(const float* w, const float* q, uint64_t rows, uint64_t cols, std::span<const float> gram,
                     int threads = 0);

}  // namespace lowbit
