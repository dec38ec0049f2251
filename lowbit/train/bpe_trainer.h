// Training a byte-level BPE tokenizer (Sennrich et al. 2016, as GPT-2
// uses it) on the training split, for lowbit's own language model.
//
// The text is cut into words by a pre-tokenizer llama.cpp knows
// (bpe_pre_tokenizer.h; "smollm" by default: each digit its own word, then
// GPT-2's expression), so that a GGUF carrying the result tokenizes the
// same in llama.cpp and in lowbit. Each distinct word is counted once with
// its frequency; then, until the vocabulary is full, the most frequent
// adjacent pair of symbols is merged everywhere (ties: the pair of lower
// ids first, so the result is a pure function of the text). Pair counts
// are updated only in the words a merge touches, which keeps a vocabulary
// of 8k over tens of megabytes to seconds.
//
// The vocabulary: ids 0..255 are the bytes (as GPT-2's byte-level
// characters, so a byte's id is its value), then one token per merge in
// merge order, then "<|endoftext|>" (control; BOS and EOS). With no merges
// this is a byte-level tokenizer of 257 tokens.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/model/bpe_pre_tokenizer.h"

namespace lowbit {

class BpeTokenizer;
class GgufWriter;

struct BpeTrainOptions {
  int32_t vocab_size = 8192;    // bytes + merges + <|endoftext|>; at least 257
  std::string pre_tokenizer = "smollm";  // a tokenizer.ggml.pre name lowbit implements
  int64_t min_pair_count = 2;   // stop early when the best pair is rarer
};

struct TrainedBpe {
  std::vector<std::string> pieces;  // byte-level strings, by id
  std::vector<int32_t> types;       // TokenType values, by id
  std::vector<std::string> merges;  // "left right", by rank
  std::string pre_tokenizer;
  int32_t eos = -1;                 // also BOS

  // The tokenizer that encodes with this vocabulary (what lowbit and
  // llama.cpp read back from the GGUF).
  std::unique_ptr<BpeTokenizer> tokenizer() const;
  // Adds the tokenizer.ggml.* keys llama.cpp reads (model "gpt2").
  void add_gguf_metadata(GgufWriter& out) const;
};

// ErrorKind::kInput for a vocab_size below 257 or an unknown
// pre-tokenizer. `progress` (may be empty) sees merges done and wanted.
TrainedBpe train_bpe(const std::vector<std::string_view>& texts, const BpeTrainOptions& options,
                     const std::function<void(int64_t done, int64_t total)>& progress = {});

}  // namespace lowbit
