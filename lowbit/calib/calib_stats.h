// What a quantization method may know about the data a weight meets: the
// statistics lowbit calibrate records per linear layer. Per-column
// importance, llama.cpp's imatrix (the mean of x^2 per input column) or a
// recipe's own weights; and the Gram matrix of the input (calibrate
// --gram), GPTQ's Hessian.
#pragma once

#include <span>

namespace lowbit {

struct CalibStats {
  // One non-negative weight per input column (the last axis) of the weight.
  std::span<const float> importance_per_column;
  // [cols, cols] row-major, symmetric: the sum over calibration rows of
  // x xᵀ for the weight's input x; empty when not recorded.
  std::span<const float> gram;
};

}  // namespace lowbit
