#include "lowbit/io/checkpoint.h"

#include <gtest/gtest.h>

#include <cmath>
#include <fstream>

#include <filesystem>
#include <functional>
#include <random>

#include "lowbit/core/test_support.h"
#include "lowbit/ggml/row_codec.h"
#include "lowbit/io/compressed_tensors.h"
#include "lowbit/io/compressed_tensors_config.h"
#include "lowbit/io/gguf_writer.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/quant/quantizer.h"

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

// ---- compressed-tensors checkpoints ----

struct CtModuleCase {
  std::string module, spec;
  std::vector<uint64_t> shape;
};

// A compressed-tensors checkpoint as vLLM reads it: one module per format
// family (pack-quantized int4 asym and int8, FP8 blocks, NVFP4, MXFP4), a
// plain norm and an ignored lm_head, written with the config in config.json
// (or, config_in_metadata, in the file's metadata as lowbit writes a lone
// file). Returns each module's quantized tensor, the reference.
std::map<std::string, QuantizedTensor> write_ct_checkpoint(const std::string& file, const std::string& config_json_path,
                                                           const std::string& status = "compressed",
                                                           const std::function<void(CtEncoded&)>& edit_q_proj = {},
                                                           const std::function<void(nlohmann::json&)>& edit_config = {},
                                                           const std::vector<std::string>& scalar_tensors = {}) {
  const std::vector<CtModuleCase> cases = {
      {"model.layers.0.self_attn.q_proj", "int4/g128/asym", {8, 256}},
      {"model.layers.0.self_attn.o_proj", "int8/channel", {5, 33}},
      {"model.layers.0.self_attn.k_proj", "float8_e4m3fn/b128x128", {200, 300}},
      {"model.layers.0.mlp.up_proj", "nvfp4", {8, 64}},
      {"model.layers.0.mlp.down_proj", "mxfp4", {6, 96}},
  };
  std::mt19937 rng(5);
  std::normal_distribution<float> nd;
  std::map<std::string, QuantizedTensor> qs;
  std::vector<CtModule> modules;
  std::vector<std::pair<CtPlan, CtEncoded>> encoded;
  SafetensorsWriter w(file);
  std::vector<std::vector<size_t>> idx;
  const std::vector<float> norm = {1.f, 2.f, 3.f, 4.f}, head(16, 0.5f);
  const size_t norm_i = w.declare("model.norm.weight", DType::kF32, {4});
  for (const CtModuleCase& c : cases) {
    std::vector<float> x(c.shape[0] * c.shape[1]);
    for (float& v : x) v = nd(rng);
    QuantizeOptions o;
    o.reciprocal_tensor_scale = c.spec == "nvfp4";
    const Scheme s = parse_scheme(c.spec);
    QuantizedTensor q = quantize({x.data(), c.shape}, s, o);
    const CtPlan p = plan_compressed_tensors(s, c.shape);
    CtEncoded e = encode_compressed_tensors(p, q);
    EXPECT_TRUE(e.inexact.empty()) << c.spec;
    if (edit_q_proj && c.module.ends_with("q_proj")) edit_q_proj(e);
    std::vector<size_t> ids;
    for (const CtTensorData& t : e.tensors) ids.push_back(w.declare(c.module + "." + t.decl.suffix, t.decl.dtype, t.decl.shape));
    idx.push_back(ids);
    modules.push_back(ct_module(c.module, p));
    encoded.emplace_back(p, std::move(e));
    qs.emplace(c.module + ".weight", std::move(q));
  }
  const size_t head_i = w.declare("lm_head.weight", DType::kF32, {4, 4});
  // Calibration scalars (activation and KV-cache scales), 0.25 each.
  std::vector<size_t> scalar_i;
  for (const std::string& n : scalar_tensors) scalar_i.push_back(w.declare(n, DType::kF32, {1}));
  nlohmann::json cfg = {{"architectures", {"LlamaForCausalLM"}},
                        {"quantization_config", ct_quantization_config(modules, {"lm_head"})}};
  cfg["quantization_config"]["quantization_status"] = status;
  if (edit_config) edit_config(cfg["quantization_config"]);
  if (config_json_path.empty()) w.add_metadata("quantization_config", cfg["quantization_config"].dump());
  w.begin();
  w.write_tensor_data(norm_i, norm.data(), 16);
  for (size_t m = 0; m < encoded.size(); ++m) {
    for (size_t k = 0; k < idx[m].size(); ++k) {
      const auto& b = encoded[m].second.tensors[k].bytes;
      w.write_tensor_data(idx[m][k], b.data(), b.size());
    }
  }
  w.write_tensor_data(head_i, head.data(), 64);
  const float quarter = 0.25f;
  for (size_t i : scalar_i) w.write_tensor_data(i, &quarter, 4);
  w.commit();
  if (!config_json_path.empty()) std::ofstream(config_json_path) << cfg.dump(2);
  return qs;
}

