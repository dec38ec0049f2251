// The SentencePiece-style tokenizer of GGUF files (tokenizer.ggml.model =
// "llama"): pieces with scores, spaces written as U+2581 '▁', and byte
// fallback through the 256 "<0xNN>" tokens. It follows llama.cpp's reading
// of such a vocabulary (b10605, llm_tokenizer_spm), which is also what
// SentencePiece's BPE model does (the pytest compares with spm_encode).
//
// encode(text):
//   1. special tokens are cut out as for BPE (split_longest_first);
//   2. each text fragment that starts the input or follows a special
//      token gets a leading space if tokenizer.ggml.add_space_prefix says
//      so (default true); then every ' ' becomes '▁';
//   3. the fragment starts as one symbol per character; repeatedly, of all
//      adjacent pairs whose concatenation is a token, the one whose token
//      has the highest score merges (ties: the leftmost);
//   4. a final symbol that is a token is emitted; one that is not (a
//      character the vocabulary lacks) is emitted byte by byte as
//      "<0xNN>" tokens, or as the one-byte piece if there is no such token,
//      or as the unknown token if neither exists (llama.cpp stops with an
//      error there).
//   5. BOS (tokenizer.ggml.add_bos_token, default true) and EOS
//      (add_eos_token, default false) with add_special.
// A byte that is not valid UTF-8 is a symbol of its own (it then falls back
// to its byte token); llama.cpp groups it with the bytes its lead byte
// announces. docs/tokenizers.md has both rules.
//
// decode renders '▁' as ' ', byte tokens as their byte, and drops the
// space the prefix added: the first text a piece renders loses one leading
// space when add_space_prefix is on.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/model/special_tokens.h"
#include "lowbit/model/tokenizer.h"

namespace lowbit {

class SpmTokenizer final : public Tokenizer {
 public:
  // One score per token (ErrorKind::kInput otherwise, or for a NaN score).
  SpmTokenizer(Vocabulary vocab, std::vector<float> scores, SpecialTokenIds special, bool add_space_prefix);

  const char* kind() const noexcept override { return "spm"; }
  std::string describe() const override;
  std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                              bool parse_special = false) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const override;

  bool add_space_prefix() const noexcept { return add_space_prefix_; }

 private:
  void encode_fragment(std::string_view escaped, std::vector<int32_t>& out) const;

  std::vector<float> scores_;
  bool add_space_prefix_;
  int32_t byte_token_[256];  // -1: none
  std::vector<SpecialPattern> always_special_;
  std::vector<SpecialPattern> all_special_;
};

}  // namespace lowbit
