#include <gtest/gtest.h>

#include <string>

#include "lowbit/core/test_support.h"
#include "lowbit/model/tokenizer.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

// A tokenizer.json in MiniLM's shape, with a small vocabulary.
std::string minilm_like(const std::string& model_type = "WordPiece", const std::string& normalizer =
                            R"({"type": "BertNormalizer", "clean_text": true, "handle_chinese_chars": true,
                                "strip_accents": null, "lowercase": true})") {
  return R"({
  "version": "1.0",
  "truncation": {"max_length": 128, "strategy": "LongestFirst", "stride": 0},
  "padding": {"strategy": {"Fixed": 128}, "direction": "Right", "pad_id": 0, "pad_type_id": 0, "pad_token": "[PAD]"},
  "added_tokens": [
    {"id": 0, "special": true, "content": "[PAD]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false},
    {"id": 1, "special": true, "content": "[UNK]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false},
    {"id": 2, "special": true, "content": "[CLS]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false},
    {"id": 3, "special": true, "content": "[SEP]", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false}],
  "normalizer": )" + normalizer + R"(,
  "pre_tokenizer": {"type": "BertPreTokenizer"},
  "post_processor": {"type": "TemplateProcessing",
    "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
               {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
    "pair": [],
    "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                       "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}}},
  "decoder": {"type": "WordPiece", "prefix": "##", "cleanup": true},
  "model": {"type": ")" + model_type + R"(", "unk_token": "[UNK]", "continuing_subword_prefix": "##",
            "max_input_chars_per_word": 100,
            "vocab": {"[PAD]": 0, "[UNK]": 1, "[CLS]": 2, "[SEP]": 3, "cafe": 4, "##s": 5, ".": 6}}
})";
}

std::string error(const std::string& json) {
  const Error e = catch_error([&] { load_tokenizer_json(json, "t.json"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("tokenizer.json 't.json'"), std::string::npos) << e.what();
  return e.what();
}

TEST(TokenizerJson, ReadsMiniLmsShape) {
  const auto t = load_tokenizer_json(minilm_like(), "t.json");
  EXPECT_STREQ(t->kind(), "wordpiece");
  EXPECT_EQ(t->encode("Cafés."), (std::vector<int32_t>{2, 4, 5, 6, 3}));
  EXPECT_EQ(t->decode(t->encode("Cafés."), true), "cafes.");
  EXPECT_EQ(t->pad_id(), 0);
  EXPECT_EQ(t->unk_id(), 1);
  // Truncation (128) is not applied.
  std::string long_text;
  for (int i = 0; i < 300; ++i) long_text += "cafe ";
  EXPECT_EQ(t->encode(long_text).size(), 302u);
  // strip_accents false keeps the accent: "café" is then unknown.
  const auto keep = load_tokenizer_json(
      minilm_like("WordPiece", R"({"type": "BertNormalizer", "strip_accents": false, "lowercase": true})"), "t.json");
  EXPECT_EQ(keep->encode("café", false), (std::vector<int32_t>{1}));
  // BertProcessing and no normalizer.
  std::string bp = minilm_like("WordPiece", "null");
  const size_t a = bp.find("\"post_processor\""), b = bp.find("\"decoder\"");
  bp.replace(a, b - a, R"("post_processor": {"type": "BertProcessing", "sep": ["[SEP]", 3], "cls": ["[CLS]", 2]}, )");
  EXPECT_EQ(load_tokenizer_json(bp, "t.json")->encode("cafe"), (std::vector<int32_t>{2, 4, 3}));
  EXPECT_EQ(load_tokenizer_json(bp, "t.json")->encode("Cafe"), (std::vector<int32_t>{2, 1, 3}));
}

TEST(TokenizerJson, RefusesWhatItDoesNotImplement) {
  EXPECT_NE(error(minilm_like("Unigram")).find("model type 'Unigram' is not supported"), std::string::npos);
  EXPECT_NE(error(minilm_like("BPE")).find("continuing_subword_prefix is not supported"), std::string::npos);
  EXPECT_NE(error(minilm_like("WordPiece", R"({"type": "Lowercase"})")).find("'Lowercase'"), std::string::npos);
  EXPECT_NE(error("{not json").find("not valid JSON"), std::string::npos);
  EXPECT_NE(error("[]").find("not a JSON object"), std::string::npos);
  EXPECT_NE(error("{}").find("has no \"model\""), std::string::npos);
  std::string hole = minilm_like();
  hole.replace(hole.find("\".\": 6"), 6, "\".\": 9");
  EXPECT_NE(error(hole).find("model.vocab ids"), std::string::npos);
  std::string single = minilm_like();
  single.replace(single.find("\"single_word\": false"), 20, "\"single_word\": true");
  EXPECT_NE(error(single).find("single_word"), std::string::npos);
  std::string unk = minilm_like();
  unk.replace(unk.find("\"unk_token\": \"[UNK]\""), 20, "\"unk_token\": \"[ZZZ]\"");
  EXPECT_NE(error(unk).find("[ZZZ]"), std::string::npos);
}

// Byte-level BPE, as GPT-2, SmolLM and `lowbit export` write it.
TEST(TokenizerJson, ByteLevelBpe) {
  const std::string bpe = R"({"version": "1.0", "normalizer": null,
    "pre_tokenizer": {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true},
                      {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true}]},
    "decoder": {"type": "ByteLevel"},
    "added_tokens": [{"id": 7, "content": "<|endoftext|>", "special": true}],
    "model": {"type": "BPE", "dropout": null, "vocab": {"a": 0, "b": 1, "Ġ": 2, "1": 3, "2": 4, "ab": 5, "Ġa": 6},
              "merges": ["a b", ["Ġ", "a"]]}})";
  const auto t = load_tokenizer_json(bpe, "bpe.json");
  EXPECT_STREQ(t->kind(), "bpe");
  EXPECT_EQ(t->vocab_size(), 8);
  EXPECT_EQ(t->encode("ab a12", false), (std::vector<int32_t>{5, 6, 3, 4}));
  EXPECT_EQ(t->decode(std::vector<int32_t>{5, 6, 3, 4}), "ab a12");
  EXPECT_EQ(t->eos_id(), 7);
  std::string plain = bpe;
  plain.replace(plain.find("{\"type\": \"Sequence\""), plain.find("\"decoder\"") - plain.find("{\"type\": \"Sequence\""),
                R"({"type": "ByteLevel"}, )");
  EXPECT_EQ(load_tokenizer_json(plain, "p.json")->encode("a12", false), (std::vector<int32_t>{0, 3, 4}));
  std::string fallback = bpe;
  fallback.replace(fallback.find("\"dropout\": null"), 15, "\"byte_fallback\": true");
  EXPECT_NE(error(fallback).find("byte_fallback"), std::string::npos);
}

}  // namespace
}  // namespace lowbit
