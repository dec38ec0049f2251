// calibrate(): llama-imatrix's chunking (whole chunks of ctx, each from an
// empty cache, BOS in front when the model adds it, every position
// counted), the same sums as running the chunks by hand, and its errors.
#include "lowbit/calib/calibrate.h"

#include <gtest/gtest.h>

#include "lowbit/core/error.h"
#include "lowbit/calib/static_scale.h"
#include "lowbit/model/test_bert.h"
#include "lowbit/model/test_llama.h"

namespace lowbit {
namespace {

std::vector<int32_t> some_tokens(int n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) t[static_cast<size_t>(i)] = (i * 7 + 3) % 30;
  return t;
}

TEST(Calibrate, ChunksAsLlamaImatrixAndEqualsRunningThemByHand) {
  const LlamaModel m = test_llama::tiny_model();
  const std::vector<int32_t> tokens = some_tokens(30);  // 3 whole chunks of 8, 6 tokens dropped
  CalibrateOptions opt;
  opt.ctx = 8;
  opt.bos = 1;
  int64_t progress = 0;
  opt.on_chunk = [&](int64_t done, int64_t chunks, double) {
    EXPECT_EQ(chunks, 3);
    progress = done;
  };
  ActivationRecorder rec(ActivationRecorder::decoder_blocks());
  const CalibrateResult r = calibrate(m, tokens, opt, rec);
  EXPECT_EQ(r.chunks, 3);
  EXPECT_EQ(r.tokens, 24);
  EXPECT_EQ(progress, 3);
  EXPECT_EQ(rec.stats("output.weight"), nullptr);
  EXPECT_EQ(rec.all().size(), static_cast<size_t>(7 * m.config().layers));

  ActivationRecorder by_hand(ActivationRecorder::decoder_blocks());
  for (int c = 0; c < 3; ++c) {
    std::vector<int32_t> chunk(tokens.begin() + c * 8, tokens.begin() + c * 8 + 8);
    chunk[0] = 1;
    KvCache cache = m.new_cache(8);
    m.forward(chunk, cache, 8, nullptr, 1, &by_hand);
  }
  for (const auto& [name, s] : rec.all()) {
    EXPECT_EQ(s.rows, 24) << name;
    EXPECT_EQ(s.sum_sq, by_hand.stats(name)->sum_sq) << name;
  }

  const Imatrix im = to_imatrix(rec, {"text"}, 3, 8);
  EXPECT_EQ(im.entries.size(), rec.all().size());
  const ImatrixEntry& e = im.entries.at("blk.1.ffn_down.weight");
  EXPECT_EQ(e.cols, m.config().ffn_dim);
  EXPECT_EQ(e.counts, std::vector<float>{24.0f});
  EXPECT_EQ(e.in_sum2[0], static_cast<float>(rec.stats("blk.1.ffn_down.weight")->sum_sq[0]));
  EXPECT_EQ(e.in_absmax, rec.stats("blk.1.ffn_down.weight")->absmax);
  EXPECT_EQ(rec.stats("blk.1.ffn_down.weight")->absmax, by_hand.stats("blk.1.ffn_down.weight")->absmax);

  // At most max_chunks.
  opt.max_chunks = 2;
  opt.on_chunk = nullptr;
  ActivationRecorder two(ActivationRecorder::decoder_blocks());
  EXPECT_EQ(calibrate(m, tokens, opt, two).chunks, 2);
  EXPECT_EQ(two.stats("blk.0.attn_q.weight")->rows, 16);
}

TEST(Calibrate, GramMatricesAreThreadInvariantAndWrittenSymmetric) {
  const LlamaModel m = test_llama::tiny_model();
  const std::vector<int32_t> tokens = some_tokens(30);
  CalibrateOptions opt;
  opt.ctx = 8;
  ActivationRecorder one(ActivationRecorder::decoder_blocks(), {.gram = true, .threads = 1});
  ActivationRecorder two(ActivationRecorder::decoder_blocks(), {.gram = true, .threads = 2});
  calibrate(m, tokens, opt, one);
  opt.threads = 2;
  calibrate(m, tokens, opt, two);
  for (const auto& [name, s] : one.all()) {
    ASSERT_NE(s.gram, nullptr) << name;
    EXPECT_EQ(*s.gram, *two.stats(name)->gram) << name;
    // The diagonal is the sum of squares (the same products, another order).
    const size_t c = s.sum_sq.size();
    for (size_t j = 0; j < c; ++j) EXPECT_NEAR((*s.gram)[j * c + j], s.sum_sq[j], 1e-9 * s.sum_sq[j]) << name;
  }
  // Q, K and V share one matrix.
  EXPECT_EQ(one.stats("blk.0.attn_q.weight")->gram, one.stats("blk.0.attn_v.weight")->gram);
  const Imatrix im = to_imatrix(one, {"t"}, 3, 8);
  const ImatrixEntry& e = im.entries.at("blk.1.ffn_down.weight");
  const size_t c = static_cast<size_t>(e.cols);
  ASSERT_EQ(e.in_gram.size(), c * c);
  for (size_t i = 0; i < c; ++i) {
    for (size_t j = 0; j < c; ++j) EXPECT_EQ(e.in_gram[i * c + j], e.in_gram[j * c + i]);
  }
  EXPECT_EQ(e.in_gram[1 * c + 2], static_cast<float>((*one.stats("blk.1.ffn_down.weight")->gram)[1 * c + 2]));
}

TEST(Calibrate, RefusesTooLittleTextAndTooLongAContext) {
  const LlamaModel m = test_llama::tiny_model();
  ActivationRecorder rec;
  CalibrateOptions opt;
  opt.ctx = 8;
  EXPECT_THROW(calibrate(m, some_tokens(7), opt, rec), Error);
  opt.ctx = m.config().context_length + 1;
  EXPECT_THROW(calibrate(m, some_tokens(100), opt, rec), Error);
  EXPECT_TRUE(rec.all().empty());
}

std::vector<std::vector<int32_t>> some_sentences() {
  std::vector<std::vector<int32_t>> s;
  for (int i = 0; i < 7; ++i) {
    std::vector<int32_t> ids = {1};  // [CLS] ... [SEP]
    for (int t = 0; t < 3 + (i * 5) % 9; ++t) ids.push_back(3 + (i * 11 + t * 7) % 45);
    ids.push_back(2);
    s.push_back(std::move(ids));
  }
  return s;
}

TEST(Calibrate, EncoderSentencesInBatchesThreadInvariantAndStaticScalesFollow) {
  test_bert::RandomWeights w;
  const BertModel m = test_bert::tiny_model(w);
  const std::vector<std::vector<int32_t>> sentences = some_sentences();
  int64_t tokens = 0;
  for (const auto& s : sentences) tokens += static_cast<int64_t>(s.size());
  CalibrateOptions opt;
  opt.batch = 3;  // batches of 3, 3, 1
  int64_t last = 0;
  opt.on_chunk = [&](int64_t done, int64_t all, double) {
    EXPECT_EQ(all, 3);
    last = done;
  };
  ActivationRecorder one;
  const CalibrateResult r = calibrate(m, sentences, opt, one);
  EXPECT_EQ(r.chunks, 3);
  EXPECT_EQ(last, 3);
  EXPECT_EQ(r.tokens, tokens);
  EXPECT_EQ(one.all().size(), static_cast<size_t>(6 * m.config().num_layers));
  const ColumnStats* q0 = one.stats("encoder.layer.0.attention.self.query.weight");
  ASSERT_NE(q0, nullptr);
  EXPECT_EQ(q0->rows, tokens);
  EXPECT_EQ(q0->sum_sq, one.stats("encoder.layer.0.attention.self.value.weight")->sum_sq);  // shared input
  EXPECT_EQ(one.stats("encoder.layer.1.output.dense.weight")->sum_sq.size(),
            static_cast<size_t>(m.config().intermediate_size));

  // The same bits at 2 threads; the same maxima and histograms with
  // batches of one (order-free statistics; sums agree to rounding).
  opt.threads = 2;
  opt.on_chunk = nullptr;
  ActivationRecorder two;
  calibrate(m, sentences, opt, two);
  opt.batch = 1;
  ActivationRecorder singles;
  EXPECT_EQ(calibrate(m, sentences, opt, singles).chunks, 7);
  for (const auto& [name, s] : one.all()) {
    EXPECT_EQ(s.sum_sq, two.stats(name)->sum_sq) << name;
    EXPECT_EQ(s.absmax, singles.stats(name)->absmax) << name;
    EXPECT_EQ(s.hist.counts(), singles.stats(name)->hist.counts()) << name;
    for (size_t j = 0; j < s.sum_sq.size(); ++j) {
      EXPECT_NEAR(s.sum_sq[j], singles.stats(name)->sum_sq[j], 1e-12 * s.sum_sq[j]) << name;
    }
  }
  // At most max_chunks batches.
  opt.max_chunks = 2;
  ActivationRecorder first_two;
  EXPECT_EQ(calibrate(m, sentences, opt, first_two).tokens,
            static_cast<int64_t>(sentences[0].size() + sentences[1].size()));

  // The file's maxima give the encoder's static scales: int8 per tensor
  // moves the embeddings, float32 does not.
  const auto im = std::make_shared<const Imatrix>(to_imatrix(one, {"t"}, 3, 3));
  const auto plan = [&](const char* scheme) {
    return std::make_shared<const QuantPlan>(QuantPlan::resolve(PlanRules::shorthand(scheme, "none"), m.linears(),
                                                                m.config().num_layers, 0, static_amax_from(im, "t")));
  };
  std::vector<float> ref, q8;
  m.forward(sentences, ref, 2);
  m.with_plan(plan("int8/tensor@static")).forward(sentences, q8, 2);
  EXPECT_NE(ref, q8);
  double err = 0, norm = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    err += (ref[i] - q8[i]) * (ref[i] - q8[i]);
    norm += ref[i] * ref[i];
  }
  EXPECT_LT(err, 1e-3 * norm);  // 8 bits with the seen maximum: close

  ActivationRecorder none;
  opt.max_chunks = -1;
  EXPECT_THROW(calibrate(m, std::vector<std::vector<int32_t>>{}, opt, none), Error);
}

}  // namespace
}  // namespace lowbit
