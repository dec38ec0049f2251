// ActivationRecorder: sums of squares per column and token counts, checked
// against a float64 recomputation of a Linear's input from the model's own
// tensors; Linears sharing an input get the same sums; the filter; and the
// same bits at every thread count and however the tokens are batched.
#include "lowbit/calib/activation_recorder.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "lowbit/calib/calibrate.h"
#include "lowbit/core/error.h"
#include "lowbit/model/linear.h"
#include "lowbit/model/test_llama.h"

namespace lowbit {
namespace {

TEST(ActivationRecorder, SumsSquaresPerColumnForEachLinearOfTheInput) {
  const Linear a("blk.0.a", std::vector<float>(3 * 2, 0.0f), 2, 3), b("blk.0.b", std::vector<float>(4 * 2, 0.0f), 2,
                                                                     3 + 1);
  const Linear c("blk.0.c", std::vector<float>(3 * 2, 0.0f), 2, 3), head("output", std::vector<float>(3, 0.0f), 1, 3);
  ActivationRecorder rec(ActivationRecorder::decoder_blocks());
  const float x[] = {1, -2, 3, 0.5f, 0, -1};  // [2, 3]
  const Linear* ac[] = {&a, &c};
  rec.observe(ac, x, 2);
  rec.observe(ac, x + 3, 1);
  const Linear* h[] = {&head};
  rec.observe(h, x, 2);  // not a decoder block: left out
  ASSERT_NE(rec.stats("blk.0.a.weight"), nullptr);
  EXPECT_EQ(rec.stats("output.weight"), nullptr);
  EXPECT_EQ(rec.all().size(), 2u);
  for (const char* name : {"blk.0.a.weight", "blk.0.c.weight"}) {
    const ColumnStats& s = *rec.stats(name);
    EXPECT_EQ(s.rows, 3);
    EXPECT_EQ(s.sum_sq, (std::vector<double>{1 + 0.25 + 0.25, 4 + 0 + 0, 9 + 1 + 1})) << name;
    EXPECT_EQ(s.absmax, (std::vector<float>{1, 2, 3})) << name;
  }
  // Linears of one input must have one width.
  const Linear* ab[] = {&a, &b};
  EXPECT_THROW(rec.observe(ab, x, 1), Error);
  EXPECT_EQ(rec.stats("blk.0.a.weight")->gram, nullptr);  // not asked for
}

TEST(ActivationRecorder, ColumnHistogramsOncePerInputAndPercentilesInTheFile) {
  const Linear a("blk.0.a", std::vector<float>(2 * 2, 0.0f), 2, 2), c("blk.0.c", std::vector<float>(2 * 2, 0.0f), 2, 2);
  ActivationRecorder rec(ActivationRecorder::decoder_blocks(), {.column_percentiles = true});
  // Column 0: 1, 2, ..., 1000; column 1: 0.5 everywhere but one 100.
  std::vector<float> x(2000);
  for (int r = 0; r < 1000; ++r) {
    x[2 * r] = static_cast<float>(r + 1);
    x[2 * r + 1] = r == 500 ? 100.0f : 0.5f;
  }
  const Linear* ac[] = {&a, &c};
  rec.observe(ac, x.data(), 600);
  rec.observe(ac, x.data() + 1200, 400);
  const ColumnStats& s = *rec.stats("blk.0.a.weight");
  ASSERT_NE(s.col_hist, nullptr);
  EXPECT_EQ(s.col_hist, rec.stats("blk.0.c.weight")->col_hist);  // one set per input, added once per call
  const Imatrix m = to_imatrix(rec, {"t"}, 1, 1000);
  EXPECT_EQ(m.column_percentile_levels, rec.options().percentile_levels);
  const std::vector<float> p99 = *m.column_percentile("blk.0.a.weight", 99.0f);
  EXPECT_NEAR(p99[0], 990.0f, 0.125 * 990);
  EXPECT_EQ(p99[1], 0.5f + 0.99f / 0.999f * 0.0625f);  // inside 0.5's bin [0.5, 0.5625): 999 of 1000 values there
  // Above the bin of the last value, a percentile is capped at the exact
  // maximum.
  EXPECT_EQ((*m.column_percentile("blk.0.a.weight", 99.999f))[1], 100.0f);
  EXPECT_LE((*m.column_percentile("blk.0.a.weight", 99.999f))[0], 1000.0f);
  // Without the option, no histograms and no percentiles.
  ActivationRecorder plain(ActivationRecorder::decoder_blocks());
  plain.observe(ac, x.data(), 10);
  EXPECT_EQ(plain.stats("blk.0.a.weight")->col_hist, nullptr);
  EXPECT_TRUE(to_imatrix(plain, {"t"}, 1, 10).column_percentile_levels.empty());
}

TEST(ActivationRecorder, GramMatrixOncePerInputSharedByItsLinears) {
  const Linear a("blk.0.a", std::vector<float>(3 * 2, 0.0f), 2, 3), c("blk.0.c", std::vector<float>(3 * 2, 0.0f), 2, 3);
  ActivationRecorder rec(ActivationRecorder::decoder_blocks(), {.gram = true, .threads = 2});
  const float x[] = {1, -2, 3, 0.5f, 0, -1};  // [2, 3]
  const Linear* ac[] = {&a, &c};
  rec.observe(ac, x, 2);
  rec.observe(ac, x + 3, 1);
  const ColumnStats& s = *rec.stats("blk.0.a.weight");
  ASSERT_NE(s.gram, nullptr);
  EXPECT_EQ(s.gram, rec.stats("blk.0.c.weight")->gram);  // one matrix, added once per call
  // Rows (1, -2, 3), (0.5, 0, -1), (0.5, 0, -1): the upper triangle of X^T X.
  const std::vector<double>& g = *s.gram;
  EXPECT_EQ(g[0 * 3 + 0], 1.5);
  EXPECT_EQ(g[0 * 3 + 1], -2.0);
  EXPECT_EQ(g[0 * 3 + 2], 3.0 - 0.5 - 0.5);
  EXPECT_EQ(g[1 * 3 + 1], 4.0);
  EXPECT_EQ(g[1 * 3 + 2], -6.0);
  EXPECT_EQ(g[2 * 3 + 2], 11.0);
  for (size_t j = 0; j < 3; ++j) EXPECT_EQ(g[j * 3 + j], s.sum_sq[j]);
}

// The tiny model with every tensor it was built from kept by name.
struct KeptModel {
  std::map<std::string, std::vector<float>> tensors;
  LlamaModel model;
};
KeptModel kept_model() {
  KeptModel k{{}, {}};
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 0.5f);
  k.model = LlamaModel::from_tensors(
      test_llama::tiny_config(),
      [&](const std::string& name, const std::vector<int64_t>& shape) -> std::optional<std::vector<float>> {
        int64_t n = 1;
        for (int64_t d : shape) n *= d;
        std::vector<float> v(static_cast<size_t>(n));
        for (float& x : v) x = (name.find("norm") != std::string::npos ? 1.0f : 0.0f) + nd(rng);
        k.tensors[name] = v;
        return v;
      },
      "tiny");
  return k;
}

TEST(ActivationRecorder, FirstBlockInputIsTheNormalizedEmbedding) {
  // blk.0's Q, K and V see rms_norm(embedding[token]) * attn_norm: computed
  // here in double from the tensors the model was built from.
  const KeptModel k = kept_model();
  const LlamaConfig& c = k.model.config();
  const std::vector<int32_t> tokens = {3, 17, 3, 29, 0, 11};
  ActivationRecorder rec;
  KvCache cache = k.model.new_cache(16);
  std::vector<float> logits(tokens.size() * static_cast<size_t>(c.vocab_size));
  k.model.forward(tokens, cache, 0, logits.data(), 1, &rec);

  const std::vector<float>& emb = k.tensors.at("token_embd.weight");
  const std::vector<float>& w = k.tensors.at("blk.0.attn_norm.weight");
  std::vector<double> want(static_cast<size_t>(c.dim), 0.0), want_max(static_cast<size_t>(c.dim), 0.0);
  for (int32_t t : tokens) {
    double ms = 0;
    for (int64_t j = 0; j < c.dim; ++j) ms += std::pow(emb[static_cast<size_t>(t * c.dim + j)], 2);
    const double inv = 1.0 / std::sqrt(ms / static_cast<double>(c.dim) + c.rms_eps);
    for (int64_t j = 0; j < c.dim; ++j) {
      const double v = emb[static_cast<size_t>(t * c.dim + j)] * inv * w[static_cast<size_t>(j)];
      want[static_cast<size_t>(j)] += v * v;
      want_max[static_cast<size_t>(j)] = std::max(want_max[static_cast<size_t>(j)], std::fabs(v));
    }
  }
  for (const char* name : {"blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.attn_v.weight"}) {
    const ColumnStats* s = rec.stats(name);
    ASSERT_NE(s, nullptr) << name;
    EXPECT_EQ(s->rows, 6);
    for (int64_t j = 0; j < c.dim; ++j) {
      const auto k = static_cast<size_t>(j);
      EXPECT_NEAR(s->sum_sq[k], want[k], 1e-5 * want[k]) << name << " column " << j;
      EXPECT_NEAR(s->absmax[k], want_max[k], 1e-5 * want_max[k]) << name << " column " << j;
    }
  }
  // Every Linear is seen, each with its own width; the LM head for the
  // rows whose logits were asked (all six here).
  EXPECT_EQ(rec.all().size(), static_cast<size_t>(7 * c.layers + 1));

  EXPECT_EQ(rec.stats("blk.1.ffn_down.weight")->sum_sq.size(), static_cast<size_t>(c.ffn_dim));
  EXPECT_EQ(rec.stats("blk.1.ffn_gate.weight")->sum_sq, rec.stats("blk.1.ffn_up.weight")->sum_sq);
  EXPECT_EQ(rec.stats("output.weight")->rows, 6);
}

TEST(ActivationRecorder, SameBitsAtEveryThreadCount) {
  const LlamaModel m = test_llama::tiny_model();
  const std::vector<int32_t> tokens = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  std::map<std::string, ColumnStats> first;
  for (int threads : {1, 2, 3}) {
    ActivationRecorder rec;
    KvCache cache = m.new_cache(16);
    m.forward(tokens, cache, 12, nullptr, threads, &rec);
    if (threads == 1) {
      first = rec.all();
      continue;
    }
    ASSERT_EQ(rec.all().size(), first.size());
    for (const auto& [name, s] : rec.all()) {
      EXPECT_EQ(s.sum_sq, first.at(name).sum_sq) << name << ", " << threads << " threads";
      EXPECT_EQ(s.absmax, first.at(name).absmax) << name << ", " << threads << " threads";
      EXPECT_EQ(s.rows, first.at(name).rows);
    }
  }
}

}  // namespace
}  // namespace lowbit
