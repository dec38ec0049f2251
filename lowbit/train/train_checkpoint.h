// A training run's checkpoint: the parameters, AdamW's moments, the step
// and the loss log, in one safetensors file written atomically (a run
// killed while saving keeps the previous checkpoint whole).
//
// Tensors: every parameter under its GGUF name, and "adamw.m.<name>",
// "adamw.v.<name>". Metadata: "lowbit.train.config" (the config's
// identity_json: resuming under different settings would not continue
// the same run, so it is refused), "lowbit.train.step" (the steps done),
// "lowbit.train.log" (the log's JSON).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace lowbit {

class AdamW;
class TrainableLlama;
struct TrainConfig;

// The state a precision recipe adds: the master weights' second buffer
// (tensors "master.<name>"), and the loss scale and amax histories as
// JSON (metadata "lowbit.train.state").
struct PrecisionState {
  std::vector<float>* master_extra = nullptr;  // null or empty: none
  std::string state_json;
};

void save_train_checkpoint(const std::string& path, const TrainConfig& config, const TrainableLlama& model,
                           const AdamW& optimizer, int64_t step, const std::string& log_json,
                           const PrecisionState& state = {});

struct ResumedRun {
  int64_t step = 0;
  std::string log_json;
  std::string state_json;
};

// Restores model parameters and optimizer state. ErrorKind::kInput naming
// the file for anything that does not fit: not a lowbit training
// checkpoint, another config (the message names the first differing
// setting), a missing tensor, a wrong shape or dtype, a non-finite value.
// Nothing is changed unless everything fits.
// state.master_extra, when non-empty, is filled from "master.<name>".
ResumedRun load_train_checkpoint(const std::string& path, const TrainConfig& config, TrainableLlama& model,
                                 AdamW& optimizer, const PrecisionState& state = {});

}  // namespace lowbit
