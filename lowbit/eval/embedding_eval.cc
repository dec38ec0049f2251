#include "lowbit/eval/embedding_eval.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"

namespace lowbit {

namespace {

// The dot product in double with a fixed order: eight interleaved partial
// sums (element i goes to sum i % 8), then a fixed pairwise combination.
// Eight independent sums let the compiler keep them in vector registers
// without reassociating anything, so the result is the same on every
// machine and in every call.
double dot(const float* a, const float* b, int64_t dim) {
  double s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 8 <= dim; i += 8) {
    for (int k = 0; k < 8; ++k) s[k] += static_cast<double>(a[i + k]) * static_cast<double>(b[i + k]);
  }
  for (int k = 0; i < dim; ++i, ++k) s[k] += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return ((s[0] + s[1]) + (s[2] + s[3])) + ((s[4] + s[5]) + (s[6] + s[7]));
}

double cosine_of(double ab, double aa, double bb) {
  if (aa == 0 || bb == 0) return 0.0;
  return ab / std::sqrt(aa * bb);
}

void check_shape(int64_t rows, int64_t dim) {
  if (rows < 0 || dim < 1) {
    throw Error(ErrorKind::kInternal, fmt::format("embedding statistics over {} rows of dim {}", rows, dim));
  }
}

// Queries per task in retrieval_ranks: a block of queries shares one pass
// over the candidates, which for all 31,094 verse pairs (48 MB of float32)
// would otherwise stream from memory once per query.
constexpr int64_t kQueryBlock = 16;

}  // namespace

double cosine(const float* a, const float* b, int64_t dim) {
  return cosine_of(dot(a, b, dim), dot(a, a, dim), dot(b, b, dim));
}

CosineStats row_cosines(const float* a, const float* b, int64_t rows, int64_t dim) {
  check_shape(rows, dim);
  CosineStats st;
  for (int64_t i = 0; i < rows; ++i) {
    const double c = cosine(a + i * dim, b + i * dim, dim);
    st.sum += c;
    if (st.count == 0 || c < st.min) {
      st.min = c;
      st.argmin = i;
    }
    ++st.count;
  }
  return st;
}

std::vector<int64_t> retrieval_ranks(const float* queries, const float* candidates, int64_t n, int64_t dim,
                                     int threads) {
  check_shape(n, dim);
  std::vector<double> qq(static_cast<size_t>(n)), cc(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    qq[i] = dot(queries + i * dim, queries + i * dim, dim);
    cc[i] = dot(candidates + i * dim, candidates + i * dim, dim);
  }
  std::vector<int64_t> ranks(static_cast<size_t>(n));
  const int64_t blocks = (n + kQueryBlock - 1) / kQueryBlock;
  ThreadPool::global().parallel_for(static_cast<size_t>(blocks), threads, [&](size_t blk) {
    const int64_t q0 = static_cast<int64_t>(blk) * kQueryBlock, q1 = std::min(n, q0 + kQueryBlock);
    double own[kQueryBlock];
    int64_t above[kQueryBlock];
    for (int64_t q = q0; q < q1; ++q) {
      own[q - q0] = cosine_of(dot(queries + q * dim, candidates + q * dim, dim), qq[q], cc[q]);
      above[q - q0] = 0;
    }
    for (int64_t j = 0; j < n; ++j) {
      const float* c = candidates + j * dim;
      for (int64_t q = q0; q < q1; ++q) {
        // The true match itself is neither above nor tied with itself.
        if (j == q) continue;
        const double s = cosine_of(dot(queries + q * dim, c, dim), qq[q], cc[j]);
        above[q - q0] += s > own[q - q0] || (s == own[q - q0] && j < q);
      }
    }
    for (int64_t q = q0; q < q1; ++q) ranks[q] = 1 + above[q - q0];
  });
  return ranks;
}

double recall_at(std::span<const int64_t> ranks, int64_t k) {
  if (ranks.empty()) return 0.0;
  int64_t hits = 0;
  for (const int64_t r : ranks) hits += r <= k;
  return static_cast<double>(hits) / static_cast<double>(ranks.size());
}

double mean_reciprocal_rank(std::span<const int64_t> ranks) {
  if (ranks.empty()) return 0.0;
  double sum = 0;
  for (const int64_t r : ranks) sum += 1.0 / static_cast<double>(r);
  return sum / static_cast<double>(ranks.size());
}

RetrievalStats retrieval_stats(std::span<const int64_t> ranks) {
  RetrievalStats st;
  st.queries = static_cast<int64_t>(ranks.size());
  st.recall_at_1 = recall_at(ranks, 1);
  st.recall_at_10 = recall_at(ranks, 10);
  st.mrr = mean_reciprocal_rank(ranks);
  return st;
}

}  // namespace lowbit
