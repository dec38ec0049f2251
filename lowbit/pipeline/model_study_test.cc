#include "lowbit/pipeline/model_study.h"

#include <gtest/gtest.h>

#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/model/test_llama.h"

namespace lowbit {
namespace {

LlamaModel study_llama() {
  LlamaConfig c = test_llama::tiny_config();
  c.dim = 64;
  c.ffn_dim = 96;
  c.head_dim = 32;
  c.rope_dim = 32;
  c.context_length = 64;
  return test_llama::random_model(c, 8, 0.2f);
}

std::vector<int32_t> study_tokens() {
  std::vector<int32_t> t(160);
  for (size_t i = 0; i < t.size(); ++i) t[i] = static_cast<int32_t>((i * 11 + 5) % 30);
  return t;
}

TEST(ModelStudyTest, EveryCombinationAgainstTheModelAsLoaded) {
  const LlamaModel m = study_llama();
  ModelStudySpec spec;
  spec.weights = {"none", "int4/g32"};
  spec.acts = {"none", "float32/tensor", "int8/channel"};
  spec.kv = {"none", "kivi2"};
  spec.ctx = 64;
  spec.threads = 2;
  const std::vector<int32_t> tokens = study_tokens();
  const ModelStudyResult r = study_model(m, tokens, spec);
  ASSERT_EQ(r.rows.size(), 12u);
  EXPECT_EQ(r.chunks, 2);
  const ModelStudyRow& ref = r.rows[0];
  EXPECT_EQ(ref.weights + ref.acts + ref.kv, "nonenonenone");
  EXPECT_NEAR(ref.quality.kld_mean, 0.0, 1e-6);
  EXPECT_EQ(ref.kv_bytes_per_token, 2.0 * 2 * 32 * 4);  // 2 layers, keys and values, 32 channels, float32
  // float32 activations are the unquantized model, bit for bit.
  EXPECT_EQ(r.rows[2].acts, "float32/tensor");
  EXPECT_EQ(r.rows[2].quality.kld_mean, ref.quality.kld_mean);
  EXPECT_EQ(r.rows[2].quality.ppl, ref.quality.ppl);
  EXPECT_EQ(r.rows[3].quality.kld_mean, r.rows[1].quality.kld_mean);  // the same with kivi2
  EXPECT_LT(r.rows[1].kv_bytes_per_token, ref.kv_bytes_per_token);
  EXPECT_EQ(r.rows[6].weights, "int4/g32");
  EXPECT_GT(r.rows[6].quality.kld_mean, 1e-4);
  EXPECT_DOUBLE_EQ(r.rows[6].bits_per_weight, 4.5);  // int4 + a 16-bit scale per 32
  EXPECT_EQ(ref.bits_per_weight, 32);
  // The same numbers at one thread.
  spec.threads = 1;
  const ModelStudyResult one = study_model(m, tokens, spec);
  for (size_t i = 0; i < r.rows.size(); ++i) {
    EXPECT_EQ(one.rows[i].quality.kld_mean, r.rows[i].quality.kld_mean) << i;
    EXPECT_EQ(one.rows[i].quality.ppl, r.rows[i].quality.ppl) << i;
  }
}

TEST(ModelStudyTest, AttentionOperandsQuantizedInEveryCombination) {
  const LlamaModel m = study_llama();
  const std::vector<int32_t> tokens = study_tokens();
  ModelStudySpec spec;
  spec.weights = {"none"};
  spec.acts = {"none"};
  spec.kv = {"none"};
  spec.ctx = 64;
  spec.threads = 2;
  const ModelStudyResult ref = study_model(m, tokens, spec);
  // float32 at Q, K, P and V is the unquantized attention, bit for bit.
  spec.attn = "float32/channel";
  const ModelStudyResult same = study_model(m, tokens, spec);
  EXPECT_EQ(same.rows[0].quality.kld_mean, ref.rows[0].quality.kld_mean);
  EXPECT_EQ(same.rows[0].quality.ppl, ref.rows[0].quality.ppl);
  // A 4-bit grid at every operand moves the logits.
  spec.attn = "int4/channel";
  const ModelStudyResult q = study_model(m, tokens, spec);
  EXPECT_GT(q.rows[0].quality.kld_mean, 1e-5);
  EXPECT_NE(q.rows[0].quality.ppl, ref.rows[0].quality.ppl);
  // A scheme the attention points cannot take is refused before any forward.
  spec.attn = "nvfp4/b16x16";
  EXPECT_THROW(study_model(m, tokens, spec), Error);
}

TEST(ModelStudyTest, BadSettingsFailBeforeAnyForward) {
  const LlamaModel m = study_llama();
  const std::vector<int32_t> tokens = study_tokens();
  int chunks = 0;
  const auto refused = [&](std::vector<std::string> w, std::vector<std::string> a, std::vector<std::string> kv) {
    ModelStudySpec spec;
    spec.weights = std::move(w);
    spec.acts = std::move(a);
    spec.kv = std::move(kv);
    spec.ctx = 64;
    spec.on_chunk = [&](int64_t, int64_t, double) { ++chunks; };
    EXPECT_THROW(study_model(m, tokens, spec), Error);
  };
  refused({"none", "int4/g32/outliers=0.01"}, {"none"}, {"none"});
  refused({"none"}, {"none", "int8/tensor@static"}, {"none"});
  refused({"none"}, {"none"}, {"none", "k=int8/tensor,v=int8/channel"});
  refused({"none"}, {}, {"none"});
  EXPECT_EQ(chunks, 0);
}

TEST(ModelStudyTest, ParetoFront) {
  // (bits, kld): (4, 1) (4, 0.5) (8, 0.6) (8, 0.1) (16, 0.1) (2, 3)
  const std::vector<double> x = {4, 4, 8, 8, 16, 2}, y = {1, 0.5, 0.6, 0.1, 0.1, 3};
  EXPECT_EQ(pareto_front(x, y), (std::vector<size_t>{5, 1, 3}));
  EXPECT_TRUE(pareto_front({}, {}).empty());
}

}  // namespace
}  // namespace lowbit
