#include <fmt/format.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "lowbit/core/test_support.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/gguf_writer.h"
#include "lowbit/model/byte_level.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/model/unicode.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

class GgufTokenizerTest : public testing_support::TempDirTest {
 protected:
  GgufFile write(const std::vector<GgufKv>& kvs) {
    const std::string p = path(fmt::format("t{}.gguf", count_++));
    GgufWriter w(p);
    for (const GgufKv& kv : kvs) w.add_metadata(kv.key, kv.value);
    w.commit();
    return GgufFile::open(p);
  }
  // A gpt2 vocabulary: the 256 byte characters, "he", "<|end|>".
  static std::vector<GgufKv> gpt2() {
    std::vector<std::string> tokens;
    std::vector<int32_t> types;
    for (unsigned b = 0; b < 256; ++b) {
      std::string s;
      unicode::append_utf8(s, byte_level_char(static_cast<uint8_t>(b)));
      tokens.push_back(s);
      types.push_back(1);
    }
    tokens.push_back("he");
    types.push_back(1);
    tokens.push_back("<|end|>");
    types.push_back(3);
    return {{"tokenizer.ggml.model", GgufValue::of("gpt2")},
            {"tokenizer.ggml.pre", GgufValue::of("smollm")},
            {"tokenizer.ggml.tokens", GgufValue::array(tokens)},
            {"tokenizer.ggml.token_type", GgufValue::array(types)},
            {"tokenizer.ggml.merges", GgufValue::array(std::vector<std::string>{"h e"})},
            {"tokenizer.ggml.bos_token_id", GgufValue::of(uint32_t{257})},
            {"tokenizer.ggml.eos_token_id", GgufValue::of(uint32_t{257})},
            {"tokenizer.ggml.add_bos_token", GgufValue::of(false)}};
  }
  static std::vector<GgufKv> llama() {
    std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
    std::vector<int32_t> types = {2, 3, 3};
    std::vector<float> scores = {0, 0, 0};
    for (unsigned b = 0; b < 256; ++b) {
      tokens.push_back(byte_piece_name(static_cast<uint8_t>(b)));
      types.push_back(6);
      scores.push_back(0);
    }
    for (const char* p : {"▁", "h", "i", "▁h", "hi", "▁hi"}) {
      tokens.push_back(p);
      types.push_back(1);
      scores.push_back(-static_cast<float>(tokens.size()));
    }
    return {{"tokenizer.ggml.model", GgufValue::of("llama")},
            {"tokenizer.ggml.tokens", GgufValue::array(tokens)},
            {"tokenizer.ggml.token_type", GgufValue::array(types)},
            {"tokenizer.ggml.scores", GgufValue::array(scores)}};
  }
  static void set(std::vector<GgufKv>& kvs, const std::string& key, GgufValue v) {
    for (GgufKv& kv : kvs) {
      if (kv.key == key) {
        kv.value = std::move(v);
        return;
      }
    }
    kvs.push_back({key, std::move(v)});
  }
  static void erase(std::vector<GgufKv>& kvs, const std::string& key) {
    std::erase_if(kvs, [&](const GgufKv& kv) { return kv.key == key; });
  }
  std::string error(const std::vector<GgufKv>& kvs) {
    const GgufFile f = write(kvs);
    const Error e = catch_error([&] { load_gguf_tokenizer(f); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput) << e.what();
    return e.what();
  }
  int count_ = 0;
};

TEST_F(GgufTokenizerTest, ReadsByteLevelBpe) {
  auto kvs = gpt2();
  const auto t = load_gguf_tokenizer(write(kvs));
  EXPECT_STREQ(t->kind(), "bpe");
  EXPECT_EQ(t->vocab_size(), 258);
  EXPECT_EQ(t->bos_id(), 257);
  EXPECT_FALSE(t->adds_bos());
  EXPECT_EQ(t->encode("he he"), (std::vector<int32_t>{256, ' ', 256}));  // he Ġ he
  EXPECT_EQ(t->decode(t->encode("he he")), "he he");
  EXPECT_EQ(t->encode("<|end|>", true, true), (std::vector<int32_t>{257}));
  set(kvs, "tokenizer.ggml.add_bos_token", GgufValue::of(true));
  EXPECT_EQ(load_gguf_tokenizer(write(kvs))->encode("he"), (std::vector<int32_t>{257, 256}));
}

TEST_F(GgufTokenizerTest, ReadsSentencePieceStyle) {
  auto kvs = llama();
  const auto t = load_gguf_tokenizer(write(kvs));
  EXPECT_STREQ(t->kind(), "spm");
  // llama.cpp's defaults: BOS 1, EOS 2, unknown 0, BOS added, space prefix.
  EXPECT_EQ(t->bos_id(), 1);
  EXPECT_EQ(t->eos_id(), 2);
  EXPECT_EQ(t->unk_id(), 0);
  EXPECT_TRUE(t->adds_bos());
  EXPECT_EQ(t->encode("hi"), (std::vector<int32_t>{1, 3 + 256 + 5}));  // <s> ▁hi
  set(kvs, "tokenizer.ggml.add_space_prefix", GgufValue::of(false));
  set(kvs, "tokenizer.ggml.add_bos_token", GgufValue::of(false));
  EXPECT_EQ(load_gguf_tokenizer(write(kvs))->encode("hi"), (std::vector<int32_t>{3 + 256 + 4}));  // hi
  // Integer scores are read too, as llama.cpp does.
  kvs = llama();
  std::vector<int32_t> iscores(3 + 256 + 6, 0);
  set(kvs, "tokenizer.ggml.scores", GgufValue::array(iscores));
  EXPECT_EQ(load_gguf_tokenizer(write(kvs))->vocab_size(), 265);
}

TEST_F(GgufTokenizerTest, ClearErrors) {
  auto kvs = gpt2();
  erase(kvs, "tokenizer.ggml.model");
  EXPECT_NE(error(kvs).find("has no tokenizer"), std::string::npos);
  kvs = gpt2();
  set(kvs, "tokenizer.ggml.model", GgufValue::of("bert"));
  EXPECT_NE(error(kvs).find("'bert' is not supported"), std::string::npos);
  kvs = gpt2();
  erase(kvs, "tokenizer.ggml.pre");
  EXPECT_NE(error(kvs).find("tokenizer.ggml.pre"), std::string::npos);
  kvs = gpt2();
  set(kvs, "tokenizer.ggml.pre", GgufValue::of("llama3"));
  EXPECT_NE(error(kvs).find("'llama3' is not supported"), std::string::npos);
  kvs = gpt2();
  set(kvs, "tokenizer.ggml.bos_token_id", GgufValue::of(uint32_t{9999}));
  EXPECT_NE(error(kvs).find("bos_token_id"), std::string::npos);
  kvs = gpt2();
  erase(kvs, "tokenizer.ggml.merges");
  EXPECT_NE(error(kvs).find("tokenizer.ggml.merges"), std::string::npos);
  kvs = gpt2();
  set(kvs, "tokenizer.ggml.merges", GgufValue::array(std::vector<std::string>{"h q"}));
  EXPECT_NE(error(kvs).find("merge #0"), std::string::npos);
  kvs = gpt2();
  set(kvs, "tokenizer.ggml.token_type", GgufValue::array(std::vector<int32_t>{1, 1}));
  EXPECT_NE(error(kvs).find("token_type"), std::string::npos);
  kvs = gpt2();
  set(kvs, "tokenizer.ggml.tokens", GgufValue::of("not an array"));
  EXPECT_NE(error(kvs).find("tokenizer.ggml.tokens"), std::string::npos);
  kvs = llama();
  set(kvs, "tokenizer.ggml.scores", GgufValue::array(std::vector<float>{0.5f}));
  EXPECT_NE(error(kvs).find("tokenizer.ggml.scores"), std::string::npos);
}

}  // namespace
}  // namespace lowbit
