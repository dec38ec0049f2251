#include "lowbit/train/lr_schedule.h"

#include <cmath>
#include <numbers>

namespace lowbit {

double LrSchedule::at(int64_t step) const {
  if (step < warmup) return peak * static_cast<double>(step + 1) / static_cast<double>(warmup);
  const int64_t span = steps - 1 - warmup;
  if (span <= 0) return peak;
  const double progress = static_cast<double>(step - warmup) / static_cast<double>(span);
  const double c = 0.5 * (1.0 + std::cos(std::numbers::pi * (progress > 1.0 ? 1.0 : progress)));
  return min_lr + (peak - min_lr) * c;
}

}  // namespace lowbit
