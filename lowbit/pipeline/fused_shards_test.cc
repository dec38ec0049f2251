#include "lowbit/pipeline/fused_shards.h"

#include <gtest/gtest.h>

namespace lowbit {
namespace {

TEST(FusedShards, LlamaAttentionAndMlpShards) {
  for (const char* s : {"q", "k", "v"}) {
    EXPECT_EQ(fused_layer_of(std::string("model.layers.3.self_attn.") + s + "_proj.weight"),
              "model.layers.3.self_attn.qkv_proj");
  }
  EXPECT_EQ(fused_layer_of("model.layers.3.mlp.gate_proj.weight"), "model.layers.3.mlp.gate_up_proj");
  EXPECT_EQ(fused_layer_of("model.layers.3.mlp.up_proj.weight"), "model.layers.3.mlp.gate_up_proj");
}

TEST(FusedShards, BertAttention) {
  EXPECT_EQ(fused_layer_of("encoder.layer.0.attention.self.value.weight"), "encoder.layer.0.attention.self.qkv");
}

TEST(FusedShards, GgufNames) {
  EXPECT_EQ(fused_layer_of("blk.7.attn_k.weight"), "blk.7.attn_qkv");
  EXPECT_EQ(fused_layer_of("blk.7.ffn_up.weight"), "blk.7.ffn_gate_up");
  EXPECT_EQ(fused_layer_of("blk.7.ffn_down.weight"), "");
  EXPECT_EQ(fused_layer_of("blk.7.attn_output.weight"), "");
}

TEST(FusedShards, OtherTensorsAreNotShards) {
  for (const char* s : {"model.layers.3.self_attn.o_proj.weight", "model.layers.3.mlp.down_proj.weight",
                        "model.layers.3.self_attn.q_proj.bias", "q_proj.weight", ".q_proj.weight_scale",
                        "encoder.layer.0.attention.output.dense.weight", ""}) {
    EXPECT_EQ(fused_layer_of(s), "") << s;
  }
}

}  // namespace
}  // namespace lowbit
