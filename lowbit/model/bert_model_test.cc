#include "lowbit/model/bert_model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"
#include "lowbit/io/checkpoint.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/model/test_bert.h"

namespace lowbit {
namespace {

using testing_support::catch_error;
using test_bert::RandomWeights;
using test_bert::tiny_config;

// An independent reference in double, written straight from the
// definitions (no shared code with the model): per sentence, per head.
std::vector<double> reference_embedding(const BertConfig& c, const RandomWeights& w, const std::vector<int32_t>& ids,
                                        bool normalize) {
  const int64_t n = static_cast<int64_t>(ids.size()), H = c.hidden_size, I = c.intermediate_size;
  const int64_t nh = c.num_heads, d = H / nh;
  using Mat = std::vector<double>;
  const auto ln = [&](Mat& x, const std::string& p) {
    const auto& g = w.at(p + ".weight");
    const auto& b = w.at(p + ".bias");
    for (int64_t t = 0; t < n; ++t) {
      double mean = 0, var = 0;
      for (int64_t j = 0; j < H; ++j) mean += x[t * H + j] / H;
      for (int64_t j = 0; j < H; ++j) var += (x[t * H + j] - mean) * (x[t * H + j] - mean) / H;
      for (int64_t j = 0; j < H; ++j) x[t * H + j] = (x[t * H + j] - mean) / std::sqrt(var + 1e-12) * g[j] + b[j];
    }
  };
  const auto dense = [&](const Mat& x, int64_t in, int64_t out, const std::string& p) {
    const auto& W = w.at(p + ".weight");
    const auto& B = w.at(p + ".bias");
    Mat y(static_cast<size_t>(n * out));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t o = 0; o < out; ++o) {
        double s = B[o];
        for (int64_t i = 0; i < in; ++i) s += x[t * in + i] * W[o * in + i];
        y[t * out + o] = s;
      }
    }
    return y;
  };
  Mat h(static_cast<size_t>(n * H));
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t j = 0; j < H; ++j) {
      h[t * H + j] = double(w.at("embeddings.word_embeddings.weight")[ids[t] * H + j]) +
                     w.at("embeddings.position_embeddings.weight")[t * H + j] +
                     w.at("embeddings.token_type_embeddings.weight")[j];
    }
  }
  ln(h, "embeddings.LayerNorm");
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const std::string p = "encoder.layer." + std::to_string(l) + ".";
    const Mat q = dense(h, H, H, p + "attention.self.query"), k = dense(h, H, H, p + "attention.self.key"),
              v = dense(h, H, H, p + "attention.self.value");
    Mat ctx(static_cast<size_t>(n * H), 0.0);
    for (int64_t hd = 0; hd < nh; ++hd) {
      for (int64_t i = 0; i < n; ++i) {
        std::vector<double> s(static_cast<size_t>(n));
        double mx = -1e300, sum = 0;
        for (int64_t j = 0; j < n; ++j) {
          double dot = 0;
          for (int64_t e = 0; e < d; ++e) dot += q[i * H + hd * d + e] * k[j * H + hd * d + e];
          s[j] = dot / std::sqrt(double(d));
          mx = std::max(mx, s[j]);
        }
        for (int64_t j = 0; j < n; ++j) sum += s[j] = std::exp(s[j] - mx);
        for (int64_t j = 0; j < n; ++j) {
          for (int64_t e = 0; e < d; ++e) ctx[i * H + hd * d + e] += s[j] / sum * v[j * H + hd * d + e];
        }
      }
    }
    Mat a = dense(ctx, H, H, p + "attention.output.dense");
    for (size_t i = 0; i < a.size(); ++i) a[i] += h[i];
    ln(a, p + "attention.output.LayerNorm");
    h = a;
    Mat m = dense(h, H, I, p + "intermediate.dense");
    for (double& x : m) x = 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
    Mat o = dense(m, I, H, p + "output.dense");
    for (size_t i = 0; i < o.size(); ++i) o[i] += h[i];
    ln(o, p + "output.LayerNorm");
    h = o;
  }
  std::vector<double> e(static_cast<size_t>(H), 0.0);
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t j = 0; j < H; ++j) e[j] += h[t * H + j] / n;
  }
  if (normalize) {
    double ss = 0;
    for (double x : e) ss += x * x;
    for (double& x : e) x /= std::sqrt(ss);
  }
  return e;
}

std::vector<std::vector<int32_t>> random_sentences(int count, int max_len, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<std::vector<int32_t>> out;
  for (int s = 0; s < count; ++s) {
    const int len = 2 + static_cast<int>(rng() % static_cast<uint32_t>(max_len - 1));
    std::vector<int32_t> ids = {1};
    for (int t = 1; t + 1 < len; ++t) ids.push_back(3 + static_cast<int32_t>(rng() % 47));
    ids.push_back(2);
    out.push_back(ids);
  }
  return out;
}

