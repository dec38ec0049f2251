// Scaled dot-product attention over rows of positions, the one routine
// behind the Llama decoder (causal, grouped-query, with a KV cache) and the
// BERT encoder (bidirectional, one sentence at a time).
//
// Later issues quantize the inputs of Q·Kᵀ and of P·V (the softmax output
// included): both products are separate steps here so that a quantization
// point can sit before each.
#pragma once

#include <cstdint>

namespace lowbit {

struct ActQuant;

struct AttentionShape {
  int64_t heads = 0;     // query heads
  int64_t kv_heads = 0;  // key/value heads; heads is a multiple (GQA)
  int64_t head_dim = 0;
};

// Query rows per task. Fixed, so that results never depend on the thread
// count (each row is always computed in the same tile).
inline constexpr int64_t kAttentionQueryTile = 64;

// out[i, h*d:(h+1)*d] = softmax(q_i,h · K_gᵀ / sqrt(d)) · V_g for each query
// row i < n_q and head h, with g = h / (heads / kv_heads) its key/value head.
// q: [n_q, heads*d] with row stride ldq; k, v: [n_kv, kv_heads*d] with row
// stride ldkv (key row j is position j); out: [n_q, heads*d], stride ldo.
// Query row i is position q_pos0 + i; `causal` hides the keys after it
// (q_pos0 + n_q <= n_kv is then required). The softmax is in float32, its
// maximum subtracted first. Bit-identical for every thread count.
// `p_quant`, when given, quantizes each head's probabilities P before P·V:
// a [rows, keys] matrix per task of kAttentionQueryTile query rows (so
// "/tensor" means per head and tile, "/channel" per query row).
void attention(const float* q, int64_t n_q, int64_t ldq, int64_t q_pos0, const float* k, const float* v, int64_t n_kv,
               int64_t ldkv, const AttentionShape& s, bool causal, float* out, int64_t ldo, int threads,
               const ActQuant* p_quant = nullptr);

}  // namespace lowbit
