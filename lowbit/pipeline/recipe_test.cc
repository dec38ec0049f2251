#include "lowbit/pipeline/recipe.h"

#include <gtest/gtest.h>

#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

CheckpointTensor tensor(std::string name, std::vector<uint64_t> shape, bool floating = true) {
  CheckpointTensor t;
  t.name = std::move(name);
  t.shape = std::move(shape);
  t.floating = floating;
  t.dtype = floating ? "F32" : "I64";
  t.numel = 1;
  for (uint64_t d : t.shape) t.numel *= d;
  return t;
}

TEST(Recipe, DefaultPolicyQuantizesLinearWeightsOnly) {
  const Recipe r = Recipe::from_scheme("int4/g128/asym");
  const TensorDecision lin = decide(r, tensor("encoder.layer.0.attention.self.query.weight", {384, 384}), mse_method());
  EXPECT_TRUE(lin.quantize);
  EXPECT_EQ(lin.scheme, "int4/g128/asym");
  EXPECT_EQ(lin.method, &mse_method());
  EXPECT_FALSE(decide(r, tensor("encoder.layer.0.attention.self.query.bias", {384}), rtn_method()).quantize);
  EXPECT_FALSE(decide(r, tensor("embeddings.word_embeddings.weight", {30522, 384}), rtn_method()).quantize);
  EXPECT_FALSE(decide(r, tensor("model.embed_tokens.weight", {49152, 576}), rtn_method()).quantize);
  EXPECT_FALSE(decide(r, tensor("token_embd.weight", {49152, 576}), rtn_method()).quantize);
  EXPECT_FALSE(decide(r, tensor("lm_head.weight", {49152, 576}), rtn_method()).quantize);
  EXPECT_FALSE(decide(r, tensor("output.weight", {49152, 576}), rtn_method()).quantize);
  EXPECT_TRUE(decide(r, tensor("blk.0.ffn_down.weight", {576, 1536}), rtn_method()).quantize);
  EXPECT_TRUE(decide(r, tensor("blk.0.attn_output.weight", {576, 576}), rtn_method()).quantize);
  EXPECT_FALSE(decide(r, tensor("position_ids", {1, 512}, false), rtn_method()).quantize);
  EXPECT_FALSE(decide(Recipe{}, tensor("a.weight", {8, 8}), rtn_method()).quantize);
}

TEST(Recipe, FirstMatchingRuleWins) {
  const Recipe r = Recipe::parse(R"({
    "default_scheme": "int8/channel", "method": "mse",
    "rules": [
      {"match": "query", "keep": true},
      {"match": "attention", "scheme": "mxfp4", "method": "rtn"},
      {"match": "\\.weight$", "scheme": "nvfp4"}
    ]})", "t");
  EXPECT_FALSE(decide(r, tensor("l.attention.query.weight", {4, 4}), rtn_method()).quantize);
  const TensorDecision a = decide(r, tensor("l.attention.key.weight", {4, 4}), hqq_method());
  EXPECT_EQ(a.scheme, "mxfp4");
  EXPECT_EQ(a.method, &rtn_method());
  EXPECT_EQ(a.reason, "rule 2 (attention)");
  // The recipe's method comes before the command line's.
  const TensorDecision w = decide(r, tensor("ffn.weight", {4, 4}), hqq_method());
  EXPECT_EQ(w.scheme, "nvfp4");
  EXPECT_EQ(w.method, &mse_method());
  // A rule may quantize what the default policy keeps (here a 1-D tensor).
  EXPECT_TRUE(decide(r, tensor("norm.weight", {4}), rtn_method()).quantize);
  // No rule: default policy with default_scheme.
  const TensorDecision d = decide(r, tensor("ffn.w2", {4, 4}), rtn_method());
  EXPECT_EQ(d.scheme, "int8/channel");
  EXPECT_EQ(d.reason, "default target");
}

TEST(Recipe, BadRecipesNameTheProblem) {
  const auto msg = [](const char* text) { return std::string(catch_error([&] { Recipe::parse(text, "r.json"); }).what()); };
  EXPECT_NE(msg("[1]").find("must be a JSON object"), std::string::npos);
  EXPECT_NE(msg("{").find("not valid JSON"), std::string::npos);
  EXPECT_NE(msg(R"({"rulez": []})").find("unknown key \"rulez\""), std::string::npos);
  EXPECT_NE(msg(R"({"rules": [{"match": "a"}]})").find("rule 1 needs exactly one of"), std::string::npos);
  EXPECT_NE(msg(R"({"rules": [{"match": "a", "keep": true, "scheme": "w8"}]})").find("exactly one"), std::string::npos);
  EXPECT_NE(msg(R"({"rules": [{"match": "(", "keep": true}]})").find("not a valid regular expression"), std::string::npos);
  EXPECT_NE(msg(R"({"rules": [{"keep": true}]})").find("no \"match\""), std::string::npos);
  EXPECT_NE(msg(R"({"method": "awq"})").find("unknown method 'awq'"), std::string::npos);
  EXPECT_NE(msg(R"({"rules": [{"match": "a", "keep": true, "schema": 1}]})").find("unknown key \"schema\""), std::string::npos);
  EXPECT_EQ(catch_error([] { Recipe::parse("{", "r"); }).exit_code(), 2);
  // A runtime point's rule is checked as a plan's.
  EXPECT_NE(msg(R"({"inputs": [{"match": "blk"}]})").find("no \"scheme\""), std::string::npos);
  EXPECT_NE(msg(R"({"kv": 8})").find("\"kv\" must be a string"), std::string::npos);
}

TEST(Recipe, RuntimePointsAreCheckedAndFlaggedNotWeightRules) {
  const Recipe r = Recipe::parse(R"({"default_scheme": "q8_0",
                                     "inputs": [{"match": "^blk", "scheme": "e4m3fn/tensor", "static": true}],
                                     "kv": "int8"})",
                                 "r.json");
  EXPECT_TRUE(r.has_runtime_points);
  EXPECT_EQ(r.default_scheme, "q8_0");
  EXPECT_TRUE(r.rules.empty());
  EXPECT_FALSE(Recipe::parse(R"({"default_scheme": "q8_0"})", "r").has_runtime_points);
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

TEST(Recipe, TensorsWithoutElementsAreKeptWhateverTheRules) {
  const Recipe r = Recipe::parse(R"({"default_scheme": "int8/channel", "rules": [{"match": ".*", "scheme": "mxfp4"}]})",
                                 "r.json");
  const TensorDecision d = decide(r, tensor("empty.weight", {0, 64}), rtn_method());
  EXPECT_FALSE(d.quantize);
  EXPECT_EQ(d.reason, "no elements");
  EXPECT_TRUE(decide(r, tensor("full.weight", {2, 64}), rtn_method()).quantize);
}

}  // namespace
}  // namespace lowbit
