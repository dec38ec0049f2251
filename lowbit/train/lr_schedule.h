// The learning-rate schedule: linear warm-up from peak/warmup to peak over
// the first `warmup` steps, then a cosine from peak down to min_lr at the
// last step (Loshchilov and Hutter's SGDR without restarts, as llm.c and
// nanoGPT use it).
#pragma once

#include <cstdint>

namespace lowbit {

struct LrSchedule {
  double peak = 3e-3, min_lr = 3e-4;
  int64_t warmup = 100, steps = 1000;

  // The rate of step `step` in [0, steps).
  double at(int64_t step) const;
};

}  // namespace lowbit
