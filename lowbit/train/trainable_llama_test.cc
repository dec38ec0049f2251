#include "lowbit/train/trainable_llama.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/model/test_llama.h"

namespace lowbit {
namespace {

using test_llama::tiny_config;
const auto tokens = test_llama::random_tokens;

// Every parameter tensor's gradient against central finite differences of
// the loss, on a tiny model with weights large enough that every layer is
// far from linear. Tied and untied heads, grouped-query attention.
void check_gradients(bool tied) {
  LlamaConfig c = tiny_config();
  c.tied_embeddings = tied;
  TrainableLlama m(c);
  m.init(7);
  for (const ParamTensor& t : m.layout().tensors()) {
    float* w = m.params().data() + t.offset;
    // Norm weights away from 1, matrices 10x GPT-2's scale.
    for (int64_t i = 0; i < t.size; ++i) w[i] = t.shape.size() == 1 ? 1.0f + 0.3f * std::sin(float(i)) : w[i] * 10;
  }
  const int64_t batch = 2, seq = 6;
  const auto in = tokens(batch * seq, c.vocab_size, 1), tg = tokens(batch * seq, c.vocab_size, 2);
  m.forward(in, tg, batch, seq, 1);
  m.backward(1.0f, 1);
  const std::vector<float> grad = m.grads();
  int checked = 0;
  for (const ParamTensor& t : m.layout().tensors()) {
    // A few elements of every tensor, spread over it.
    for (int64_t j = 0; j < 4; ++j) {
      const int64_t i = t.offset + (j * 7919 + 3) % t.size;
      float& w = m.params()[static_cast<size_t>(i)];
      const float w0 = w;
      const float h = 1e-2f;
      w = w0 + h;
      const double up = m.forward(in, tg, batch, seq, 1);
      w = w0 - h;
      const double down = m.forward(in, tg, batch, seq, 1);
      w = w0;
      const double fd = (up - down) / (2.0 * h);
      const double g = grad[static_cast<size_t>(i)];
      EXPECT_NEAR(g, fd, 3e-3 + 2e-2 * std::fabs(fd)) << t.name << " element " << i - t.offset;
      ++checked;
    }
  }
  EXPECT_EQ(checked, 4 * static_cast<int>(m.layout().tensors().size()));
}

TEST(TrainableLlama, GradientsMatchFiniteDifferencesUntied) { check_gradients(false); }
TEST(TrainableLlama, GradientsMatchFiniteDifferencesTied) { check_gradients(true); }

// Loss and every gradient bit-identical at 1, 2 and 3 threads, on shapes
// that cross the matmul and gradient tiles.
TEST(TrainableLlama, ThreadInvariantBitForBit) {
  LlamaConfig c = tiny_config();
  c.dim = 48;
  c.heads = 6;
  c.kv_heads = 2;
  c.head_dim = 8;
  c.rope_dim = 8;
  c.ffn_dim = 136;
  c.vocab_size = 300;
  c.context_length = 140;
  const int64_t batch = 3, seq = 130;
  const auto in = tokens(batch * seq, c.vocab_size, 3), tg = tokens(batch * seq, c.vocab_size, 4);
  std::vector<float> first_grads;
  double first_loss = 0;
  for (int threads : {1, 2, 3}) {
    TrainableLlama m(c);
    m.init(11);
    const double loss = m.forward(in, tg, batch, seq, threads);
    m.backward(1.0f / float(batch * seq), threads);
    if (first_grads.empty()) {
      first_grads = m.grads();
      first_loss = loss;
      // An untrained model predicts about uniformly.
      EXPECT_NEAR(loss / double(batch * seq), std::log(300.0), 0.1);
    } else {
      EXPECT_EQ(std::memcmp(&loss, &first_loss, sizeof loss), 0) << threads << " threads";
      ASSERT_EQ(std::memcmp(m.grads().data(), first_grads.data(), first_grads.size() * sizeof(float)), 0)
          << threads << " threads";
    }
  }
}

TEST(TrainableLlama, RefusesBadShapesAndTokens) {
  LlamaConfig c = tiny_config();
  c.heads = 3;  // dim 8 is not 3 heads of 4
  EXPECT_THROW(TrainableLlama{c}, Error);
  TrainableLlama m(tiny_config());
  m.init(1);
  const auto ok = tokens(6, tiny_config().vocab_size, 1);
  std::vector<int32_t> bad = ok;
  bad[2] = static_cast<int32_t>(tiny_config().vocab_size);
  EXPECT_THROW(m.forward(bad, ok, 1, 6, 1), Error);
  // Longer than the context.
  const auto long_in = tokens(40, tiny_config().vocab_size, 1);
  EXPECT_THROW(m.forward(long_in, long_in, 1, 40, 1), Error);
  // A NaN weight is named by the block where it shows.
  m.params()[static_cast<size_t>(m.layout().find("blk.1.ffn_up.weight")->offset)] = NAN;
  try {
    m.forward(ok, ok, 1, 6, 1);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("blk 1"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace lowbit
