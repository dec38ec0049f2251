#include "lowbit/methods/method_registry.h"

#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "lowbit/core/error.h"

namespace lowbit {

const std::vector<const Method*>& all_methods() {
  static const std::vector<const Method*> all = {&rtn_method(), &mse_method(), &hqq_method(), &gptq_method()};
  return all;
}

std::string method_names() {
  std::string s;
  for (const Method* m : all_methods()) s.append(s.empty() ? "" : ", ").append(m->name());
  return s;
}

std::unique_ptr<Method> Method::configured(std::string_view options) const {
  fail_usage(std::string("method ").append(name()).append(" takes no options (got '").append(options).append("')"));
}

const Method& find_method(std::string_view spec) {
  const size_t colon = spec.find(':');
  const std::string_view name = spec.substr(0, colon);
  for (const Method* m : all_methods()) {
    if (name != m->name()) continue;
    if (colon == std::string_view::npos) return *m;
    // Configured copies live as long as the program, one per spec, so that
    // recipes and decisions can hold plain pointers to them.
    static std::mutex mutex;
    static std::map<std::string, std::unique_ptr<Method>, std::less<>> configured;
    const std::lock_guard<std::mutex> lock(mutex);
    if (const auto it = configured.find(spec); it != configured.end()) return *it->second;
    std::unique_ptr<Method> c = m->configured(spec.substr(colon + 1));
    return *configured.emplace(std::string(spec), std::move(c)).first->second;
  }
  fail_usage(std::string("unknown method '").append(name).append("'; valid: ").append(method_names()));
}

}  // namespace lowbit
