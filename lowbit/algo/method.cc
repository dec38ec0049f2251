#include "lowbit/algo/method.h"

#include "lowbit/algo/hqq.h"
#include "lowbit/core/error.h"
#include "lowbit/quant/quantizer.h"

namespace lowbit {

Scheme scheme_for_method(const Scheme& s, Method m, bool has_importance) {
  Scheme out = s;
  if (m == Method::kMse) {
    out.rule = has_importance ? ScaleRule::kWmse : ScaleRule::kMse;
    out.name.clear();  // a preset with another rule is no longer the preset
  }
  return out;
}

void check_method(const Scheme& s, Method m) {
  if (m == Method::kHqq && (s.zero == ZeroPoint::kNone || s.element.family != Family::kInteger)) {
    fail_usage("method hqq needs an asymmetric integer scheme (e.g. int4/g128/asym or int4/g64/asym=float), got '" +
               s.spec() + "'; use rtn or mse");
  }
  if (m == Method::kMse && s.layout != BlockLayout::kGeneric) {
    fail_usage("method mse does not apply to '" + s.spec() + "', whose block layout fixes its scales; use rtn");
  }
}

QuantizedTensor quantize_by_method(const float* x, const std::vector<uint64_t>& shape, const Scheme& s, Method m,
                                   const float* importance_per_column, const QuantizeOptions& base) {
  check_method(s, m);
  if (m == Method::kHqq) {
    HqqOptions o;
    o.threads = base.threads;
    return hqq_quantize(x, shape, s, o);
  }
  const Scheme q = scheme_for_method(s, m, importance_per_column != nullptr);
  QuantizeOptions o = base;
  o.importance = nullptr;
  o.importance_count = 0;
  o.importance_per_column = false;
  if (q.rule == ScaleRule::kWmse) {
    o.importance = importance_per_column;
    o.importance_count = shape.empty() ? 1 : shape.back();
    o.importance_per_column = true;
  }
  return quantize(x, shape, q, o);
}

}  // namespace lowbit