std::vector<float> deq(const QuantizedTensor& q) {
  std::vector<float> out(q.numel());
  dequantize(q, out.data());
  return out;
}

void expect_ct_weights(const Checkpoint& c, const std::map<std::string, QuantizedTensor>& qs) {
  std::vector<std::string> names;
  for (const CheckpointTensor& t : c.tensors()) names.push_back(t.name);
  // One tensor per weight, where its first stored part was; the others stay.
  EXPECT_EQ(names, (std::vector<std::string>{"model.norm.weight", "model.layers.0.self_attn.q_proj.weight",
                                             "model.layers.0.self_attn.o_proj.weight",
                                             "model.layers.0.self_attn.k_proj.weight",
                                             "model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight",
                                             "lm_head.weight"}));
  EXPECT_TRUE(c.has_compressed_weights());
  uint64_t total = 0;
  for (size_t i = 0; i < c.tensors().size(); ++i) {
    const CheckpointTensor& t = c.tensors()[i];
    total += t.nbytes;
    const auto it = qs.find(t.name);
    EXPECT_EQ(c.is_compressed_weight(i), it != qs.end()) << t.name;
    if (it == qs.end()) continue;
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.shape, it->second.shape);
    EXPECT_EQ(t.numel, it->second.numel());
    EXPECT_TRUE(t.floating);
    EXPECT_EQ(t.dtype.rfind("ct:", 0), 0u) << t.dtype;
    EXPECT_TRUE(c.raw_bytes(i).empty());
    std::vector<float> got(t.numel);
    c.read_float32(i, got.data());
    const std::vector<float> want = deq(it->second);
    EXPECT_EQ(std::memcmp(got.data(), want.data(), want.size() * 4), 0);
    c.release(i);
  }
  EXPECT_LE(total, c.total_bytes());
  EXPECT_EQ(c.tensors()[0].dtype, "F32");
}

TEST_F(CheckpointTest, ReadsCompressedTensorsWeightsDequantized) {
  std::filesystem::create_directory(path("ct"));
  const auto qs = write_ct_checkpoint(path("ct/model.safetensors"), path("ct/config.json"));
  const Checkpoint c = Checkpoint::open(path("ct"));
  EXPECT_TRUE(c.undecodable_compressed_tensors().empty());
  EXPECT_EQ(c.tensors()[1].dtype, "ct:pack-quantized");
  EXPECT_EQ(c.tensors()[3].dtype, "ct:float-quantized");
  EXPECT_EQ(c.tensors()[4].dtype, "ct:nvfp4-pack-quantized");
  expect_ct_weights(c, qs);
}

