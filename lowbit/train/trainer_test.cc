#include "lowbit/train/trainer.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <map>
#include <set>
#include <stdexcept>

#include "lowbit/core/error.h"
#include "lowbit/core/test_support.h"
#include "lowbit/io/safetensors.h"
#include "lowbit/model/test_llama.h"

namespace lowbit {
namespace {

using testing_support::catch_error;

// Text with structure a tiny model learns in a few dozen steps: a cycle
// of a few words with a little noise.
TokenCorpus patterned_corpus() {
  TokenCorpus c;
  c.vocab_size = 256;
  const std::string words[] = {"the cat ", "sat on ", "a mat. ", "then it ", "slept. "};
  std::vector<int32_t> all;
  for (int i = 0; i < 600; ++i) {
    for (char ch : words[(i * 7 + i / 5) % 5]) all.push_back(static_cast<unsigned char>(ch));
  }
  const size_t held = all.size() / 10;
  c.train.assign(all.begin(), all.end() - static_cast<std::ptrdiff_t>(held));
  c.heldout.assign(all.end() - static_cast<std::ptrdiff_t>(held), all.end());
  return c;
}

TrainConfig small_config(int64_t steps) {
  TrainConfig c;
  c.model = test_llama::tiny_config();
  c.model.vocab_size = 0;
  c.model.dim = 32;
  c.model.heads = 4;
  c.model.kv_heads = 2;
  c.model.head_dim = 8;
  c.model.rope_dim = 8;
  c.model.ffn_dim = 64;
  c.model.context_length = 32;
  c.model.tied_embeddings = true;
  c.files = {"patterned"};
  c.batch = 4;
  c.seq = 32;
  c.accum = 2;
  c.steps = steps;
  c.warmup = 3;
  c.lr = 1e-2;
  c.min_lr = 1e-3;
  c.eval_every = 5;
  c.eval_windows = 8;
  c.checkpoint_every = 4;
  return c;
}

class TrainerTest : public testing_support::TempDirTest {};

TEST_F(TrainerTest, LearnsAndWritesItsOutputs) {
  Trainer t(small_config(40), patterned_corpus(), 2);
  const double before = t.heldout_loss();
  int calls = 0;
  t.run(dir_.string(), false, [&](const TrainProgress& p) {
    ++calls;
    EXPECT_EQ(p.steps, 40);
    EXPECT_GT(p.tokens_per_second, 0);
  });
  EXPECT_EQ(calls, 40);
  ASSERT_EQ(t.log().size(), 40u);
  const double after = t.log().back().heldout;
  EXPECT_NEAR(before, std::log(256.0), 0.1);  // uniform at the start
  EXPECT_LT(after, 0.5 * before) << "held-out loss " << before << " -> " << after;
  EXPECT_TRUE(std::isfinite(t.log()[4].heldout));
  EXPECT_FALSE(std::isfinite(t.log()[3].heldout));
  for (const char* f : {"checkpoint.safetensors", "log.json", "loss.svg"}) {
    EXPECT_TRUE(std::filesystem::exists(dir_ / f)) << f;
  }
  EXPECT_EQ(SafetensorsFile::open(path("checkpoint.safetensors")).metadata().at("lowbit.train.step"), "40");
}

// The loss log and the final weights: at 1 and 2 threads, and for a run
// interrupted after its step-8 checkpoint and resumed, bit for bit.
TEST_F(TrainerTest, ThreadInvariantAndResumesBitIdentically) {
  const std::filesystem::path a = dir_ / "a", b = dir_ / "b", c = dir_ / "c";
  for (const auto& d : {a, b, c}) std::filesystem::create_directory(d);
  Trainer one(small_config(12), patterned_corpus(), 1);
  one.run(a.string(), false, nullptr);
  Trainer two(small_config(12), patterned_corpus(), 2);
  two.run(b.string(), false, nullptr);
  const auto same = [](const Trainer& x, const Trainer& y) {
    ASSERT_EQ(x.log().size(), y.log().size());
    for (size_t i = 0; i < x.log().size(); ++i) {
      EXPECT_EQ(std::memcmp(&x.log()[i].loss, &y.log()[i].loss, sizeof(double)), 0) << "step " << i + 1;
      EXPECT_EQ(std::memcmp(&x.log()[i].grad_norm, &y.log()[i].grad_norm, sizeof(double)), 0) << "step " << i + 1;
    }
    const auto& px = const_cast<Trainer&>(x).model().params();
    const auto& py = const_cast<Trainer&>(y).model().params();
    EXPECT_EQ(std::memcmp(px.data(), py.data(), px.size() * sizeof(float)), 0);
  };
  same(one, two);
  {
    Trainer interrupted(small_config(12), patterned_corpus(), 2);
    EXPECT_THROW(interrupted.run(c.string(), false,
                                 [](const TrainProgress& p) {
                                   if (p.step == 10) throw std::runtime_error("killed");
                                 }),
                 std::runtime_error);
  }
  EXPECT_EQ(SafetensorsFile::open((c / "checkpoint.safetensors").string()).metadata().at("lowbit.train.step"), "8");
  Trainer resumed(small_config(12), patterned_corpus(), 1);
  resumed.run(c.string(), true, nullptr);
  same(one, resumed);
}

TEST_F(TrainerTest, ANonFiniteLossStopsAndKeepsTheLastCheckpoint) {
  Trainer t(small_config(12), patterned_corpus(), 2);
  const Error e = catch_error([&] {
    t.run(dir_.string(), false, [&](const TrainProgress& p) {
      if (p.step == 5) t.model().params()[static_cast<size_t>(t.model().layout().find("blk.1.attn_v.weight")->offset)] = INFINITY;
    });
  });
  const std::string what = e.what();
  EXPECT_NE(what.find("step 6"), std::string::npos) << what;
  EXPECT_NE(what.find("blk 1"), std::string::npos) << what;
  EXPECT_EQ(SafetensorsFile::open(path("checkpoint.safetensors")).metadata().at("lowbit.train.step"), "4");
}

TEST_F(TrainerTest, ResumeRefusesAnotherConfigOrABadCheckpoint) {
  {
    Trainer t(small_config(4), patterned_corpus(), 2);
    t.run(dir_.string(), false, nullptr);
  }
  TrainConfig other = small_config(4);
  other.lr = 5e-3;
  Trainer t2(other, patterned_corpus(), 2);
  const std::string what = catch_error([&] { t2.run(dir_.string(), true, nullptr); }).what();
  EXPECT_NE(what.find("train.lr"), std::string::npos) << what;
  // A truncated file is refused by the reader, and nothing changes.
  const auto size = std::filesystem::file_size(dir_ / "checkpoint.safetensors");
  std::filesystem::resize_file(dir_ / "checkpoint.safetensors", size / 2);
  Trainer t3(small_config(4), patterned_corpus(), 2);
  const std::vector<float> before = t3.model().params();
  EXPECT_THROW(t3.run(dir_.string(), true, nullptr), Error);
  EXPECT_EQ(t3.model().params(), before);
}

// A low-precision run is as exact as a float32 one: the same bits at 1
// and 2 threads, and after an interruption and --resume, with delayed
// scaling's history, stochastic rounding, the Hadamard transform, Kahan
// master weights and dynamic loss scaling all in the state.
TEST_F(TrainerTest, ALowPrecisionRunIsThreadInvariantAndResumesExactly) {
  TrainConfig cfg = small_config(12);
  cfg.precision_json = R"({
    "linear": {"forward": {"x": "float8_e4m3fn/tensor+delayed:4", "w": "nvfp4/b16x16"},
               "dgrad": {"dy": "float8_e5m2/tensor/round=stochastic", "w": "nvfp4/b16x16"},
               "wgrad": {"dy": "nvfp4/round=stochastic+rht", "x": "nvfp4+rht"}},
    "keep": [{"match": "^output$", "linear": "bfloat16"}],
    "master_weights": "bfloat16+kahan",
    "loss_scale": "dynamic"})";
  const std::filesystem::path a = dir_ / "a", b = dir_ / "b", c = dir_ / "c";
  for (const auto& d : {a, b, c}) std::filesystem::create_directory(d);
  Trainer one(cfg, patterned_corpus(), 1);
  one.run(a.string(), false, nullptr);
  Trainer two(cfg, patterned_corpus(), 2);
  two.run(b.string(), false, nullptr);
  {
    Trainer interrupted(cfg, patterned_corpus(), 2);
    EXPECT_THROW(interrupted.run(c.string(), false,
                                 [](const TrainProgress& p) {
                                   if (p.step == 10) throw std::runtime_error("killed");
                                 }),
                 std::runtime_error);
  }
  Trainer resumed(cfg, patterned_corpus(), 2);
  resumed.run(c.string(), true, nullptr);
  for (const Trainer* t : {&two, &resumed}) {
    ASSERT_EQ(t->log().size(), one.log().size());
    for (size_t i = 0; i < one.log().size(); ++i) {
      EXPECT_EQ(std::memcmp(&t->log()[i].loss, &one.log()[i].loss, sizeof(double)), 0) << "step " << i + 1;
    }
    EXPECT_EQ(std::memcmp(const_cast<Trainer*>(t)->model().params().data(), one.model().params().data(),
                          one.model().params().size() * sizeof(float)),
              0);
  }
  // It learned, and differs from float32.
  Trainer fp32(small_config(12), patterned_corpus(), 2);
  std::filesystem::create_directory(dir_ / "d");
  fp32.run((dir_ / "d").string(), false, nullptr);
  EXPECT_LT(one.log().back().heldout, one.log().front().loss);
  EXPECT_NE(one.log().back().loss, fp32.log().back().loss);
  EXPECT_EQ(one.log().back().loss_scale, 65536.0);
}

