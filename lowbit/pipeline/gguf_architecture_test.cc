// llama.cpp's BERT layout for a GGUF written from safetensors: the tensor
// names llama.cpp's loader looks up, the converter's metadata and
// phantom-space vocabulary, and the GGUF sink applying them to a tiny
// in-memory BERT (1-D tensors F32, position_ids left out).
#include "lowbit/pipeline/gguf_architecture.h"

#include <gtest/gtest.h>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/methods/method_registry.h"
#include "lowbit/pipeline/sinks/gguf_model_sink.h"
#include "lowbit/pipeline/test_models.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

TEST(BertGgufTensorName, MapsEveryEncoderTensorAsLlamaCppNamesIt) {
  const std::pair<const char*, const char*> cases[] = {
      {"embeddings.word_embeddings.weight", "token_embd.weight"},
      {"embeddings.position_embeddings.weight", "position_embd.weight"},
      {"embeddings.token_type_embeddings.weight", "token_types.weight"},
      {"embeddings.LayerNorm.weight", "token_embd_norm.weight"},
      {"embeddings.LayerNorm.bias", "token_embd_norm.bias"},
      {"encoder.layer.0.attention.self.query.weight", "blk.0.attn_q.weight"},
      {"encoder.layer.0.attention.self.key.bias", "blk.0.attn_k.bias"},
      {"encoder.layer.3.attention.self.value.weight", "blk.3.attn_v.weight"},
      {"encoder.layer.11.attention.output.dense.weight", "blk.11.attn_output.weight"},
      {"encoder.layer.0.attention.output.LayerNorm.bias", "blk.0.attn_output_norm.bias"},
      {"encoder.layer.0.intermediate.dense.weight", "blk.0.ffn_up.weight"},
      {"encoder.layer.0.output.dense.bias", "blk.0.ffn_down.bias"},
      {"encoder.layer.5.output.LayerNorm.weight", "blk.5.layer_output_norm.weight"},
      // The converter's renames: a "bert." prefix, TensorFlow's gamma/beta.
      {"bert.encoder.layer.0.output.LayerNorm.gamma", "blk.0.layer_output_norm.weight"},
      {"bert.embeddings.LayerNorm.beta", "token_embd_norm.bias"},
      // Left out, as the converter leaves them out.
      {"embeddings.position_ids", ""},
      {"pooler.dense.weight", ""},
      {"cls.predictions.bias", ""},
  };
  for (const auto& [hf, gguf] : cases) EXPECT_EQ(bert_gguf_tensor_name(hf), gguf) << hf;
  for (const char* bad : {"encoder.layer.x.output.dense.weight", "encoder.layer.0.crossattention.weight", "foo"}) {
    const Error e = catch_error([&] { bert_gguf_tensor_name(bad); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput) << bad;
    EXPECT_NE(std::string(e.what()).find(bad), std::string::npos) << e.what();
  }
}

// A 2-layer BERT of width 32 (whole Q8_0 blocks) and its WordPiece files.
struct TinyBert {
  BertConfig config;
  SentencePipeline pipeline;
  WordPieceConfig tok;
  SpecialTokenNames names;
  std::vector<test_models::Tensor> tensors;
};

TinyBert tiny_bert() {
  TinyBert b;
  b.config.vocab_size = 8;
  b.config.hidden_size = 32;
  b.config.num_layers = 2;
  b.config.num_heads = 4;
  b.config.intermediate_size = 64;
  b.config.max_position_embeddings = 16;
  b.config.type_vocab_size = 2;
  b.config.layer_norm_eps = 1e-12;
  b.pipeline.normalize = true;
  b.tok.vocab = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "##s", "word"};
  b.tok.normalizer = BertNormalizerOptions{};
  for (int32_t i = 0; i < 5; ++i) b.tok.added_tokens.push_back({b.tok.vocab[i], i, true, false, false, false});
  b.tok.template_prefix = {2};
  b.tok.template_suffix = {3};
  b.names = {"", "", "[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]", 0, -1, -1};
  uint32_t seed = 1;
  auto add = [&](std::string name, std::vector<uint64_t> shape) {
    uint64_t n = 1;
    for (uint64_t s : shape) n *= s;
    b.tensors.push_back({std::move(name), shape, test_models::normal(n, seed++, 0.05f)});
  };
  add("embeddings.LayerNorm.bias", {32});
  add("embeddings.LayerNorm.weight", {32});
  add("embeddings.position_embeddings.weight", {16, 32});
  add("embeddings.position_ids", {1, 16});
  add("embeddings.token_type_embeddings.weight", {2, 32});
  add("embeddings.word_embeddings.weight", {8, 32});
  for (int l = 0; l < 2; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    for (const char* m : {"attention.self.query", "attention.self.key", "attention.self.value", "attention.output.dense"}) {
      add(p + m + ".weight", {32, 32});
      add(p + m + ".bias", {32});
    }
    add(p + "attention.output.LayerNorm.weight", {32});
    add(p + "attention.output.LayerNorm.bias", {32});
    add(p + "intermediate.dense.weight", {64, 32});
    add(p + "intermediate.dense.bias", {64});
    add(p + "output.dense.weight", {32, 64});
    add(p + "output.dense.bias", {32});
    add(p + "output.LayerNorm.weight", {32});
    add(p + "output.LayerNorm.bias", {32});
  }
  return b;
}

