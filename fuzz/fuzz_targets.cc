#include "fuzz/fuzz_targets.h"

#include <cstring>
#include <string_view>

#include "lowbit/calib/imatrix_file.h"
#include "lowbit/core/error.h"
#include "lowbit/format/registry.h"
#include "lowbit/ggml/codec_registry.h"
#include "lowbit/io/compressed_tensors_config.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/pipeline/recipe.h"
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

// The fuzz input as a file's bytes (an empty input has no data pointer to
// copy from).
std::vector<std::byte> bytes_of(const uint8_t* data, size_t size) {
  std::vector<std::byte> bytes(size);
  if (size) std::memcpy(bytes.data(), data, size);
  return bytes;
}

GgufFile gguf_of(const uint8_t* data, size_t size) { return GgufFile::from_memory(bytes_of(data, size), "fuzz input"); }

}  // namespace

void safetensors(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    const SafetensorsFile f = SafetensorsFile::from_memory(bytes_of(data, size), "fuzz input");
    // Touch every tensor's bytes: the spans must lie inside the buffer.
    volatile uint8_t sink = 0;
    for (const TensorInfo& t : f.tensors()) {
      if (t.nbytes) sink = sink ^ static_cast<uint8_t>(t.data[0]) ^ static_cast<uint8_t>(t.data[t.nbytes - 1]);
    }
  });
}

void gguf(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    const GgufFile f = gguf_of(data, size);
    volatile uint8_t sink = 0;
    for (const GgufTensorInfo& t : f.tensors()) {
      const auto d = t.bytes();
      if (!d.empty()) sink = sink ^ static_cast<uint8_t>(d.front()) ^ static_cast<uint8_t>(d.back());
    }
  });
}

void scheme_spec(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    // Every spec a command takes: schemes and llama.cpp's layouts.
    const auto c = parse_codec(text(data, size));
    // The canonical spec must parse back to itself.
    if (parse_codec(c->spec())->spec() != c->spec()) fail_internal("scheme spec does not round-trip: " + c->spec());
  });
}

void format_spec(const uint8_t* data, size_t size) {
  // '@' reads a codebook from a file: not the parser under test here.
  if (std::memchr(data, '@', size)) return;
  refusing_errors([&] { (void)parse_format(text(data, size)); });
}

void recipe(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    // Parse, then decide for tensors named by the rules' own patterns (and
    // a few real names), so the patterns meet names the fuzzer chooses.
    const Recipe r = Recipe::parse(text(data, size), "fuzz input");
    std::vector<std::string> names = {"model.layers.0.mlp.down_proj.weight", "embeddings.word_embeddings.weight", ""};
    for (const RecipeRule& rule : r.rules) {
      if (names.size() < 64) names.push_back(rule.match);
    }
    for (const std::string& n : names) {
      CheckpointTensor t;
      t.name = n;
      t.shape = {4, 64};
      t.numel = 256;
      t.nbytes = 1024;
      t.dtype = "F32";
      t.floating = true;
      (void)decide(r, t, rtn_method());
    }
  });
}

void ct_config(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    // What Checkpoint does with a compressed-tensors checkpoint's
    // quantization_config: parse it, then match module names against its
    // ignore list and targets (names, "re:" patterns, class names).
    const CtQuantizationConfig c = parse_ct_quantization_config(text(data, size), "fuzz input");
    // Module names: fixed real ones, and every target and ignore entry of
    // the input itself (a "re:" one without its prefix), so the patterns
    // also meet names the fuzzer chooses (a pattern that backtracks on a
    // name would hang here, as it once did).
    std::vector<std::string> names = {"model.layers.0.self_attn.q_proj", "lm_head", "encoder.layer.11.output.dense", ""};
    const auto add = [&](const std::string& t) {
      const std::string n = t.starts_with("re:") ? t.substr(3) : t;
      if (names.size() < 64) names.push_back(n);
    };
    for (const auto& g : c.groups) {
      for (const std::string& t : g.targets) add(t);
    }
    for (const std::string& t : c.ignore) add(t);
    for (const std::string& m : names) {
      (void)c.find(m, "Linear");
      (void)c.find(m, m);
    }
  });
}

// A loaded tokenizer meets the input's own bytes (so merges, pieces and
// added tokens the fuzzer wrote are used) and a fixed text with invalid
// UTF-8; its ids must decode, and must lie inside the vocabulary.
static void exercise_tokenizer(const Tokenizer& tok, std::string_view input) {
  const std::string fixed = "Hello world, it's 2024! \xe4\xb8\xad\xe6\x96\x87 \xff\xc0\x80 [CLS] <|im_end|>\n\n";
  for (const std::string_view t : {std::string_view(fixed), input.substr(0, 4096)}) {
    for (const bool parse_special : {false, true}) {
      const std::vector<int32_t> ids = tok.encode(t, true, parse_special);
      for (const int32_t id : ids) {
        if (id < 0 || id >= tok.vocab_size()) fail_internal("tokenizer produced an id outside its vocabulary");
      }
      (void)tok.decode(ids, false);
      (void)tok.decode(ids, true);
    }
  }
}

void tokenizer_json(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    const auto tok = load_tokenizer_json(text(data, size), "fuzz input");
    exercise_tokenizer(*tok, text(data, size));
  });
}

void gguf_tokenizer(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    const GgufFile f = gguf_of(data, size);
    const auto tok = load_gguf_tokenizer(f);
    exercise_tokenizer(*tok, text(data, size));
  });
}

void imatrix(const uint8_t* data, size_t size) {
  refusing_errors([&] {
    const GgufFile f = gguf_of(data, size);
    const Imatrix m = read_imatrix(f);
    volatile float sink = 0;
    for (const auto& [name, e] : m.entries) {
      const std::vector<float> v = m.importance(name, e.cols, "fuzz input");
      if (!v.empty()) sink = sink + v.front();
      // The readers of static scales: the maximum and the histogram.
      if (!e.in_absmax.empty()) sink = sink + *m.input_absmax(name, e.cols, "fuzz input");
      if (const std::optional<AbsHistogram> h = m.input_histogram(name)) sink = sink + h->percentile(99.9);
      for (float level : m.column_percentile_levels) {
        if (const auto p = m.column_percentile(name, level); p && !p->empty()) sink = sink + p->back();
      }
    }
  });
}

const std::vector<Target>& targets() {
  static const std::vector<Target> t = {
      {"safetensors", safetensors}, {"gguf", gguf},     {"scheme_spec", scheme_spec},
      {"format_spec", format_spec}, {"recipe", recipe}, {"ct_config", ct_config},
      {"tokenizer_json", tokenizer_json}, {"gguf_tokenizer", gguf_tokenizer}, {"imatrix", imatrix},
  };
  return t;
}

}  // namespace lowbit::fuzz
