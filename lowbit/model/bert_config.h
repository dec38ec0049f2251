// What a BERT sentence-embedding model's JSON files say: the encoder's
// shape (Hugging Face config.json) and the sentence-transformers pipeline
// around it (modules.json, the pooling module's config.json,
// sentence_bert_config.json).
//
//   BertConfig cfg = load_bert_config(dir);              // config.json
//   SentencePipeline p = load_sentence_pipeline(dir, cfg);
//
// Only what lowbit runs is accepted; anything else is refused by name
// rather than run differently: a model_type other than "bert", a
// hidden_act other than the exact erf GELU, relative position embeddings,
// a pipeline module other than Transformer, Pooling and Normalize, a
// pooling mode lowbit does not implement. docs/embeddings.md has the rules.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/model/pooling.h"

namespace lowbit {

struct BertConfig {
  int64_t vocab_size = 0;
  int64_t hidden_size = 0;
  int64_t num_layers = 0;
  int64_t num_heads = 0;
  int64_t intermediate_size = 0;
  int64_t max_position_embeddings = 0;
  int64_t type_vocab_size = 0;
  double layer_norm_eps = 1e-12;

  int64_t head_dim() const noexcept { return num_heads > 0 ? hidden_size / num_heads : 0; }
};

// Parses the text of a config.json; `name` stands for the file in
// messages. ErrorKind::kInput naming the key for a missing or malformed
// field, a model_type that is not "bert" (naming it), an activation other
// than "gelu", or sizes that do not fit together (hidden_size not a
// multiple of num_attention_heads, zero or negative sizes).
BertConfig parse_bert_config(std::string_view json_text, const std::string& name);

// config.json of the model directory `dir`.
BertConfig load_bert_config(const std::string& dir);

// The sentence-transformers modules that follow the encoder.
struct SentencePipeline {
  PoolingModes pooling;       // default: mean, as without modules.json
  bool normalize = false;     // an L2 Normalize module follows the pooling
  int64_t max_seq_length = 0; // tokens per sentence, [CLS] and [SEP] included
  // Whether modules.json was there (false: the documented default of mean
  // pooling without normalization).
  bool from_modules_json = false;
};

// Parses the pipeline files of `dir`: modules.json (missing: mean pooling,
// no normalization), the pooling module's config.json (its "path" in
// modules.json), sentence_bert_config.json's max_seq_length (missing:
// max_position_embeddings). A max_seq_length above max_position_embeddings
// is lowered to it: longer inputs have no position embedding. ErrorKind::
// kInput naming the file and key for anything malformed or unsupported.
SentencePipeline load_sentence_pipeline(const std::string& dir, const BertConfig& config);

// A tokenized sentence ([CLS] ... [SEP]) cut to max_len tokens the way the
// Hugging Face tokenizer does when sentence-transformers asks for
// truncation to max_seq_length: the first max_len - 1 tokens and the final
// [SEP] (the last token of `ids`). Shorter sentences are returned as they
// are. max_len >= 2.
std::vector<int32_t> truncate_tokens(std::span<const int32_t> ids, int64_t max_len);

}  // namespace lowbit
