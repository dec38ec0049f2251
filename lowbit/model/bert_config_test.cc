#include "lowbit/model/bert_config.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

const char* const kMiniLm = R"({"architectures": ["BertModel"], "hidden_act": "gelu", "hidden_size": 384,
  "intermediate_size": 1536, "layer_norm_eps": 1e-12, "max_position_embeddings": 512, "model_type": "bert",
  "num_attention_heads": 12, "num_hidden_layers": 6, "position_embedding_type": "absolute",
  "type_vocab_size": 2, "vocab_size": 30522})";

TEST(BertConfig, ReadsMiniLm) {
  const BertConfig c = parse_bert_config(kMiniLm, "config.json");
  EXPECT_EQ(c.hidden_size, 384);
  EXPECT_EQ(c.num_layers, 6);
  EXPECT_EQ(c.num_heads, 12);
  EXPECT_EQ(c.head_dim(), 32);
  EXPECT_EQ(c.intermediate_size, 1536);
  EXPECT_EQ(c.max_position_embeddings, 512);
  EXPECT_EQ(c.type_vocab_size, 2);
  EXPECT_EQ(c.vocab_size, 30522);
  EXPECT_EQ(c.layer_norm_eps, 1e-12);
}

std::string replaced(std::string text, const std::string& from, const std::string& to) {
  text.replace(text.find(from), from.size(), to);
  return text;
}

TEST(BertConfig, RefusesOtherModelsByName) {
  const std::string llama = replaced(replaced(kMiniLm, "\"bert\"", "\"llama\""), "BertModel", "LlamaForCausalLM");
  const Error e = catch_error([&] { parse_bert_config(llama, "config.json"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("'llama'"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("LlamaForCausalLM"), std::string::npos) << e.what();
}

TEST(BertConfig, RefusesWhatItDoesNotRun) {
  for (const auto& [from, to, word] : std::vector<std::tuple<std::string, std::string, std::string>>{
           {"\"gelu\"", "\"gelu_new\"", "gelu_new"},
           {"\"absolute\"", "\"relative_key\"", "relative_key"},
           {"\"num_attention_heads\": 12", "\"num_attention_heads\": 7", "multiple"},
           {"\"hidden_size\": 384", "\"hidden_size\": -384", "hidden_size"},
           {"\"vocab_size\": 30522", "\"vocab_size\": \"many\"", "vocab_size"},
           {"\"num_hidden_layers\": 6,", "", "num_hidden_layers"}}) {
    const Error e = catch_error([&] { parse_bert_config(replaced(kMiniLm, from, to), "config.json"); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find(word), std::string::npos) << e.what();
  }
  EXPECT_THROW(parse_bert_config("[1, 2]", "config.json"), Error);
  EXPECT_THROW(parse_bert_config("{", "config.json"), Error);
}

class SentencePipelineTest : public testing_support::TempDirTest {
 protected:
  void put(const std::string& name, const std::string& text) {
    std::filesystem::create_directories((dir_ / name).parent_path());
    std::ofstream(dir_ / name) << text;
  }
  BertConfig config_ = parse_bert_config(kMiniLm, "config.json");
};

TEST_F(SentencePipelineTest, WithoutModulesJsonMeanPoolsWithoutNormalizing) {
  const SentencePipeline p = load_sentence_pipeline(dir_.string(), config_);
  EXPECT_FALSE(p.from_modules_json);
  EXPECT_EQ(std::string(p.pooling.describe()), "mean");
  EXPECT_FALSE(p.normalize);
  EXPECT_EQ(p.max_seq_length, 512);
}

const char* const kModules = R"([
  {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
  {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
  {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}])";

TEST_F(SentencePipelineTest, ReadsMiniLmsPipeline) {
  put("modules.json", kModules);
  put("1_Pooling/config.json", R"({"word_embedding_dimension": 384, "pooling_mode_cls_token": false,
      "pooling_mode_mean_tokens": true, "pooling_mode_max_tokens": false,
      "pooling_mode_mean_sqrt_len_tokens": false})");
  put("sentence_bert_config.json", R"({"max_seq_length": 256, "do_lower_case": false})");
  const SentencePipeline p = load_sentence_pipeline(dir_.string(), config_);
  EXPECT_TRUE(p.from_modules_json);
  EXPECT_EQ(std::string(p.pooling.describe()), "mean");
  EXPECT_TRUE(p.normalize);
  EXPECT_EQ(p.max_seq_length, 256);
}

TEST_F(SentencePipelineTest, CapsMaxSeqLengthAtThePositions) {
  put("sentence_bert_config.json", R"({"max_seq_length": 4096})");
  EXPECT_EQ(load_sentence_pipeline(dir_.string(), config_).max_seq_length, 512);
}

TEST_F(SentencePipelineTest, RefusesModulesItDoesNotRun) {
  put("modules.json", replaced(kModules, "models.Normalize", "models.Dense"));
  put("1_Pooling/config.json", R"({"pooling_mode_cls_token": true})");
  Error e = catch_error([&] { load_sentence_pipeline(dir_.string(), config_); });
  EXPECT_NE(std::string(e.what()).find("models.Dense"), std::string::npos) << e.what();

  put("modules.json", kModules);
  put("1_Pooling/config.json", R"({"pooling_mode_weightedmean_tokens": true})");
  e = catch_error([&] { load_sentence_pipeline(dir_.string(), config_); });
  EXPECT_NE(std::string(e.what()).find("weightedmean"), std::string::npos) << e.what();

  put("1_Pooling/config.json", R"({"word_embedding_dimension": 768, "pooling_mode_cls_token": true})");
  e = catch_error([&] { load_sentence_pipeline(dir_.string(), config_); });
  EXPECT_NE(std::string(e.what()).find("768"), std::string::npos) << e.what();

  // sentence-transformers' defaults: mean on unless the file turns it off.
  put("1_Pooling/config.json", R"({"pooling_mode_cls_token": true})");
  EXPECT_EQ(std::string(load_sentence_pipeline(dir_.string(), config_).pooling.describe()), "cls+mean");
  put("1_Pooling/config.json", R"({"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": false})");
  EXPECT_EQ(std::string(load_sentence_pipeline(dir_.string(), config_).pooling.describe()), "cls");
  put("1_Pooling/config.json", R"({"pooling_mode": "max"})");
  EXPECT_EQ(std::string(load_sentence_pipeline(dir_.string(), config_).pooling.describe()), "max");
}

TEST(TruncateTokens, KeepsTheHeadAndTheFinalSep) {
  const std::vector<int32_t> ids = {101, 1, 2, 3, 4, 102};
  EXPECT_EQ(truncate_tokens(ids, 6), ids);
  EXPECT_EQ(truncate_tokens(ids, 100), ids);
  EXPECT_EQ(truncate_tokens(ids, 4), (std::vector<int32_t>{101, 1, 2, 102}));
  EXPECT_EQ(truncate_tokens(ids, 2), (std::vector<int32_t>{101, 102}));
}

}  // namespace
}  // namespace lowbit
