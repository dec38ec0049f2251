#include "lowbit/model/llama_config.h"

#include <gtest/gtest.h>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/gguf_writer.h"

namespace lowbit {
namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

constexpr const char* kSmolJson = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama",
  "vocab_size": 49152, "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
  "num_attention_heads": 9, "num_key_value_heads": 3, "max_position_embeddings": 8192,
  "rope_theta": 100000, "rms_norm_eps": 1e-05, "tie_word_embeddings": true, "rope_scaling": null})";

TEST(LlamaConfigTest, HuggingFaceConfig) {
  const LlamaConfig c = llama_config_from_hf_json(kSmolJson, "config.json");
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.dim, 576);
  EXPECT_EQ(c.ffn_dim, 1536);
  EXPECT_EQ(c.layers, 30);
  EXPECT_EQ(c.heads, 9);
  EXPECT_EQ(c.kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.rope_dim, 64);
  EXPECT_EQ(c.kv_dim(), 192);
  EXPECT_EQ(c.context_length, 8192);
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_EQ(c.rms_eps, 1e-5f);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.rope_style, RopeStyle::kHalves);
  EXPECT_EQ(c.naming, LlamaNaming::kHuggingFace);
}

TEST(LlamaConfigTest, HuggingFaceRefusals) {
  const std::string bert = error_of([] {
    llama_config_from_hf_json(R"({"architectures": ["BertModel"], "model_type": "bert", "hidden_size": 384})",
                              "minilm/config.json");
  });
  EXPECT_NE(bert.find("'bert'"), std::string::npos) << bert;
  EXPECT_NE(bert.find("lowbit runs llama"), std::string::npos) << bert;
  EXPECT_NE(error_of([] { llama_config_from_hf_json("{", "c.json"); }).find("not valid JSON"), std::string::npos);
  std::string scaled = kSmolJson;
  scaled.replace(scaled.find("\"rope_scaling\": null"), 20, R"("rope_scaling": {"type": "linear", "factor": 2})");
  EXPECT_NE(error_of([&] { llama_config_from_hf_json(scaled, "c.json"); }).find("rope_scaling"), std::string::npos);
  std::string gqa = kSmolJson;
  gqa.replace(gqa.find("\"num_key_value_heads\": 3"), 24, "\"num_key_value_heads\": 4");
  EXPECT_NE(error_of([&] { llama_config_from_hf_json(gqa, "c.json"); }).find("not a multiple"), std::string::npos);
}

TEST(LlamaConfigTest, Names) {
  EXPECT_EQ(llama_layer_tensor_name(LlamaNaming::kGguf, 3, "attn_q"), "blk.3.attn_q.weight");
  EXPECT_EQ(llama_layer_tensor_name(LlamaNaming::kHuggingFace, 3, "attn_q"), "model.layers.3.self_attn.q_proj.weight");
  for (const char* role : {"attn_norm", "attn_q", "attn_k", "attn_v", "attn_output", "ffn_norm", "ffn_gate", "ffn_up",
                           "ffn_down"}) {
    EXPECT_EQ(llama_gguf_layer_name(llama_layer_tensor_name(LlamaNaming::kHuggingFace, 12, role)),
              llama_layer_tensor_name(LlamaNaming::kGguf, 12, role));
  }
  for (const char* other : {"model.norm.weight", "lm_head.weight", "model.layers.x.mlp.up_proj.weight",
                            "model.layers.3.mlp.up_proj.bias", "model.layers..mlp.up_proj.weight", "blk.3.ffn_up.weight"}) {
    EXPECT_EQ(llama_gguf_layer_name(other), "") << other;
  }
  EXPECT_EQ(llama_layer_tensor_name(LlamaNaming::kHuggingFace, 0, "ffn_norm"),
            "model.layers.0.post_attention_layernorm.weight");
  EXPECT_EQ(llama_output_name(LlamaNaming::kGguf), "output.weight");
  EXPECT_EQ(llama_embedding_name(LlamaNaming::kHuggingFace), "model.embed_tokens.weight");
}

class LlamaGgufConfigTest : public testing_support::TempDirTest {
 protected:
  GgufFile write(const std::string& arch, bool with_eps = true) {
    GgufWriter w(path("m.gguf"));
    w.add_metadata("general.architecture", GgufValue::of(arch));
    w.add_metadata("llama.block_count", GgufValue::of(uint32_t{30}));
    w.add_metadata("llama.context_length", GgufValue::of(uint32_t{8192}));
    w.add_metadata("llama.embedding_length", GgufValue::of(uint32_t{576}));
    w.add_metadata("llama.feed_forward_length", GgufValue::of(uint32_t{1536}));
    w.add_metadata("llama.attention.head_count", GgufValue::of(uint32_t{9}));
    w.add_metadata("llama.attention.head_count_kv", GgufValue::of(uint32_t{3}));
    w.add_metadata("llama.rope.freq_base", GgufValue::of(100000.0f));
    if (with_eps) w.add_metadata("llama.attention.layer_norm_rms_epsilon", GgufValue::of(1e-5f));
    w.add_metadata("llama.rope.dimension_count", GgufValue::of(uint32_t{64}));
    w.add_metadata("llama.vocab_size", GgufValue::of(uint32_t{49152}));
    w.begin();
    w.commit();
    return GgufFile::open(path("m.gguf"));
  }
};

TEST_F(LlamaGgufConfigTest, ReadsLlamaKeys) {
  const LlamaConfig c = llama_config_from_gguf(write("llama"));
  EXPECT_EQ(c.layers, 30);
  EXPECT_EQ(c.heads, 9);
  EXPECT_EQ(c.kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_EQ(c.rope_theta, 100000.0);
  EXPECT_EQ(c.rope_style, RopeStyle::kAdjacentPairs);
  EXPECT_EQ(c.naming, LlamaNaming::kGguf);
}

TEST_F(LlamaGgufConfigTest, RefusesOtherArchitecturesAndMissingKeys) {
  const std::string e = error_of([&] { llama_config_from_gguf(write("qwen2")); });
  EXPECT_NE(e.find("'qwen2'"), std::string::npos) << e;
  EXPECT_NE(e.find("llama"), std::string::npos) << e;
  EXPECT_NE(e.find("bert"), std::string::npos) << e;
  const std::string k = error_of([&] { llama_config_from_gguf(write("llama", false)); });
  EXPECT_NE(k.find("layer_norm_rms_epsilon"), std::string::npos) << k;
}

}  // namespace
}  // namespace lowbit
