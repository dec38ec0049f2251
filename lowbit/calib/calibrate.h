// Calibration: text through a Llama model, the inputs of its Linears
// recorded as statistics (activation_recorder.h), in llama-imatrix's
// convention so that the importance matrix compares with llama.cpp's:
//
//   - the text is tokenized whole by the caller (with add_special);
//   - it is cut into floor(tokens / ctx) chunks of ctx tokens (at most
//     max_chunks), each run from an empty KV cache, its first token
//     replaced by BOS when the model adds BOS;
//   - every position of a chunk counts (no logits are computed: the LM
//     head is not recorded, as llama-imatrix leaves output.weight out by
//     default).
//
//   Imatrix m = calibrate(model, tokens, {.ctx = 512}, recorder);
//
// An encoder (BERT) is calibrated on sentences instead: each is a
// separate input, run in batches of `batch` sentences in order (the batch
// is what the recorder sees in one call, so it fixes the sums' order).
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "lowbit/calib/activation_recorder.h"
#include "lowbit/calib/imatrix_file.h"

namespace lowbit {

class BertModel;
class LlamaModel;

struct CalibrateOptions {
  int64_t ctx = 512;        // decoder: tokens per chunk
  int64_t batch = 32;       // encoder: sentences per forward (a "chunk")
  int64_t max_chunks = -1;  // -1: every whole chunk of the text
  int32_t bos = -1;         // >= 0: a chunk's first token becomes this
  int threads = 1;
  // After each chunk: chunks done, of all, seconds so far.
  std::function<void(int64_t done, int64_t chunks, double seconds)> on_chunk;
};

struct CalibrateResult {
  int64_t chunks = 0;
  int64_t tokens = 0;  // decoder: chunks * ctx; encoder: the sentences' tokens
  double seconds = 0;
};

// Runs the chunks with `recorder` observing. ErrorKind::kInput when the
// text has fewer than ctx tokens or ctx exceeds the model's context.
CalibrateResult calibrate(const LlamaModel& model, std::span<const int32_t> tokens, const CalibrateOptions& opt,
                          ActivationRecorder& recorder);

// The encoder's version: `sentences` (token ids with [CLS] and [SEP], each
// within the model's positions) in batches of opt.batch, at most
// opt.max_chunks batches; `ctx` and `bos` do not apply. ErrorKind::kInput
// when there are no sentences.
CalibrateResult calibrate(const BertModel& model, std::span<const std::vector<int32_t>> sentences,
                          const CalibrateOptions& opt, ActivationRecorder& recorder);

// The recorder's sums as llama.cpp's importance matrix (float32 sums of
// the float64 ones; counts are the tokens).
Imatrix to_imatrix(const ActivationRecorder& recorder, std::vector<std::string> datasets, uint32_t chunk_count,
                   uint32_t chunk_size);

}  // namespace lowbit
