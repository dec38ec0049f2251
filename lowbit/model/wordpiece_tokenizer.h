// BERT's WordPiece tokenizer as a Hugging Face tokenizer.json defines it
// (all-MiniLM-L6-v2's, for one). Its peer is the `tokenizers` library
// loading the same file, which it equals token for token
// (tests/python/test_tokenizers.py).
//
// encode(text), in `tokenizers`' order:
//   1. added tokens stored unnormalized are cut out of the raw text
//      (split_leftmost_longest; special ones only with parse_special, which
//      is `tokenizers`' default and off here, see tokenizer.h);
//   2. each remaining fragment is normalized (bert_normalizer.h), and
//      normalized added tokens are cut out of the result;
//   3. the pre-tokenizer cuts words (bert_pre_tokenizer.h);
//   4. each word becomes the longest vocabulary entry that starts it, then
//      the longest "##"-prefixed entry that starts the rest, and so on; a
//      word longer than max_input_chars_per_word characters, or one with a
//      rest that no entry starts, is the unknown token as a whole;
//   5. with add_special, the post-processor's template for one sequence
//      ([CLS] $A [SEP]) puts its tokens around the result.
// tokenizer.json's truncation and padding are not applied: they are batch
// policies for the runtime, not part of tokenization.
//
// A byte that is not valid UTF-8 reads as U+FFFD, which the normalizer's
// clean_text removes (docs/tokenizers.md).
//
// decode follows the WordPiece decoder: tokens joined by spaces, except
// that a "##" token joins its predecessor, then `cleanup` (" ." -> ".",
// " n't" -> "n't"...) token by token; without a decoder, tokens joined by
// spaces. skip_special leaves out the special added tokens.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "lowbit/model/bert_normalizer.h"
#include "lowbit/model/special_tokens.h"
#include "lowbit/model/tokenizer.h"

namespace lowbit {

struct WordPieceAddedToken {
  std::string content;
  int32_t id = -1;
  bool special = false;
  bool lstrip = false, rstrip = false;
  bool normalized = false;
};

struct WordPieceConfig {
  std::vector<std::string> vocab;  // the model's entries, by id 0..n-1
  std::string unk_token = "[UNK]";
  std::string continuing_subword_prefix = "##";
  size_t max_input_chars_per_word = 100;
  std::optional<BertNormalizerOptions> normalizer;  // none: text as is
  bool bert_pre_tokenizer = true;                   // false: a fragment is one word
  std::vector<WordPieceAddedToken> added_tokens;
  std::vector<int32_t> template_prefix, template_suffix;  // ids around $A
  bool wordpiece_decoder = true;  // false: tokens joined by spaces
  std::string decoder_prefix = "##";
  bool decoder_cleanup = true;
  int32_t pad_id = -1;
};

// The WordPiece settings of a Hugging Face tokenizer.json (its text; `name`
// stands for the file in messages), as load_tokenizer_json reads them: for
// writers that carry the vocabulary into another container (GGUF).
// ErrorKind::kInput as load_tokenizer_json; the settings are not checked
// against each other (the tokenizer's constructor does that).
WordPieceConfig parse_wordpiece_config(std::string_view json_text, const std::string& name);

class WordPieceTokenizer final : public Tokenizer {
 public:
  // ErrorKind::kInput for an unknown unk_token, an added token whose id
  // holds another entry, a template id outside the vocabulary.
  explicit WordPieceTokenizer(WordPieceConfig config);

  const char* kind() const noexcept override { return "wordpiece"; }
  std::string describe() const override;
  std::vector<int32_t> encode(std::string_view text, bool add_special = true,
                              bool parse_special = false) const override;
  std::string decode(std::span<const int32_t> ids, bool skip_special = false) const override;

 private:
  struct Parts {
    WordPieceConfig config;
    Vocabulary vocab;
    SpecialTokenIds special;
  };
  static Parts prepare(WordPieceConfig config);
  explicit WordPieceTokenizer(Parts parts);
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;
  void encode_normalized(std::string_view text, bool parse_special, std::vector<int32_t>& out,
                         std::unordered_map<std::string, std::vector<int32_t>>& cache) const;

  WordPieceConfig config_;
  std::unordered_map<std::string, int32_t, PieceHash, std::equal_to<>> model_ids_;
  std::unordered_set<int32_t> special_ids_;
  // Added tokens by where they are matched, with and without the special ones.
  std::vector<SpecialPattern> raw_all_, raw_plain_, normalized_all_, normalized_plain_;
};

}  // namespace lowbit
