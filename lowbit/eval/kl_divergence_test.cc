#include "lowbit/eval/kl_divergence.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <random>
#include <vector>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::normal_values;

// Logits of spread 3 (a peaked distribution, as a language model's).
std::vector<float> logits_of(int64_t n, uint32_t seed) { return normal_values(static_cast<size_t>(n), seed, 3.0f); }

using testing_support::catch_error;


std::vector<double> log_softmax(const std::vector<float>& x) {
  double mx = x[0];
  for (float v : x) mx = std::max(mx, double(v));
  double s = 0;
  for (float v : x) s += std::exp(v - mx);
  std::vector<double> out(x.size());
  for (size_t i = 0; i < x.size(); ++i) out[i] = x[i] - mx - std::log(s);
  return out;
}

TEST(KlDivergence, EncodedRowsDecodeToTheLogSoftmax) {
  const int64_t V = 1001;  // odd: the row is padded
  const auto logits = logits_of(V, 1);
  std::vector<uint16_t> row(kld_row_size(V), 0xFFFF);
  const double nll = encode_log_probs(logits.data(), V, 17, row.data());
  const auto ref = log_softmax(logits);
  EXPECT_NEAR(nll, -ref[17], 1e-5);
  float scale, min_lp;
  std::memcpy(&scale, row.data(), 4);
  std::memcpy(&min_lp, row.data() + 2, 4);
  for (int64_t i = 0; i < V; ++i) {
    if (ref[i] < min_lp) {
      EXPECT_EQ(row[4 + i], 0);
    } else {
      EXPECT_NEAR(scale * row[4 + i] + min_lp, ref[i], scale * 0.5 + 1e-5) << i;
    }
  }
  EXPECT_EQ(row[4 + V], 0);  // padding
}

TEST(KlDivergence, MatchesTheDefinitionOverTheResolvedRange) {
  const int64_t V = 3000;
  const auto base = logits_of(V, 2);
  auto model = base;
  std::mt19937 g(3);
  std::normal_distribution<float> noise(0.0f, 0.3f);
  for (float& x : model) x += noise(g);
  // The target: the base's most likely token (a token 16 nats below it is
  // below the base row's range, where its NLL is not resolved).
  const int32_t target = int32_t(std::max_element(base.begin(), base.end()) - base.begin());
  std::vector<uint16_t> row(kld_row_size(V));
  encode_log_probs(base.data(), V, target, row.data());
  const TokenKld t = compare_log_probs(model.data(), V, row.data(), target);
  const auto lp = log_softmax(base), lq = log_softmax(model);
  double kl = 0;
  for (int64_t i = 0; i < V; ++i) {
    if (lp[i] > -16) kl += std::exp(lp[i]) * (lp[i] - lq[i]);
  }
  EXPECT_NEAR(t.kld, kl, 2e-3 * kl + 1e-5);
  EXPECT_NEAR(t.nll, -lq[target], 1e-4);
  EXPECT_NEAR(t.nll_base, -lp[target], 1e-3);
  EXPECT_NEAR(t.p_diff, std::exp(lq[target]) - std::exp(lp[target]), 1e-4);
  // The same logits: no divergence beyond the base row's 16-bit resolution.
  const TokenKld same = compare_log_probs(base.data(), V, row.data(), target);
  EXPECT_LT(std::fabs(same.kld), 1e-5);
  EXPECT_TRUE(same.same_top);
}

TEST(KlDivergence, SummaryIsLlamaCppsArithmetic) {
  KldStats s;
  for (int i = 0; i < 101; ++i) {
    TokenKld t;
    t.kld = i * 0.01;
    t.nll = 2.0f + 0.01f * (i % 7);
    t.nll_base = 2.0f;
    t.p_diff = (i % 2 ? 0.01f : -0.02f);
    t.same_top = i % 4 != 0;
    s.add(t);
  }
  const KldSummary r = summarize(s);
  EXPECT_EQ(r.tokens, 101);
  EXPECT_NEAR(r.kld_mean, 0.5, 1e-12);
  EXPECT_NEAR(r.kld_median, 0.5, 1e-6);
  EXPECT_NEAR(r.kld_p99, 0.99, 1e-6);
  EXPECT_NEAR(r.kld_max, 1.0, 1e-6);
  EXPECT_NEAR(r.same_top, 75.0 / 101, 1e-12);
  EXPECT_NEAR(r.ppl_base, std::exp(2.0), 1e-9);
  EXPECT_GT(r.ppl, r.ppl_base);
  EXPECT_NEAR(r.p_diff_max, 0.02, 1e-7);
}

class KldBaseFile : public testing_support::TempDirTest {};

TEST_F(KldBaseFile, WritesWhatItReadsAndRefusesDamagedFiles) {
  const int64_t ctx = 8, V = 5, chunks = 2;
  std::vector<int32_t> tokens(ctx * chunks);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = int32_t(i % V);
  const int64_t rows = ctx - 1 - ctx / 2;
  std::vector<uint16_t> chunk(rows * kld_row_size(V));
  for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = uint16_t(i * 7);
  {
    KldBaseWriter w(path("gone.bin"), ctx, V, tokens);
    w.write_chunk(chunk);
  }  // not committed: nothing is left
  EXPECT_TRUE(listing().empty());
  {
    KldBaseWriter w(path("base.bin"), ctx, V, tokens);
    w.write_chunk(chunk);
    w.write_chunk(chunk);
    w.commit();
  }
  {
    KldBaseReader r(path("base.bin"));
    EXPECT_EQ(r.n_ctx(), ctx);
    EXPECT_EQ(r.n_vocab(), V);
    EXPECT_EQ(r.n_chunk(), chunks);
    EXPECT_EQ(r.tokens(), tokens);
    std::vector<uint16_t> got;
    r.read_chunk(got);
    EXPECT_EQ(got, chunk);
    r.read_chunk(got);
    EXPECT_EQ(got, chunk);
  }
  // Truncated by one byte, and a wrong magic.
  std::ifstream in(path("base.bin"), std::ios::binary);
  std::string bytes{std::istreambuf_iterator<char>(in), {}};
  std::ofstream(path("short.bin"), std::ios::binary) << bytes.substr(0, bytes.size() - 1);
  const Error e = catch_error([&] { KldBaseReader r(path("short.bin")); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("needs"), std::string::npos) << e.what();
  std::string forged = bytes;
  forged[0] = 'X';
  std::ofstream(path("magic.bin"), std::ios::binary) << forged;
  EXPECT_EQ(catch_error([&] { KldBaseReader r(path("magic.bin")); }).kind(), ErrorKind::kInput);
  std::string bad_token = bytes;
  bad_token[20] = 9;  // token 0 becomes 9, outside a vocabulary of 5
  std::ofstream(path("token.bin"), std::ios::binary) << bad_token;
  EXPECT_EQ(catch_error([&] { KldBaseReader r(path("token.bin")); }).kind(), ErrorKind::kInput);
}

}  // namespace
}  // namespace lowbit
