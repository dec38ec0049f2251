#include "lowbit/model/quant_plan.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/model/test_llama.h"

namespace lowbit {
namespace {

// A small random Llama whose key/value width (32) takes KIVI's groups.
LlamaModel plan_model(uint32_t seed = 4) {
  LlamaConfig c;
  c.vocab_size = 40;
  c.dim = 64;
  c.ffn_dim = 96;
  c.layers = 2;
  c.heads = 2;
  c.kv_heads = 1;
  c.head_dim = 32;
  c.rope_dim = 32;
  c.context_length = 96;
  c.naming = LlamaNaming::kGguf;
  c.tied_embeddings = true;
  return test_llama::random_model(c, seed, 0.3f);
}

QuantPlan resolve(const LlamaModel& m, const PlanRules& r, const QuantPlan::StaticAmax& amax = nullptr) {
  return QuantPlan::resolve(r, m.linears(), m.config().layers, m.config().kv_dim(), amax);
}

std::vector<float> logits_of(const LlamaModel& m, int threads, int64_t n = 70) {
  std::vector<int32_t> tokens(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) tokens[static_cast<size_t>(i)] = static_cast<int32_t>((i * 7 + 3) % 40);
  KvCache cache = m.new_cache(96);
  std::vector<float> logits(static_cast<size_t>(n * 40));
  m.forward(tokens, cache, 0, logits.data(), threads);
  return logits;
}

TEST(QuantPlanTest, RulesResolveFirstMatchAndNone) {
  const LlamaModel m = plan_model();
  PlanRules r = PlanRules::parse(R"({"inputs": [{"match": "ffn_down", "scheme": "none"},
                                                 {"match": "^blk\\.", "scheme": "int8/channel"}],
                                     "attention": [{"match": "\\.p$", "scheme": "e4m3fn/channel"}],
                                     "kv": "kivi4"})",
                                 "t");
  const QuantPlan p = resolve(m, r);
  const LlamaLayer& L = m.layers()[1];
  EXPECT_EQ(p.input(L.down), nullptr);
  ASSERT_NE(p.input(L.q), nullptr);
  EXPECT_EQ(p.input(L.q)->scheme.spec(), p.input(L.gate)->scheme.spec());
  // One setting, one index: a shared input is quantized once.
  EXPECT_EQ(p.input_index(L.q), p.input_index(L.v));
  EXPECT_EQ(p.input(m.lm_head()), nullptr);
  EXPECT_NE(p.attention(0, QuantPlan::AttentionPoint::kP), nullptr);
  EXPECT_EQ(p.attention(0, QuantPlan::AttentionPoint::kQ), nullptr);
  ASSERT_TRUE(p.kv().has_value());
  EXPECT_EQ(p.kv()->key.group, 32);
  EXPECT_FALSE(p.describe().empty());
  // 7 block Linears per layer at 8.5 bits (6 of them) or 32, the head 32.
  EXPECT_GT(p.input_bits(m.linears()), 8.5);
  EXPECT_LT(p.input_bits(m.linears()), 32);
}

TEST(QuantPlanTest, BadPlansFailBeforeAnyWork) {
  const LlamaModel m = plan_model();
  const auto usage = [&](const std::string& json, const char* words, const QuantPlan::StaticAmax& amax = nullptr) {
    try {
      resolve(m, PlanRules::parse(json, "bad"), amax);
      ADD_FAILURE() << json;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kUsage) << json;
      EXPECT_NE(std::string(e.what()).find(words), std::string::npos) << e.what();
    }
  };
  usage(R"({"inputs": [{"match": "no_such_layer", "scheme": "int8/channel"}]})", "matches no Linear");
  usage(R"({"default_scheme": "q8_0"})", "unknown key");  // a recipe's key, in a plan alone
  // Inside a recipe, its weight keys are the recipe's: flagged, not rules.
  const PlanRules in_recipe = PlanRules::parse(R"({"default_scheme": "q8_0", "rules": [], "kv": "int8"})", "r", true);
  EXPECT_TRUE(in_recipe.has_weight_keys);
  EXPECT_EQ(in_recipe.kv, "int8");
  EXPECT_FALSE(PlanRules::parse(R"({"kv": "int8"})", "p", true).has_weight_keys);
  usage(R"({"attention": [{"match": "attn\\.x$", "scheme": "int8/channel"}]})", "matches no attention point");
  usage(R"({"inputs": [{"match": "blk", "scheme": "int8/tensor", "static": true}]})", "no calibration file");
  usage(R"({"inputs": [{"match": "blk", "scheme": "int8/tensor", "static": true}]})", "no largest |x|",
        [](const std::string&, int64_t, const Scheme&, const std::string&) { return std::nullopt; });
  usage(R"({"inputs": [{"match": "blk", "scheme": "int8/channel", "static": true}]})", "one symmetric scale",
        [](const std::string&, int64_t, const Scheme&, const std::string&) { return 1.0f; });
  usage(R"({"kv": "k=int8/tensor,v=int8/channel"})", "KV cache spec");
  usage(R"({"kv": "k=int4/g48,v=int4/g48"})", "do not divide");
  usage(R"({"inputs": [{"match": "blk", "scheme": "int9000"}]})", "invalid scheme");
  usage(R"({"weights": []})", "unknown key");
  usage(R"({"inputs": [{"match": "blk"}]})", "no \"scheme\"");
  usage(R"({"inputs": [{"match": "(", "scheme": "int8/channel"}]})", "not a valid regular expression");
  usage("[1,", "not valid JSON");
}

