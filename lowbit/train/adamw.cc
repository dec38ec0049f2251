#include "lowbit/train/adamw.h"

#include <cmath>

#include "lowbit/core/thread_pool.h"

namespace lowbit {

namespace {
// Fixed, because gradient_norm's summation order depends on it.
constexpr int64_t kChunk = 1 << 14;
}  // namespace

AdamW::AdamW(const ParameterSet& layout, AdamWOptions options)
    : layout_(&layout),
      opt_(options),
      m_(static_cast<size_t>(layout.size()), 0.0f),
      v_(static_cast<size_t>(layout.size()), 0.0f) {}

void AdamW::step(std::vector<float>& params, const std::vector<float>& grads, double lr, int threads) {
  ++t_;
  const float b1 = static_cast<float>(opt_.beta1), b2 = static_cast<float>(opt_.beta2);
  const double c1 = 1.0 - std::pow(opt_.beta1, static_cast<double>(t_));
  const double c2 = 1.0 - std::pow(opt_.beta2, static_cast<double>(t_));
  // Folded once per step: step size lr/c1 and the sqrt(c2) of the second
  // moment's correction.
  const float step_size = static_cast<float>(lr / c1);
  const float inv_sqrt_c2 = static_cast<float>(1.0 / std::sqrt(c2));
  const float eps = static_cast<float>(opt_.eps);
  for (const ParamTensor& t : layout_->tensors()) {
    const float keep = t.decay ? static_cast<float>(1.0 - lr * opt_.weight_decay) : 1.0f;
    float* p = params.data() + t.offset;
    const float* g = grads.data() + t.offset;
    float* m = m_.data() + t.offset;
    float* v = v_.data() + t.offset;
    parallel_chunks(t.size, kChunk, threads, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        m[i] = b1 * m[i] + (1.0f - b1) * g[i];
        v[i] = b2 * v[i] + (1.0f - b2) * (g[i] * g[i]);
        const float denom = std::sqrt(v[i]) * inv_sqrt_c2 + eps;
        p[i] = p[i] * keep - step_size * (m[i] / denom);
      }
    });
  }
}

double gradient_norm(const ParameterSet& layout, const std::vector<float>& grads, int threads) {
  double total = 0.0;
  for (const ParamTensor& t : layout.tensors()) {
    const int64_t chunks = (t.size + kChunk - 1) / kChunk;
    std::vector<double> part(static_cast<size_t>(chunks), 0.0);
    const float* g = grads.data() + t.offset;
    parallel_chunks(t.size, kChunk, threads, [&](int64_t b, int64_t e) {
      double s = 0.0;
      for (int64_t i = b; i < e; ++i) s += static_cast<double>(g[i]) * g[i];
      part[static_cast<size_t>(b / kChunk)] = s;
    });
    for (double s : part) total += s;
  }
  return std::sqrt(total);
}

const ParamTensor* first_non_finite_gradient(const ParameterSet& layout, const std::vector<float>& grads) {
  for (const ParamTensor& t : layout.tensors()) {
    for (int64_t i = 0; i < t.size; ++i) {
      if (!std::isfinite(grads[static_cast<size_t>(t.offset + i)])) return &t;
    }
  }
  return nullptr;
}

}  // namespace lowbit
