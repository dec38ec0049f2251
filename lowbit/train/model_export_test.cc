#include "lowbit/train/model_export.h"

#include <gtest/gtest.h>

#include <cmath>

#include "lowbit/core/test_support.h"
#include "lowbit/io/gguf_reader.h"
#include "lowbit/model/llama_model.h"
#include "lowbit/model/test_llama.h"
#include "lowbit/model/tokenizer.h"
#include "lowbit/train/bpe_trainer.h"
#include "lowbit/train/trainable_llama.h"

namespace lowbit {
namespace {

class ModelExport : public testing_support::TempDirTest {};

// The exported GGUF runs in lowbit's runtime to the trainer's numbers: the
// runtime's logits give each token the loss the trainer computed, so the
// trainer and the runtime are the same model. Tied and untied heads.
TEST_F(ModelExport, TheRuntimeReadsWhatTheTrainerTrained) {
  for (bool tied : {true, false}) {
    LlamaConfig c = test_llama::tiny_config();
    c.vocab_size = 257;
    c.tied_embeddings = tied;
    TrainableLlama m(c);
    m.init(3);
    // Weights away from the initialization's small scale, norms away from 1.
    for (const ParamTensor& t : m.layout().tensors()) {
      float* w = m.params().data() + t.offset;
      for (int64_t i = 0; i < t.size; ++i) w[i] = t.shape.size() == 1 ? 1.0f + 0.2f * std::cos(float(i)) : w[i] * 20;
    }
    const TrainedBpe bytes = train_bpe({}, {257, "smollm", 2});
    const std::string file = path(tied ? "tied.gguf" : "untied.gguf");
    export_llama_gguf(file, m, bytes, {{"general.name", "test"}});

    const GgufFile g = GgufFile::open(file);
    EXPECT_EQ(g.get_string("general.architecture"), "llama");
    EXPECT_EQ(g.find_tensor("output.weight") != nullptr, !tied);
    EXPECT_EQ(load_tokenizer(file)->vocab_size(), 257);

    const int64_t seq = 20;
    const auto in = test_llama::random_tokens(seq, 257, 5);
    std::vector<int32_t> tg(in.begin() + 1, in.end());
    tg.push_back(7);
    std::vector<double> trainer_loss;
    m.forward(in, tg, 1, seq, 2, &trainer_loss);

    const LlamaModel runtime = LlamaModel::load(file, 2);
    KvCache cache = runtime.new_cache(seq);
    std::vector<float> logits(static_cast<size_t>(seq * 257));
    runtime.forward(in, cache, 0, logits.data(), 2);
    for (int64_t r = 0; r < seq; ++r) {
      const float* z = logits.data() + r * 257;
      double mx = z[0], sum = 0;
      for (int j = 1; j < 257; ++j) mx = std::max(mx, double{z[j]});
      for (int j = 0; j < 257; ++j) sum += std::exp(z[j] - mx);
      const double loss = std::log(sum) + mx - z[tg[static_cast<size_t>(r)]];
      EXPECT_NEAR(loss, trainer_loss[static_cast<size_t>(r)], 1e-4 * (1 + loss)) << "position " << r;
    }
  }
}

TEST_F(ModelExport, RefusesAVocabularyMismatch) {
  LlamaConfig c = test_llama::tiny_config();  // 30 tokens
  TrainableLlama m(c);
  const TrainedBpe bytes = train_bpe({}, {257, "smollm", 2});
  EXPECT_THROW(export_llama_gguf(path("x.gguf"), m, bytes, {}), Error);
  EXPECT_TRUE(listing().empty());
}

}  // namespace
}  // namespace lowbit