TEST_F(TrainerTest, AnIdentityRecipeIsFloat32BitForBit) {
  TrainConfig cfg = small_config(6);
  cfg.precision_json = R"({"linear": "float32", "master_weights": "float32"})";
  Trainer with(cfg, patterned_corpus(), 2), without(small_config(6), patterned_corpus(), 2);
  std::filesystem::create_directory(dir_ / "w");
  with.run((dir_ / "w").string(), false, nullptr);
  without.run(dir_.string(), false, nullptr);
  EXPECT_EQ(with.model().params(), without.model().params());
}

// Dynamic loss scaling over float16 gradients: a scale of 2^40 overflows,
// so the first steps are skipped with the scale halved each time, then
// training proceeds.
TEST_F(TrainerTest, DynamicLossScalingSkipsOverflowingSteps) {
  TrainConfig cfg = small_config(40);
  cfg.precision_json = R"({"linear": {"all": "float16"}, "loss_scale": "dynamic:40"})";
  Trainer t(cfg, patterned_corpus(), 2);
  t.run(dir_.string(), false, nullptr);
  ASSERT_TRUE(t.log().front().skipped);
  EXPECT_EQ(t.log().front().loss_scale, std::ldexp(1.0, 40));
  int skipped = 0;
  for (const TrainLogRow& r : t.log()) skipped += r.skipped;
  EXPECT_GT(skipped, 0);
  EXPECT_LT(skipped, 30);
  EXPECT_FALSE(t.log().back().skipped);
  EXPECT_EQ(t.log().back().loss_scale, std::ldexp(1.0, 40 - skipped));
  EXPECT_LT(t.log().back().heldout, 0.7 * t.log().front().loss);
}

