#include "lowbit/train/train_config.h"

#include <gtest/gtest.h>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

constexpr const char* kMinimal = R"({
  "model": {"dim": 64, "ffn_dim": 160, "layers": 2, "heads": 4, "kv_heads": 2, "context_length": 256},
  "data": {"files": ["a.txt", "/abs/b.txt"]}
})";

TEST(TrainConfig, DefaultsAndRelativePaths) {
  const TrainConfig c = parse_train_config(kMinimal, "c.json", "/data/run");
  EXPECT_EQ(c.model.head_dim, 16);
  EXPECT_EQ(c.model.rope_dim, 16);
  EXPECT_TRUE(c.model.tied_embeddings);
  EXPECT_EQ(c.model.vocab_size, 0);  // the tokenizer's
  EXPECT_EQ(c.files, (std::vector<std::string>{"/data/run/a.txt", "/abs/b.txt"}));
  EXPECT_EQ(c.tokenizer, "bytes");
  EXPECT_EQ(c.tokenizer_vocab(), 257);
  TrainConfig d = c;
  d.tokenizer = "bpe:8192";
  EXPECT_EQ(d.tokenizer_vocab(), 8192);
  EXPECT_EQ(c.batch, 16);
  EXPECT_EQ(c.seq, 256);
  EXPECT_EQ(c.model.kv_heads, 2);
}

TEST(TrainConfig, RefusesWhatCannotTrain) {
  const auto err = [](const std::string& text) { return std::string(catch_error([&] { parse_train_config(text, "c.json", "."); }).what()); };
  const std::string model = R"("model": {"dim": 64, "ffn_dim": 160, "layers": 2, "heads": 4, "context_length": 256})";
  const std::string data = R"("data": {"files": ["a"]})";
  EXPECT_NE(err("{" + model + "," + data + R"(, "train": {"wieght_decay": 0.1}})").find("unknown key \"train.wieght_decay\""), std::string::npos);
  EXPECT_NE(err("{" + model + "," + data + R"(, "train": {"batch": "8"}})").find("wrong type"), std::string::npos);
  EXPECT_NE(err("{" + model + "," + data + R"(, "train": {"seq": 512}})").find("longer than model.context_length"), std::string::npos);
  EXPECT_NE(err("{" + model + "," + data + R"(, "train": {"lr": -1}})").find("train.lr"), std::string::npos);
  EXPECT_NE(err("{" + model + "," + data + R"(, "optim": {}})").find("unknown section"), std::string::npos);
  EXPECT_NE(err("{" + data + "}").find("\"model\" is missing"), std::string::npos);
  EXPECT_NE(err(R"({"model": {"dim": 64, "ffn_dim": 160, "layers": 2, "heads": 5, "context_length": 256},)" + data + "}").find("not a multiple of heads"), std::string::npos);
  EXPECT_NE(err(R"({"model": {"dim": 64, "ffn_dim": 160, "layers": 2, "heads": 4, "kv_heads": 3, "context_length": 256},)" + data + "}").find("c.json"), std::string::npos);
  EXPECT_NE(err("[1]").find("JSON object"), std::string::npos);
  const std::string files = R"("files": ["a"])";
  EXPECT_NE(err("{" + model + R"(, "data": {)" + files + R"(, "tokenizer": "gpt2"}})").find("\"bytes\" or \"bpe:N\""), std::string::npos);
  EXPECT_NE(err("{" + model + R"(, "data": {)" + files + R"(, "tokenizer": "bpe:100"}})").find("outside [257"), std::string::npos);
  EXPECT_NE(err("{" + model + R"(, "data": {)" + files + R"(, "tokenizer": "bpe:8k"}})").find("bpe:N"), std::string::npos);
  EXPECT_NE(err("{").find("not valid JSON"), std::string::npos);
}

TEST(TrainConfig, IdentityIgnoresOnlyTheReportingCadence) {
  TrainConfig a = parse_train_config(kMinimal, "c.json", "/d");
  TrainConfig b = a;
  b.eval_every = 7;
  b.checkpoint_every = 3;
  EXPECT_EQ(a.identity_json(), b.identity_json());
  b.lr = 1e-3;
  EXPECT_NE(a.identity_json(), b.identity_json());
}

}  // namespace
}  // namespace lowbit
