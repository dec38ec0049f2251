// The token streams a training run reads: each text file's last
// `holdout` fraction of bytes (from a line start) set aside as held-out
// text, so the held-out split is disjoint from the training split, drawn
// from every source, and unseen by a tokenizer trained on the training
// split; then both tokenized, and the batches taken from them.
//
// A training batch is a pure function of (seed, step, micro-batch): each
// row's window starts at a position drawn from a counter-based hash. So a
// resumed run reads exactly the batches the uninterrupted one would have,
// with no sampler state to save.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

class Tokenizer;

// Per file, its training text and its held-out text.
struct TextSplit {
  std::vector<std::string> train, heldout;
};

// Reads `files` and cuts each at the first line start at or after
// (1 − holdout) of its bytes (at that byte if no line starts later).
// ErrorKind::kIo for an unreadable file; kInput when a part comes out
// empty, or holdout is outside (0, 0.5].
TextSplit split_text_files(const std::vector<std::string>& files, double holdout);

struct TokenCorpus {
  std::vector<int32_t> train, heldout;
  int64_t vocab_size = 0;
};

// Each part tokenized (no BOS/EOS added) and concatenated in file order.
TokenCorpus tokenize_split(const TextSplit& split, const Tokenizer& tokenizer);

// inputs and targets [batch·seq] (targets shifted by one) of micro-batch
// `micro` of step `step`. ErrorKind::kInput when the split is shorter than
// seq + 1 tokens.
void training_batch(const std::vector<int32_t>& train, uint64_t seed, int64_t step, int64_t micro, int64_t batch,
                    int64_t seq, std::vector<int32_t>& inputs, std::vector<int32_t>& targets);

// The held-out split as consecutive windows: window w is tokens
// [w·seq, w·seq + seq], so the last token of one is the first of the next
// and every token after the first is a target exactly once. How many
// there are, capped at max_windows, and windows [first, first + count) as
// a batch.
int64_t heldout_window_count(const std::vector<int32_t>& heldout, int64_t seq, int64_t max_windows);
void heldout_batch(const std::vector<int32_t>& heldout, int64_t first, int64_t count, int64_t seq,
                   std::vector<int32_t>& inputs, std::vector<int32_t>& targets);

}  // namespace lowbit
