#include "lowbit/train/qat.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"

namespace lowbit {

namespace {

// Round to nearest, ties to even (the default FP environment's rint).
float rne(float v) { return std::nearbyint(v); }

}  // namespace

QatSpec QatSpec::parse(std::string_view text, std::string_view where) {
  QatSpec q;
  if (text == "none") return q;
  if (text == "ternary") {
    q.kind = Kind::kTernary;
    return q;
  }
  if (text.starts_with("lsq+:int")) {
    int b = 0;
    const auto r = std::from_chars(text.data() + 8, text.data() + text.size(), b);
    if (r.ec == std::errc{} && r.ptr == text.data() + text.size() && b >= 2 && b <= 8) {
      q.kind = Kind::kLsqPlus;
      q.bits = b;
      return q;
    }
  }
  fail_usage(fmt::format("{}: '{}' is not a QAT scheme (lsq+:int2 .. lsq+:int8, ternary, none)", where, text));
}

std::string QatSpec::describe() const {
  switch (kind) {
    case Kind::kNone:
      return "none";
    case Kind::kLsqPlus:
      return fmt::format("lsq+:int{}", bits);
    case Kind::kTernary:
      return "ternary";
  }
  return "?";
}

void lsq_init(const float* w, int64_t rows, int64_t cols, int bits, float* s, float* b) {
  const double levels = std::ldexp(1.0, bits - 1);
  for (int64_t r = 0; r < rows; ++r) {
    double sum = 0, sq = 0;
    for (int64_t c = 0; c < cols; ++c) {
      sum += w[r * cols + c];
      sq += double{w[r * cols + c]} * w[r * cols + c];
    }
    const double mu = sum / static_cast<double>(cols);
    const double sd = std::sqrt(std::max(0.0, sq / static_cast<double>(cols) - mu * mu));
    const double range = std::max(std::fabs(mu - 3 * sd), std::fabs(mu + 3 * sd));
    s[r] = static_cast<float>(range > 0 ? range / levels : 1e-8);
    b[r] = 0.0f;
  }
}

void lsq_forward(const float* w, int64_t rows, int64_t cols, const float* s, const float* b, int bits, float* w_hat,
                 int threads) {
  const float lo = -std::ldexp(1.0f, bits - 1), hi = std::ldexp(1.0f, bits - 1) - 1;
  parallel_chunks(rows, 4, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t c = 0; c < cols; ++c) {
        const float v = (w[r * cols + c] - b[r]) / s[r];
        w_hat[r * cols + c] = std::clamp(rne(v), lo, hi) * s[r] + b[r];
      }
    }
  });
}

void lsq_backward(const float* w, int64_t rows, int64_t cols, const float* s, const float* b, int bits,
                  const float* dw_hat, float* dw, float* ds, float* db, int threads) {
  const float lo = -std::ldexp(1.0f, bits - 1), hi = std::ldexp(1.0f, bits - 1) - 1;
  const double grad_scale = 1.0 / std::sqrt(static_cast<double>(cols) * std::ldexp(1.0, bits - 1));
  parallel_chunks(rows, 4, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      double gs = 0, gb = 0;
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t i = r * cols + c;
        const float v = (w[i] - b[r]) / s[r];
        const double g = dw_hat[i];
        if (v < lo) {
          gs += g * lo;
          gb += g;
        } else if (v > hi) {
          gs += g * hi;
          gb += g;
        } else {
          gs += g * (double{rne(v)} - v);
          dw[i] += dw_hat[i];
        }
      }
      ds[r] += static_cast<float>(gs * grad_scale);
      db[r] += static_cast<float>(gb * grad_scale);
    }
  });
}

void ternary_forward(const float* w, int64_t n, float* w_hat) {
  double sum = 0;
  for (int64_t i = 0; i < n; ++i) sum += std::fabs(w[i]);
  const float gamma = static_cast<float>(sum / static_cast<double>(n)) + 1e-8f;
  for (int64_t i = 0; i < n; ++i) w_hat[i] = std::clamp(rne(w[i] / gamma), -1.0f, 1.0f) * gamma;
}

void absmax_int8_rows(const float* x, int64_t rows, int64_t cols, float* out, int threads) {
  parallel_chunks(rows, 16, threads, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      float m = 0;
      for (int64_t c = 0; c < cols; ++c) m = std::max(m, std::fabs(x[r * cols + c]));
      if (m == 0) {
        std::fill(out + r * cols, out + (r + 1) * cols, 0.0f);
        continue;
      }
      const float k = 127.0f / m, inv = m / 127.0f;
      for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = std::clamp(rne(x[r * cols + c] * k), -128.0f, 127.0f) * inv;
    }
  });
}

}  // namespace lowbit
