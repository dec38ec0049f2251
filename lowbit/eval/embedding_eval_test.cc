// Embedding fidelity and retrieval statistics on small hand-made arrays
// whose cosines, ranks, recalls and MRR are worked out by hand below, plus
// a brute-force ranking on random vectors for the thread invariance.
#include "lowbit/eval/embedding_eval.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <vector>

namespace lowbit {
namespace {

TEST(EmbeddingEvalTest, CosineByHand) {
  const float a[2] = {3, 4}, b[2] = {4, 3};
  EXPECT_EQ(cosine(a, b, 2), 0.96);  // 24 / sqrt(25 * 25), one rounding
  const float x[2] = {1, 0}, y[2] = {0, 1}, minus_x[2] = {-1, 0};
  EXPECT_EQ(cosine(x, y, 2), 0.0);
  EXPECT_EQ(cosine(x, minus_x, 2), -1.0);
  // Length does not matter: (1,2,2) and (2,4,4): 18 / sqrt(9 * 36).
  const float p[3] = {1, 2, 2}, q[3] = {2, 4, 4};
  EXPECT_EQ(cosine(p, q, 3), 1.0);
  const float zero[2] = {0, 0};
  EXPECT_EQ(cosine(zero, a, 2), 0.0);
  EXPECT_EQ(cosine(zero, zero, 2), 0.0);
}

TEST(EmbeddingEvalTest, CosineOfAVectorWithItselfIsExactlyOne) {
  // What makes `eval embed M M` report a mean cosine of exactly 1.
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 0.05f);
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> v(384 + trial % 11);
    for (float& e : v) e = nd(rng);
    ASSERT_EQ(cosine(v.data(), v.data(), static_cast<int64_t>(v.size())), 1.0) << trial;
  }
}

TEST(EmbeddingEvalTest, RowCosinesMeanAndWorst) {
  // Rows: (3,4)·(4,3) = 0.96, (1,0)·(0,1) = 0, (1,1)·(2,2) = 1, (0,1)·(1,0) = 0.
  const float a[8] = {3, 4, 1, 0, 1, 1, 0, 1};
  const float b[8] = {4, 3, 0, 1, 2, 2, 1, 0};
  const CosineStats st = row_cosines(a, b, 4, 2);
  EXPECT_EQ(st.count, 4);
  EXPECT_EQ(st.sum, (0.96 + 0.0) + 1.0 + 0.0);
  EXPECT_EQ(st.mean(), st.sum / 4);
  EXPECT_EQ(st.min, 0.0);
  EXPECT_EQ(st.argmin, 1);  // rows 1 and 3 tie; the first is named
  const CosineStats none = row_cosines(a, b, 0, 2);
  EXPECT_EQ(none.count, 0);
  EXPECT_EQ(none.mean(), 0.0);
  EXPECT_EQ(none.argmin, -1);
}

TEST(EmbeddingEvalTest, RetrievalRanksByHand) {
  // Candidates c0 = (1,0), c1 = (0,1), c2 = (1,1), c3 = (-1,0).
  const float c[8] = {1, 0, 0, 1, 1, 1, -1, 0};
  // q0 = (0,1): own c0 scores 0; c1 (1) and c2 (0.707) above; c3 ties at
  //   0 but has the higher index: rank 3.
  // q1 = (0,2): own c1 scores 1 (length ignored): rank 1.
  // q2 = (1,0): own c2 scores 0.707; c0 (1) above: rank 2.
  // q3 = (0,-1): own c3 scores 0; c0 ties at 0 with the lower index, so it
  //   ranks above; c1 (-1) and c2 (-0.707) below: rank 2.
  const float q[8] = {0, 1, 0, 2, 1, 0, 0, -1};
  for (int threads : {1, 2}) {
    const std::vector<int64_t> r = retrieval_ranks(q, c, 4, 2, threads);
    EXPECT_EQ(r, (std::vector<int64_t>{3, 1, 2, 2})) << threads;
    const RetrievalStats st = retrieval_stats(r);
    EXPECT_EQ(st.queries, 4);
    EXPECT_EQ(st.recall_at_1, 0.25);
    EXPECT_EQ(st.recall_at_10, 1.0);
    EXPECT_EQ(recall_at(r, 2), 0.75);
    EXPECT_EQ(st.mrr, (((1.0 / 3 + 1.0) + 0.5) + 0.5) / 4);  // 7/12, summed in query order
    EXPECT_NEAR(st.mrr, 7.0 / 12, 1e-15);
  }
}

TEST(EmbeddingEvalTest, AllTiedCandidatesRankByIndex) {
  // Every candidate is the same vector: query i's match ties with all, and
  // the i candidates before it rank above it.
  const int64_t n = 37, dim = 5;  // 37: not a multiple of the query block
  std::vector<float> c(n * dim, 0.25f), q(n * dim);
  for (int64_t i = 0; i < n * dim; ++i) q[i] = static_cast<float>(i % 7) - 3.0f;
  const std::vector<int64_t> r = retrieval_ranks(q.data(), c.data(), n, dim, 2);
  for (int64_t i = 0; i < n; ++i) EXPECT_EQ(r[i], i + 1);
  const RetrievalStats st = retrieval_stats(r);
  EXPECT_EQ(st.recall_at_1, 1.0 / 37);
  EXPECT_EQ(st.recall_at_10, 10.0 / 37);
}

TEST(EmbeddingEvalTest, EmptyAndSingle) {
  EXPECT_TRUE(retrieval_ranks(nullptr, nullptr, 0, 3, 2).empty());
  EXPECT_EQ(retrieval_stats({}).mrr, 0.0);
  EXPECT_EQ(recall_at({}, 1), 0.0);
  const float v[3] = {1, 2, 3};
  EXPECT_EQ(retrieval_ranks(v, v, 1, 3, 1), (std::vector<int64_t>{1}));
}

TEST(EmbeddingEvalTest, RandomRanksMatchASortAtEveryThreadCount) {
  // Noisy copies of the candidates as queries, so that ranks spread from 1
  // to far down the list; the reference sorts each query's scores.
  const int64_t n = 100, dim = 24;
  std::mt19937 rng(11);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> c(n * dim), q(n * dim);
  for (float& e : c) e = nd(rng);
  for (int64_t i = 0; i < n * dim; ++i) q[i] = c[i] + 1.5f * nd(rng);
  std::vector<int64_t> want(n);
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> order(n);
    std::iota(order.begin(), order.end(), 0);
    std::vector<double> s(n);
    for (int64_t j = 0; j < n; ++j) s[j] = cosine(&q[i * dim], &c[j * dim], dim);
    std::stable_sort(order.begin(), order.end(), [&](int64_t x, int64_t y) { return s[x] > s[y]; });
    want[i] = std::find(order.begin(), order.end(), i) - order.begin() + 1;
  }
  ASSERT_GT(*std::max_element(want.begin(), want.end()), 10);  // the test covers deep ranks
  for (int threads : {1, 2, 3, 8}) EXPECT_EQ(retrieval_ranks(q.data(), c.data(), n, dim, threads), want) << threads;
}

}  // namespace
}  // namespace lowbit
