#include "lowbit/train/cross_entropy.h"

#include <cmath>

#include "lowbit/core/thread_pool.h"

namespace lowbit {

void cross_entropy(float* z, int64_t n, int64_t vocab, const int32_t* targets, double scale, double* loss,
                   int threads) {
  parallel_chunks(n, 4, threads, [&](int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float* row = z + r * vocab;
      float mx = row[0];
      for (int64_t j = 1; j < vocab; ++j) mx = row[j] > mx ? row[j] : mx;
      const int32_t t = targets[r];
      const float zt = row[t];
      // One float exp per logit (the vocabulary is the widest loop of a
      // step), summed in double.
      double sum = 0.0;
      for (int64_t j = 0; j < vocab; ++j) {
        const float ez = std::exp(row[j] - mx);
        sum += ez;
        if (scale != 0.0) row[j] = ez;
      }
      loss[r] = std::log(sum) + static_cast<double>(mx) - static_cast<double>(zt);
      if (scale == 0.0) continue;
      const float k = static_cast<float>(scale / sum);
      for (int64_t j = 0; j < vocab; ++j) row[j] *= k;
      row[t] -= static_cast<float>(scale);
    }
  });
}

}  // namespace lowbit
