#include "lowbit/train/parameter_set.h"

#include <fmt/format.h>

#include "lowbit/core/error.h"

namespace lowbit {

int64_t ParameterSet::add(std::string name, std::vector<int64_t> shape, bool decay) {
  if (find(name)) fail_internal(fmt::format("parameter '{}' added twice", name));
  int64_t size = 1;
  for (int64_t d : shape) {
    if (d <= 0) fail_internal(fmt::format("parameter '{}' has a dimension {}", name, d));
    size *= d;
  }
  const int64_t offset = (size_ + 15) / 16 * 16;
  tensors_.push_back({std::move(name), std::move(shape), offset, size, decay});
  size_ = offset + size;
  count_ += size;
  return offset;
}

const ParamTensor* ParameterSet::find(std::string_view name) const noexcept {
  for (const ParamTensor& t : tensors_) {
    if (t.name == name) return &t;
  }
  return nullptr;
}

const ParamTensor* ParameterSet::tensor_at(int64_t i) const noexcept {
  for (const ParamTensor& t : tensors_) {
    if (i >= t.offset && i < t.offset + t.size) return &t;
  }
  return nullptr;
}

}  // namespace lowbit
