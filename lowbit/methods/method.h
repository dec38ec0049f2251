// The data-free quantization methods a recipe names (rtn, mse, hqq),
// applied to one tensor with one of lowbit's schemes.
//
//   rtn  the scheme as written: its scale rule (absmax unless the spec says
//        otherwise) and the reference rounding.
//   mse  the scheme with its scale rule replaced by the clipping search
//        (scale=mse, docs/schemes.md), or by the weighted search
//        (scale=wmse) when per-column importance weights are given.
//        Power-of-two scale rules (MX) search over exponents.
//   hqq  HQQ's zero-point optimization (lowbit/methods/hqq.h); asymmetric
//        integer schemes only.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "lowbit/core/tensor.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

enum class Method { kRtn, kMse, kHqq };

const char* method_name(Method m) noexcept;
// "rtn", "mse" or "hqq"; kUsage otherwise.
Method parse_method(std::string_view name);

// The scheme the method quantizes with (rtn: s itself).
Scheme scheme_for_method(const Scheme& s, Method m, bool has_importance);

// Checks that method m can run with scheme s (kUsage naming both and what
// would work otherwise), before any work is done.
void check_method(const Scheme& s, Method m);

// base: threads and the two-level tensor-scale options (fused shards, a
// reciprocal tensor scale) as QuantizeOptions has them; the importance
// fields are set here from importance_per_column (wmse). hqq takes only
// the thread count.
QuantizedTensor quantize_by_method(const TensorView& x, const Scheme& s, Method m,
                                   const float* importance_per_column, const QuantizeOptions& base);

}  // namespace lowbit
