// A training config's text made ready to train on: the files split into
// training and held-out text, the tokenizer made ("bytes", or a BPE
// trained on the training split: a pure function of it, so a resumed run
// or a study makes the same one again), and both splits tokenized.
#pragma once

#include <functional>
#include <string>

#include "lowbit/train/bpe_trainer.h"
#include "lowbit/train/train_config.h"
#include "lowbit/train/training_data.h"

namespace lowbit {

struct PreparedCorpus {
  TrainedBpe tokenizer;
  TokenCorpus corpus;
  size_t train_bytes = 0, heldout_bytes = 0;
};

// `note` (may be empty) hears what is happening ("training a BPE
// tokenizer of 8192 tokens on 23.4 MB").
PreparedCorpus prepare_corpus(const TrainConfig& config, const std::function<void(const std::string&)>& note);

}  // namespace lowbit
