#include "lowbit/model/attention.h"

#include <gtest/gtest.h>

#include "lowbit/core/test_support.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

namespace lowbit {
namespace {

using testing_support::normal_values;


// The definition, in double: each head's softmax(q·kᵀ/sqrt(d))·v over the
// visible keys.
std::vector<double> reference(const std::vector<float>& q, int64_t n_q, int64_t q_pos0, const std::vector<float>& k,
                              const std::vector<float>& v, int64_t n_kv, const AttentionShape& s, bool causal) {
  const int64_t d = s.head_dim, group = s.heads / s.kv_heads;
  const int64_t qw = s.heads * d, kw = s.kv_heads * d;
  std::vector<double> out(static_cast<size_t>(n_q * qw));
  for (int64_t i = 0; i < n_q; ++i) {
    for (int64_t h = 0; h < s.heads; ++h) {
      const int64_t g = h / group;
      const int64_t visible = causal ? q_pos0 + i + 1 : n_kv;
      std::vector<double> p(static_cast<size_t>(visible));
      double mx = -INFINITY, sum = 0;
      for (int64_t j = 0; j < visible; ++j) {
        double dot = 0;
        for (int64_t t = 0; t < d; ++t) dot += double(q[i * qw + h * d + t]) * k[j * kw + g * d + t];
        p[j] = dot / std::sqrt(double(d));
        mx = std::max(mx, p[j]);
      }
      for (double& x : p) sum += (x = std::exp(x - mx));
      for (int64_t t = 0; t < d; ++t) {
        double o = 0;
        for (int64_t j = 0; j < visible; ++j) o += p[j] / sum * v[j * kw + g * d + t];
        out[i * qw + h * d + t] = o;
      }
    }
  }
  return out;
}

void check(int64_t n_q, int64_t q_pos0, int64_t n_kv, AttentionShape s, bool causal) {
  const int64_t qw = s.heads * s.head_dim, kw = s.kv_heads * s.head_dim;
  const auto q = normal_values(static_cast<size_t>(n_q * qw), 11);
  const auto k = normal_values(static_cast<size_t>(n_kv * kw), 12);
  const auto v = normal_values(static_cast<size_t>(n_kv * kw), 13);
  const auto ref = reference(q, n_q, q_pos0, k, v, n_kv, s, causal);
  std::vector<float> first;
  for (int threads : {1, 2, 3}) {
    std::vector<float> out(static_cast<size_t>(n_q * qw), NAN);
    attention(q.data(), n_q, qw, q_pos0, k.data(), v.data(), n_kv, kw, s, causal, out.data(), qw, threads);
    for (size_t i = 0; i < out.size(); ++i) ASSERT_NEAR(out[i], ref[i], 2e-5) << "element " << i;
    if (first.empty()) {
      first = out;
    } else {
      ASSERT_EQ(0, std::memcmp(first.data(), out.data(), out.size() * sizeof(float))) << "threads=" << threads;
    }
  }
}

TEST(Attention, CausalGroupedQueryPrefillMatchesDefinition) { check(130, 0, 130, {6, 2, 16}, true); }

TEST(Attention, CausalDecodeStepAfterCachedKeys) { check(1, 99, 100, {4, 1, 8}, true); }

TEST(Attention, CausalChunkAfterCachedKeys) { check(70, 30, 100, {3, 3, 8}, true); }

TEST(Attention, BidirectionalMatchesDefinition) { check(37, 0, 37, {12, 12, 32}, false); }

}  // namespace
}  // namespace lowbit
