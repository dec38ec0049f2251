// The compressed-tensors sink through quantize_model on an in-memory toy
// Llama: NVFP4 shards that vLLM fuses (q/k/v, gate/up) share one global
// scale, what lowbit reads back is what the report measured, ggml types are
// refused, and nothing depends on the thread count.
#include "lowbit/pipeline/sinks/compressed_tensors_model_sink.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "lowbit/core/test_support.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/pipeline/test_models.h"

namespace lowbit {
namespace {

namespace fs = std::filesystem;
using testing_support::catch_error;

class CtModelSinkTest : public testing_support::TempDirTest {
 protected:
  ModelReport run(const Checkpoint& in, const std::string& scheme, const std::string& out, int threads) {
    auto sink = make_compressed_tensors_model_sink(in, path(out), {"toy", false, std::nullopt});
    ModelQuantizeOptions o;
    o.recipe = Recipe::from_scheme(scheme);
    o.threads = threads;
    return quantize_model(in, *sink, o);
  }
  float global_scale(const SafetensorsFile& f, const std::string& module) {
    for (const TensorInfo& t : f.tensors()) {
      if (t.name == module + ".weight_global_scale") {
        float v;
        std::memcpy(&v, t.data, 4);
        return v;
      }
    }
    ADD_FAILURE() << "no global scale for " << module;
    return NAN;
  }
};

TEST_F(CtModelSinkTest, FusedNvfp4ShardsShareAGlobalScaleAndReadBackAsReported) {
  const auto tensors = test_models::toy_llama();
  const Checkpoint in = test_models::checkpoint(tensors);
  const ModelReport r = run(in, "nvfp4", "ct", 2);
  const SafetensorsFile f = SafetensorsFile::open(path("ct/model.safetensors"));
  for (int b = 0; b < 2; ++b) {
    const std::string p = "model.layers." + std::to_string(b) + ".";
    const float q = global_scale(f, p + "self_attn.q_proj");
    EXPECT_EQ(q, global_scale(f, p + "self_attn.k_proj"));
    EXPECT_EQ(q, global_scale(f, p + "self_attn.v_proj"));
    EXPECT_EQ(global_scale(f, p + "mlp.gate_proj"), global_scale(f, p + "mlp.up_proj"));
    // o_proj is no shard: its scale is its own (the random weights differ).
    EXPECT_NE(q, global_scale(f, p + "self_attn.o_proj"));
  }
  // lowbit reads the output back dequantized; its error is the report's.
  const Checkpoint out = Checkpoint::open(path("ct"));
  size_t checked = 0;
  for (size_t i = 0; i < out.tensors().size(); ++i) {
    const CheckpointTensor& ct = out.tensors()[i];
    for (size_t j = 0; j < tensors.size(); ++j) {
      if (tensors[j].name != ct.name || !r.tensors[j].quantized) continue;
      std::vector<float> x(ct.numel);
      out.read_float32(i, x.data());
      double e2 = 0, s2 = 0;
      for (size_t k = 0; k < x.size(); ++k) {
        const double d = double(x[k]) - tensors[j].values[k];
        e2 += d * d;
        s2 += double(tensors[j].values[k]) * tensors[j].values[k];
      }
      EXPECT_NEAR(r.tensors[j].qsnr_db, -10 * std::log10(e2 / s2), 1e-9) << ct.name;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 14u);  // 7 linear weights in each of 2 blocks
}

TEST_F(CtModelSinkTest, ThreadCountDoesNotChangeTheOutput) {
  const Checkpoint in = test_models::checkpoint(test_models::toy_llama());
  run(in, "int4/g128/asym", "a", 1);
  run(in, "int4/g128/asym", "b", 2);
  for (const char* file : {"model.safetensors", "config.json"}) {
    if (!fs::exists(path(std::string("a/") + file))) continue;
    std::ifstream fa(path(std::string("a/") + file), std::ios::binary), fb(path(std::string("b/") + file), std::ios::binary);
    const std::string sa{std::istreambuf_iterator<char>(fa), {}}, sb{std::istreambuf_iterator<char>(fb), {}};
    EXPECT_TRUE(sa == sb) << file;
  }
}

TEST_F(CtModelSinkTest, GgmlTypesAreRefusedBeforeAnyOutput) {
  const Checkpoint in = test_models::checkpoint(test_models::toy_llama());
  const Error e = catch_error([&] { run(in, "q8_0", "ct", 2); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage) << e.what();
  EXPECT_TRUE(listing().empty());
}

}  // namespace
}  // namespace lowbit
