// What a quantization method may know about the data a weight meets: the
// statistics lowbit calibrate records per linear layer (issue 15 adds the
// ranges, histograms and Gram matrices GPTQ needs). Today: per-column
// importance, llama.cpp's imatrix (the mean of x^2 per input column) or a
// recipe's own weights.
#pragma once

#include <span>

namespace lowbit {

struct CalibStats {
  // One non-negative weight per input column (the last axis) of the weight.
  std::span<const float> importance_per_column;
};

}  // namespace lowbit
