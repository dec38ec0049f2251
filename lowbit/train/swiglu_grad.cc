#include "lowbit/train/swiglu_grad.h"

#include <cmath>

#include "lowbit/core/thread_pool.h"

namespace lowbit {

namespace {
constexpr int64_t kChunk = 1 << 14;  // elements are independent: the grain only
}  // namespace

void swiglu_forward(const float* g, const float* u, int64_t n, float* h, int threads) {
  parallel_chunks(n, kChunk, threads, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float silu = g[i] / (1.0f + std::exp(-g[i]));
      h[i] = silu * u[i];
    }
  });
}

void swiglu_backward(const float* g, const float* u, const float* dh, int64_t n, float* dg, float* du, int threads) {
  parallel_chunks(n, kChunk, threads, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float sig = 1.0f / (1.0f + std::exp(-g[i]));
      const float silu = g[i] / (1.0f + std::exp(-g[i]));
      du[i] = dh[i] * silu;
      dg[i] = dh[i] * u[i] * (sig * (1.0f + g[i] * (1.0f - sig)));
    }
  });
}

}  // namespace lowbit