SentencePipeline mean_normalize(int64_t max_len) {
  SentencePipeline p;
  p.normalize = true;
  p.max_seq_length = max_len;
  return p;
}

TEST(BertModel, MatchesAnIndependentDoubleReference) {
  const BertConfig c = tiny_config();
  RandomWeights w;
  const BertModel model(c, w.source());
  // Lengths up to 300 cross attention's 64-row tiles and, summed, the
  // matmul's 256-row tiles.
  const auto sentences = random_sentences(12, 300, 5);
  const std::vector<float> e = model.embed(sentences, mean_normalize(300), 2);
  ASSERT_EQ(e.size(), sentences.size() * 16);
  double worst = 0;
  for (size_t s = 0; s < sentences.size(); ++s) {
    const std::vector<double> ref = reference_embedding(c, w, sentences[s], true);
    for (int j = 0; j < 16; ++j) worst = std::max(worst, std::abs(e[s * 16 + j] - ref[j]));
  }
  EXPECT_LT(worst, 2e-6);
}

TEST(BertModel, BitIdenticalAcrossThreadCounts) {
  const BertConfig c = tiny_config();
  RandomWeights w;
  const BertModel model(c, w.source());
  const auto sentences = random_sentences(40, 120, 9);
  const std::vector<float> e1 = model.embed(sentences, mean_normalize(300), 1);
  for (int threads : {2, 3, 8}) {
    const std::vector<float> et = model.embed(sentences, mean_normalize(300), threads);
    ASSERT_EQ(std::memcmp(e1.data(), et.data(), e1.size() * sizeof(float)), 0) << threads << " threads";
  }
  // One long sentence alone takes the other path (threads inside attention).
  const std::vector<std::vector<int32_t>> one = {sentences[0]};
  EXPECT_EQ(model.embed(one, mean_normalize(300), 1), model.embed(one, mean_normalize(300), 3));
}

TEST(BertModel, QuantPlanFloat32IsExactThreadInvariantAndPerSentence) {
  const BertConfig c = tiny_config();
  RandomWeights w;
  const BertModel model(c, w.source());
  std::vector<std::vector<int32_t>> batch = {{1, 5, 9, 2}, {1, 7, 3, 3, 8, 11, 2}, {1, 4, 2}};
  const SentencePipeline p = mean_normalize(300);
  const auto plan = [&](const char* json) {
    return std::make_shared<const QuantPlan>(QuantPlan::resolve(PlanRules::parse(json, "t"), model.linears(),
                                                                c.num_layers, 0, nullptr));
  };
  const std::vector<float> ref = model.embed(batch, p, 2);
  const std::vector<float> f32 =
      model.with_plan(plan(R"({"inputs": [{"match": ".", "scheme": "float32/tensor"}],
                               "attention": [{"match": ".", "scheme": "float32/channel"}]})"))
          .embed(batch, p, 2);
  EXPECT_EQ(ref, f32);
  // Per-tensor dynamic scales are taken per sentence: the quantized input
  // of sentence 0 is the same alone or beside a sentence with larger values.
  const BertModel q = model.with_plan(plan(R"({"inputs": [{"match": "encoder", "scheme": "int4/tensor"}],
                                               "attention": [{"match": "\\.p$", "scheme": "e4m3fn/channel"}]})"));
  const std::vector<float> a = q.embed(batch, p, 1), b = q.embed(batch, p, 2);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, ref);
  // Alone, sentence 1 differs from its batched self only by the matmul's
  // blocking (last bits), not by an int4 step of another scale.
  const std::vector<float> alone = q.embed(std::span(batch).subspan(1, 1), p, 1);
  const int64_t d = model.embedding_dim(p);
  for (int64_t j = 0; j < d; ++j) EXPECT_NEAR(alone[static_cast<size_t>(j)], a[static_cast<size_t>(d + j)], 1e-5);
  EXPECT_THROW(model.with_plan(plan(R"({"kv": "int8"})")), Error);
  // Weights replaced in a copy; the original is untouched.
  const BertModel zero = model.with_weights([](const Linear& l) -> std::optional<std::vector<float>> {
    return std::vector<float>(l.weight().size(), 0.0f);
  });
  EXPECT_NE(zero.embed(batch, p, 1), ref);
  EXPECT_EQ(model.embed(batch, p, 1), ref);
}

