// A quantization method: how a weight's block parameters are chosen for a
// scheme. Each lives in its own file (rtn.cc, mse.cc, hqq.cc) and is
// registered by name (method_registry.h); recipes and --method name them.
//
//   rtn  the scheme as written: its scale rule (absmax unless the spec says
//        otherwise) and the reference rounding.
//   mse  the scheme with its scale rule replaced by the clipping search
//        (scale=mse, docs/schemes.md), or by the weighted search
//        (scale=wmse) when per-column importance is known. Power-of-two
//        scale rules (MX) search over exponents.
//   hqq  HQQ's zero-point optimization (hqq.h); asymmetric integer schemes.
// Data-aware methods (GPTQ, AWQ) will read CalibStats the same way.
#pragma once

#include "lowbit/calib/calib_stats.h"
#include "lowbit/core/tensor.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

class Method {
 public:
  virtual ~Method() = default;
  virtual const char* name() const noexcept = 0;
  // Whether it needs calibration statistics to run at all.
  virtual bool needs_calibration() const noexcept = 0;
  // kUsage, naming the scheme and what would work, when it cannot run with
  // s: checked before any work.
  virtual void check(const Scheme& s) const { (void)s; }
  // The scheme the stored tensor carries (mse: its scale rule becomes the
  // search); the stored layout is the same as s's.
  virtual Scheme stored_scheme(const Scheme& s, bool has_importance) const {
    (void)has_importance;
    return s;
  }
  // Quantizes w. `base` carries the threads and the two-level tensor-scale
  // options (fused shards, a reciprocal tensor scale); its importance
  // fields are set here from calib. calib may be null.
  virtual QuantizedTensor quantize(const TensorView& w, const Scheme& s, const CalibStats* calib,
                                   const QuantizeOptions& base) const = 0;
};

}  // namespace lowbit
