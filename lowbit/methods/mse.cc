// mse: the clipping search (scale=mse, docs/schemes.md) in place of the
// scheme's scale rule, or the importance-weighted search (scale=wmse) when
// per-column importance is known; power-of-two scale formats (MX) search
// over exponents.
#include "lowbit/methods/method_registry.h"

namespace lowbit {
namespace {

class Mse final : public Method {
 public:
  const char* name() const noexcept override { return "mse"; }
  bool needs_calibration() const noexcept override { return false; }
  Scheme stored_scheme(const Scheme& s, bool has_importance) const override {
    Scheme out = s;
    out.rule = has_importance ? ScaleRule::kWmse : ScaleRule::kMse;
    out.name.clear();  // a preset with another rule is no longer the preset
    return out;
  }
  using Method::quantize;
  QuantizedTensor quantize(const TensorView& w, const Scheme& s, const CalibStats* calib,
                           const QuantizeOptions& base, MethodReport*) const override {
    const bool weighted = calib && !calib->importance_per_column.empty();
    QuantizeOptions o = base;
    o.importance = nullptr;
    o.importance_count = 0;
    o.importance_per_column = false;
    if (weighted) {
      o.importance = calib->importance_per_column.data();
      o.importance_count = calib->importance_per_column.size();
      o.importance_per_column = true;
    }
    return lowbit::quantize(w, stored_scheme(s, weighted), o);
  }
};

}  // namespace

const Method& mse_method() {
  static const Mse m;
  return m;
}

}  // namespace lowbit