// An llm-compressor checkpoint that also quantizes activations and the KV
// cache stores their scales beside the weights. They belong to the input's
// config, which a requantized output replaces: left out, and listed.
TEST_F(CheckpointTest, ActivationAndKvCacheScalesAreOmittedWithTheirConfig) {
  const std::vector<std::string> scalars = {
      "model.layers.0.self_attn.q_proj.input_scale", "model.layers.0.mlp.up_proj.input_global_scale",
      "model.layers.0.mlp.down_proj.output_scale", "model.layers.0.self_attn.k_scale",
      "model.layers.0.self_attn.v_scale"};
  const nlohmann::json fp8_dynamic = {{"num_bits", 8}, {"type", "float"}, {"symmetric", true},
                                      {"strategy", "tensor"}, {"dynamic", false}};
  const auto with = [&](bool activations, bool kv) {
    return [=](nlohmann::json& qc) {
      if (activations) qc["config_groups"]["group_0"]["input_activations"] = fp8_dynamic;
      if (kv) qc["kv_cache_scheme"] = fp8_dynamic;
    };
  };
  const auto names = [](const Checkpoint& c) {
    std::vector<std::string> v;
    for (const CheckpointTensor& t : c.tensors()) v.push_back(t.name);
    return v;
  };
  const auto has = [](const std::vector<std::string>& v, const std::string& n) {
    return std::find(v.begin(), v.end(), n) != v.end();
  };
  {
    std::filesystem::create_directory(path("a"));
    const auto qs = write_ct_checkpoint(path("a/model.safetensors"), path("a/config.json"), "compressed", {},
                                        with(true, true), scalars);
    const Checkpoint c = Checkpoint::open(path("a"));
    expect_ct_weights(c, qs);  // exactly the weights and plain tensors
    std::vector<std::string> omitted = c.omitted_activation_tensors(), want = scalars;
    std::sort(omitted.begin(), omitted.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(omitted, want);
  }
  {  // activations only: the KV-cache scales are ordinary tensors then
    std::filesystem::create_directory(path("b"));
    write_ct_checkpoint(path("b/model.safetensors"), path("b/config.json"), "compressed", {}, with(true, false),
                        scalars);
    const Checkpoint c = Checkpoint::open(path("b"));
    EXPECT_EQ(c.omitted_activation_tensors().size(), 3u);
    EXPECT_TRUE(has(names(c), "model.layers.0.self_attn.k_scale"));
    EXPECT_FALSE(has(names(c), "model.layers.0.self_attn.q_proj.input_scale"));
  }
  {  // neither declared: nothing is omitted
    std::filesystem::create_directory(path("c"));
    write_ct_checkpoint(path("c/model.safetensors"), path("c/config.json"), "compressed", {}, with(false, false),
                        scalars);
    const Checkpoint c = Checkpoint::open(path("c"));
    EXPECT_TRUE(c.omitted_activation_tensors().empty());
    for (const std::string& n : scalars) EXPECT_TRUE(has(names(c), n)) << n;
  }
  {  // a frozen config leaves every tensor as stored
    std::filesystem::create_directory(path("d"));
    write_ct_checkpoint(path("d/model.safetensors"), path("d/config.json"), "frozen", {}, with(true, true), scalars);
    const Checkpoint c = Checkpoint::open(path("d"));
    EXPECT_TRUE(c.omitted_activation_tensors().empty());
    EXPECT_TRUE(has(names(c), "model.layers.0.self_attn.k_scale"));
  }
}

TEST_F(CheckpointTest, ReadsTheConfigFromALoneFilesMetadata) {
  std::filesystem::create_directory(path("one"));
  const auto qs = write_ct_checkpoint(path("one/w.safetensors"), "");
  expect_ct_weights(Checkpoint::open(path("one/w.safetensors")), qs);
}

TEST_F(CheckpointTest, FrozenCompressedTensorsStayStoredTensors) {
  std::filesystem::create_directory(path("fz"));
  write_ct_checkpoint(path("fz/model.safetensors"), path("fz/config.json"), "frozen");
  const Checkpoint c = Checkpoint::open(path("fz"));
  EXPECT_FALSE(c.has_compressed_weights());
  bool packed = false;
  for (const CheckpointTensor& t : c.tensors()) packed = packed || t.name == "model.layers.0.self_attn.q_proj.weight_packed";
  EXPECT_TRUE(packed);
}

TEST_F(CheckpointTest, CompressedWeightWithoutItsShapeIsRefused) {
  std::filesystem::create_directory(path("bad"));
  write_ct_checkpoint(path("bad/model.safetensors"), path("bad/config.json"), "compressed", [](CtEncoded& e) {
    std::erase_if(e.tensors, [](const CtTensorData& t) { return t.decl.suffix == "weight_shape"; });
  });
  const Error e = catch_error([&] { Checkpoint::open(path("bad")); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("q_proj.weight_shape is missing"), std::string::npos) << e.what();
}

std::string slurp(const std::string& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

bool lists(const Checkpoint& c, const std::string& name) {
  for (const CheckpointTensor& t : c.tensors()) {
    if (t.name == name) return true;
  }
  return false;
}

// A weight_shape that claims more than the codes hold is refused at open,
// before anyone allocates the size it claims.
TEST_F(CheckpointTest, WeightShapeMustMatchThePackedCodes) {
  std::filesystem::create_directory(path("big"));
  write_ct_checkpoint(path("big/model.safetensors"), path("big/config.json"), "compressed", [](CtEncoded& e) {
    for (CtTensorData& t : e.tensors) {
      if (t.decl.suffix != "weight_shape") continue;
      const int64_t huge[2] = {int64_t{1} << 31, int64_t{1} << 31};
      std::memcpy(t.bytes.data(), huge, sizeof huge);
    }
  });
  const Error e = catch_error([&] { Checkpoint::open(path("big")); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("q_proj.weight_packed' does not hold"), std::string::npos) << e.what();
}

// Configs lowbit cannot decode (another format, a config nested too deeply
// to parse safely) leave the checkpoint's tensors as stored, as before.
TEST_F(CheckpointTest, UnreadableConfigsLeaveTheStoredTensors) {
  std::filesystem::create_directory(path("u"));
  write_ct_checkpoint(path("u/model.safetensors"), path("u/config.json"));
  std::string cfg = slurp(path("u/config.json"));
  const size_t at = cfg.find("\"pack-quantized\"");
  ASSERT_NE(at, std::string::npos);
  write_text("u/config.json", cfg.replace(at, 16, "\"int-quantized\""));
  Checkpoint c = Checkpoint::open(path("u"));
  EXPECT_FALSE(c.has_compressed_weights());
  EXPECT_TRUE(lists(c, "model.layers.0.self_attn.q_proj.weight_packed"));
  // Said, so that quantize can refuse to treat the codes as weights.
  EXPECT_NE(c.undecodable_compressed_tensors().find("int-quantized"), std::string::npos)
      << c.undecodable_compressed_tensors();
  write_text("u/config.json", "{\"quantization_config\": " + std::string(100000, '[') + std::string(100000, ']') + "}");
  c = Checkpoint::open(path("u"));
  EXPECT_FALSE(c.has_compressed_weights());
  EXPECT_TRUE(c.undecodable_compressed_tensors().empty());  // not known to be compressed-tensors
}

// A config.json without a quantization_config (a lowbit single-file output
// put into a Hugging Face directory) does not hide the file's own.
TEST_F(CheckpointTest, FileMetadataCountsWhenConfigJsonHasNoQuantizationConfig) {
  std::filesystem::create_directory(path("m"));
  const auto qs = write_ct_checkpoint(path("m/model.safetensors"), "");
  write_text("m/config.json", R"({"model_type": "llama"})");
  expect_ct_weights(Checkpoint::open(path("m")), qs);
}

// Module "a" would also claim module "a.weight_x"'s tensors: refused.
TEST_F(CheckpointTest, TensorsClaimedByTwoModulesAreRefused) {
  std::filesystem::create_directory(path("two"));
  const std::vector<uint8_t> w(64, 0x38), sc(4 * 4, 0);
  std::vector<TensorToWrite> ts = {{"a.weight", DType::kF8_E4M3, {4, 16}, w.data()},
                                   {"a.weight_scale", DType::kF32, {4, 1}, sc.data()},
                                   {"a.weight_x.weight", DType::kF8_E4M3, {4, 16}, w.data()},
                                   {"a.weight_x.weight_scale", DType::kF32, {4, 1}, sc.data()}};
  write_safetensors(path("two/model.safetensors"), {}, ts);
  write_text("two/config.json", R"({"quantization_config": {"quant_method": "compressed-tensors",
    "format": "float-quantized", "quantization_status": "compressed", "config_groups": {"group_0": {
    "targets": ["Linear"], "weights": {"num_bits": 8, "type": "float", "symmetric": true,
    "strategy": "channel", "dynamic": false}}}}})");
  const Error e = catch_error([&] { Checkpoint::open(path("two")); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("belongs to two compressed modules"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace lowbit

namespace lowbit {
namespace {

TEST_F(CheckpointTest, CountsNonFiniteValuesWithoutReadingWholeTensors) {
  // Larger than one counting slice (2^20 elements), with specials on both
  // sides of the slice boundary, in float32, bfloat16 and a GGUF block type.
  const size_t n = (size_t{1} << 20) + 4096;
  std::vector<float> f(n, 0.5f);
  f[3] = NAN;
  f[(size_t{1} << 20) - 1] = INFINITY;
  f[(size_t{1} << 20)] = -INFINITY;
  std::vector<uint16_t> bf(n, 0x3f00);  // 0.5
  bf[7] = 0x7fc0;                      // NaN
  bf[n - 1] = 0xff80;                  // -inf
  write_safetensors(path("x.safetensors"), {},
                    {{"f", DType::kF32, {n / 4096, 4096}, f.data()}, {"b", DType::kBF16, {n}, bf.data()}});
  const Checkpoint c = Checkpoint::open(path("x.safetensors"));
  EXPECT_EQ(c.count_nonfinite(0), 3u);
  EXPECT_EQ(c.count_nonfinite(1), 2u);
  std::vector<float> clean(64 * 256, 1.0f);
  std::vector<uint8_t> q8(ggml_row_bytes(GgmlType::kQ8_0, 256, "row") * 64);
  ggml_quantize_rows(GgmlType::kQ8_0, clean.data(), 64, 256, q8.data(), nullptr, 1);
  q8[34 * 5] = 0x00;  // block 5's float16 d: 0x7E00, NaN
  q8[34 * 5 + 1] = 0x7e;
  GgufWriter w(path("q.gguf"));
  w.declare_tensor("q", {256, 64}, GgmlType::kQ8_0);
  w.begin();
  w.write_tensor_data(0, q8.data(), q8.size());
  w.commit();
  EXPECT_EQ(Checkpoint::open(path("q.gguf")).count_nonfinite(0), 32u);
}

}  // namespace
}  // namespace lowbit
