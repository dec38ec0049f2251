// Rotary position embedding (RoPE): each pair of dimensions of a query or
// key head is rotated by the angle pos * theta^(-2i/rope_dim), i the pair's
// index, so that q·k depends on the distance between their positions.
//
// Which dimensions pair up depends on how the checkpoint's Q and K rows
// are ordered (llama_config.h): adjacent pairs for GGUF llama files (ggml's
// "normal" mode), halves for Hugging Face checkpoints (rotate_half). Only
// the first rope_dim dimensions of each head rotate; the rest pass through.
//
// The angle and its cosine and sine are computed in double and rounded to
// float once; ggml builds theta by repeated float multiplication, so the
// two agree to within a few float ulps of the angle, not bit for bit
// (docs/runtime.md). The rotation itself is float arithmetic without
// contraction, the same for every thread count.
#pragma once

#include <cstdint>
#include <vector>

namespace lowbit {

enum class RopeStyle {
  kAdjacentPairs,  // (x[2i], x[2i+1]): ggml's LLAMA_ROPE_TYPE_NORM, GGUF llama files
  kHalves,         // (x[i], x[i+d/2]): Hugging Face rotate_half, "NeoX" style
};

class Rope {
 public:
  Rope() = default;
  // ErrorKind::kUsage unless 0 < rope_dim <= head_dim, rope_dim even and
  // theta > 0.
  Rope(int64_t head_dim, int64_t rope_dim, double theta, RopeStyle style);

  // Rotates rows [0, n) of x in place: row r is position pos0 + r and holds
  // `heads` heads of head_dim floats each (row stride ld).
  void apply(float* x, int64_t n, int64_t ld, int64_t heads, int64_t pos0, int threads) const;
  // The transpose of apply() (rotation by minus the angle): the backward
  // pass of RoPE, dx = Rᵀ·dy, in the trainer.
  void apply_inverse(float* x, int64_t n, int64_t ld, int64_t heads, int64_t pos0, int threads) const;

  int64_t head_dim() const noexcept { return head_dim_; }
  int64_t rope_dim() const noexcept { return rope_dim_; }
  RopeStyle style() const noexcept { return style_; }

 private:
  // cos and sin of pair i at position pos, rounded to float.
  void angles(int64_t pos, float* cos_out, float* sin_out) const;
  // sign +1 rotates forward, -1 back.
  void rotate(float* x, int64_t n, int64_t ld, int64_t heads, int64_t pos0, int threads, float sign) const;

  int64_t head_dim_ = 0, rope_dim_ = 0;
  RopeStyle style_ = RopeStyle::kAdjacentPairs;
  std::vector<double> inv_freq_;  // theta^(-2i/rope_dim), i < rope_dim/2
};

}  // namespace lowbit
