#include "lowbit/train/precision_recipe.h"

#include <gtest/gtest.h>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

const std::vector<std::string> kNames = {"blk.0.attn_q", "blk.0.ffn_down", "blk.1.attn_q", "output"};

TEST(PrecisionRecipe, TransformerEngineFp8WithTheHeadKept) {
  const PrecisionRecipe r = PrecisionRecipe::parse(R"({
    "name": "fp8",
    "linear": {"forward": {"x": "float8_e4m3fn/tensor", "w": "float8_e4m3fn/tensor+delayed:4"},
               "dgrad": {"dy": "float8_e5m2/tensor"},
               "wgrad": {"dy": "float8_e5m2/tensor", "x": "float8_e4m3fn/tensor"}},
    "keep": [{"match": "^output$", "linear": "bfloat16"}],
    "master_weights": "bfloat16+kahan",
    "loss_scale": "dynamic:10"})",
                                                   "r", kNames);
  EXPECT_FALSE(r.identity());
  const LayerPrecision& q = r.for_linear("blk.1.attn_q");
  EXPECT_EQ(q.forward.b.history, 4);
  EXPECT_TRUE(q.dgrad.b.identity());  // not given: float32
  EXPECT_EQ(q.wgrad.a.spec, "float8_e5m2/tensor");
  const LayerPrecision& head = r.for_linear("output");
  EXPECT_EQ(head.forward.a.kind, OperandQuant::Kind::kCast);
  EXPECT_EQ(head.wgrad.b.kind, OperandQuant::Kind::kCast);
  EXPECT_EQ(r.master, MasterWeights::kBFloat16Kahan);
  EXPECT_EQ(r.loss_scale, PrecisionRecipe::LossScale::kDynamic);
  EXPECT_EQ(r.initial_loss_scale, 1024.0);
}

TEST(PrecisionRecipe, AllAndDefaults) {
  const PrecisionRecipe r = PrecisionRecipe::parse(R"({"linear": {"all": "mxfp8_e4m3", "wgrad": {"dy": "mxfp8_e5m2"}}})",
                                                   "r", kNames);
  const LayerPrecision& q = r.for_linear("blk.0.ffn_down");
  EXPECT_EQ(q.forward.a.spec, "mxfp8_e4m3");
  EXPECT_EQ(q.dgrad.b.spec, "mxfp8_e4m3");
  EXPECT_EQ(q.wgrad.a.spec, "mxfp8_e5m2");
  EXPECT_TRUE(q.wgrad.b.identity());  // a GEMM's object replaces "all" for that GEMM
  EXPECT_TRUE(PrecisionRecipe::parse("{}", "r", kNames).identity());
  EXPECT_TRUE(PrecisionRecipe::parse(R"({"linear": "float32"})", "r", kNames).identity());
}

TEST(PrecisionRecipe, RefusesMistakesByName) {
  const auto what = [](const std::string& text) {
    return std::string(testing_support::catch_error([&] { PrecisionRecipe::parse(text, "r.json", kNames); }).what());
  };
  EXPECT_NE(what(R"({"linaer": {}})").find("unknown key \"linaer\""), std::string::npos);
  EXPECT_NE(what(R"({"linear": {"forward": {"y": "bfloat16"}}})").find("unknown operand \"y\""), std::string::npos);
  EXPECT_NE(what(R"({"linear": {"forward": {"x": "fp9"}}})").find("fp9"), std::string::npos);
  EXPECT_NE(what(R"({"keep": [{"match": "^lm_head$", "linear": "bfloat16"}]})").find("matches no Linear"),
            std::string::npos);
  EXPECT_NE(what(R"({"keep": [{"match": "(", "linear": "bfloat16"}]})").find("not a valid regular expression"),
            std::string::npos);
  EXPECT_NE(what(R"({"master_weights": "fp16"})").find("master_weights"), std::string::npos);
  EXPECT_NE(what(R"({"loss_scale": "dynamic:200"})").find("dynamic:K"), std::string::npos);
  EXPECT_NE(what(R"({"loss_scale": -1})").find("loss_scale"), std::string::npos);
  EXPECT_NE(what("[]").find("JSON object"), std::string::npos);
}

}  // namespace
}  // namespace lowbit
