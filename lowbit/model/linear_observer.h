// A hook that sees the inputs of a model's Linears during a forward pass:
// calibration (lowbit/calib/) records statistics of them without the
// runtime keeping any activations.
//
//   class Recorder : public LinearInputObserver { ... };
//   Recorder r;
//   model.forward(tokens, cache, n, nullptr, threads, &r);
//
// The runtime calls observe() on the calling thread, between its parallel
// steps, in a fixed order (block by block; in a block Q/K/V, output,
// gate/up, down; then the LM head for the rows whose logits are asked; in a
// BERT encoder layer Q/K/V, attention output, intermediate, output), so
// an observer that adds its statistics in call order gets the same bits at
// every thread count.
#pragma once

#include <cstdint>
#include <span>

namespace lowbit {

class Linear;

class LinearInputObserver {
 public:
  virtual ~LinearInputObserver() = default;
  // x[n, in] is the input of every Linear in `linears` (they share it: a
  // block's Q, K and V, or its gate and up; all have the same in_features).
  // The observer must not keep the pointer.
  virtual void observe(std::span<const Linear* const> linears, const float* x, int64_t n) = 0;
};

}  // namespace lowbit
