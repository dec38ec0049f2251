// SwiGLU's gate, forward beside backward: h = silu(g)·u with
// silu(g) = g / (1 + e^-g), the runtime's formula (llama_model.cc).
//
//   dg = dh·u·σ(g)·(1 + g·(1 − σ(g)))
//   du = dh·silu(g)
#pragma once

#include <cstdint>

namespace lowbit {

// h[i] = silu(g[i])·u[i] for i < n.
void swiglu_forward(const float* g, const float* u, int64_t n, float* h, int threads);
// dg and du are overwritten.
void swiglu_backward(const float* g, const float* u, const float* dh, int64_t n, float* dg, float* du, int threads);

}  // namespace lowbit
