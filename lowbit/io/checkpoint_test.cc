#include "lowbit/io/checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include "lowbit/core/test_support.h"
#include "lowbit/io/gguf_writer.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/quant/ggml_codec.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

class CheckpointTest : public testing_support::TempDirTest {
 protected:
  void write_text(const std::string& name, const std::string& text) { std::ofstream(path(name)) << text; }
  void write_shard(const std::string& name, const std::vector<std::string>& tensors) {
    std::vector<TensorToWrite> ts;
    for (const std::string& t : tensors) ts.push_back({t, DType::kF32, {2, 2}, values_.data()});
    write_safetensors(path(name), {}, ts);
  }
  std::string index(const std::string& map_json) { return std::string(R"({"metadata": {}, "weight_map": )") + map_json + "}"; }
  std::vector<float> values_ = {1.5f, -2.f, 0.25f, 3.f};
};

TEST_F(CheckpointTest, ReadsShardedCheckpointsThroughTheIndex) {
  write_shard("model-00001-of-00002.safetensors", {"a.weight", "b.weight"});
  write_shard("model-00002-of-00002.safetensors", {"c.weight"});
  write_text("model.safetensors.index.json",
             index(R"({"a.weight": "model-00001-of-00002.safetensors", "b.weight": "model-00001-of-00002.safetensors",
                       "c.weight": "model-00002-of-00002.safetensors"})"));
  // The directory finds the index by itself.
  const Checkpoint c = Checkpoint::open(dir_.string());
  ASSERT_EQ(c.tensors().size(), 3u);
  EXPECT_EQ(c.files().size(), 2u);
  EXPECT_EQ(c.tensors()[2].name, "c.weight");
  EXPECT_EQ(c.tensors()[2].shard, 1u);
  std::vector<float> out(4);
  c.read_float32(2, out.data());
  EXPECT_EQ(out, values_);
}

TEST_F(CheckpointTest, RefusesInconsistentIndexes) {
  write_shard("s1.safetensors", {"a.weight", "b.weight"});
  write_shard("s2.safetensors", {"a.weight"});
  const auto err = [&](const std::string& map) {
    write_text("model.safetensors.index.json", index(map));
    return std::string(catch_error([&] { Checkpoint::open(path("model.safetensors.index.json")); }).what());
  };
  EXPECT_NE(err(R"({"a.weight": "s1.safetensors"})").find("holds tensor 'b.weight', which"), std::string::npos);
  EXPECT_NE(err(R"({"a.weight": "s1.safetensors", "b.weight": "s1.safetensors", "c.weight": "s1.safetensors"})")
                .find("puts tensor 'c.weight' in 's1.safetensors', which does not hold it"),
            std::string::npos);
  EXPECT_NE(err(R"({"a.weight": "s1.safetensors", "b.weight": "s1.safetensors", "x": "s2.safetensors"})")
                .find("appears in both"),
            std::string::npos);
  EXPECT_NE(err(R"({"a.weight": "../s1.safetensors"})").find("is not a file name"), std::string::npos);
  EXPECT_NE(err(R"({"a.weight": "missing.safetensors"})").find("missing.safetensors"), std::string::npos);
  EXPECT_NE(err(R"({})").find("maps no tensors"), std::string::npos);
  write_text("model.safetensors.index.json", "{\"weight_map\": 3}");
  EXPECT_NE(std::string(catch_error([&] { Checkpoint::open(dir_.string()); }).what()).find("weight_map"),
            std::string::npos);
}

TEST_F(CheckpointTest, ConvertsFloatDtypesAndKeepsIntegers) {
  const uint16_t f16[2] = {0x3C00, 0xC000};   // 1, -2
  const uint16_t bf16[2] = {0x3F80, 0x4040};  // 1, 3
  const double f64[2] = {0.1, -1e-50};
  const int64_t i64[2] = {1, 2};
  write_safetensors(path("m.safetensors"), {},
                    {{"h", DType::kF16, {2}, f16}, {"b", DType::kBF16, {2}, bf16}, {"d", DType::kF64, {2}, f64},
                     {"i", DType::kI64, {2}, i64}});
  const Checkpoint c = Checkpoint::open(path("m.safetensors"));
  std::vector<float> out(2);
  c.read_float32(0, out.data());
  EXPECT_EQ(out, (std::vector<float>{1.f, -2.f}));
  c.read_float32(1, out.data());
  EXPECT_EQ(out, (std::vector<float>{1.f, 3.f}));
  c.read_float32(2, out.data());
  EXPECT_EQ(out[0], 0.1f);  // rounded once to nearest
  EXPECT_EQ(out[1], -0.0f);
  EXPECT_TRUE(std::signbit(out[1]));
  EXPECT_FALSE(c.tensors()[3].floating);
  EXPECT_EQ(catch_error([&] { c.read_float32(3, out.data()); }).kind(), ErrorKind::kUsage);
}

TEST_F(CheckpointTest, ReadsGgufTensorsDequantized) {
  std::vector<float> x(64);
  for (size_t i = 0; i < x.size(); ++i) x[i] = std::sin(0.3f * i);
  std::vector<uint8_t> q8(ggml_row_bytes(GgmlType::kQ8_0, 64, "t"));
  ggml_quantize_rows(GgmlType::kQ8_0, x.data(), 2, 32, q8.data(), nullptr, 1);
  {
    GgufWriter w(path("m.gguf"));
    w.add_metadata("general.architecture", GgufValue::of("llama"));
    const size_t i = w.declare_tensor("blk.0.w", {32, 2}, GgmlType::kQ8_0);
    w.begin();
    w.write_tensor_data(i, q8.data(), q8.size());
    w.commit();
  }
  const Checkpoint c = Checkpoint::open(dir_.string());  // the one .gguf in the directory
  ASSERT_EQ(c.container(), Container::kGguf);
  ASSERT_EQ(c.tensors().size(), 1u);
  EXPECT_EQ(c.tensors()[0].shape, (std::vector<uint64_t>{2, 32}));
  EXPECT_EQ(c.tensors()[0].dtype, "Q8_0");
  std::vector<float> got(64), want(64);
  c.read_float32(0, got.data());
  ggml_dequantize_rows(GgmlType::kQ8_0, q8.data(), 2, 32, want.data(), 1);
  EXPECT_EQ(got, want);
}

TEST_F(CheckpointTest, DirectoriesMustNameOneModel) {
  EXPECT_NE(std::string(catch_error([&] { Checkpoint::open(dir_.string()); }).what()).find("holds no"), std::string::npos);
  write_shard("a.safetensors", {"x"});
  write_shard("b.safetensors", {"y"});
  EXPECT_NE(std::string(catch_error([&] { Checkpoint::open(dir_.string()); }).what()).find("name the file"),
            std::string::npos);
  EXPECT_EQ(catch_error([&] { Checkpoint::open(path("nope.safetensors")); }).kind(), ErrorKind::kIo);
}

}  // namespace
}  // namespace lowbit
