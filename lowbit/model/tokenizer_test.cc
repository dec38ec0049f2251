#include "lowbit/model/tokenizer.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "lowbit/core/test_support.h"
#include "lowbit/io/gguf_writer.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

class LoadTokenizerTest : public testing_support::TempDirTest {
 protected:
  void write_text(const std::string& p, const std::string& text) { std::ofstream(p, std::ios::binary) << text; }
  static std::string json() {
    return R"({"pre_tokenizer": {"type": "BertPreTokenizer"},
               "model": {"type": "WordPiece", "unk_token": "[UNK]", "vocab": {"[UNK]": 0, "hi": 1}}})";
  }
  std::string error(const std::string& p) {
    const Error e = catch_error([&] { load_tokenizer(p); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput) << e.what();
    return e.what();
  }
};

TEST_F(LoadTokenizerTest, FindsTheTokenizerOfEachKindOfPath) {
  std::filesystem::create_directory(path("model"));
  write_text(path("model/tokenizer.json"), json());
  write_text(path("model/model.safetensors"), "not read");
  EXPECT_EQ(load_tokenizer(path("model"))->encode("hi"), (std::vector<int32_t>{1}));
  EXPECT_EQ(load_tokenizer(path("model/tokenizer.json"))->encode("hi"), (std::vector<int32_t>{1}));
  EXPECT_EQ(load_tokenizer(path("model/model.safetensors"))->encode("hi x"), (std::vector<int32_t>{1, 0}));
  // A GGUF file is told by its magic, whatever its name.
  {
    GgufWriter w(path("m.bin"));
    w.add_metadata("tokenizer.ggml.model", GgufValue::of("llama"));
    w.add_metadata("tokenizer.ggml.tokens",
                   GgufValue::array(std::vector<std::string>{"<unk>", "<s>", "</s>", "▁", "h", "i", "▁h", "▁hi"}));
    w.add_metadata("tokenizer.ggml.scores", GgufValue::array(std::vector<float>{0, 0, 0, -1, -1, -1, -2, -3}));
    w.commit();
  }
  EXPECT_EQ(load_tokenizer(path("m.bin"))->encode("hi"), (std::vector<int32_t>{1, 7}));  // <s> ▁hi
}

TEST_F(LoadTokenizerTest, SaysWhatIsMissing) {
  EXPECT_NE(error(path("nothing")).find("does not exist"), std::string::npos);
  std::filesystem::create_directory(path("empty"));
  EXPECT_NE(error(path("empty")).find("has no tokenizer.json"), std::string::npos);
  write_text(path("empty/w.safetensors"), "x");
  EXPECT_NE(error(path("empty/w.safetensors")).find("carries no tokenizer"), std::string::npos);
  {
    GgufWriter w(path("no_tok.gguf"));
    w.add_metadata("general.architecture", GgufValue::of("llama"));
    w.commit();
  }
  EXPECT_NE(error(path("no_tok.gguf")).find("has no tokenizer"), std::string::npos);
}

}  // namespace
}  // namespace lowbit
