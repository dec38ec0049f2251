#include "lowbit/train/master_weights.h"

#include "lowbit/core/thread_pool.h"
#include "lowbit/format/registry.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit {

namespace {

constexpr int64_t kChunk = 1 << 14;

void to_bf16(float* x, size_t n, int threads) {
  static const Format bf16 = parse_format("bfloat16");
  ArrayOptions o;
  o.threads = threads;
  fakequant_array(bf16, x, x, n, o);
}

}  // namespace

MasterWeightStore::MasterWeightStore(MasterWeights mode, size_t size) : mode_(mode) {
  if (mode == MasterWeights::kBFloat16Kahan || mode == MasterWeights::kBFloat16Collage) extra_.assign(size, 0.0f);
}

void MasterWeightStore::init(std::vector<float>& params, int threads) {
  if (mode_ != MasterWeights::kFloat32) to_bf16(params.data(), params.size(), threads);
}

void MasterWeightStore::before_update(std::vector<float>& params, int threads) {
  if (mode_ != MasterWeights::kBFloat16Collage) return;
  float* p = params.data();
  const float* e = extra_.data();
  parallel_chunks(static_cast<int64_t>(params.size()), kChunk, threads, [&](int64_t b, int64_t end) {
    for (int64_t i = b; i < end; ++i) p[i] += e[i];
  });
}

void MasterWeightStore::after_update(std::vector<float>& params, const std::vector<float>& before, int threads) {
  const int64_t n = static_cast<int64_t>(params.size());
  float* p = params.data();
  switch (mode_) {
    case MasterWeights::kFloat32:
      return;
    case MasterWeights::kBFloat16:
      to_bf16(p, params.size(), threads);
      return;
    case MasterWeights::kBFloat16Kahan: {
      // y = u − c with u = p_new − w; t = bf16(w + y); c = bf16((t − w) − y).
      std::vector<float> y(params.size()), t(params.size());
      float* c = extra_.data();
      const float* w = before.data();
      parallel_chunks(n, kChunk, threads, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          y[i] = (p[i] - w[i]) - c[i];
          t[i] = w[i] + y[i];
        }
      });
      to_bf16(t.data(), t.size(), threads);
      parallel_chunks(n, kChunk, threads, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) c[i] = (t[i] - w[i]) - y[i];
      });
      to_bf16(c, extra_.size(), threads);
      std::copy(t.begin(), t.end(), p);
      return;
    }
    case MasterWeights::kBFloat16Collage: {
      // p holds the updated w + e: split it again.
      std::vector<float> full(params.begin(), params.end());
      to_bf16(p, params.size(), threads);
      float* e = extra_.data();
      parallel_chunks(n, kChunk, threads, [&](int64_t b, int64_t end) {
        for (int64_t i = b; i < end; ++i) e[i] = full[static_cast<size_t>(i)] - p[i];
      });
      to_bf16(e, extra_.size(), threads);
      return;
    }
  }
}

}  // namespace lowbit
