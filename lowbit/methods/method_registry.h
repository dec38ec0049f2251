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

// Every method, in documentation order.
const std::vector<const Method*>& all_methods();
// The method of that name; kUsage "unknown method 'x'; valid: rtn, mse, hqq".
const Method& find_method(std::string_view name);
// "rtn, mse, hqq".
std::string method_names();

}  // namespace lowbit
