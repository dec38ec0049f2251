// rtn: round to nearest with the scheme as written (its own scale rule; the
// reference rounding). Every scheme can; importance is not used.
#include "lowbit/methods/method_registry.h"

namespace lowbit {
namespace {

class Rtn final : public Method {
 public:
  const char* name() const noexcept override { return "rtn"; }
  bool needs_calibration() const noexcept override { return false; }
  using Method::quantize;
  QuantizedTensor quantize(const TensorView& w, const Scheme& s, const CalibStats*,
                           const QuantizeOptions& base, MethodReport*) const override {
    QuantizeOptions o = base;
    o.importance = nullptr;
    o.importance_count = 0;
    o.importance_per_column = false;
    return lowbit::quantize(w, s, o);
  }
};

}  // namespace

const Method& rtn_method() {
  static const Rtn m;
  return m;
}

}  // namespace lowbit
