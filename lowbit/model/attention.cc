#include "lowbit/model/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/kernels/matmul.h"
#include "lowbit/model/act_quant.h"

namespace lowbit {

void attention(const float* q, int64_t n_q, int64_t ldq, int64_t q_pos0, const float* k, const float* v, int64_t n_kv,
               int64_t ldkv, const AttentionShape& s, bool causal, float* out, int64_t ldo, int threads,
               const ActQuant* p_quant) {
  if (s.heads <= 0 || s.kv_heads <= 0 || s.head_dim <= 0 || s.heads % s.kv_heads != 0) {
    fail_internal("attention: bad head counts");
  }
  if (ldq < s.heads * s.head_dim || ldo < s.heads * s.head_dim || ldkv < s.kv_heads * s.head_dim) {
    fail_internal("attention: row stride shorter than a row");
  }
  if (q_pos0 < 0 || (causal && q_pos0 + n_q > n_kv)) fail_internal("attention: query positions beyond the keys");
  if (n_q == 0) return;
  const int64_t d = s.head_dim;
  const int64_t group = s.heads / s.kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(d));
  const int64_t tiles = (n_q + kAttentionQueryTile - 1) / kAttentionQueryTile;

  ThreadPool::global().parallel_for(static_cast<size_t>(s.heads * tiles), threads, [&](size_t task) {
    const int64_t h = static_cast<int64_t>(task) / tiles;
    const int64_t i0 = static_cast<int64_t>(task) % tiles * kAttentionQueryTile;
    const int64_t rows = std::min(kAttentionQueryTile, n_q - i0);
    const int64_t g = h / group;
    // Keys this tile can see: up to its last query's position if causal.
    const int64_t keys = causal ? q_pos0 + i0 + rows : n_kv;
    thread_local std::vector<float> p;
    p.resize(static_cast<size_t>(rows * keys));

    // Scores S = Q_h · K_gᵀ / sqrt(d): [rows, keys].
    sgemm_nt_serial(rows, keys, d, scale, q + i0 * ldq + h * d, ldq, k + g * d, ldkv, p.data(), keys);

    // Row softmax; hidden keys get probability 0.
    for (int64_t r = 0; r < rows; ++r) {
      float* row = p.data() + r * keys;
      const int64_t visible = causal ? q_pos0 + i0 + r + 1 : keys;
      float mx = row[0];
      for (int64_t j = 1; j < visible; ++j) mx = std::max(mx, row[j]);
      float sum = 0.0f;
      for (int64_t j = 0; j < visible; ++j) {
        row[j] = std::exp(row[j] - mx);
        sum += row[j];
      }
      const float inv = 1.0f / sum;
      for (int64_t j = 0; j < visible; ++j) row[j] *= inv;
      std::fill(row + visible, row + keys, 0.0f);
    }

    // The quantization point of P·V's left input (one task: one thread).
    if (p_quant) {
      thread_local std::vector<float> pq;
      pq.resize(p.size());
      p_quant->apply(p.data(), rows, keys, pq.data(), 1);
      p.swap(pq);
    }

    // O = P · V_g: [rows, d].
    sgemm_nn_serial(rows, d, keys, p.data(), keys, v + g * d, ldkv, out + i0 * ldo + h * d, ldo);
  });
}

}  // namespace lowbit
