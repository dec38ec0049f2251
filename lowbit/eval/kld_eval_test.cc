// KL divergence over a text on tiny random Llamas: a model against itself,
// against another model (recomputed here in double from the two models'
// own logits), through a base file written and read back, and at 1 and 2
// threads.
#include "lowbit/eval/kld_eval.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "lowbit/core/test_support.h"
#include "lowbit/model/test_llama.h"

namespace lowbit {
namespace {

std::vector<int32_t> text_tokens(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = static_cast<int32_t>((i * i + 3 * i) % 29 + 1);
  return t;
}

void expect_same(const KldStats& a, const KldStats& b) {
  EXPECT_EQ(a.count, b.count);
  EXPECT_EQ(a.sum_kld, b.sum_kld);
  EXPECT_EQ(a.sum_nll, b.sum_nll);
  EXPECT_EQ(a.sum_nll_base, b.sum_nll_base);
  EXPECT_EQ(a.same_top, b.same_top);
  EXPECT_EQ(a.kld_values, b.kld_values);
}

class KldEvalTest : public testing_support::TempDirTest {};

TEST_F(KldEvalTest, AgainstItselfAndAnotherModel) {
  const LlamaModel base = test_llama::tiny_model(11), other = test_llama::tiny_model(12);
  const auto tokens = text_tokens(16 * 3 + 5);
  KldEvalOptions o;
  o.ctx = 16;
  o.threads = 2;
  const LlamaModel* models[] = {&base, &other};
  const KldEvalResult r = kl_divergence(base, models, tokens, o, nullptr);
  ASSERT_EQ(r.chunks, 3);
  ASSERT_EQ(r.models[0].count, 3 * 7);  // 16 - 1 - 8 rows per chunk
  const KldSummary self = summarize(r.models[0]);
  // Only the base row's 16-bit resolution (steps of up to 16/65535 nats,
  // so the quantized base is not exactly normalized): llama.cpp shows the same.
  EXPECT_LT(self.kld_max, 1e-4);
  EXPECT_EQ(self.same_top, 1.0);
  // The other model: each token's KL(base || other) from the two models'
  // logits in double.
  double kl_sum = 0;
  const int64_t V = base.config().vocab_size;
  for (int64_t c = 0; c < 3; ++c) {
    std::vector<float> lb(static_cast<size_t>(8 * V)), lo(static_cast<size_t>(8 * V));
    const std::span<const int32_t> chunk(tokens.data() + c * 16, 16);
    KvCache cb = base.new_cache(16), co = other.new_cache(16);
    base.forward(chunk, cb, 8, lb.data(), 1);
    other.forward(chunk, co, 8, lo.data(), 1);
    for (int64_t row = 0; row < 7; ++row) {
      auto lsm = [&](const std::vector<float>& l, int64_t i) {
        double mx = -1e300, s = 0;
        for (int64_t j = 0; j < V; ++j) mx = std::max(mx, double(l[row * V + j]));
        for (int64_t j = 0; j < V; ++j) s += std::exp(l[row * V + j] - mx);
        return l[row * V + i] - mx - std::log(s);
      };
      for (int64_t i = 0; i < V; ++i) {
        const double p = lsm(lb, i);
        if (p > -16) kl_sum += std::exp(p) * (p - lsm(lo, i));
      }
    }
  }
  EXPECT_NEAR(r.models[1].sum_kld, kl_sum, 1e-3 * kl_sum);
  EXPECT_GT(r.models[1].sum_kld, 0.1);
}

TEST_F(KldEvalTest, ABaseFileGivesTheSameNumbersAtAnyThreadCount) {
  const LlamaModel base = test_llama::tiny_model(11), other = test_llama::tiny_model(12);
  const auto tokens = text_tokens(16 * 4);
  KldEvalOptions o;
  o.ctx = 16;
  o.threads = 1;
  const LlamaModel* models[] = {&other};
  KldEvalResult direct;
  {
    KldBaseWriter w(path("base.kld"), 16, base.config().vocab_size, tokens);
    direct = kl_divergence(base, models, tokens, o, &w);
    w.commit();
  }
  for (int threads : {1, 2}) {
    o.threads = threads;
    KldBaseReader reader(path("base.kld"));
    const KldEvalResult from_file = kl_divergence(reader, models, o);
    expect_same(direct.models[0], from_file.models[0]);
    const KldEvalResult again = kl_divergence(base, models, tokens, o, nullptr);
    expect_same(direct.models[0], again.models[0]);
  }
}

TEST_F(KldEvalTest, RefusesShortTextsAndLongContexts) {
  const LlamaModel base = test_llama::tiny_model(11);
  const LlamaModel* models[] = {&base};
  KldEvalOptions o;
  o.ctx = 16;
  EXPECT_EQ(testing_support::catch_error([&] { kl_divergence(base, models, text_tokens(31), o, nullptr); }).kind(),
            ErrorKind::kInput);
  o.ctx = 64;  // beyond the model's 32
  EXPECT_EQ(testing_support::catch_error([&] { kl_divergence(base, models, text_tokens(200), o, nullptr); }).kind(),
            ErrorKind::kInput);
}

}  // namespace
}  // namespace lowbit