TEST(BertModel, PoolingModesAndNoNormalization) {
  const BertConfig c = tiny_config();
  RandomWeights w;
  const BertModel model(c, w.source());
  const auto sentences = random_sentences(3, 20, 11);
  SentencePipeline p = mean_normalize(300);
  p.normalize = false;
  p.pooling.cls = true;  // cls + mean: 32 values
  EXPECT_EQ(model.embedding_dim(p), 32);
  const std::vector<float> e = model.embed(sentences, p, 1);
  ASSERT_EQ(e.size(), 3u * 32);
  std::vector<float> hidden;
  model.forward(sentences, hidden, 1);
  // cls: the first token's state; mean: the unnormalized reference.
  EXPECT_EQ(std::vector<float>(e.begin(), e.begin() + 16), std::vector<float>(hidden.begin(), hidden.begin() + 16));
  const std::vector<double> ref = reference_embedding(c, w, sentences[0], false);
  for (int j = 0; j < 16; ++j) EXPECT_NEAR(e[16 + j], ref[j], 2e-6);
}

TEST(BertModel, RefusesBadTokensAndLengths) {
  const BertConfig c = tiny_config();
  RandomWeights w;
  const BertModel model(c, w.source());
  Error e = catch_error([&] { model.embed(std::vector<std::vector<int32_t>>{{1, 50, 2}}, mean_normalize(300), 1); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("50"), std::string::npos) << e.what();
  e = catch_error([&] { model.embed(std::vector<std::vector<int32_t>>{{1, 3, 4, 2}}, mean_normalize(3), 1); });
  EXPECT_NE(std::string(e.what()).find("max_seq_length"), std::string::npos) << e.what();
  e = catch_error([&] { model.embed(std::vector<std::vector<int32_t>>{{}}, mean_normalize(3), 1); });
  EXPECT_EQ(e.kind(), ErrorKind::kUsage);
}

TEST(BertModel, NonFiniteLayerOutputNamesTheLayer) {
  const BertConfig c = tiny_config();
  RandomWeights w;
  w.source()("encoder.layer.1.intermediate.dense.weight", {c.intermediate_size, c.hidden_size});
  // An infinite weight: inf or NaN in the intermediate, NaN after the
  // LayerNorm that ends the layer.
  w.tensors["encoder.layer.1.intermediate.dense.weight"][5] = INFINITY;
  const BertModel model(c, w.source());
  const Error e =
      catch_error([&] { model.embed(std::vector<std::vector<int32_t>>{{1, 7, 8, 2}}, mean_normalize(300), 2); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("encoder layer 1"), std::string::npos) << e.what();
}

// A safetensors file in memory: 8-byte header length, JSON header, data.
SafetensorsFile to_safetensors(const std::map<std::string, std::vector<float>>& tensors,
                               const std::map<std::string, std::vector<int64_t>>& shapes, const std::string& prefix) {
  nlohmann::json header = nlohmann::json::object();
  std::vector<std::byte> data;
  for (const auto& [name, v] : tensors) {
    const size_t begin = data.size();
    data.resize(begin + v.size() * sizeof(float));
    std::memcpy(data.data() + begin, v.data(), v.size() * sizeof(float));
    header[prefix + name] = {{"dtype", "F32"}, {"shape", shapes.at(name)}, {"data_offsets", {begin, data.size()}}};
  }
  const std::string h = header.dump();
  std::vector<std::byte> bytes(8 + h.size());
  const uint64_t len = h.size();
  std::memcpy(bytes.data(), &len, 8);
  std::memcpy(bytes.data() + 8, h.data(), h.size());
  bytes.insert(bytes.end(), data.begin(), data.end());
  return SafetensorsFile::from_memory(std::move(bytes), "tiny.safetensors");
}

TEST(BertModel, LoadsACheckpointWithOrWithoutTheBertPrefix) {
  const BertConfig c = tiny_config();
  RandomWeights w;
  const BertModel direct(c, w.source());
  const auto sentences = random_sentences(4, 30, 3);
  const std::vector<float> want = direct.embed(sentences, mean_normalize(300), 1);
  for (const std::string prefix : {"", "bert."}) {
    const Checkpoint ck = Checkpoint::from_memory(to_safetensors(w.tensors, w.shapes, prefix));
    const BertModel loaded = BertModel::load(ck, c);
    EXPECT_EQ(loaded.embed(sentences, mean_normalize(300), 2), want) << prefix;
    EXPECT_EQ(loaded.linears().size(), 12u);
    EXPECT_EQ(loaded.linears()[0]->name(), prefix + "encoder.layer.0.attention.self.query");
  }
  // A config that does not fit the tensors names the tensor and both shapes.
  BertConfig wrong = c;
  wrong.intermediate_size = 41;
  const Checkpoint ck = Checkpoint::from_memory(to_safetensors(w.tensors, w.shapes, ""));
  const Error e = catch_error([&] { BertModel::load(ck, wrong); });
  EXPECT_EQ(e.kind(), ErrorKind::kInput);
  EXPECT_NE(std::string(e.what()).find("intermediate.dense"), std::string::npos) << e.what();
  EXPECT_NE(std::string(e.what()).find("[40, 16], the config says [41, 16]"), std::string::npos) << e.what();
}

}  // namespace
}  // namespace lowbit
