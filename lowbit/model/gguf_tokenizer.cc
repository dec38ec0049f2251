// load_gguf_tokenizer (tokenizer.h): the tokenizer.ggml.* metadata of a
// GGUF file, read as llama.cpp (b10605) reads it, with one difference in
// spirit: what llama.cpp repairs with a warning (a special id outside the
// vocabulary, a malformed merge), lowbit refuses with the key's name.
//
// llama.cpp also re-types tokens by their text (it makes "<|im_end|>" and
// a list of similar names control tokens, and a few user-defined); lowbit
// takes tokenizer.ggml.token_type as written. SmolLM2's file already types
// all its 17 special tokens as control.
#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/model/bpe_tokenizer.h"
#include "lowbit/model/spm_tokenizer.h"
#include "lowbit/model/tokenizer.h"

namespace lowbit {

namespace {

std::string where(const GgufFile& f, std::string_view key) {
  return fmt::format("GGUF file '{}', key '{}'", f.path(), key);
}

// An integer key of any integer type, or nullopt if absent.
std::optional<int64_t> get_integer(const GgufFile& f, std::string_view key) {
  const GgufValue* v = f.find(key);
  if (v == nullptr) return std::nullopt;
  const uint64_t bits = v->bits(where(f, key));  // kInput for strings and arrays
  switch (v->type()) {
    case GgufType::kUint8: case GgufType::kUint16: case GgufType::kUint32:
      return static_cast<int64_t>(bits);
    case GgufType::kUint64:
      return bits > static_cast<uint64_t>(INT64_MAX) ? -1 : static_cast<int64_t>(bits);
    case GgufType::kInt8: return static_cast<int8_t>(bits);
    case GgufType::kInt16: return static_cast<int16_t>(bits);
    case GgufType::kInt32: return static_cast<int32_t>(bits);
    case GgufType::kInt64: return static_cast<int64_t>(bits);
    default:
      fail_input(fmt::format("{}: expected an integer, found {}", where(f, key), gguf_type_name(v->type())));
  }
}

// A token id key: absent keeps `fallback`; present, it must lie in the
// vocabulary.
int32_t get_token_id(const GgufFile& f, std::string_view key, int32_t fallback, int32_t vocab_size) {
  const std::optional<int64_t> v = get_integer(f, key);
  if (!v) return fallback;
  if (*v < 0 || *v >= vocab_size) {
    fail_input(fmt::format("{}: token id {} is outside the vocabulary (0..{})", where(f, key), *v, vocab_size - 1));
  }
  return static_cast<int32_t>(*v);
}

bool get_bool(const GgufFile& f, std::string_view key, bool fallback) {
  const GgufValue* v = f.find(key);
  return v == nullptr ? fallback : v->as<bool>(where(f, key));
}

}  // namespace

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const GgufFile& f) {
  constexpr std::string_view kModel = "tokenizer.ggml.model", kTokens = "tokenizer.ggml.tokens",
                             kTypes = "tokenizer.ggml.token_type", kScores = "tokenizer.ggml.scores",
                             kMerges = "tokenizer.ggml.merges", kPre = "tokenizer.ggml.pre";
  if (f.find(kModel) == nullptr) {
    fail_input(fmt::format("GGUF file '{}' has no tokenizer (no metadata key '{}')", f.path(), kModel));
  }
  const std::string& model = f.find(kModel)->as_string(where(f, kModel));
  if (model != "gpt2" && model != "llama") {
    fail_input(fmt::format("{}: tokenizer model '{}' is not supported (lowbit reads 'gpt2', byte-level BPE, and "
                           "'llama', SentencePiece-style)",
                           where(f, kModel), model));
  }
  if (f.find(kTokens) == nullptr) fail_input(fmt::format("{}: missing", where(f, kTokens)));
  std::vector<std::string> pieces = f.find(kTokens)->strings(where(f, kTokens));
  const size_t n = pieces.size();
  std::vector<int32_t> types;
  if (const GgufValue* v = f.find(kTypes)) {
    types = v->to_vector<int32_t>(where(f, kTypes));
    if (types.size() != n) {
      fail_input(fmt::format("{}: {} entries for {} tokens", where(f, kTypes), types.size(), n));
    }
  }
  Vocabulary vocab = [&] {
    try {
      return Vocabulary(std::move(pieces), std::move(types));
    } catch (const Error& e) {
      fail_input(fmt::format("{}: {}", where(f, kTokens), e.what()));
    }
  }();
  const int32_t size = vocab.size();

  if (model == "gpt2") {
    // llama.cpp's defaults for gpt2 (BOS = EOS = 11) are GPT-2's own ids
    // and meaningless for other vocabularies; lowbit assumes none.
    SpecialTokenIds special;
    special.bos = get_token_id(f, "tokenizer.ggml.bos_token_id", -1, size);
    special.eos = get_token_id(f, "tokenizer.ggml.eos_token_id", -1, size);
    special.unk = get_token_id(f, "tokenizer.ggml.unknown_token_id", -1, size);
    special.pad = get_token_id(f, "tokenizer.ggml.padding_token_id", -1, size);
    special.add_bos = get_bool(f, "tokenizer.ggml.add_bos_token", false);
    special.add_eos = get_bool(f, "tokenizer.ggml.add_eos_token", false);
    if (f.find(kPre) == nullptr) {
      fail_input(fmt::format("{}: missing; lowbit needs the pre-tokenizer's name (supported: {})", where(f, kPre),
                             supported_bpe_pre_tokenizers()));
    }
    const std::string& pre = f.find(kPre)->as_string(where(f, kPre));
    const std::optional<BpePreTokenizer> kind = find_bpe_pre_tokenizer(pre);
    if (!kind) {
      fail_input(fmt::format("{}: pre-tokenizer '{}' is not supported (supported: {})", where(f, kPre), pre,
                             supported_bpe_pre_tokenizers()));
    }
    if (f.find(kMerges) == nullptr) fail_input(fmt::format("{}: missing", where(f, kMerges)));
    const std::vector<std::string>& merges = f.find(kMerges)->strings(where(f, kMerges));
    try {
      return std::make_unique<BpeTokenizer>(std::move(vocab), merges, special, *kind, pre);
    } catch (const Error& e) {
      fail_input(fmt::format("GGUF file '{}': {}", f.path(), e.what()));
    }
  }

  // "llama": llama.cpp's defaults are SentencePiece's own ids.
  SpecialTokenIds special;
  special.bos = get_token_id(f, "tokenizer.ggml.bos_token_id", size > 1 ? 1 : -1, size);
  special.eos = get_token_id(f, "tokenizer.ggml.eos_token_id", size > 2 ? 2 : -1, size);
  special.unk = get_token_id(f, "tokenizer.ggml.unknown_token_id", 0, size);
  special.pad = get_token_id(f, "tokenizer.ggml.padding_token_id", -1, size);
  special.add_bos = get_bool(f, "tokenizer.ggml.add_bos_token", true);
  special.add_eos = get_bool(f, "tokenizer.ggml.add_eos_token", false);
  const bool add_space_prefix = get_bool(f, "tokenizer.ggml.add_space_prefix", true);
  std::vector<float> scores(static_cast<size_t>(size), 0.0f);
  if (const GgufValue* v = f.find(kScores)) {
    if (v->is_array() && v->element_type() == GgufType::kInt32) {
      const std::vector<int32_t> s = v->to_vector<int32_t>(where(f, kScores));
      scores.assign(s.begin(), s.end());
    } else {
      scores = v->to_vector<float>(where(f, kScores));
    }
    if (scores.size() != static_cast<size_t>(size)) {
      fail_input(fmt::format("{}: {} entries for {} tokens", where(f, kScores), scores.size(), size));
    }
  }
  try {
    return std::make_unique<SpmTokenizer>(std::move(vocab), std::move(scores), special, add_space_prefix);
  } catch (const Error& e) {
    fail_input(fmt::format("GGUF file '{}': {}", f.path(), e.what()));
  }
}

}  // namespace lowbit
