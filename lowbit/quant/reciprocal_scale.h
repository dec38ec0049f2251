// A float32 scale that a runtime stores as its reciprocal: compressed-tensors
// keeps NVFP4's tensor scale s_t as weight_global_scale g, and vLLM computes
// s_t back as 1.0f / g (CompressedTensorsW4A4Fp4.process_weights_after_
// loading). Not every float32 s survives that: when s's significand exceeds
// sqrt 2, consecutive float32 reciprocals lie more than an ulp apart near s,
// and about one such s in three (one float32 in six overall) is 1.0f / g for
// no float32 g.
#pragma once

namespace lowbit {

struct ReciprocalScale {
  float g = 0;      // what to store
  float back = 0;   // 1.0f / g: the scale the runtime will use
  bool exact = true;  // back == s, bit for bit
};

// The float32 g whose 1.0f / g is s when such a g exists, else the one whose
// 1.0f / g is nearest s (one ulp off).
// s = 0 gives g = +inf (1/inf = 0). s must be finite and >= 0.
ReciprocalScale reciprocal_preimage(float s);

}  // namespace lowbit
