#include "lowbit/model/pooling.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "lowbit/core/error.h"

namespace lowbit {

const char* PoolingModes::describe() const {
  // Static strings for the 15 non-empty combinations, so that the result
  // can be printed without owning it.
  static const char* const kNames[16] = {
      "none",          "cls",           "max",           "cls+max",
      "mean",          "cls+mean",      "max+mean",      "cls+max+mean",
      "mean_sqrt_len", "cls+mean_sqrt_len", "max+mean_sqrt_len", "cls+max+mean_sqrt_len",
      "mean+mean_sqrt_len", "cls+mean+mean_sqrt_len", "max+mean+mean_sqrt_len",
      "cls+max+mean+mean_sqrt_len"};
  return kNames[int(cls) | int(max) << 1 | int(mean) << 2 | int(mean_sqrt_len) << 3];
}

void pool_tokens(const float* hidden, int64_t n_tokens, int64_t dim, int64_t ldh, const PoolingModes& modes,
                 float* out) {
  if (n_tokens < 1) fail_internal("pool_tokens: a sentence has at least one token");
  if (modes.count() == 0) fail_internal("pool_tokens: no pooling mode");
  float* o = out;
  if (modes.cls) {
    std::copy(hidden, hidden + dim, o);
    o += dim;
  }
  if (modes.max) {
    for (int64_t j = 0; j < dim; ++j) {
      float m = hidden[j];
      for (int64_t t = 1; t < n_tokens; ++t) m = std::max(m, hidden[t * ldh + j]);
      o[j] = m;
    }
    o += dim;
  }
  if (modes.mean || modes.mean_sqrt_len) {
    // One sum serves both: sentence-transformers divides the same masked
    // sum by n and by sqrt(n).
    for (int64_t j = 0; j < dim; ++j) {
      double s = 0;
      for (int64_t t = 0; t < n_tokens; ++t) s += hidden[t * ldh + j];
      if (modes.mean) o[j] = static_cast<float>(s / static_cast<double>(n_tokens));
      if (modes.mean_sqrt_len) {
        o[(modes.mean ? dim : 0) + j] = static_cast<float>(s / std::sqrt(static_cast<double>(n_tokens)));
      }
    }
  }
}

void l2_normalize(float* v, int64_t n) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(v[i]) * v[i];
  const double norm = std::max(std::sqrt(ss), 1e-12);
  for (int64_t i = 0; i < n; ++i) v[i] = static_cast<float>(v[i] / norm);
}

}  // namespace lowbit
