// How the master copy of the weights is stored between optimizer steps,
// emulated exactly: the update arithmetic is float32 (AdamW's), what is
// kept is rounded to nearest even as each scheme says.
//
//   float32           as is
//   bfloat16          the weights rounded to bfloat16 after every update:
//                     updates smaller than half an ulp of a weight vanish
//   bfloat16+kahan    plus a bfloat16 compensation c of what the rounding
//                     lost, fed into the next update (Kahan summation, as in
//                     Zamirai et al., "Revisiting BFloat16 Training"):
//                       y = u − c,  t = bf16(w + y),  c = bf16((t − w) − y),  w = t
//   bfloat16+collage  the weight as a pair of bfloat16 numbers w + e, e the
//                     first's rounding error (Collage's multi-component
//                     float, Yu et al. 2024): the optimizer updates w + e,
//                     then w = bf16(w + e), e = bf16((w + e) − w); the
//                     model computes with w
#pragma once

#include <vector>

#include "lowbit/train/precision_recipe.h"

namespace lowbit {

class MasterWeightStore {
 public:
  MasterWeightStore(MasterWeights mode, size_t size);

  MasterWeights mode() const noexcept { return mode_; }
  // The compensation (kahan) or the low component (collage); empty
  // otherwise. A checkpoint saves it.
  std::vector<float>& extra() noexcept { return extra_; }

  // Rounds freshly initialized weights to what the store keeps.
  void init(std::vector<float>& params, int threads);
  // Before the optimizer step: hands it the value it updates (collage: w + e).
  void before_update(std::vector<float>& params, int threads);
  // After it: stores the updated value. `before` is what before_update
  // left in params (kahan needs the old weights).
  void after_update(std::vector<float>& params, const std::vector<float>& before, int threads);
  // Whether after_update needs `before` (the caller copies it only then).
  bool needs_before() const noexcept { return mode_ == MasterWeights::kBFloat16Kahan; }

 private:
  MasterWeights mode_;
  std::vector<float> extra_;
};

}  // namespace lowbit
