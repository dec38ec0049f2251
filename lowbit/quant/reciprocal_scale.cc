#include "lowbit/quant/reciprocal_scale.h"

#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "lowbit/core/error.h"

namespace lowbit {

ReciprocalScale reciprocal_preimage(float s) {
  if (!(std::isfinite(s) && s >= 0.0f)) fail_internal("reciprocal_preimage: scale must be finite and >= 0");
  if (s == 0.0f) return {std::numeric_limits<float>::infinity(), 0.0f, true};
  // The rounded reciprocal is the answer: whenever some float32 g has
  // 1.0f / g == s, g = 1.0f / s does, and otherwise its reciprocal is as near
  // s as any (one ulp). The test checks this against a brute-force search of
  // +-64 ulps around 1/s in many binades; it held exhaustively over a binade
  // of s too.
  const float g = 1.0f / s;
  const float back = 1.0f / g;
  return {g, back, std::bit_cast<uint32_t>(back) == std::bit_cast<uint32_t>(s)};
}

}  // namespace lowbit
