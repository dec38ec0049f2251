// A precision recipe: how every Linear's three GEMMs round their operands
// in training, how the master weights are kept, and whether the loss is
// scaled. JSON, in the training config's "precision" key or a file:
//
//   {
//     "linear": {"forward": {"x": "float8_e4m3fn/tensor", "w": "float8_e4m3fn/tensor"},
//                "dgrad":   {"dy": "float8_e5m2/tensor", "w": "float8_e4m3fn/tensor"},
//                "wgrad":   {"x": "float8_e4m3fn/tensor", "dy": "float8_e5m2/tensor"}},
//     "keep": [{"match": "^output$", "linear": "float32"}],
//     "master_weights": "float32",
//     "loss_scale": "none",
//     "qat": "none"
//   }
//
//   linear          the three GEMMs of every Linear (linear_grad.h):
//                   forward y = x·wᵀ, data gradient dx = dy·w, weight
//                   gradient dw = dyᵀ·x; each operand an OperandQuant spec
//                   (operand_quant.h). A missing operand is float32.
//                   "all": SPEC sets every operand at once.
//   keep            rules over Linear names (blk.N.attn_q, attn_k, attn_v,
//                   attn_output, ffn_gate, ffn_up, ffn_down; output, the LM
//                   head), first match wins: "linear" is an object as
//                   above or one spec for every operand ("bfloat16",
//                   "float32"). A rule that matches no Linear is an error.
//   master_weights  float32 | bfloat16 (rounded to nearest after every
//                   update) | bfloat16+kahan (plus a bfloat16 Kahan
//                   compensation of what the rounding lost) |
//                   bfloat16+collage (a pair of bfloat16 numbers, the
//                   second holding the first's rounding error: Collage's
//                   multi-component float).
//   loss_scale      none | dynamic (the loss times S before the backward
//                   pass, gradients divided by S after; a non-finite
//                   gradient skips the step and halves S; S doubles after
//                   2000 good steps; S starts at 65536, or at 2^K with
//                   "dynamic:K") | a number (static).
//   qat             none | lsq+:intB | ternary: quantization-aware training
//                   of every block Linear's weight (qat.h; the LM head
//                   stays as "linear" says)
//
// The quantization is straight-through: gradients are computed as if the
// rounding were the identity, with the rounded operands in every product.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/core/name_pattern.h"
#include "lowbit/train/operand_quant.h"
#include "lowbit/train/qat.h"

namespace lowbit {

struct GemmQuant {
  OperandQuant a, b;  // forward (x, w); dgrad (dy, w); wgrad (dy, x)
};

struct LayerPrecision {
  GemmQuant forward, dgrad, wgrad;
  bool identity() const noexcept;
};

enum class MasterWeights { kFloat32, kBFloat16, kBFloat16Kahan, kBFloat16Collage };

struct PrecisionRecipe {
  struct Rule {
    std::string match;
    std::shared_ptr<const NamePattern> pattern;
    LayerPrecision layer;
  };
  LayerPrecision base;
  std::vector<Rule> keep;
  MasterWeights master = MasterWeights::kFloat32;
  enum class LossScale { kNone, kDynamic, kStatic };
  LossScale loss_scale = LossScale::kNone;
  double static_loss_scale = 1.0;   // kStatic
  double initial_loss_scale = 65536;  // kDynamic
  QatSpec qat;

  // The precision of the Linear `name` (first matching rule, else base).
  const LayerPrecision& for_linear(std::string_view name) const;
  bool identity() const noexcept;

  // ErrorKind::kUsage naming `where` and the key for unknown keys, bad
  // specs, or a rule matching none of `linear_names`.
  static PrecisionRecipe parse(std::string_view json_text, std::string_view where,
                               const std::vector<std::string>& linear_names);
};

}  // namespace lowbit
