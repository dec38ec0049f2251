// How one operand of a training GEMM is rounded before the product: the
// unit of a precision recipe (precision_recipe.h).
//
// An operand spec is one of
//   float32 | none          no rounding
//   <format>                an element-wise cast, no scale: bfloat16, float16
//                           (`lowbit formats` lists them), rounded to nearest
//                           even; overflow gives infinity, as a hardware
//                           conversion does (NaN for formats without one)
//   <scheme>                scaled blocks along the product's reduction axis,
//                           any lowbit scheme: float8_e4m3fn/tensor, mxfp8_e4m3,
//                           mxfp4, nvfp4, nvfp4/b16x16, int8/channel,
//                           e5m2/tensor/round=stochastic...
// and options after '+':
//   +delayed[:N]            /tensor schemes: the scale comes from the largest
//                           amax of the previous N steps (TransformerEngine's
//                           delayed scaling, N = 16 by default); the current
//                           amax joins the history after use. The first step
//                           uses its own amax.
//   +sr                     stochastic rounding (the same as round=stochastic in
//                           a scheme; the only way to ask it of a cast)
//   +rht                    a random Hadamard transform of 16 along the
//                           reduction axis first (NVFP4 pretraining's weight-
//                           gradient recipe). Both operands of a product get
//                           the same signs, so the product is unchanged
//                           before rounding.
// Every rounding goes through the format engine, so every format and
// rounding mode works, stochastic included: its seed is a pure function of
// the run's seed, the step, the layer and the operand, so runs repeat bit
// for bit.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/format/format.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

// The amax of earlier steps at one delayed-scaling point (a ring buffer).
struct AmaxHistory {
  std::vector<float> values;  // at most `length`, oldest overwritten first
  int64_t next = 0;
};

struct OperandQuant {
  enum class Kind { kNone, kCast, kScheme };
  Kind kind = Kind::kNone;
  Format cast;    // kCast
  Scheme scheme;  // kScheme
  int history = 0;  // > 0: delayed scaling over this many steps
  bool hadamard = false;
  std::string spec;  // as written

  // kUsage naming `where` for a spec that is none of the above, delayed
  // scaling on a scheme that is not per-tensor and symmetric, or a scheme
  // a GEMM operand cannot take (outliers).
  static OperandQuant parse(std::string_view text, std::string_view where);
  bool identity() const noexcept { return kind == Kind::kNone && !hadamard; }

  // Whether the rounding gives the same values along either axis: none, an
  // element-wise cast, one scale per tensor or square 2-D blocks (NVFP4's
  // 16x16 weights), and no Hadamard transform. Such an operand is rounded
  // as stored, and a weight rounded for the forward product serves the
  // data gradient's too (linear_grad.cc).
  bool axis_free() const;

  // The rounding for a product: out = the rounded operand as stored
  // [rows, cols] (returns false), or, when it runs along the rows and is
  // not axis free, its transpose [cols, rows] (returns true), which the
  // product then takes transposed instead of transposing it back. The
  // arguments are apply's.
  bool round_for_product(const float* in, int64_t rows, int64_t cols, bool reduce_over_rows, uint64_t round_seed,
                         uint64_t transform_seed, AmaxHistory* history, float* out, int threads) const;

  // out[rows, cols] = the rounded operand. The reduction axis of the
  // product that follows is the columns (`reduce_over_rows` false: y = x·wᵀ
  // reduces over x's columns) or the rows (true: dW = dyᵀ·x reduces over
  // the tokens, x's rows); blocks and the Hadamard transform run along it.
  // `round_seed` seeds stochastic rounding, `transform_seed` the Hadamard
  // signs (the two operands of one product share it); `history` (required
  // with delayed scaling) is read and updated. out must not alias in.
  void apply(const float* in, int64_t rows, int64_t cols, bool reduce_over_rows, uint64_t round_seed,
             uint64_t transform_seed, AmaxHistory* history, float* out, int threads) const;
};

// The random Hadamard transform along rows of x [rows, cols] in place:
// each full group of 16 consecutive columns c is replaced by
// H16·(s ⊙ c)/4, s a ±1 vector drawn from `seed` (one per group position,
// the same for every row). Orthogonal, so applying it to both operands of a
// product along their shared axis leaves the product unchanged; a tail of
// fewer than 16 columns is left as it is (the identity is orthogonal too).
void random_hadamard_rows(float* x, int64_t rows, int64_t cols, uint64_t seed, int threads);

}  // namespace lowbit
