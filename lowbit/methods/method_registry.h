// The quantization methods by name. An explicit table, not self-registering
// objects: lowbit is a static library, and an object nothing references
// would be dropped by the linker with its registration.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lowbit/methods/method.h"

namespace lowbit {

const Method& rtn_method();
const Method& mse_method();
const Method& hqq_method();
const Method& gptq_method();

// Every method, in documentation order.
const std::vector<const Method*>& all_methods();
// The method a spec names: "gptq", or with options "gptq:act_order,damp=0.05"
// (a copy configured so, kept for the program's life). kUsage "unknown
// method 'x'; valid: rtn, mse, hqq, gptq", or naming a bad option.
const Method& find_method(std::string_view spec);
// "rtn, mse, hqq, gptq".
std::string method_names();

}  // namespace lowbit
