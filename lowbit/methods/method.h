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
//   gptq GPTQ's error feedback (gptq.h), from the Gram matrix of each
//        weight's input (CalibStats::gram, lowbit calibrate --gram).
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "lowbit/calib/calib_stats.h"
#include "lowbit/core/tensor.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

// What a method measured while quantizing one weight, for the report.
// Errors are the Linear's output error on the calibration data,
// tr((W - Q) H (W - Q)ᵀ) with H the Gram matrix of its input; negative when
// not measured.
struct MethodReport {
  double calib_error_rtn = -1;  // of the scheme's plain rounding
  double calib_error = -1;      // of the method's result
  std::string note;             // a fallback the method took, or empty
};

class Method {
 public:
  virtual ~Method() = default;
  // The method's spec: its name, and for a configured copy the options
  // ("gptq:act_order,damp=0.05").
  virtual const char* name() const noexcept = 0;
  // A copy with options (the text after "name:" in a method spec; e.g.
  // "act_order,damp=0.05"). kUsage naming the valid options, or saying
  // that the method takes none.
  virtual std::unique_ptr<Method> configured(std::string_view options) const;
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
  // fields are set here from calib. calib and report may be null.
  virtual QuantizedTensor quantize(const TensorView& w, const Scheme& s, const CalibStats* calib,
                                   const QuantizeOptions& base, MethodReport* report) const = 0;
  QuantizedTensor quantize(const TensorView& w, const Scheme& s, const CalibStats* calib,
                           const QuantizeOptions& base) const {
    return quantize(w, s, calib, base, nullptr);
  }
};

}  // namespace lowbit
