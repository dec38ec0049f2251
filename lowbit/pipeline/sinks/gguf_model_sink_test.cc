// The GGUF sink through quantize_model on an in-memory toy Llama: the bytes
// are llama.cpp's reference quantizers', the first matching recipe rule
// decides, the default policy keeps embeddings and norms, the report is
// measured on what a reader decodes, and nothing depends on the thread
// count.
#include "lowbit/pipeline/sinks/gguf_model_sink.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "lowbit/core/test_support.h"
#include "lowbit/ggml/row_codec.h"
#include "lowbit/ggml/type.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/methods/method_registry.h"
#include "lowbit/pipeline/test_models.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

class GgufModelSinkTest : public testing_support::TempDirTest {
 protected:
  ModelReport run(const Checkpoint& in, const Recipe& recipe, const std::string& out, int threads,
                  const Method& method = rtn_method()) {
    auto sink = make_gguf_model_sink(in, path(out), {"toy", false, std::nullopt});
    ModelQuantizeOptions o;
    o.recipe = recipe;
    o.method = &method;
    o.threads = threads;
    return quantize_model(in, *sink, o);
  }
  std::string bytes_of(const std::string& name) {
    std::ifstream f(path(name), std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
  }
};

const Recipe kRecipe = Recipe::parse(R"({"default_scheme": "q4_k", "rules": [
    {"match": "down_proj", "scheme": "q8_0"},
    {"match": "mlp\\.", "scheme": "q5_k"}]})", "recipe.json");

TEST_F(GgufModelSinkTest, BytesAreLlamaCppsAndTheFirstMatchingRuleDecides) {
  const auto tensors = test_models::toy_llama();
  const Checkpoint in = test_models::checkpoint(tensors);
  const ModelReport r = run(in, kRecipe, "out.gguf", 2);
  const GgufFile g = GgufFile::open(path("out.gguf"));
  EXPECT_EQ(g.get_u32("general.file_type"), 15u);  // MOSTLY_Q4_K_M: the default scheme
  ASSERT_EQ(r.tensors.size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const test_models::Tensor& t = tensors[i];
    const TensorReport& tr = r.tensors[i];
    const GgufTensorInfo* gt = g.find_tensor(t.name);
    ASSERT_NE(gt, nullptr) << t.name;
    std::string want;
    if (t.shape.size() == 1 || t.name.find("embed_tokens") != std::string::npos || t.name == "lm_head.weight") {
      want = "F32";  // norms, embeddings and the head are kept by default
    } else if (t.name.find("down_proj") != std::string::npos) {
      want = "Q8_0";  // the first rule, although "mlp\\." matches too
    } else if (t.name.find("mlp.") != std::string::npos) {
      want = "Q5_K";
    } else {
      want = "Q4_K";
    }
    EXPECT_EQ(tr.scheme, want) << t.name;
    EXPECT_EQ(ggml_type_info(gt->type).name, want) << t.name;
    if (want == "F32") {
      ASSERT_EQ(gt->nbytes, t.values.size() * 4);
      EXPECT_EQ(0, std::memcmp(gt->data, t.values.data(), gt->nbytes)) << t.name;
      continue;
    }
    // Byte for byte what llama.cpp's reference quantizer gives the rows.
    const GgmlType type = ggml_type_by_name(want)->type;
    std::vector<uint8_t> ref(gt->nbytes);
    ggml_quantize_rows(type, t.values.data(), t.shape[0], t.shape[1], ref.data(), nullptr, 1);
    EXPECT_EQ(0, std::memcmp(gt->data, ref.data(), ref.size())) << t.name;
    // The report's QSNR is the one of the decoded file.
    std::vector<float> x(t.values.size());
    ggml_dequantize_rows(type, ref.data(), t.shape[0], t.shape[1], x.data(), 1);
    double e2 = 0, s2 = 0;
    for (size_t j = 0; j < x.size(); ++j) {
      e2 += (double(x[j]) - t.values[j]) * (double(x[j]) - t.values[j]);
      s2 += double(t.values[j]) * t.values[j];
    }
    EXPECT_NEAR(tr.qsnr_db, -10 * std::log10(e2 / s2), 1e-9) << t.name;
  }
}

TEST_F(GgufModelSinkTest, ThreadCountChangesNeitherTheFileNorTheReport) {
  const Checkpoint in = test_models::checkpoint(test_models::toy_llama());
  const ModelReport a = run(in, kRecipe, "t1.gguf", 1);
  const ModelReport b = run(in, kRecipe, "t2.gguf", 2);
  EXPECT_EQ(bytes_of("t1.gguf"), bytes_of("t2.gguf"));
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    EXPECT_EQ(a.tensors[i].qsnr_db, b.tensors[i].qsnr_db) << a.tensors[i].name;  // bit for bit
  }
  EXPECT_EQ(a.mean_qsnr_db, b.mean_qsnr_db);
}

TEST_F(GgufModelSinkTest, MseIsLlamaCppsWeightedSearchWithUniformWeights) {
  const auto tensors = test_models::toy_llama();
  const Checkpoint in = test_models::checkpoint(tensors);
  run(in, Recipe::from_scheme("q4_k"), "mse.gguf", 2, find_method("mse"));
  const GgufFile g = GgufFile::open(path("mse.gguf"));
  const test_models::Tensor& t = tensors[2];  // layer 0's q_proj
  ASSERT_EQ(t.name, "model.layers.0.self_attn.q_proj.weight");
  const GgufTensorInfo* gt = g.find_tensor(t.name);
  ASSERT_NE(gt, nullptr);
  const std::vector<float> ones(t.shape[1], 1.0f);
  std::vector<uint8_t> weighted(gt->nbytes), plain(gt->nbytes);
  ggml_quantize_rows(GgmlType::kQ4_K, t.values.data(), t.shape[0], t.shape[1], weighted.data(), ones.data(), 1);
  ggml_quantize_rows(GgmlType::kQ4_K, t.values.data(), t.shape[0], t.shape[1], plain.data(), nullptr, 1);
  EXPECT_EQ(0, std::memcmp(gt->data, weighted.data(), weighted.size()));
  EXPECT_NE(0, std::memcmp(gt->data, plain.data(), plain.size()));  // the search is not the reference path
}

TEST_F(GgufModelSinkTest, HqqAndLowbitSchemesAreRefusedBeforeAnyOutput) {
  const Checkpoint in = test_models::checkpoint(test_models::toy_llama());
  const Error hqq = catch_error([&] { run(in, Recipe::from_scheme("q4_k"), "h.gguf", 2, find_method("hqq")); });
  EXPECT_EQ(hqq.kind(), ErrorKind::kUsage) << hqq.what();
  const Error scheme = catch_error([&] { run(in, Recipe::from_scheme("int4/g128"), "s.gguf", 2); });
  EXPECT_EQ(scheme.kind(), ErrorKind::kUsage);
  EXPECT_NE(std::string(scheme.what()).find("Q4_K"), std::string::npos) << scheme.what();  // lists the types
  EXPECT_TRUE(listing().empty());
}

}  // namespace
}  // namespace lowbit
