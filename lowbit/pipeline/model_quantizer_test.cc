// quantize_model on small in-memory models written to a temporary
// directory: the NaN policy on every tensor, the range fallback of GGUF
// types, general.file_type, rules checked before any work, fused shards,
// and the report measured on what a reader decodes.
#include "lowbit/pipeline/model_quantizer.h"

#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <random>

#include "lowbit/calib/imatrix_file.h"
#include "lowbit/core/test_support.h"
#include "lowbit/methods/gptq.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/ggml/row_codec.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/pipeline/sinks/compressed_tensors_model_sink.h"
#include "lowbit/pipeline/sinks/gguf_model_sink.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using testing_support::catch_error;

class ModelQuantizerTest : public testing_support::TempDirTest {
 protected:
  std::vector<float> normal(size_t n, uint32_t seed) { return testing_support::normal_values(n, seed); }

  // A two-layer toy model: 2-D weights the default policy quantizes, a
  // 1-D bias it keeps.
  std::string write_model(std::vector<float> w0, std::vector<float> w1, std::vector<float> bias) {
    write_safetensors(path("m.safetensors"), {},
                      {{"l0.weight", DType::kF32, {8, 256}, w0.data()},
                       {"l1.weight", DType::kF32, {8, 256}, w1.data()},
                       {"l1.bias", DType::kF32, {8}, bias.data()}});
    return path("m.safetensors");
  }
  ModelReport run_gguf(const std::string& in_path, const std::string& scheme, NanPolicy nan = NanPolicy::kRefuse) {
    const Checkpoint in = Checkpoint::open(in_path);
    auto sink = make_gguf_model_sink(in, path("out.gguf"), {"toy", false, std::nullopt});
    ModelQuantizeOptions o;
    o.recipe = Recipe::from_scheme(scheme);
    o.nan = nan;
    o.threads = 2;
    return quantize_model(in, *sink, o);
  }
  // A weight as a reader of the output (GGUF, or compressed-tensors) decodes it.
  std::vector<float> decoded(const std::string& out, const std::string& name) {
    const Checkpoint c = Checkpoint::open(out);
    for (size_t i = 0; i < c.tensors().size(); ++i) {
      if (c.tensors()[i].name != name) continue;
      std::vector<float> v(c.tensors()[i].numel);
      c.read_float32(i, v.data());
      return v;
    }
    ADD_FAILURE() << name;
    return {};
  }
};

TEST_F(ModelQuantizerTest, NanInAKeptTensorIsRefusedZeroedOrKept) {
  std::vector<float> bias(8, 0.5f);
  bias[3] = std::numeric_limits<float>::quiet_NaN();
  const std::string in = write_model(normal(2048, 1), normal(2048, 2), bias);
  const Error e = catch_error([&] { run_gguf(in, "q8_0"); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("'l1.bias' holds 1 NaN"), std::string::npos) << e.what();
  EXPECT_FALSE(fs::exists(path("out.gguf")));
  const ModelReport z = run_gguf(in, "q8_0", NanPolicy::kZero);
  EXPECT_EQ(z.tensors[2].nonfinite, 1u);
  const std::vector<float> b = decoded(path("out.gguf"), "l1.bias");
  EXPECT_EQ(b[3], 0.0f);
  EXPECT_EQ(b[2], 0.5f);
  const ModelReport k = run_gguf(in, "q8_0", NanPolicy::kKeep);
  EXPECT_EQ(k.tensors[2].nonfinite, 1u);
  EXPECT_TRUE(std::isnan(decoded(path("out.gguf"), "l1.bias")[3]));
}

TEST_F(ModelQuantizerTest, FiniteWeightsTheTypeCannotHoldFallBackAndSaySo) {
  std::vector<float> w0 = normal(2048, 3);
  w0[700] = 1e7f;  // Q8_0's float16 block scale 1e7/127 overflows; F16 cannot hold 1e7 either
  const std::string in = write_model(w0, normal(2048, 4), std::vector<float>(8, 0.f));
  const ModelReport r = run_gguf(in, "q8_0");
  EXPECT_EQ(r.tensors[0].scheme, "BF16");
  EXPECT_NE(r.tensors[0].fallback.find("Q8_0 would decode some of its finite weights to inf"), std::string::npos);
  EXPECT_EQ(r.tensors[1].scheme, "Q8_0");
  EXPECT_TRUE(r.tensors[1].fallback.empty());
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_NE(r.notes[0].find("1 tensor fell back from Q8_0 to BF16"), std::string::npos) << r.notes[0];
  // The file says what the report says: every weight decodes finite, and
  // the QSNR is the one of what a reader gets.
  const std::vector<float> x = decoded(path("out.gguf"), "l0.weight");
  double e2 = 0, s2 = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    ASSERT_TRUE(std::isfinite(x[i])) << i;
    e2 += (double(x[i]) - w0[i]) * (double(x[i]) - w0[i]);
    s2 += double(w0[i]) * w0[i];
  }
  EXPECT_NEAR(r.tensors[0].qsnr_db, -10 * std::log10(e2 / s2), 1e-9);
  const GgufFile g = GgufFile::open(path("out.gguf"));
  EXPECT_EQ(g.get_u32("general.file_type"), 7u);  // MOSTLY_Q8_0, as asked
  EXPECT_EQ(g.get_string("general.name"), "toy");
  // A weight whose block scale float16 still holds changes nothing.
  w0[700] = 3e4f;
  const ModelReport f16 = run_gguf(write_model(w0, normal(2048, 4), std::vector<float>(8, 0.f)), "q4_0");
  EXPECT_EQ(f16.tensors[0].scheme, "Q4_0");  // 3e4/8 fits a float16 scale
}

