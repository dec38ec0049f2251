// Sentence embeddings from token states, as sentence-transformers' Pooling
// and Normalize modules compute them.
//
// Each enabled mode gives `dim` values and the modes are concatenated in
// sentence-transformers' order: cls, max, mean, mean_sqrt_len. Every token
// of the sentence counts, [CLS] and [SEP] included (sentence-transformers'
// attention mask covers them; only padding is left out, and lowbit runs
// each sentence at its own length, so it has none).
//
// The sums run over the tokens in order, in double, and round once: the
// result depends on nothing but the token states, never on threads.
#pragma once

#include <cstdint>

namespace lowbit {

struct PoolingModes {
  bool cls = false;
  bool max = false;
  bool mean = true;
  bool mean_sqrt_len = false;

  int count() const noexcept { return int(cls) + int(max) + int(mean) + int(mean_sqrt_len); }
  // "mean", "cls+mean", ...: for messages and docs.
  const char* describe() const;
};

// out[count() * dim] = the pooled modes of `hidden`, n_tokens rows of dim
// values with row stride ldh. n_tokens >= 1.
void pool_tokens(const float* hidden, int64_t n_tokens, int64_t dim, int64_t ldh, const PoolingModes& modes,
                 float* out);

// v /= max(||v||_2, 1e-12), as torch.nn.functional.normalize: a zero
// vector stays zero. The norm is summed in double, in order.
void l2_normalize(float* v, int64_t n);

}  // namespace lowbit
