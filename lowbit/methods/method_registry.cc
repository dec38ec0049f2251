#include "lowbit/methods/method_registry.h"

#include "lowbit/core/error.h"

namespace lowbit {

const std::vector<const Method*>& all_methods() {
  static const std::vector<const Method*> all = {&rtn_method(), &mse_method(), &hqq_method()};
  return all;
}

std::string method_names() {
  std::string s;
  for (const Method* m : all_methods()) s.append(s.empty() ? "" : ", ").append(m->name());
  return s;
}

const Method& find_method(std::string_view name) {
  for (const Method* m : all_methods()) {
    if (name == m->name()) return *m;
  }
  fail_usage(std::string("unknown method '").append(name).append("'; valid: ").append(method_names()));
}

}  // namespace lowbit
