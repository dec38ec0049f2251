// Softmax cross-entropy over the vocabulary, the training loss, forward
// and backward in one pass over the logits (the [tokens, vocab] matrix is
// the largest activation; it is turned into its own gradient in place).
//
//   loss[r]   = logsumexp(z[r]) − z[r, t_r]
//   dz[r, j]  = scale·(softmax(z[r])[j] − [j == t_r])
//
// Per-row sums are in double, each row one task's fixed sequence.
#pragma once

#include <cstdint>

namespace lowbit {

// z: [n, vocab], overwritten with dz when `scale` != 0 (scale = 0 leaves
// z alone: an evaluation). loss: [n] in double. Targets must lie in
// [0, vocab) (the caller checked the tokens).
void cross_entropy(float* z, int64_t n, int64_t vocab, const int32_t* targets, double scale, double* loss, int threads);

}  // namespace lowbit
