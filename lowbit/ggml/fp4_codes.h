// E2M1 (FP4) codes as ggml picks them, shared by MXFP4 (E8M0 block scale)
// and NVFP4 (UE4M3 sub-block scales). ggml works with doubled E2M1 values
// (kValues: 0, 1, 2, 3, 4, 6, 8, 12 and their negatives) and half the block
// scale d, so a code c stands for kValues[c] * d; best_index_mxfp4 takes the
// first code with the smallest float32 |kValues[c] * d - x|.
#pragma once

#include <cmath>
#include <cstdint>

#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit::ggml_internal {

inline constexpr int8_t kFp4Values[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// best_index_mxfp4: the search itself, for any x and d.
inline uint8_t fp4_best_index(float x, float d) {
  int best = 0;
  float best_err = std::fabs(static_cast<float>(kFp4Values[0]) * d - x);
  for (int i = 1; i < 16; ++i) {
    const float err = std::fabs(static_cast<float>(kFp4Values[i]) * d - x);
    if (err < best_err) {
      best = i;
      best_err = err;
    }
  }
  return static_cast<uint8_t>(best);
}

// The same codes for n elements x (a = |x|) whose largest |x| is below 16 d,
// for a d > 0 with at most 4 significant bits (a power of two for MXFP4, a
// UE4M3 value halved for NVFP4), found without the search:
//  - Only codes of x's sign can beat code 0 (the others' errors fl(k d + |x|)
//    are never below |x|), code 8 (-0) never does, and fl(k d - |x|) is the
//    negated fl(-k d - x): so take the magnitude code of |x| and put the sign
//    back.
//  - The magnitudes m_i = k_i d (at most 6 significant bits) and the
//    midpoints (m_lo + m_hi) / 2 are exact floats, and for |x| < 16 d
//    between two neighbours m_lo < m_hi both errors are exact (Sterbenz:
//    m_hi <= 2 m_lo for every pair but (0, d), |x| - 0 is exact, d - |x| is
//    exact above d / 2 and above |x| below it, and |x| - 12 d for |x| <
//    24 d). The nearer one wins, the lower on a tie, and no farther
//    magnitude comes close; so the code is the number of midpoints that |x|
//    exceeds. NaN exceeds none.
inline void fp4_best_indices(const float* a, const float* x, int n, float d, uint8_t* codes) {
  float mid[7];
  for (int i = 1; i < 8; ++i) mid[i - 1] = static_cast<float>(kFp4Values[i - 1] + kFp4Values[i]) * 0.5f * d;
  int c[32] = {};
  for (int i = 0; i < 7; ++i) {
    for (int j = 0; j < n; ++j) c[j] += a[j] > mid[i];
  }
  // Branch-free (random signs would defeat branch prediction): the sign
  // bit stands for x < 0, since -0 and NaN have magnitude code 0 anyway.
  for (int j = 0; j < n; ++j) {
    codes[j] = static_cast<uint8_t>(c[j] | ((f32_bits(x[j]) >> 28) & 8 & -static_cast<int>(c[j] != 0)));
  }
}

// The largest of n (a multiple of 8, at most 32) magnitudes ignoring NaNs,
// as ggml's `if (amax < |x|) amax = |x|` finds it; the order does not
// matter, so it runs as 8 partial maxima.
inline float fp4_block_amax(const float* a, int n) {
  float acc[8] = {};
  for (int j = 0; j < n; j += 8) {
    for (int k = 0; k < 8; ++k) acc[k] = acc[k] < a[j + k] ? a[j + k] : acc[k];
  }
  float amax = 0;
  for (int k = 0; k < 8; ++k) amax = amax < acc[k] ? acc[k] : amax;
  return amax;
}

}  // namespace lowbit::ggml_internal
