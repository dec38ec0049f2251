// Causal grouped-query attention for training, forward beside backward,
// over B sequences of T positions each (rows b·T .. b·T + T − 1).
//
// Forward, per sequence b and query head h (key/value head g = h / (H/KV)):
//   S = Q_h·K_gᵀ / sqrt(d)          [T, T]
//   P = softmax(S) over keys j <= i  [T, T], saved for the backward
//   O_h = P·V_g                     [T, d]
// Backward, per sequence and key/value head (its query heads in order, so
// dK_g and dV_g sum the heads in a fixed order):
//   dP = dO_h·V_gᵀ,  dV_g += Pᵀ·dO_h
//   dS = P ⊙ (dP − rowsum(P ⊙ dP)) / sqrt(d)
//   dQ_h = dS·K_g,   dK_g += dSᵀ·Q_h
// The inputs are after RoPE; the caller rotates dQ and dK back.
#pragma once

#include <cstdint>

#include "lowbit/model/attention.h"

namespace lowbit {

// q, out: [B·T, H·d]; k, v: [B·T, KV·d]; p: [B, H, T, T] (written; the
// entries above the diagonal are 0).
void attention_forward(const float* q, const float* k, const float* v, int64_t batch, int64_t seq,
                       const AttentionShape& s, float* p, float* out, int threads);

// dout: [B·T, H·d]; dq [B·T, H·d], dk and dv [B·T, KV·d] are overwritten.
void attention_backward(const float* q, const float* k, const float* v, const float* p, const float* dout,
                        int64_t batch, int64_t seq, const AttentionShape& s, float* dq, float* dk, float* dv,
                        int threads);

}  // namespace lowbit
