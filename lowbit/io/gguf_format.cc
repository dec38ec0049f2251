#include "lowbit/io/gguf_format.h"

#include <cstdio>
#include <limits>

#include "lowbit/core/checked_math.h"

namespace lowbit {

std::optional<uint64_t> gguf_align_up(uint64_t value, uint64_t alignment) noexcept {
  uint64_t bumped;
  if (!checked_add(value, alignment - 1, &bumped)) return std::nullopt;
  return bumped & ~(alignment - 1);
}

GgufTensorSize gguf_tensor_size(std::string_view name, const GgmlTypeInfo& type,
                                std::span<const uint64_t> ne) {
  constexpr uint64_t kMaxCount = std::numeric_limits<int64_t>::max();
  GgufTensorSize size;
  const std::string tensor = std::string("tensor ").append(gguf_quote(name));
  if (ne.size() > kGgmlMaxDims) {
    size.problem = tensor + " has " + std::to_string(ne.size()) + " dimensions; ggml allows at most " +
                   std::to_string(kGgmlMaxDims);
    return size;
  }
  uint64_t numel = 1;
  for (size_t i = 0; i < ne.size(); ++i) {
    if (ne[i] > kMaxCount) {
      size.problem = tensor + " has ne[" + std::to_string(i) + "] = " + std::to_string(ne[i]) +
                     ", over 2^63 - 1 (ggml reads it as negative)";
      return size;
    }
    if (!checked_mul(numel, ne[i], &numel) || numel > kMaxCount) {
      size.problem = tensor + ": size overflow, the product of its dimensions exceeds 2^63 - 1";
      return size;
    }
  }
  const uint64_t row = ne.empty() ? 1 : ne[0];
  if (row % type.block_elems != 0) {
    size.problem = tensor + " has " + std::to_string(row) +
                   " elements per row (ne[0]), not a multiple of the " + std::string(type.name) +
                   " block size " + std::to_string(type.block_elems);
    return size;
  }
  if (!checked_mul(numel / type.block_elems, type.block_bytes, &size.nbytes)) {
    size.problem = tensor + ": size overflow, its byte count (" + std::to_string(numel) +
                   " elements of " + std::string(type.name) + ") exceeds 2^64 - 1";
    return size;
  }
  size.numel = numel;
  return size;
}

std::vector<uint64_t> reverse_dims(std::span<const uint64_t> dims) {
  return std::vector<uint64_t>(dims.rbegin(), dims.rend());
}

std::string gguf_quote(std::string_view text) {
  constexpr size_t kMaxShown = 200;
  std::string out("'");
  for (size_t i = 0; i < text.size() && i < kMaxShown; ++i) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c >= 0x20 && c != 0x7f) {
      out += static_cast<char>(c);
      continue;
    }
    char escaped[5];
    std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
    out += escaped;
  }
  if (text.size() > kMaxShown) out += "...";
  out += '\'';
  return out;
}

}  // namespace lowbit
