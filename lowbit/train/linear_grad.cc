#include "lowbit/train/linear_grad.h"

#include <vector>

#include "lowbit/kernels/matmul.h"
#include "lowbit/train/mix64.h"
#include "lowbit/train/operand_quant.h"
#include "lowbit/train/precision_recipe.h"

namespace lowbit {

namespace {

// Scratch for rounded operands, kept between calls: a training step rounds
// hundreds of operands, and fresh buffers would be zeroed and faulted in
// each time.
struct Scratch {
  std::vector<float> a, b;
};
Scratch& scratch() {
  thread_local Scratch s;
  return s;
}

// The operand rounded into `buf`, or the operand itself; *transposed tells
// which layout `buf` holds (OperandQuant::round_for_product).
const float* rounded(const OperandQuant& op, const float* v, int64_t rows, int64_t cols, bool reduce_over_rows,
                     const LinearQuant& q, int slot, std::vector<float>& buf, bool* transposed, int threads) {
  *transposed = false;
  if (op.identity()) return v;
  buf.resize(static_cast<size_t>(rows * cols));
  // Slots 0-5 round with their own streams; the two operands of one
  // product share the Hadamard signs (slot / 2).
  const uint64_t round_seed = mix64(q.seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(slot + 1));
  const uint64_t transform_seed = mix64(q.seed ^ (0xD1B54A32D192ED03ull * static_cast<uint64_t>(slot / 2 + 1)));
  *transposed = op.round_for_product(v, rows, cols, reduce_over_rows, round_seed, transform_seed,
                                     q.histories ? q.histories + slot : nullptr, buf.data(), threads);
  return buf.data();
}

// Whether rounding an operand by `a` and by `b` gives the same values, so
// that one rounding serves both products: the same spec, free of the axis,
// and free of the seed and of history (no stochastic rounding, no delayed
// scaling, whose amax histories are kept per product).
bool same_rounding(const OperandQuant& a, const OperandQuant& b) {
  return a.spec == b.spec && !a.identity() && a.axis_free() && a.history == 0 &&
         a.scheme.round.mode != Rounding::kStochastic;
}

bool active(const LinearQuant* q) { return q && q->precision && !q->precision->identity(); }

}  // namespace

void linear_forward(const float* x, int64_t n, int64_t in, const float* w, int64_t out, float* y, int threads,
                    const LinearQuant* q) {
  if (!active(q)) {
    matmul_nt(x, n, in, in, w, out, nullptr, y, out, threads);
    return;
  }
  Scratch& s = scratch();
  const GemmQuant& g = q->precision->forward;
  bool t = false;  // along the columns: never transposed
  const float* xq = rounded(g.a, x, n, in, false, *q, 0, s.a, &t, threads);
  const float* wq = rounded(g.b, w, out, in, false, *q, 1, q->rounded_weight ? *q->rounded_weight : s.b, &t, threads);
  matmul_nt(xq, n, in, in, wq, out, nullptr, y, out, threads);
}

void linear_backward(const float* dy, const float* x, int64_t n, int64_t in, const float* w, int64_t out, float* dx,
                     bool accumulate_dx, float* dw, int threads, const LinearQuant* q) {
  if (!active(q)) {
    if (dx) matmul_nn(dy, n, out, w, in, dx, in, accumulate_dx, threads);
    matmul_tn(dy, n, out, x, in, in, dw, /*accumulate=*/true, threads);
    return;
  }
  Scratch& s = scratch();
  const LayerPrecision& p = *q->precision;
  const float* dy_dgrad = nullptr;
  if (dx) {
    // dx[n, in] = dy[n, out]·w[out, in] sums over `out`: dy along its
    // columns, w along its rows (wT [in, out] when transposed).
    bool t_dy = false, t_w = false;
    dy_dgrad = rounded(p.dgrad.a, dy, n, out, false, *q, 2, s.a, &t_dy, threads);
    const float* wq = nullptr;
    if (q->rounded_weight && same_rounding(p.dgrad.b, p.forward.b)) {
      wq = q->rounded_weight->data();  // the forward product's, unchanged since
    } else {
      wq = rounded(p.dgrad.b, w, out, in, true, *q, 3, s.b, &t_w, threads);
    }
    matmul_tiled(false, dy_dgrad, out, t_w, wq, t_w ? out : in, n, in, out, dx, in, accumulate_dx, kMatmulRowTile,
                 kMatmulColTile, threads);
  }
  // dw[out, in] += dy[n, out]ᵀ·x[n, in] sums over the tokens: both along
  // their rows (dyT [out, n], xT [in, n] when transposed).
  bool t_dy = false, t_x = false;
  const float* dyq = nullptr;
  if (dy_dgrad && same_rounding(p.wgrad.a, p.dgrad.a)) {
    dyq = dy_dgrad;
  } else {
    dyq = rounded(p.wgrad.a, dy, n, out, true, *q, 4, s.a, &t_dy, threads);
  }
  const float* xq = rounded(p.wgrad.b, x, n, in, true, *q, 5, s.b, &t_x, threads);
  matmul_tiled(!t_dy, dyq, t_dy ? n : out, t_x, xq, t_x ? n : in, out, in, n, dw, in, /*accumulate=*/true,
               kGradTileRows, kGradTileCols, threads);
}

}  // namespace lowbit
