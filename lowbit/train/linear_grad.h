// A linear layer's three products, the unit the precision recipes act on:
//
//   forward        y[n, out]  = x[n, in] · wᵀ            (x, w)
//   data gradient  dx[n, in]  = dy[n, out] · w          (dy, w)
//   weight grad    dw[out, in] += dy[n, out]ᵀ · x[n, in] (dy, x)
//
// Each runs on lowbit's fixed tiles (kernels/matmul.h), so results are
// bit-identical for every thread count.
//
// With a LinearQuant, each product takes its operands as the layer's
// precision rounds them (precision_recipe.h), each along the product's
// reduction axis: forward x and w along `in`; dgrad dy and w along `out`;
// wgrad dy and x along the tokens. Gradients pass straight through the
// rounding.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit {

struct AmaxHistory;
struct LayerPrecision;

struct LinearQuant {
  const LayerPrecision* precision = nullptr;
  uint64_t seed = 0;                 // this Linear at this step: every operand's seed derives from it
  AmaxHistory* histories = nullptr;  // 6: forward x, w; dgrad dy, w; wgrad dy, x (delayed scaling)
  // Where the forward product leaves its rounded weight, for the data
  // gradient to reuse when it rounds the weight the same way (NVFP4's
  // 16x16 blocks, per-tensor FP8); null: scratch, no reuse. The backward
  // pass must follow its own forward pass, with the weights unchanged.
  std::vector<float>* rounded_weight = nullptr;
};

void linear_forward(const float* x, int64_t n, int64_t in, const float* w, int64_t out, float* y, int threads,
                    const LinearQuant* q = nullptr);

// dx is overwritten, or added to when `accumulate_dx` (several layers read
// the same input: Q, K and V; gate and up). dw is always added to.
void linear_backward(const float* dy, const float* x, int64_t n, int64_t in, const float* w, int64_t out, float* dx,
                     bool accumulate_dx, float* dw, int threads, const LinearQuant* q = nullptr);

}  // namespace lowbit
