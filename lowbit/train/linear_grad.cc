#include "lowbit/train/linear_grad.h"

#include <vector>

#include "lowbit/kernels/matmul.h"
#include "lowbit/train/mix64.h"
#include "lowbit/train/operand_quant.h"
#include "lowbit/train/precision_recipe.h"

namespace lowbit {

namespace {


// The operand rounded into `buf` (returned), or the operand itself.
const float* rounded(const OperandQuant& op, const float* v, int64_t rows, int64_t cols, bool reduce_over_rows,
                     const LinearQuant& q, int slot, std::vector<float>& buf, int threads) {
  if (op.identity()) return v;
  buf.resize(static_cast<size_t>(rows * cols));
  // Slots 0-5 round with their own streams; the two operands of one
  // product share the Hadamard signs (slot / 2).
  const uint64_t round_seed = mix64(q.seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(slot + 1));
  const uint64_t transform_seed = mix64(q.seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(slot / 2 + 1)));
  op.apply(v, rows, cols, reduce_over_rows, round_seed, transform_seed, q.histories ? q.histories + slot : nullptr,
           buf.data(), threads);
  return buf.data();
}

bool active(const LinearQuant* q) { return q && q->precision && !q->precision->identity(); }

}  // namespace

void linear_forward(const float* x, int64_t n, int64_t in, const float* w, int64_t out, float* y, int threads,
                    const LinearQuant* q) {
  if (!active(q)) {
    matmul_nt(x, n, in, in, w, out, nullptr, y, out, threads);
    return;
  }
  std::vector<float> xb, wb;
  const GemmQuant& g = q->precision->forward;
  const float* xq = rounded(g.a, x, n, in, false, *q, 0, xb, threads);
  const float* wq = rounded(g.b, w, out, in, false, *q, 1, wb, threads);
  matmul_nt(xq, n, in, in, wq, out, nullptr, y, out, threads);
}

void linear_backward(const float* dy, const float* x, int64_t n, int64_t in, const float* w, int64_t out, float* dx,
                     bool accumulate_dx, float* dw, int threads, const LinearQuant* q) {
  if (!active(q)) {
    if (dx) matmul_nn(dy, n, out, w, in, dx, in, accumulate_dx, threads);
    matmul_tn(dy, n, out, x, in, in, dw, /*accumulate=*/true, threads);
    return;
  }
  std::vector<float> a, b;
  if (dx) {
    const GemmQuant& g = q->precision->dgrad;
    // dx = dy·w sums over `out`: dy along its columns, w along its rows.
    const float* dyq = rounded(g.a, dy, n, out, false, *q, 2, a, threads);
    const float* wq = rounded(g.b, w, out, in, true, *q, 3, b, threads);
    matmul_nn(dyq, n, out, wq, in, dx, in, accumulate_dx, threads);
  }
  // dw = dyᵀ·x sums over the tokens: both along their rows.
  const GemmQuant& g = q->precision->wgrad;
  const float* dyq = rounded(g.a, dy, n, out, true, *q, 4, a, threads);
  const float* xq = rounded(g.b, x, n, in, true, *q, 5, b, threads);
  matmul_tn(dyq, n, out, xq, in, in, dw, /*accumulate=*/true, threads);
}

}  // namespace lowbit
