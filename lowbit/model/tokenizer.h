// Text to token ids and back: the interface the runtime calls, and the
// factory that reads the right tokenizer from a model file.
//
//   std::unique_ptr<Tokenizer> tok = load_tokenizer("model.gguf");
//   std::vector<int32_t> ids = tok->encode("Hello world");
//   std::string text = tok->decode(ids);
//
// Three kinds, each judged token for token by the peer that defines it
// (docs/tokenizers.md, tests/python/test_tokenizers.py):
//   - "bpe": byte-level BPE as GGUF stores it (tokenizer.ggml.model gpt2),
//     equal to llama.cpp's llama-tokenize (bpe_tokenizer.h);
//   - "spm": the SentencePiece-style `llama` model of GGUF files, as
//     llama.cpp reads it (spm_tokenizer.h);
//   - "wordpiece": BERT's WordPiece from a Hugging Face tokenizer.json,
//     equal to the `tokenizers` library (wordpiece_tokenizer.h).
//
// encode():
//   add_special   the model's own additions: BOS/EOS where the file asks
//                 for them (tokenizer.ggml.add_bos_token...), or the
//                 tokenizer.json post-processor's template ([CLS] ... [SEP]).
//   parse_special whether control tokens written in the text ("<|im_end|>",
//                 "[SEP]") become their ids. Off by default, as in
//                 llama.cpp, so that user text cannot forge them; user-
//                 defined tokens are always matched. (Hugging Face matches
//                 special tokens by default: lowbit with parse_special on.)
// Any byte string is valid input; invalid UTF-8 has a defined meaning per
// kind (docs/tokenizers.md, "Invalid UTF-8"). Nothing is truncated or
// padded: that is the caller's batching policy.
//
// decode() renders ids back to bytes. For "bpe", decode(encode(text)) ==
// text for every byte string; skip_special leaves out control and unknown
// tokens. Ids outside the vocabulary are ErrorKind::kInput.
//
// Tokenizers are immutable after loading: encode and decode may run on
// several threads at once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/model/vocabulary.h"

namespace lowbit {

class GgufFile;

// The ids a model gives meaning to; -1 where it has none.
struct SpecialTokenIds {
  int32_t bos = -1, eos = -1, unk = -1, pad = -1;
  // Whether encode(..., add_special = true) adds them.
  bool add_bos = false, add_eos = false;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;

  // "bpe", "spm" or "wordpiece".
  virtual const char* kind() const noexcept = 0;
  // A one-line description for messages and `lowbit tokenize`: the kind
  // and its settings ("bpe (gpt2, pre-tokenizer smollm), 49152 tokens").
  virtual std::string describe() const = 0;

  virtual std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                                      bool parse_special = false) const = 0;
  virtual std::string decode(std::span<const int32_t> ids, bool skip_special = false) const = 0;

  const Vocabulary& vocab() const noexcept { return vocab_; }
  int32_t vocab_size() const noexcept { return vocab_.size(); }
  // The token's text as the model stores it ("Ġthe", "##ing", "▁the").
  const std::string& piece(int32_t id) const { return vocab_.piece(id); }
  const SpecialTokenIds& special() const noexcept { return special_; }
  int32_t bos_id() const noexcept { return special_.bos; }
  int32_t eos_id() const noexcept { return special_.eos; }
  int32_t unk_id() const noexcept { return special_.unk; }
  int32_t pad_id() const noexcept { return special_.pad; }
  bool adds_bos() const noexcept { return special_.add_bos; }
  bool adds_eos() const noexcept { return special_.add_eos; }

 protected:
  // ErrorKind::kInput if a special id lies outside the vocabulary or an
  // added BOS/EOS is missing.
  Tokenizer(Vocabulary vocab, SpecialTokenIds special);

  Vocabulary vocab_;
  SpecialTokenIds special_;
};

// The tokenizer of a GGUF file (its tokenizer.ggml.* metadata):
// tokenizer.ggml.model "gpt2" or "llama". ErrorKind::kInput naming the key
// for anything missing, malformed or unsupported.
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const GgufFile& file);

// The tokenizer of a Hugging Face tokenizer.json (its text; `name` stands
// for the file in messages). The model must be WordPiece or byte-level BPE
// (tokenizer_json.cc lists the parts each may have).
std::unique_ptr<Tokenizer> load_tokenizer_json(std::string_view json_text, const std::string& name);

// The tokenizer of a model at `path`: a GGUF file (told by its magic), a
// tokenizer.json, a directory holding a tokenizer.json, or another file
// (a safetensors checkpoint) with a tokenizer.json beside it.
// ErrorKind::kInput saying what is missing otherwise; kIo if unreadable.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& path);

}  // namespace lowbit