TEST_F(ModelQuantizerTest, KeptNanBlocksDecodeToNanAndTheReportSaysTheErrorIsUnbounded) {
  std::vector<float> w0 = normal(2048, 5);
  w0[40] = std::numeric_limits<float>::quiet_NaN();
  const std::string in = write_model(w0, normal(2048, 6), std::vector<float>(8, 0.f));
  const ModelReport r = run_gguf(in, "q8_0", NanPolicy::kKeep);
  EXPECT_EQ(r.tensors[0].nonfinite, 1u);
  EXPECT_EQ(r.tensors[0].lost, 31u);  // the NaN's block mates
  EXPECT_EQ(r.tensors[0].qsnr_db, -std::numeric_limits<double>::infinity());
  const std::vector<float> x = decoded(path("out.gguf"), "l0.weight");
  for (size_t i = 32; i < 64; ++i) EXPECT_TRUE(std::isnan(x[i])) << i;
  EXPECT_TRUE(std::isfinite(x[31]) && std::isfinite(x[64]));
}

TEST_F(ModelQuantizerTest, RowFallbacksKeepTheRequestedFileTypeAndAreSummarised) {
  // 576 columns are not whole Q4_K super-blocks: Q5_0, as llama-quantize.
  const std::vector<float> w = normal(4 * 576, 7);
  write_safetensors(path("r.safetensors"), {}, {{"a.weight", DType::kF32, {4, 576}, w.data()}});
  const ModelReport r = run_gguf(path("r.safetensors"), "q4_k");
  EXPECT_EQ(r.tensors[0].scheme, "Q5_0");
  ASSERT_EQ(r.notes.size(), 1u);
  EXPECT_EQ(r.notes[0], "1 tensor fell back from Q4_K to Q5_0: rows of 576 are not whole Q4_K blocks (as llama-quantize does)");
  EXPECT_EQ(GgufFile::open(path("out.gguf")).get_u32("general.file_type"), 15u);  // MOSTLY_Q4_K_M
}

TEST_F(ModelQuantizerTest, EveryRuleIsCheckedBeforeAnyWork) {
  const std::string in = write_model(normal(2048, 8), normal(2048, 9), std::vector<float>(8, 0.f));
  const Checkpoint c = Checkpoint::open(in);
  auto sink = make_gguf_model_sink(c, path("out.gguf"));
  ModelQuantizeOptions o;
  o.recipe = Recipe::parse(R"({"default_scheme": "q8_0", "rules": [{"match": "nothing-matches", "scheme": "int4/g128"}]})",
                           "r.json");
  EXPECT_EQ(catch_error([&] { quantize_model(c, *sink, o); }).kind(), ErrorKind::kUsage);
  sink.reset();
  EXPECT_EQ(listing(), std::vector<std::string>{"m.safetensors"});
}

TEST_F(ModelQuantizerTest, SplitFusedShardsAreRefusedForVllm) {
  const std::vector<float> w = normal(256 * 256, 10);
  write_safetensors(path("b.safetensors"), {},
                    {{"layer.0.attention.self.query.weight", DType::kF32, {256, 256}, w.data()},
                     {"layer.0.attention.self.key.weight", DType::kF32, {256, 256}, w.data()},
                     {"layer.0.attention.self.value.weight", DType::kF32, {256, 256}, w.data()}});
  const Checkpoint c = Checkpoint::open(path("b.safetensors"));
  ModelQuantizeOptions o;
  o.recipe = Recipe::parse(
      R"({"default_scheme": "int8/channel", "rules": [{"match": "key", "scheme": "int4/g128/asym"}]})", "r.json");
  {
    auto sink = make_compressed_tensors_model_sink(c, path("ct"));
    const Error e = catch_error([&] { quantize_model(c, *sink, o); });
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("as one layer"), std::string::npos) << e.what();
  }
  EXPECT_EQ(listing(), std::vector<std::string>{"b.safetensors"});
  // The same scheme everywhere is fine.
  o.recipe = Recipe::from_scheme("int8/channel");
  auto sink = make_compressed_tensors_model_sink(c, path("ct"));
  EXPECT_EQ(quantize_model(c, *sink, o).params_quantized, 3u * 256 * 256);
}

