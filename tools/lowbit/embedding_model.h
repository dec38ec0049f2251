// A BERT sentence-transformers model as the embedding commands (`lowbit
// embed`, `lowbit eval embed`) load and run it: config, pipeline,
// WordPiece tokenizer and weights from one model directory, and the
// embedding of text lines in batches, truncated as sentence-transformers
// truncates (docs/embeddings.md). One loader, so that both commands embed
// a line into the same bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/eval/corpus.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/model/bert_config.h"
#include "lowbit/model/bert_model.h"
#include "lowbit/model/tokenizer.h"

namespace lowbit::cli {

// The lines of `pairs` (kjv-web verse pairs) as the embedding commands
// embed them: the KJV verses and the WEB verses, views into `pairs`
// (which must outlive them). kInput naming a verse that is not valid
// UTF-8: BERT's tokenizer would drop the byte and silently embed another
// text than the corpus's.
struct VerseLines {
  std::vector<std::string_view> kjv, web;
};
VerseLines verse_lines(const std::vector<VersePair>& pairs);

// The checkpoint at `path` (a resolved model path). A GGUF file is refused
// (kInput) naming its architecture: the embedding commands run BERT
// encoders from safetensors. `command` ("lowbit embed") names the refuser.
Checkpoint open_embedding_checkpoint(const std::string& path, std::string_view command);

// A Hugging Face directory whose config.json says model_type "bert": what
// the commands that take either kind of model run as an encoder.
bool is_bert_directory(const std::string& path);

class EmbeddingModel {
 public:
  // Reads config.json (model_type must be bert: anything else is refused
  // naming it), the sentence-transformers pipeline, the tokenizer (which
  // must be WordPiece) and the weights. `path` is what `ck` was opened from.
  EmbeddingModel(const Checkpoint& ck, std::string path, int threads);

  const std::string& path() const noexcept { return path_; }
  const SentencePipeline& pipeline() const noexcept { return pipeline_; }
  int64_t dim() const noexcept { return model_.embedding_dim(pipeline_); }
  const BertModel& model() const noexcept { return model_; }

  // The token ids embed() runs for `lines`: [CLS] ... [SEP], truncated to
  // max_seq_length; `truncated`, if given, gets the count at the limit.
  std::vector<std::vector<int32_t>> tokenize(std::span<const std::string_view> lines, int threads,
                                             size_t* truncated = nullptr) const;

  // The embeddings of `lines`, [lines.size(), dim()] row-major, run in
  // batches of `batch` lines in order (the batch composition fixes the
  // last bits; the thread count never does). Lines must be valid UTF-8.
  // `on_batch(done)` is called after each batch; `at_limit`, if given,
  // gets the count of lines truncated to max_seq_length.
  std::vector<float> embed(std::span<const std::string_view> lines, size_t batch, int threads,
                           const std::function<void(size_t done)>& on_batch = {},
                           size_t* at_limit = nullptr) const;

 private:
  std::string path_;
  BertConfig config_;
  SentencePipeline pipeline_;
  std::unique_ptr<Tokenizer> tokenizer_;
  BertModel model_;
};

}  // namespace lowbit::cli