// bfloat16 master weights: every weight stays a bfloat16 number; Kahan
// and Collage keep a bfloat16 second buffer and end nearer to float32.
TEST_F(TrainerTest, MasterWeightsStayBfloat16) {
  const auto bf16 = [](float v) {
    uint32_t u;
    std::memcpy(&u, &v, 4);
    return (u & 0xFFFFu) == 0;
  };
  Trainer fp32(small_config(30), patterned_corpus(), 2);
  std::filesystem::create_directory(dir_ / "f");
  fp32.run((dir_ / "f").string(), false, nullptr);
  std::map<std::string, double> distance;
  for (const char* mode : {"bfloat16", "bfloat16+kahan", "bfloat16+collage"}) {
    TrainConfig cfg = small_config(30);
    cfg.precision_json = std::string(R"({"master_weights": ")") + mode + "\"}";
    Trainer t(cfg, patterned_corpus(), 2);
    const std::filesystem::path d = dir_ / mode;
    std::filesystem::create_directory(d);
    t.run(d.string(), false, nullptr);
    for (float v : t.model().params()) ASSERT_TRUE(bf16(v)) << mode << " " << v;
    double dist = 0;
    for (size_t i = 0; i < fp32.model().params().size(); ++i) {
      const double e = double{t.model().params()[i]} - fp32.model().params()[i];
      dist += e * e;
    }
    distance[mode] = dist;
  }
  EXPECT_LT(distance["bfloat16+kahan"], distance["bfloat16"]);
  EXPECT_LT(distance["bfloat16+collage"], distance["bfloat16"]);
}

// QAT: LSQ+ int4 and ternary weights learn, and the exported model holds
// the quantized weights (at most 16 or 3 values per output channel).
TEST_F(TrainerTest, QuantizationAwareTrainingLearnsOnTheGrid) {
  for (const char* qat : {"lsq+:int4", "ternary"}) {
    TrainConfig cfg = small_config(30);
    cfg.precision_json = std::string(R"({"qat": ")") + qat + "\"}";
    Trainer t(cfg, patterned_corpus(), 2);
    const std::filesystem::path d = dir_ / (qat[0] == 'l' ? "lsq" : "ternary");
    std::filesystem::create_directory(d);
    t.run(d.string(), false, nullptr);
    EXPECT_LT(t.log().back().heldout, 0.7 * t.log().front().loss) << qat;
    const bool lsq = qat[0] == 'l';
    EXPECT_EQ(t.model().layout().find("blk.0.ffn_up.qat_scale") != nullptr, lsq);
    int64_t rows = 0, cols = 0;
    t.model().linear_weight(4, &rows, &cols);
    const std::vector<float> w = t.model().effective_weight(4);
    for (int64_t r = 0; r < rows; ++r) {
      std::set<float> distinct(w.begin() + r * cols, w.begin() + (r + 1) * cols);
      EXPECT_LE(distinct.size(), lsq ? 16u : 3u) << qat << " row " << r;
    }
  }
}

TEST(Trainer, RefusesACorpusThatDoesNotFit) {
  TokenCorpus c = patterned_corpus();
  TrainConfig cfg = small_config(4);
  cfg.model.vocab_size = 100;  // bytes need 256
  EXPECT_THROW(Trainer(cfg, c, 1), Error);
  c.heldout.resize(10);
  EXPECT_THROW(Trainer(small_config(4), c, 1), Error);
}

}  // namespace
}  // namespace lowbit
