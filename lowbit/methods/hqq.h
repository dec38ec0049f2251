// HQQ: Half-Quadratic Quantization (Badri & Shaji, 2023), data-free.
//
// HQQ fits each block's zero point (lowbit by default also its scale) to
// the block's weights, minimizing the lp error (p < 1) of the dequantized
// block by a half-quadratic split: an error term W_e takes the heavy-tailed
// part of x - x_hat through a generalized soft threshold (hqq_shrink_lp),
// and the parameters are then the least-squares fit of the codes to
// x - W_e. In lowbit's notation (scale s, inv = 1/s, zero z in code
// units, as quantizer.h):
//   start  s, z = what quantize() stores with the same scheme (RTN)
//   loop   q = clamp(round(x * inv + z), 0, 2^b - 1);  x_hat = (q - z) * s
//          err_k = sum |x - x_hat|          (the reference's tracked error)
//          e = shrink_lp(x - x_hat, beta_k, p);  beta_{k+1} = beta_k * kappa
//          z = mean(q - (x - e) * inv)      (the reference: zero only)
//          or s, z from x - e ~ s q - s z   (optimize_scale, the default)
// The reference (hqq/core/optimize.py, optimize_weights_proximal) writes
// scale for our inv and the same zero: its W_r = (W_q - zero) / scale is
// our (q - z) * s. Each block keeps its iterate of least err. docs/hqq.md
// lists where this implementation differs (per-block early stop, the best
// iterate kept, integer zeros, the scale step, the guard) and what each
// option measures on real weights.
//
// The result is a QuantizedTensor of the scheme exactly as dequantize()
// reads it: the final scale and zero are rounded to what is stored (scale
// format codes, or an integer zero in [0, 2^b - 1]) and the codes are
// computed from them by the quantizer's own element kernel. Results do not
// depend on the thread count or the SIMD target.
#pragma once

#include <cstdint>
#include <vector>

#include "lowbit/core/tensor.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

struct HqqOptions {
  float lp_norm = 0.7f;  // p of the lp error, in (0, 1] (the reference asserts p <= 1)
  float beta = 10.f;     // initial weight of the quadratic split
  float kappa = 1.01f;   // beta grows by this factor per iteration (>= 1)
  int iterations = 20;   // updates per block at most (0: quantize()'s result)
  bool early_stop = true;  // stop a block at its first iterate that does not lower err
  int threads = 0;         // 0: default_thread_count()
  // Integer zero points (/asym): true rounds the zero to an integer inside
  // the loop (z_{k+1} = clamp(round(mean), 0, 2^b - 1), codes by the /asym
  // arithmetic round(x * inv) + z); false optimizes a float zero as HQQ
  // does and rounds it at the end. docs/hqq.md has the measurements behind
  // the default.
  bool round_zero_in_loop = true;
  // After the loop, a block whose stored result has a larger squared error
  // than quantize()'s keeps quantize()'s scale and zero
  // (HqqStats::rtn_fallbacks counts them). Off: the pure HQQ result.
  bool rtn_guard = false;
  // Also refit the scale each iteration: (s, z) by least squares of
  // x - W_e on the codes, HQQ's zero step extended to both parameters (with
  // round_zero_in_loop: the zero rounded, then the scale for it). The
  // reference keeps the min/max scale; without this, /asym zeros cannot
  // move off quantize()'s (docs/hqq.md). false + round_zero_in_loop = false
  // is the reference algorithm.
  bool optimize_scale = true;
  // The error that picks the best iterate and stops early: false, mean
  // |x - x_hat| as the reference; true, the squared error.
  bool track_l2 = false;
};

struct HqqStats {
  uint64_t blocks = 0;            // blocks of the tensor
  uint64_t optimized_blocks = 0;  // blocks HQQ ran on (the others hold inf/NaN or have scale 0)
  uint64_t iterations = 0;        // zero updates, summed over blocks
  uint64_t early_stops = 0;       // blocks stopped before `iterations` updates
  uint64_t rtn_fallbacks = 0;     // blocks where the guard kept quantize()'s zero
  uint64_t changed_blocks = 0;    // blocks whose stored scale or zero differs from quantize()'s
  double rtn_sq_err = 0;          // sum (x - x_hat)^2 of quantize() over the optimized blocks
  double hqq_sq_err = 0;          // the same for the returned tensor
};

// Quantizes x (row-major, `shape`) with an asymmetric integer scheme
// (int<b>/.../asym or /asym=float, any granularity, outliers allowed) and
// HQQ's zero points. Throws Error(kUsage) for any other scheme, for
// stochastic element rounding and for options out of range; inf and NaN
// get quantize()'s policy (the block's scale is NaN).
QuantizedTensor hqq_quantize(const TensorView& x, const Scheme& scheme,
                             const HqqOptions& opt = {}, HqqStats* stats = nullptr);

// HQQ's generalized soft threshold, the proximal step of the lp term:
//   sign(x) * max(|x| - |x|^(p - 1) / beta, 0)
// in float32 (0 for x = 0; p = 1 gives the l1 soft threshold at 1 / beta).
float hqq_shrink_lp(float x, float beta, float p);

}  // namespace lowbit
