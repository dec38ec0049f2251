// `lowbit study train`: the same model trained for the same token budget
// under several precision recipes, from the same initialization and the
// same batches, so that the held-out losses differ by the recipe alone.
//
// Per recipe: the held-out loss curve, the final held-out loss and its
// difference from the float32 run, the median time of a step against the
// float32 run's (the emulation's overhead), the steps dynamic loss
// scaling skipped, and where a run stopped on a NaN or infinity (the study
// goes on with the next recipe).
#pragma once

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "lowbit/train/train_config.h"
#include "lowbit/train/trainer.h"
#include "lowbit/train/training_data.h"

namespace lowbit {

struct StudyRecipe {
  std::string name;
  std::string json;  // the precision recipe; empty: float32
};

struct StudyRow {
  std::string name;
  std::vector<TrainLogRow> log;
  double final_heldout = NAN;
  double step_seconds = NAN;  // median over the steps without an evaluation
  int64_t skipped = 0;
  std::string stopped;  // the error that ended the run early, or empty
};

// Runs every recipe into out_dir/<name>/ (an existing directory). The
// float32 reference is the row named "fp32" if there is one.
std::vector<StudyRow> run_train_study(const TrainConfig& base, const TokenCorpus& corpus,
                                      const std::vector<StudyRecipe>& recipes, const std::string& out_dir,
                                      int threads, const std::function<void(const std::string& recipe,
                                                                            const TrainProgress&)>& progress);

// The study's SVG: every recipe's held-out loss against the step.
std::string train_study_svg(const std::vector<StudyRow>& rows, const std::string& title);
// The same curves as differences from fp32's held-out loss at the same
// step (where both evaluated): the small differences the first plot's
// scale hides. Empty without an fp32 row.
std::string train_study_delta_svg(const std::vector<StudyRow>& rows, const std::string& title);
// Its JSON: per row the final held-out loss, its difference from fp32, the
// step time and its ratio to fp32's, skipped steps, the stop, and the
// held-out curve.
std::string train_study_json(const std::vector<StudyRow>& rows);

}  // namespace lowbit
