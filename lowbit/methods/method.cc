#include "lowbit/methods/method.h"

#include "lowbit/core/error.h"
#include "lowbit/methods/hqq.h"
#include "lowbit/quant/quantizer.h"

namespace lowbit {

const char* method_name(Method m) noexcept {
  switch (m) {
    case Method::kRtn: return "rtn";
    case Method::kMse: return "mse";
    case Method::kHqq: return "hqq";
  }
  return "?";
}

Method parse_method(std::string_view name) {
  if (name == "rtn") return Method::kRtn;
  if (name == "mse") return Method::kMse;
  if (name == "hqq") return Method::kHqq;
  fail_usage(std::string("unknown method '").append(name).append("'; valid: rtn, mse, hqq"));
}

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
}

QuantizedTensor quantize_by_method(const TensorView& x, const Scheme& s, Method m, const float* importance_per_column,
                                   const QuantizeOptions& base) {
  const std::vector<uint64_t>& shape = x.shape;
  check_method(s, m);
  if (m == Method::kHqq) {
    HqqOptions o;
    o.threads = base.threads;
    return hqq_quantize(x, s, o);
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
  return quantize(x, q, o);
}

}  // namespace lowbit
