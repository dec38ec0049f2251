// Embedding fidelity and paraphrase retrieval: the statistics `lowbit eval
// embed` reports, as pure functions over row-major float32 embeddings
// ([rows, dim]).
//
//   CosineStats f = row_cosines(model, base, rows, dim);     // fidelity
//   std::vector<int64_t> r = retrieval_ranks(web, kjv, n, dim, threads);
//   RetrievalStats s = retrieval_stats(r);                    // recall@k, MRR
//
// Everything is in double with a fixed summation order, so the numbers are
// bit-identical for every thread count and do not depend on whether the
// embeddings were normalized (cosine is computed, never assumed to be a
// dot product).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace lowbit {

// The cosine similarity of two float vectors of `dim` elements, in double:
// dot / sqrt(|a|^2 |b|^2). Each float product is exact in double; the sums
// run in a fixed order. Of a vector with itself this is exactly 1.0
// (sqrt of a correctly rounded square is the value again), so a model
// compared with itself has a mean cosine of exactly 1. A zero vector has
// cosine 0 with everything (there is no direction to agree with).
double cosine(const float* a, const float* b, int64_t dim);

// Statistics of the cosines of row i of `a` with row i of `b`.
struct CosineStats {
  int64_t count = 0;
  double sum = 0;      // summed in row order
  double min = 0;      // the worst row (0 when count is 0)
  int64_t argmin = -1;  // its index: the first row reaching min
  double mean() const noexcept { return count ? sum / static_cast<double>(count) : 0.0; }
};
CosineStats row_cosines(const float* a, const float* b, int64_t rows, int64_t dim);

// For each query i (row i of `queries`), the 1-based rank of candidate i
// (row i of `candidates`, its true match) among all n candidates, by
// cosine, highest first. A tie goes to the lower index: candidate j ranks
// above i when cos(q_i, c_j) > cos(q_i, c_i), or when the two are equal and
// j < i. So rank = 1 + #{j : s_j > s_i} + #{j < i : s_j == s_i}, an integer
// that no thread count or blocking can change. `threads` splits the
// queries.
std::vector<int64_t> retrieval_ranks(const float* queries, const float* candidates, int64_t n, int64_t dim,
                                     int threads);

// Recall@k and mean reciprocal rank of a list of ranks.
struct RetrievalStats {
  int64_t queries = 0;
  double recall_at_1 = 0;   // share of queries whose match ranks first
  double recall_at_10 = 0;  // ... within the first 10
  double mrr = 0;           // mean of 1/rank, summed in query order
};
double recall_at(std::span<const int64_t> ranks, int64_t k);
double mean_reciprocal_rank(std::span<const int64_t> ranks);
RetrievalStats retrieval_stats(std::span<const int64_t> ranks);

}  // namespace lowbit
