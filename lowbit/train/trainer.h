// The training loop: batches, forward and backward, gradient clipping,
// AdamW under the warm-up + cosine schedule, held-out evaluation,
// checkpoints and the loss log.
//
//   Trainer t(config, build_token_corpus(...), threads);
//   t.run("out/", /*resume=*/false, on_progress);
//
// A run's numbers are a pure function of its config: batches come from
// (seed, step) (training_data.h), every kernel is bit-identical for every
// thread count, and a resumed run restores parameters and moments exactly,
// so the loss log of an interrupted and resumed run equals the
// uninterrupted one bit for bit.
//
// The output directory holds:
//   checkpoint.safetensors  parameters, AdamW moments, step, log (train_checkpoint.h)
//   log.json                one row per step: lr, loss, gradient norm, held-out loss at eval steps
//   loss.svg                the training and held-out loss curves
// each replaced atomically at every checkpoint.
//
// A precision recipe (config.precision_json) rounds every Linear's GEMMs,
// keeps the master weights as it says, and scales the loss; its state (the
// master weights' second buffer, the loss scale, delayed scaling's amax
// histories) is in the checkpoint too, so resuming stays exact.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/train/adamw.h"
#include "lowbit/train/master_weights.h"
#include "lowbit/train/precision_recipe.h"
#include "lowbit/train/train_config.h"
#include "lowbit/train/trainable_llama.h"
#include "lowbit/train/training_data.h"

namespace lowbit {

struct TrainLogRow {
  int64_t step = 0;          // 1-based: the row of the step just taken
  double lr = 0, loss = 0;   // loss: mean nats per token of the step's batch
  double grad_norm = 0;      // before clipping
  double heldout = NAN;      // mean held-out nats per token, at eval steps
  double seconds = 0;        // wall time since the run (or its resumption) began
  double loss_scale = 1;     // the recipe's loss scale this step (1 without one)
  bool skipped = false;      // dynamic loss scaling met a non-finite gradient: no update
};

struct TrainProgress {
  int64_t step = 0, steps = 0;
  double loss = 0, heldout = NAN;
  double tokens_per_second = 0, eta_seconds = 0;
};

class Trainer {
 public:
  // ErrorKind::kInput when the corpus does not fit the config (vocabulary
  // larger than the model's, a split shorter than one sequence).
  Trainer(TrainConfig config, TokenCorpus corpus, int threads);

  // Trains to config.steps, writing into `out_dir` (an existing
  // directory). With `resume`, continues from out_dir's checkpoint
  // (load_train_checkpoint's errors). A NaN or infinity in the loss or a
  // gradient stops the run with ErrorKind::kInput naming the step and the
  // first block or tensor where it appeared; the last checkpoint written
  // stays as it was.
  // stop_after > 0 ends the run after that many steps in all (the run's
  // first steps, resumed ones included), with a checkpoint there: the same
  // steps as the whole run's beginning, which --resume continues.
  void run(const std::string& out_dir, bool resume, const std::function<void(const TrainProgress&)>& progress,
           int64_t stop_after = 0);
  // Whether the last run() reached config.steps.
  bool finished() const noexcept { return !log_.empty() && log_.back().step == config_.steps; }

  // The mean held-out loss (nats per token) over the first eval_windows
  // windows.
  double heldout_loss();

  TrainableLlama& model() noexcept { return model_; }
  const std::vector<TrainLogRow>& log() const noexcept { return log_; }
  const TrainConfig& config() const noexcept { return config_; }
  const TokenCorpus& corpus() const noexcept { return corpus_; }

  // The log as written to log.json, and read back from a checkpoint.
  static std::string log_to_json(const std::vector<TrainLogRow>& rows);
  static std::vector<TrainLogRow> log_from_json(const std::string& json, const std::string& source);

 private:
  void write_outputs(const std::string& out_dir, int64_t step);
  // The loss scale and the delayed-scaling histories, as a checkpoint keeps them.
  std::string state_to_json();
  void state_from_json(const std::string& json, const std::string& source);

  TrainConfig config_;
  TokenCorpus corpus_;
  int threads_;
  std::shared_ptr<const PrecisionRecipe> recipe_;  // before model_: it sets the model's QAT
  TrainableLlama model_;
  AdamW optimizer_;
  MasterWeightStore master_;
  double loss_scale_ = 1;
  int64_t good_steps_ = 0;  // since the loss scale last changed
  std::vector<TrainLogRow> log_;
};

}  // namespace lowbit