TEST_F(ModelQuantizerTest, AllZeroOutputIsFlagged) {
  std::vector<float> w0(2048, 1e-30f);
  w0[0] = 1.0f;  // one large weight, the rest far below Q4_0's step
  std::vector<float> tiny(2048, 1e-30f);
  const std::string in = write_model(w0, tiny, std::vector<float>(8, 0.f));
  const ModelReport r = run_gguf(in, "q4_0");
  EXPECT_FALSE(r.tensors[0].all_zero);
  // 1e-30 is below float16's smallest subnormal scale: the tensor is zero.
  EXPECT_TRUE(r.tensors[1].all_zero);
  EXPECT_EQ(r.tensors[1].qsnr_db, 0.0);
}

// The Gram matrix of correlated inputs of 256 channels of unequal size:
// rho^|i-j| (the covariance of a first-order autoregression, positive
// definite) between channels scaled by 1..7.
std::vector<float> correlated_gram(float rho) {
  std::vector<float> g(256 * 256);
  for (int i = 0; i < 256; ++i) {
    for (int j = 0; j < 256; ++j) {
      g[i * 256 + j] = std::pow(rho, static_cast<float>(std::abs(i - j))) * (1 + i % 7) * (1 + j % 7);
    }
  }
  return g;
}

TEST_F(ModelQuantizerTest, GptqTakesEachWeightsGramFromTheCalibrationFileAndReportsTheOutputError) {
  const std::vector<float> w0 = normal(2048, 11), w1 = normal(2048, 12);
  const std::string in = write_model(w0, w1, std::vector<float>(8, 0.f));
  Imatrix m;
  m.datasets = {"toy"};
  m.chunk_count = 1;
  m.chunk_size = 400;
  std::vector<std::vector<float>> grams;
  for (const char* name : {"l0.weight", "l1.weight"}) {
    ImatrixEntry e;
    e.cols = 256;
    grams.push_back(correlated_gram(name[1] == '0' ? 0.95f : 0.9f));
    e.in_gram = grams.back();
    for (int c = 0; c < 256; ++c) e.in_sum2.push_back(e.in_gram[c * 256 + c]);
    e.counts = {400.0f};
    m.entries[name] = e;
  }
  write_imatrix(m, path("calib.gguf"));
  const Checkpoint c = Checkpoint::open(in);
  ModelQuantizeOptions o;
  o.recipe = Recipe::from_scheme("int4/g64");
  o.recipe.importance_file = path("calib.gguf");
  o.method = &find_method("gptq");
  o.threads = 2;
  ModelReport r;
  {
    auto sink = make_compressed_tensors_model_sink(c, path("ct"));
    r = quantize_model(c, *sink, o);
  }
  // Each weight is what gptq_quantize gives with its own Gram matrix, and
  // its report holds the output errors of that quantization.
  for (int k = 0; k < 2; ++k) {
    const TensorReport& t = r.tensors[k];
    SCOPED_TRACE(t.name);
    GptqStats st;
    const QuantizedTensor q = gptq_quantize({(k ? w1 : w0).data(), {8, 256}}, parse_scheme("int4/g64"), grams[k], {}, &st);
    std::vector<float> want(2048);
    dequantize(q, want.data(), 1);
    EXPECT_EQ(decoded(path("ct"), t.name), want);
    EXPECT_EQ(t.method, "gptq");
    EXPECT_DOUBLE_EQ(t.calib_error, st.gptq_error);
    EXPECT_DOUBLE_EQ(t.calib_error_rtn, st.rtn_error);
    EXPECT_LT(t.calib_error, 0.9 * t.calib_error_rtn);
    EXPECT_TRUE(t.method_note.empty());
    EXPECT_TRUE(r.to_json()["tensors"][k].contains("calib_output_error"));
  }
  EXPECT_LT(r.tensors[2].calib_error, 0);  // the kept bias: nothing measured

  // Without statistics, or without an entry for a weight, or with one made
  // for another model: refused before any output.
  fs::remove_all(path("ct"));
  o.recipe.importance_file.clear();
  {
    auto sink = make_compressed_tensors_model_sink(c, path("ct"));
    const Error e = catch_error([&] { quantize_model(c, *sink, o); });
    EXPECT_EQ(e.kind(), ErrorKind::kUsage);
    EXPECT_NE(std::string(e.what()).find("needs calibration statistics"), std::string::npos) << e.what();
  }
  // A weight the calibration run never reached gets plain rounding, and the
  // report says so.
  m.entries.erase("l1.weight");
  write_imatrix(m, path("calib1.gguf"));
  o.recipe.importance_file = path("calib1.gguf");
  {
    auto sink = make_compressed_tensors_model_sink(c, path("ct"));
    const ModelReport part = quantize_model(c, *sink, o);
    EXPECT_EQ(part.tensors[0].method, "gptq");
    EXPECT_EQ(part.tensors[1].method, "rtn");
    EXPECT_NE(part.tensors[1].method_note.find("no Gram matrix under its name"), std::string::npos);
    EXPECT_EQ(part.notes.size(), 1u);
  }
  std::vector<float> rtn1(2048);
  dequantize(quantize({w1.data(), {8, 256}}, parse_scheme("int4/g64")), rtn1.data(), 1);
  EXPECT_EQ(decoded(path("ct"), "l1.weight"), rtn1);
  fs::remove_all(path("ct"));
  // None of them: a file of another model, or calibrated without --gram.
  m.entries.erase("l0.weight");
  ImatrixEntry other;
  other.cols = 64;
  other.in_sum2.assign(64, 1.0f);
  other.counts = {1.0f};
  m.entries["blk.0.ffn_up.weight"] = other;
  write_imatrix(m, path("calib0.gguf"));
  o.recipe.importance_file = path("calib0.gguf");
  {
    auto sink = make_compressed_tensors_model_sink(c, path("ct"));
    const Error e = catch_error([&] { quantize_model(c, *sink, o); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("no Gram matrix for 'l0.weight' nor for any other"), std::string::npos)
        << e.what();
  }
  ImatrixEntry narrow;  // a layer of 128 inputs
  narrow.cols = 128;
  narrow.in_sum2.assign(128, 1.0f);
  narrow.counts = {1.0f};
  narrow.in_gram.assign(128 * 128, 0.0f);
  for (int i = 0; i < 128; ++i) narrow.in_gram[i * 129] = 1.0f;
  m.entries["l1.weight"] = narrow;
  write_imatrix(m, path("calib2.gguf"));
  o.recipe.importance_file = path("calib2.gguf");
  {
    auto sink = make_compressed_tensors_model_sink(c, path("ct"));
    const Error e = catch_error([&] { quantize_model(c, *sink, o); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
  }
  EXPECT_FALSE(fs::exists(path("ct")));
  // A NaN in a Gram matrix, and --nan keep (the feedback would carry a NaN
  // along its row): refused before any output.
  m = Imatrix{};
  m.datasets = {"toy"};
  m.chunk_count = 1;
  m.chunk_size = 400;
  for (const char* name : {"l0.weight", "l1.weight"}) {
    ImatrixEntry e;
    e.cols = 256;
    e.in_gram = grams[0];
    e.in_sum2.assign(256, 1.0f);
    e.counts = {400.0f};
    m.entries[name] = e;
  }
  m.entries["l1.weight"].in_gram[7] = std::numeric_limits<float>::infinity();
  write_imatrix(m, path("calib3.gguf"));
  o.recipe.importance_file = path("calib3.gguf");
  {
    auto sink = make_compressed_tensors_model_sink(c, path("ct"));
    const Error e = catch_error([&] { quantize_model(c, *sink, o); });
    EXPECT_EQ(e.kind(), ErrorKind::kInput);
    EXPECT_NE(std::string(e.what()).find("'l1.weight.in_gram' holds inf"), std::string::npos) << e.what();
  }
  o.recipe.importance_file = path("calib.gguf");
  o.nan = NanPolicy::kKeep;
  {
    auto sink = make_compressed_tensors_model_sink(c, path("ct"));
    EXPECT_EQ(catch_error([&] { quantize_model(c, *sink, o); }).kind(), ErrorKind::kUsage);
  }
  o.nan = NanPolicy::kRefuse;
  EXPECT_FALSE(fs::exists(path("ct")));
  // GGUF block types cannot take it yet: said before any output.
  auto gguf = make_gguf_model_sink(c, path("out.gguf"), {"toy", false, std::nullopt});
  o.recipe = Recipe::from_scheme("q4_k");
  o.recipe.importance_file = path("calib.gguf");
  EXPECT_EQ(catch_error([&] { quantize_model(c, *gguf, o); }).kind(), ErrorKind::kUsage);
  gguf.reset();
  EXPECT_FALSE(fs::exists(path("out.gguf")));
}

}  // namespace
}  // namespace lowbit
