#include "lowbit/train/prepared_corpus.h"

#include <fmt/format.h>

#include "lowbit/model/bpe_tokenizer.h"

namespace lowbit {

PreparedCorpus prepare_corpus(const TrainConfig& config, const std::function<void(const std::string&)>& note) {
  PreparedCorpus p;
  const TextSplit split = split_text_files(config.files, config.holdout);
  for (const std::string& t : split.train) p.train_bytes += t.size();
  for (const std::string& t : split.heldout) p.heldout_bytes += t.size();
  if (config.tokenizer == "bytes") {
    p.tokenizer = train_bpe({}, {257, "smollm", 2});
  } else {
    if (note) {
      note(fmt::format("training a BPE tokenizer of {} tokens on {:.1f} MB", config.tokenizer_vocab(),
                       static_cast<double>(p.train_bytes) / 1e6));
    }
    const std::vector<std::string_view> texts(split.train.begin(), split.train.end());
    p.tokenizer = train_bpe(texts, {config.tokenizer_vocab(), "smollm", 2});
  }
  if (note) note(fmt::format("tokenizing {} files", config.files.size()));
  p.corpus = tokenize_split(split, *p.tokenizer.tokenizer());
  return p;
}

}  // namespace lowbit
