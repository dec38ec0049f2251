// Byte-level BPE as GGUF stores it (tokenizer.ggml.model = "gpt2"): the
// tokenizer of GPT-2, SmolLM, StarCoder... Its peer is llama.cpp, whose
// llama-tokenize it equals token for token (tests/python/test_tokenizers.py).
//
// encode(text):
//   1. special tokens: the user-defined tokens, and with parse_special the
//      control and unknown ones too, are cut out of the text
//      (split_longest_first, llama.cpp's rule);
//   2. each remaining fragment is cut into words by the pre-tokenizer that
//      tokenizer.ggml.pre names (bpe_pre_tokenizer.h);
//   3. each word's bytes become byte-level characters (byte_level.h), one
//      token each, and adjacent tokens merge by the rank of their pair in
//      tokenizer.ggml.merges, lowest rank first and, among equal ranks,
//      leftmost first, until no pair has a rank: O(n log n) per word with
//      a heap. Words repeat (a text has few distinct words), so each
//      distinct word is merged once per call.
//   4. BOS/EOS around it all with add_special, if the file asks
//      (tokenizer.ggml.add_bos_token / add_eos_token, default false).
// Invalid UTF-8 bytes are kept as bytes, so decode(encode(text)) == text
// for every byte string whose bytes all have a token (llama.cpp itself
// first replaces invalid UTF-8 by U+FFFD; docs/tokenizers.md). A byte
// whose byte-level character is not in the vocabulary (SmolLM2 lacks 21,
// among them 0x04 and 0xF5..0xFF) is dropped, as llama.cpp drops it.
//
// Every merge's two halves and result must be tokens (ErrorKind::kInput
// naming the first that is not): then every merged symbol is a token, and
// merging works on ids.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "lowbit/model/bpe_pre_tokenizer.h"
#include "lowbit/model/special_tokens.h"
#include "lowbit/model/tokenizer.h"

namespace lowbit {

class BpeTokenizer final : public Tokenizer {
 public:
  // `merges` are "left right" strings, highest priority first;
  // `pre_tokenizer_name` is kept for describe().
  BpeTokenizer(Vocabulary vocab, std::span<const std::string> merges, SpecialTokenIds special,
               BpePreTokenizer pre_tokenizer, std::string pre_tokenizer_name);

  const char* kind() const noexcept override { return "bpe"; }
  std::string describe() const override;
  std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                              bool parse_special = false) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const override;

  int32_t merge_count() const noexcept { return static_cast<int32_t>(merges_.size()); }

 private:
  struct Merge {
    int32_t rank;
    int32_t result;
  };
  // The tokens of one word (its bytes, not yet byte-level encoded).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  // The token of one byte, or its fallback (possibly nothing).
  void append_byte(uint8_t byte, std::vector<int32_t>& out) const;
  void encode_fragment(std::string_view text, std::vector<int32_t>& out,
                       std::unordered_map<std::string_view, std::vector<int32_t>>& cache) const;
  static uint64_t pair_key(int32_t left, int32_t right) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
  }

  BpePreTokenizer pre_tokenizer_;
  std::string pre_tokenizer_name_;
  int32_t byte_token_[256];  // -1: the vocabulary has none
  std::vector<int32_t> byte_fallback_[256];
  int bytes_without_token_ = 0;
  std::unordered_map<uint64_t, Merge> merges_;
  std::vector<SpecialPattern> always_special_;  // user-defined tokens
  std::vector<SpecialPattern> all_special_;     // + control and unknown
};

}  // namespace lowbit
