#include "lowbit/ggml/codec_registry.h"

#include "lowbit/ggml/tensor_codec.h"

namespace lowbit {
namespace {

// A llama.cpp layout by its spec name, or null.
const TensorCodec* fixed_layout(std::string_view name) {
  if (name == "q8_0") return &ggml_tensor_codec(GgmlType::kQ8_0);
  if (name == "q4_0") return &ggml_tensor_codec(GgmlType::kQ4_0);
  return nullptr;
}

}  // namespace

std::shared_ptr<const TensorCodec> parse_codec(std::string_view spec) {
  const std::string_view first = spec.substr(0, spec.find('/'));
  if (const TensorCodec* c = fixed_layout(first)) {
    if (first.size() != spec.size()) fail_scheme(spec, std::string(first) + " is a fixed llama.cpp layout and takes no options");
    // Static objects: an owning pointer that owns nothing.
    return std::shared_ptr<const TensorCodec>(std::shared_ptr<const TensorCodec>{}, c);
  }
  return scheme_codec(parse_scheme(spec));
}

std::vector<SchemePreset> codec_presets() {
  std::vector<SchemePreset> v = scheme_presets();
  v.push_back({"q8_0", "q8_0", "llama.cpp Q8_0: 32 x int8, fp16 scale amax/127, ggml rounding"});
  v.push_back({"q4_0", "q4_0", "llama.cpp Q4_0: 32 x 4-bit, fp16 scale max/-8, ggml rounding"});
  return v;
}

}  // namespace lowbit
