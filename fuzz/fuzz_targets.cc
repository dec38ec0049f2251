#include "fuzz/fuzz_targets.h"

#include <cstring>
#include <string_view>

#include "lowbit/algo/recipe.h"
#include "lowbit/core/error.h"
#include "lowbit/format/registry.h"
#include "lowbit/io/compressed_tensors_config.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/quant/scheme.h"

namespace lowbit::fuzz {
namespace {

std::string_view text(const uint8_t* data, size_t size) { return {reinterpret_cast<const char*>(data), size}; }

template <typename Fn>
void refusing_errors(Fn fn) {
  try {
    fn();
  } catch (const Error&) {
    // Refusing bad input with a message is the correct outcome.
  }
}

}  // namespace

void safetensors(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    std::vector<std::byte> bytes(size);
    if (size) std::memcpy(bytes.data(), data, size);
    const SafetensorsFile f = SafetensorsFile::from_memory(std::move(bytes), "fuzz input");
    // Touch every tensor's bytes: the spans must lie inside the buffer.
    volatile uint8_t sink = 0;
    for (const TensorInfo& t : f.tensors()) {
      if (t.nbytes) sink = sink ^ static_cast<uint8_t>(t.data[0]) ^ static_cast<uint8_t>(t.data[t.nbytes - 1]);
    }
  });
}

void gguf(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    std::vector<std::byte> bytes(size);
    if (size) std::memcpy(bytes.data(), data, size);
    const GgufFile f = GgufFile::from_memory(std::move(bytes), "fuzz input");
    volatile uint8_t sink = 0;
    for (const GgufTensorInfo& t : f.tensors()) {
      const auto d = t.bytes();
      if (!d.empty()) sink = sink ^ static_cast<uint8_t>(d.front()) ^ static_cast<uint8_t>(d.back());
    }
  });
}

void scheme_spec(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    const Scheme s = parse_scheme(text(data, size));
    // The canonical spec must parse back to itself.
    if (parse_scheme(s.spec()).spec() != s.spec()) fail_internal("scheme spec does not round-trip: " + s.spec());
  });
}

void format_spec(const uint8_t* data, size_t size) {
  // '@' reads a codebook from a file: not the parser under test here.
  if (std::memchr(data, '@', size)) return;
  refusing_errors([&] { (void)parse_format(text(data, size)); });
}

void recipe(const uint8_t* data, size_t size) {
  refusing_errors([&] { (void)Recipe::parse(text(data, size), "fuzz input"); });
}

void ct_config(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    // What Checkpoint does with a compressed-tensors checkpoint's
    // quantization_config: parse it, then match module names against its
    // ignore list and targets (names, "re:" patterns, class names).
    const CtQuantizationConfig c = parse_ct_quantization_config(text(data, size), "fuzz input");
    for (const char* m : {"model.layers.0.self_attn.q_proj", "lm_head", "encoder.layer.11.output.dense", ""}) {
      (void)c.find(m, "Linear");
    }
  });
}

const std::vector<Target>& targets() {
  static const std::vector<Target> t = {
      {"safetensors", safetensors}, {"gguf", gguf},     {"scheme_spec", scheme_spec},
      {"format_spec", format_spec}, {"recipe", recipe}, {"ct_config", ct_config},
  };
  return t;
}

}  // namespace lowbit::fuzz
