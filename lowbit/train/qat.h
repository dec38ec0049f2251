// Quantization-aware training of the Linears' weights (and, for BitNet,
// their inputs), with straight-through gradients:
//
//   lsq+:intB   LSQ+ (Bhalgat et al. 2020): per output channel a learned
//               scale s and offset β; v = (w − β)/s,
//               ŵ = clamp(round(v), −2^(B−1), 2^(B−1) − 1)·s + β.
//               dŵ/dw = 1 inside the range, 0 outside (the clip);
//               dŵ/ds = round(v) − v inside, the bound outside;
//               dŵ/dβ = 0 inside, 1 outside;
//               the s and β gradients scaled by 1/sqrt(cols·2^(B−1)) (LSQ's
//               gradient scale). s starts at max(|μ−3σ|, |μ+3σ|)/2^(B−1) of
//               the channel, β at 0.
//   ternary     BitNet b1.58 (Ma et al. 2024): γ = mean|W| per tensor,
//               ŵ = clamp(round(w/γ), −1, 1)·γ, and each Linear input to 8
//               bits per token (absmax: x̂ = round(x·127/max|x|)·max|x|/127);
//               both straight through (dŵ/dw = 1, dx̂/dx = 1).
//
// Rounding is to nearest even, element by element in float32, the format
// engine's rule for integers.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lowbit {

struct QatSpec {
  enum class Kind { kNone, kLsqPlus, kTernary };
  Kind kind = Kind::kNone;
  int bits = 4;  // kLsqPlus

  // "lsq+:int4" (bits 2..8) or "ternary"; kUsage naming `where` otherwise.
  static QatSpec parse(std::string_view text, std::string_view where);
  bool active() const noexcept { return kind != Kind::kNone; }
  bool learned() const noexcept { return kind == Kind::kLsqPlus; }
  std::string describe() const;
};

// LSQ+ over the rows of w [rows, cols], row r with s[r] and b[r].
void lsq_init(const float* w, int64_t rows, int64_t cols, int bits, float* s, float* b);
void lsq_forward(const float* w, int64_t rows, int64_t cols, const float* s, const float* b, int bits, float* w_hat,
                 int threads);
// From dŵ: dw += dŵ·mask, ds and db += their gradients (sums per row in
// double, each row one task: thread-invariant).
void lsq_backward(const float* w, int64_t rows, int64_t cols, const float* s, const float* b, int bits,
                  const float* dw_hat, float* dw, float* ds, float* db, int threads);

// BitNet b1.58's weight: ŵ for the whole tensor (γ summed in double in
// index order).
void ternary_forward(const float* w, int64_t n, float* w_hat);
// BitNet's activations: each row of x [rows, cols] to 8 bits by its absmax.
void absmax_int8_rows(const float* x, int64_t rows, int64_t cols, float* out, int threads);

}  // namespace lowbit
