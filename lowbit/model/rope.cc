#include "lowbit/model/rope.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"

namespace lowbit {

namespace {
// Rows per task: any partition gives the same result (rows are
// independent); this one only sets the grain.
constexpr int64_t kRowsPerTask = 16;
}  // namespace

Rope::Rope(int64_t head_dim, int64_t rope_dim, double theta, RopeStyle style)
    : head_dim_(head_dim), rope_dim_(rope_dim), style_(style) {
  if (rope_dim <= 0 || rope_dim > head_dim || rope_dim % 2 != 0 || !(theta > 0) || !std::isfinite(theta)) {
    fail_usage(fmt::format("RoPE over {} of {} dimensions with base {} is not defined", rope_dim, head_dim, theta));
  }
  inv_freq_.resize(static_cast<size_t>(rope_dim / 2));
  for (int64_t i = 0; i < rope_dim / 2; ++i) {
    inv_freq_[static_cast<size_t>(i)] = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(rope_dim));
  }
}

void Rope::angles(int64_t pos, float* cos_out, float* sin_out) const {
  for (size_t i = 0; i < inv_freq_.size(); ++i) {
    const double a = static_cast<double>(pos) * inv_freq_[i];
    cos_out[i] = static_cast<float>(std::cos(a));
    sin_out[i] = static_cast<float>(std::sin(a));
  }
}

void Rope::apply(float* x, int64_t n, int64_t ld, int64_t heads, int64_t pos0, int threads) const {
  rotate(x, n, ld, heads, pos0, threads, 1.0f);
}

void Rope::apply_inverse(float* x, int64_t n, int64_t ld, int64_t heads, int64_t pos0, int threads) const {
  rotate(x, n, ld, heads, pos0, threads, -1.0f);
}

void Rope::rotate(float* x, int64_t n, int64_t ld, int64_t heads, int64_t pos0, int threads, float sign) const {
  if (n <= 0) return;
  const int64_t pairs = rope_dim_ / 2;
  // In adjacent mode pair i is (2i, 2i+1); in halves mode it is (i, i + rope_dim/2).
  const int64_t stride = style_ == RopeStyle::kAdjacentPairs ? 2 : 1;
  const int64_t partner = style_ == RopeStyle::kAdjacentPairs ? 1 : pairs;
  const int64_t tasks = (n + kRowsPerTask - 1) / kRowsPerTask;
  ThreadPool::global().parallel_for(static_cast<size_t>(tasks), threads, [&](size_t task) {
    std::vector<float> c(static_cast<size_t>(pairs)), s(static_cast<size_t>(pairs));
    const int64_t r0 = static_cast<int64_t>(task) * kRowsPerTask;
    const int64_t r1 = std::min(n, r0 + kRowsPerTask);
    for (int64_t r = r0; r < r1; ++r) {
      angles(pos0 + r, c.data(), s.data());
      // sin(-a) = -sin(a) exactly, so the inverse is the same rotation
      // with the sine negated.
      if (sign < 0) {
        for (float& v : s) v = -v;
      }
      for (int64_t h = 0; h < heads; ++h) {
        float* v = x + r * ld + h * head_dim_;
        for (int64_t i = 0; i < pairs; ++i) {
          float& a = v[i * stride];
          float& b = v[i * stride + partner];
          const float x0 = a, x1 = b;
          a = x0 * c[static_cast<size_t>(i)] - x1 * s[static_cast<size_t>(i)];
          b = x0 * s[static_cast<size_t>(i)] + x1 * c[static_cast<size_t>(i)];
        }
      }
    }
  });
}

}  // namespace lowbit
