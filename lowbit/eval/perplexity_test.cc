// Perplexity by llama.cpp's convention on a tiny random Llama: the chunks,
// the BOS replacement, the scored half and the statistics, recomputed here
// from the model's own forward pass.
#include "lowbit/eval/perplexity.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "lowbit/core/error.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/model/test_llama.h"

namespace lowbit {
namespace {

using test_llama::tiny_model;

std::vector<int32_t> text_tokens(int64_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = static_cast<int32_t>((i * i + 5 * i) % 29 + 1);
  return t;
}

TEST(PerplexityTest, NegativeLogLikelihoodAndStats) {
  const float logits[3] = {1.0f, 2.0f, 3.0f};
  const double lse = std::log(std::exp(1.0) + std::exp(2.0) + std::exp(3.0));
  EXPECT_NEAR(negative_log_likelihood(logits, 3, 0), lse - 1.0, 1e-12);
  EXPECT_NEAR(negative_log_likelihood(logits, 3, 2), lse - 3.0, 1e-12);
  NllStats s, a, b;
  for (double v : {1.0, 2.0, 4.0}) s.add(v);
  a.add(1.0);
  b.add(2.0);
  b.add(4.0);
  a.merge(b);
  EXPECT_EQ(a.sum, s.sum);
  EXPECT_EQ(a.count, 3);
  EXPECT_NEAR(s.perplexity(), std::exp(7.0 / 3), 1e-12);
  // llama.cpp: sqrt((mean(x^2) - mean^2) / (n - 1)) * ppl.
  const double var = 21.0 / 3 - (7.0 / 3) * (7.0 / 3);
  EXPECT_NEAR(s.perplexity_error(), std::sqrt(var / 2) * s.perplexity(), 1e-12);
}

TEST(PerplexityTest, ScoresTheSecondHalfOfEachChunk) {
  const LlamaModel m = tiny_model();
  const std::vector<int32_t> tokens = text_tokens(70);  // 4 chunks of 16, 6 tokens dropped
  PerplexityOptions opt;
  opt.ctx = 16;
  opt.bos = 0;
  int64_t calls = 0;
  opt.on_chunk = [&](const PerplexityProgress& p) {
    ++calls;
    EXPECT_EQ(p.chunks, 4);
    EXPECT_EQ(p.so_far.count, p.chunk * 7);
  };
  const PerplexityResult r = perplexity(m, tokens, opt);
  EXPECT_EQ(calls, 4);
  EXPECT_EQ(r.chunks, 4);
  EXPECT_EQ(r.nll.count, 4 * 7);  // positions 8..14 predict 9..15
  EXPECT_EQ(r.evaluated_tokens, 64);
  // The same by hand.
  NllStats want;
  KvCache cache = m.new_cache(16);
  std::vector<float> logits(16 * 30);
  for (int c = 0; c < 4; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * 16, tokens.begin() + c * 16 + 16);
    chunk[0] = 0;  // BOS
    cache.clear();
    m.forward(chunk, cache, 0, logits.data(), 1);
    for (int p = 8; p < 15; ++p) want.add(negative_log_likelihood(logits.data() + p * 30, 30, chunk[static_cast<size_t>(p) + 1]));
  }
  EXPECT_NEAR(r.nll.sum, want.sum, 1e-9 * want.sum);
  EXPECT_NEAR(r.ppl, want.perplexity(), 1e-9 * r.ppl);
  // Without BOS the first token stays: a different number.
  opt.bos = -1;
  EXPECT_NE(perplexity(m, tokens, opt).nll.sum, r.nll.sum);
}

TEST(PerplexityTest, BitIdenticalAcrossThreadsAndChunkLimit) {
  const LlamaModel m = tiny_model();
  const std::vector<int32_t> tokens = text_tokens(100);
  PerplexityOptions opt;
  opt.ctx = 20;
  opt.threads = 1;
  std::vector<float> l1, l3;
  opt.on_logits = [&](int64_t, const float* l, int64_t rows, int64_t vocab) { l1.insert(l1.end(), l, l + rows * vocab); };
  const PerplexityResult a = perplexity(m, tokens, opt);
  opt.threads = 3;
  opt.on_logits = [&](int64_t, const float* l, int64_t rows, int64_t vocab) { l3.insert(l3.end(), l, l + rows * vocab); };
  const PerplexityResult b = perplexity(m, tokens, opt);
  EXPECT_EQ(a.nll.sum, b.nll.sum);
  EXPECT_EQ(a.nll.sum_sq, b.nll.sum_sq);
  EXPECT_EQ(l1, l3);
  EXPECT_EQ(l1.size(), 5u * 9 * 30);
  opt.max_chunks = 2;
  EXPECT_EQ(perplexity(m, tokens, opt).chunks, 2);
}

TEST(PerplexityTest, Errors) {
  const LlamaModel m = tiny_model();
  PerplexityOptions opt;
  opt.ctx = 16;
  try {
    perplexity(m, text_tokens(31), opt);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("you need at least 32 tokens"), std::string::npos) << e.what();
  }
  opt.ctx = 33;
  EXPECT_THROW(perplexity(m, text_tokens(100), opt), Error);
  opt.ctx = 3;
  EXPECT_THROW(perplexity(m, text_tokens(100), opt), Error);
}

}  // namespace
}  // namespace lowbit