TEST(QuantPlanTest, Float32EverywhereGivesExactlyTheUnquantizedLogits) {
  const LlamaModel m = plan_model();
  const PlanRules r = PlanRules::parse(R"({"inputs": [{"match": ".", "scheme": "float32/tensor"}],
                                           "attention": [{"match": ".", "scheme": "float32/channel"}]})",
                                       "f32");
  const LlamaModel q = m.with_plan(std::make_shared<const QuantPlan>(resolve(m, r)));
  const std::vector<float> a = logits_of(m, 2), b = logits_of(q, 2);
  EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float)));
  // "none" is no plan at all.
  const LlamaModel none = m.with_plan(std::make_shared<const QuantPlan>(resolve(m, PlanRules::shorthand("none", "none"))));
  const std::vector<float> c = logits_of(none, 1);
  EXPECT_EQ(0, std::memcmp(a.data(), c.data(), a.size() * sizeof(float)));
}

TEST(QuantPlanTest, QuantizedLogitsBitIdenticalAcrossThreadCountsAndDifferent) {
  const LlamaModel m = plan_model();
  const std::vector<float> ref = logits_of(m, 1);
  for (const char* json :
       {R"({"inputs": [{"match": ".", "scheme": "int8/channel"}]})",
        R"({"inputs": [{"match": ".", "scheme": "nvfp4"}], "kv": "kivi2"})",
        R"({"inputs": [{"match": "blk", "scheme": "mxfp8_e4m3"}], "attention": [{"match": ".", "scheme": "e4m3fn/channel"}], "kv": "bfp4"})",
        R"({"inputs": [{"match": "blk", "scheme": "int4/g32/scale=floor/sf=e8m0/round=stochastic"}], "kv": "int8"})",
        R"({"kv": "fp8"})"}) {
    const LlamaModel q = m.with_plan(std::make_shared<const QuantPlan>(resolve(m, PlanRules::parse(json, "t"))));
    const std::vector<float> a = logits_of(q, 1), b = logits_of(q, 2);
    EXPECT_EQ(0, std::memcmp(a.data(), b.data(), a.size() * sizeof(float))) << json;
    EXPECT_NE(0, std::memcmp(a.data(), ref.data(), a.size() * sizeof(float))) << json;
    // A random model amplifies any error, so no bound here: the study on
    // SmolLM2 (tests/python/test_study_model.py) measures quality.
    for (float v : a) ASSERT_TRUE(std::isfinite(v)) << json;
  }
}

TEST(QuantPlanTest, StaticScalesComeFromCalibration) {
  const LlamaModel m = plan_model();
  std::vector<std::string> asked;
  const QuantPlan p = resolve(m, PlanRules::shorthand("int8/tensor@static", "none"),
                              [&](const std::string& name, int64_t cols, const Scheme& s,
                                  const std::string& rule) -> std::optional<float> {
                                asked.push_back(name);
                                EXPECT_EQ(rule, "absmax");
                                EXPECT_EQ(s.element.bits, 8);
                                return cols == 64 ? 3.0f : 5.0f;
                              });
  EXPECT_EQ(asked.size(), 14u);  // every block Linear, not the head
  EXPECT_EQ(p.input(m.layers()[0].q)->static_amax, 3.0f);
  EXPECT_EQ(p.input(m.layers()[0].down)->static_amax, 5.0f);
}

TEST(QuantPlanTest, WeightsReplacedInACopyThatSharesTheRest) {
  const LlamaModel m = plan_model();
  const LlamaModel w = m.with_weights([](const Linear& l) -> std::optional<std::vector<float>> {
    if (l.name() != "blk.1.ffn_up") return std::nullopt;
    return std::vector<float>(l.weight().size(), 0.0f);
  });
  EXPECT_EQ(&w.layers()[0].q.weight(), &m.layers()[0].q.weight());
  EXPECT_EQ(w.layers()[1].up.weight()[0], 0.0f);
  EXPECT_NE(m.layers()[1].up.weight()[0], 0.0f);
  EXPECT_NE(logits_of(w, 1), logits_of(m, 1));
}

}  // namespace
}  // namespace lowbit
