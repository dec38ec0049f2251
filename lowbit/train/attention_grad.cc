#include "lowbit/train/attention_grad.h"

#include <cmath>
#include <vector>

#include "lowbit/core/thread_pool.h"
#include "lowbit/kernels/matmul.h"

namespace lowbit {

void attention_forward(const float* q, const float* k, const float* v, int64_t batch, int64_t seq,
                       const AttentionShape& s, float* p, float* out, int threads) {
  const int64_t d = s.head_dim, qd = s.heads * d, kvd = s.kv_heads * d, group = s.heads / s.kv_heads;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  ThreadPool::global().parallel_for(static_cast<size_t>(batch * s.heads), threads, [&](size_t task) {
    const int64_t b = static_cast<int64_t>(task) / s.heads, h = static_cast<int64_t>(task) % s.heads;
    const int64_t g = h / group;
    const float* qh = q + b * seq * qd + h * d;
    const float* kg = k + b * seq * kvd + g * d;
    const float* vg = v + b * seq * kvd + g * d;
    float* ph = p + (b * s.heads + h) * seq * seq;
    sgemm_nt_serial(seq, seq, d, scale, qh, qd, kg, kvd, ph, seq);
    for (int64_t i = 0; i < seq; ++i) {
      float* row = ph + i * seq;
      float mx = row[0];
      for (int64_t j = 1; j <= i; ++j) mx = row[j] > mx ? row[j] : mx;
      double sum = 0.0;
      for (int64_t j = 0; j <= i; ++j) {
        row[j] = std::exp(row[j] - mx);
        sum += row[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      for (int64_t j = 0; j <= i; ++j) row[j] *= inv;
      for (int64_t j = i + 1; j < seq; ++j) row[j] = 0.0f;
    }
    sgemm_nn_serial(seq, d, seq, ph, seq, vg, kvd, out + b * seq * qd + h * d, qd);
  });
}

void attention_backward(const float* q, const float* k, const float* v, const float* p, const float* dout,
                        int64_t batch, int64_t seq, const AttentionShape& s, float* dq, float* dk, float* dv,
                        int threads) {
  const int64_t d = s.head_dim, qd = s.heads * d, kvd = s.kv_heads * d, group = s.heads / s.kv_heads;
  const float scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(d)));
  ThreadPool::global().parallel_for(static_cast<size_t>(batch * s.kv_heads), threads, [&](size_t task) {
    const int64_t b = static_cast<int64_t>(task) / s.kv_heads, g = static_cast<int64_t>(task) % s.kv_heads;
    const float* kg = k + b * seq * kvd + g * d;
    const float* vg = v + b * seq * kvd + g * d;
    float* dkg = dk + b * seq * kvd + g * d;
    float* dvg = dv + b * seq * kvd + g * d;
    std::vector<float> ds(static_cast<size_t>(seq * seq));
    for (int64_t h = g * group; h < (g + 1) * group; ++h) {
      const float beta = h == g * group ? 0.0f : 1.0f;  // the group's first head writes, the rest add
      const float* ph = p + (b * s.heads + h) * seq * seq;
      const float* qh = q + b * seq * qd + h * d;
      const float* doh = dout + b * seq * qd + h * d;
      sgemm_nt_serial(seq, seq, d, 1.0f, doh, qd, vg, kvd, ds.data(), seq);  // dP
      sgemm_tn_serial(seq, d, seq, 1.0f, ph, seq, doh, qd, beta, dvg, kvd);   // dV += Pᵀ·dO
      for (int64_t i = 0; i < seq; ++i) {
        const float* pr = ph + i * seq;
        float* r = ds.data() + i * seq;
        double dot = 0.0;
        for (int64_t j = 0; j <= i; ++j) dot += static_cast<double>(pr[j]) * r[j];
        const float fdot = static_cast<float>(dot);
        for (int64_t j = 0; j <= i; ++j) r[j] = pr[j] * (r[j] - fdot) * scale;
        for (int64_t j = i + 1; j < seq; ++j) r[j] = 0.0f;
      }
      sgemm_nn_serial(seq, d, seq, ds.data(), seq, kg, kvd, dq + b * seq * qd + h * d, qd);  // dQ = dS·K
      sgemm_tn_serial(seq, d, seq, 1.0f, ds.data(), seq, qh, qd, beta, dkg, kvd);           // dK += dSᵀ·Q
    }
  });
}

}  // namespace lowbit
