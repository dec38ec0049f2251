// Every spec a command takes where it stores a tensor: lowbit's schemes
// (quant/scheme.h) and, beside them, llama.cpp's fixed layouts q8_0 and
// q4_0 (ggml/tensor_codec.h). ggml/ is the first layer that sees both, so the
// registry lives here; io/, eval/, pipeline/ and the tools ask it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/quant/scheme.h"
#include "lowbit/quant/tensor_codec.h"

namespace lowbit {

// The codec a spec names: "q8_0" and "q4_0" (exactly, without options) are
// llama.cpp's layouts; anything else is parsed as a scheme. Usage errors
// read as parse_scheme's ("invalid scheme '...': ...").
std::shared_ptr<const TensorCodec> parse_codec(std::string_view spec);

// The scheme presets and the two layouts, in documentation order.
std::vector<SchemePreset> codec_presets();

}  // namespace lowbit