TEST(BertGgufArchitecture, MetadataIsTheConvertersWithThePhantomSpaceVocabulary) {
  const TinyBert b = tiny_bert();
  const GgufArchitecture a = bert_gguf_architecture(b.config, b.pipeline, b.tok, b.names);
  EXPECT_EQ(a.name, "bert");
  ASSERT_FALSE(a.metadata.empty());
  EXPECT_EQ(a.metadata.front().key, "general.architecture");
  const auto get = [&](const std::string& key) -> const GgufValue& {
    for (const GgufKv& kv : a.metadata) {
      if (kv.key == key) return kv.value;
    }
    ADD_FAILURE() << "no " << key;
    static const GgufValue none = GgufValue::of(uint32_t{0});
    return none;
  };
  EXPECT_EQ(get("bert.block_count").as<uint32_t>(), 2u);
  EXPECT_EQ(get("bert.context_length").as<uint32_t>(), 16u);
  EXPECT_EQ(get("bert.embedding_length").as<uint32_t>(), 32u);
  EXPECT_EQ(get("bert.feed_forward_length").as<uint32_t>(), 64u);
  EXPECT_EQ(get("bert.attention.head_count").as<uint32_t>(), 4u);
  EXPECT_EQ(get("bert.attention.layer_norm_epsilon").as<float>(), 1e-12f);
  EXPECT_FALSE(get("bert.attention.causal").as<bool>());
  EXPECT_EQ(get("bert.pooling_type").as<uint32_t>(), 1u);  // MEAN
  EXPECT_EQ(get("tokenizer.ggml.model").as_string(), "bert");
  EXPECT_EQ(get("tokenizer.ggml.token_type_count").as<uint32_t>(), 2u);
  // Control tokens as they are, "##" continuations bare, word starts "▁".
  const std::vector<std::string> want = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "\xE2\x96\x81the", "s",
                                         "\xE2\x96\x81word"};
  EXPECT_EQ(get("tokenizer.ggml.tokens").strings(), want);
  EXPECT_EQ(get("tokenizer.ggml.token_type").to_vector<int32_t>(), (std::vector<int32_t>{3, 3, 3, 3, 3, 1, 1, 1}));
  EXPECT_EQ(get("tokenizer.ggml.bos_token_id").as<uint32_t>(), 2u);  // cls
  EXPECT_EQ(get("tokenizer.ggml.eos_token_id").as<uint32_t>(), 3u);  // sep
  EXPECT_EQ(get("tokenizer.ggml.cls_token_id").as<uint32_t>(), 2u);
  EXPECT_EQ(get("tokenizer.ggml.seperator_token_id").as<uint32_t>(), 3u);
  EXPECT_EQ(get("tokenizer.ggml.unknown_token_id").as<uint32_t>(), 1u);
  EXPECT_EQ(get("tokenizer.ggml.padding_token_id").as<uint32_t>(), 0u);
  EXPECT_EQ(get("tokenizer.ggml.mask_token_id").as<uint32_t>(), 4u);
  EXPECT_TRUE(get("tokenizer.ggml.add_bos_token").as<bool>());
  EXPECT_TRUE(get("tokenizer.ggml.add_eos_token").as<bool>());
  EXPECT_TRUE(get("tokenizer.ggml.normalizer.lowercase").as<bool>());

  SentencePipeline maxpool = b.pipeline;
  maxpool.pooling.mean = false;
  maxpool.pooling.max = true;
  const Error e = catch_error([&] { bert_gguf_architecture(b.config, maxpool, b.tok, b.names); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("max"), std::string::npos) << e.what();
}

class BertGgufSinkTest : public testing_support::TempDirTest {};

TEST_F(BertGgufSinkTest, TheSinkWritesLlamaCppNamesKeepsNormsF32AndLeavesPositionIdsOut) {
  const TinyBert b = tiny_bert();
  const Checkpoint in = test_models::checkpoint(b.tensors);
  SinkOptions so;
  so.model_name = "tiny-bert";
  so.gguf_architecture = bert_gguf_architecture(b.config, b.pipeline, b.tok, b.names);
  auto sink = make_gguf_model_sink(in, path("bert.gguf"), so);
  ModelQuantizeOptions o;
  o.recipe = Recipe::parse(R"({"default_scheme": "q8_0"})", "recipe.json");
  o.threads = 1;
  const ModelReport r = quantize_model(in, *sink, o);
  const GgufFile g = GgufFile::open(path("bert.gguf"));
  EXPECT_EQ(g.get_string("general.architecture"), "bert");
  EXPECT_EQ(g.get_string("general.name"), "tiny-bert");
  EXPECT_EQ(g.get_u32("general.file_type"), 7u);  // MOSTLY_Q8_0
  EXPECT_EQ(g.tensors().size(), b.tensors.size() - 1);  // position_ids left out
  EXPECT_EQ(g.find_tensor("embeddings.position_ids"), nullptr);
  for (const test_models::Tensor& t : b.tensors) {
    const std::string name = bert_gguf_tensor_name(t.name);
    if (name.empty()) continue;
    const GgufTensorInfo* gt = g.find_tensor(name);
    ASSERT_NE(gt, nullptr) << name;
    const bool linear = t.shape.size() == 2 && t.name.starts_with("encoder.");
    EXPECT_EQ(ggml_type_info(gt->type).name, std::string(linear ? "Q8_0" : "F32")) << name;
  }
  ASSERT_EQ(r.tensors.size(), b.tensors.size());
  EXPECT_EQ(r.tensors[3].scheme, "left out");
}

}  // namespace
}  // namespace lowbit
