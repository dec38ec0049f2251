// HQQ (hqq.h). The per-iteration pass over a block is a Highway kernel
// compiled once per target; it only adds, multiplies, takes min/max and
// rounds by a magic constant, with 16 fixed partial sums, so every target
// gives the same bits (and so the same zero points) as the scalar code.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/methods/hqq.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <vector>

#include "lowbit/methods/hqq.h"
#include "lowbit/methods/method_registry.h"
#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/format/packing.h"
#include "lowbit/format/registry.h"
#include "lowbit/format/stochastic_bits.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/kernels/scaled_kernels.h"
#include "lowbit/quant/block_codec.h"
#include "lowbit/quant/block_grid.h"
#include "lowbit/quant/outliers.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scale_coder.h"

#ifndef LOWBIT_METHODS_HQQ_ONCE
#define LOWBIT_METHODS_HQQ_ONCE
namespace lowbit::hqq_detail {

// Adding and subtracting 1.5 * 2^23 rounds a float32 of magnitude below 2^22
// to an integer, ties to even, with two exact-order operations every target
// has. Operands are clamped to a few units around the codes first.
constexpr float kRoundMagic = 12582912.0f;
// Partial sums: element k of a stretch of kFlush goes to lane k % kLanes;
// after each stretch the lanes are added into doubles by lane_sum. Sums of
// codes stay exact (64 codes below 2^16 per lane are below 2^24).
constexpr size_t kLanes = 16;
constexpr size_t kFlush = 1024;

// One block's parameters in the loop: y = x * inv, x_hat = (q - z) * s.
struct LoopParams {
  float s = 0, inv = 0, z = 0;
};

// What one set of parameters gives over a block.
struct PassSums {
  double abs_err = 0, sq_err = 0;            // sum |x - x_hat|, sum (x - x_hat)^2
  double sum_q = 0, sum_qq = 0, sum_qx = 0;  // for the least-squares updates
  double sum_x = 0;
  float max_abs = 0;                         // max |x - x_hat|
};

// 16 partial sums added pairwise in double: lane k with k + 8, then k + 4,
// k + 2, k + 1 (a short dependency chain: blocks are often just 128 long).
inline double lane_sum(const float* l) {
  double d[8], e[4];
  for (int k = 0; k < 8; ++k) d[k] = static_cast<double>(l[k]) + static_cast<double>(l[k + 8]);
  for (int k = 0; k < 4; ++k) e[k] = d[k] + d[k + 4];
  return (e[0] + e[2]) + (e[1] + e[3]);
}

// The loop's code of one element (the kernel does the same lane by lane).
// Float zeros, and integer zeros optimized as floats: round(y + z).
// Integer zeros rounded in the loop: round(y) + z, the /asym order. The
// clamps before rounding change no result and keep kRoundMagic exact.
inline float loop_code(float y, float z, float qmax, bool int_zero) {
  if (int_zero) {
    float r = std::min(std::max(y, -qmax - 1.0f), qmax + 1.0f);
    r = (r + kRoundMagic) - kRoundMagic;
    return std::min(std::max(r + z, 0.0f), qmax);
  }
  float u = std::min(std::max(y + z, -1.0f), qmax + 1.0f);
  u = (u + kRoundMagic) - kRoundMagic;
  return std::min(std::max(u, 0.0f), qmax);
}

}  // namespace lowbit::hqq_detail
#endif

HWY_BEFORE_NAMESPACE();
namespace lowbit {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// PassSums of one block: 16 logical lanes held in kV vectors.
template <bool kIntZero>
HWY_NOINLINE void HqqPassT(const float* HWY_RESTRICT x, size_t n, const hqq_detail::LoopParams& p, float qmax,
                           hqq_detail::PassSums* out) {
  using hqq_detail::kFlush;
  using hqq_detail::kLanes;
  const hn::CappedTag<float, kLanes> d;
  using V = hn::Vec<decltype(d)>;
  constexpr size_t kN = hn::MaxLanes(decltype(d)());
  constexpr size_t kV = kLanes / kN;
  const V vs = hn::Set(d, p.s), vinv = hn::Set(d, p.inv), vz = hn::Set(d, p.z), vq = hn::Set(d, qmax);
  const V vlo = hn::Set(d, kIntZero ? -qmax - 1.0f : -1.0f), vhi = hn::Set(d, qmax + 1.0f);
  const V vmagic = hn::Set(d, hqq_detail::kRoundMagic), v0 = hn::Zero(d);
  *out = hqq_detail::PassSums{};
  HWY_ALIGN float tail[kLanes];
  HWY_ALIGN float lanes[7][kLanes];
  for (size_t i0 = 0; i0 < n; i0 += kFlush) {
    const size_t m = std::min(kFlush, n - i0);
    V le[kV], l2[kV], lq[kV], lqq[kV], lqx[kV], lm[kV], lx[kV];
    for (size_t j = 0; j < kV; ++j) le[j] = l2[j] = lq[j] = lqq[j] = lqx[j] = lm[j] = lx[j] = v0;
    const auto step = [&](size_t j, V xv, bool masked, size_t valid) {
      const V y = hn::Mul(xv, vinv);
      V q;
      if (kIntZero) {
        const V r = hn::Sub(hn::Add(hn::Min(hn::Max(y, vlo), vhi), vmagic), vmagic);
        q = hn::Min(hn::Max(hn::Add(r, vz), v0), vq);
      } else {
        const V u = hn::Min(hn::Max(hn::Add(y, vz), vlo), vhi);
        q = hn::Min(hn::Max(hn::Sub(hn::Add(u, vmagic), vmagic), v0), vq);
      }
      V dd = hn::Sub(xv, hn::Mul(hn::Sub(q, vz), vs));
      if (masked) {
        // Lanes past the block add exactly 0 to every sum.
        const auto keep = hn::FirstN(d, valid > j * kN ? valid - j * kN : 0);
        dd = hn::IfThenElseZero(keep, dd);
        q = hn::IfThenElseZero(keep, q);
      }
      const V a = hn::Abs(dd);
      le[j] = hn::Add(le[j], a);
      l2[j] = hn::Add(l2[j], hn::Mul(dd, dd));
      lq[j] = hn::Add(lq[j], q);
      lqq[j] = hn::Add(lqq[j], hn::Mul(q, q));
      lqx[j] = hn::Add(lqx[j], hn::Mul(q, xv));
      lm[j] = hn::Max(lm[j], a);
      lx[j] = hn::Add(lx[j], xv);
    };
    const float* xs = x + i0;
    size_t i = 0;
    for (; i + kLanes <= m; i += kLanes) {
      for (size_t j = 0; j < kV; ++j) step(j, hn::LoadU(d, xs + i + j * kN), false, 0);
    }
    if (i < m) {
      std::fill(tail, tail + kLanes, 0.0f);
      std::copy(xs + i, xs + m, tail);
      for (size_t j = 0; j < kV; ++j) step(j, hn::Load(d, tail + j * kN), true, m - i);
    }
    for (size_t j = 0; j < kV; ++j) {
      hn::Store(le[j], d, lanes[0] + j * kN);
      hn::Store(l2[j], d, lanes[1] + j * kN);
      hn::Store(lq[j], d, lanes[2] + j * kN);
      hn::Store(lqq[j], d, lanes[3] + j * kN);
      hn::Store(lqx[j], d, lanes[4] + j * kN);
      hn::Store(lm[j], d, lanes[5] + j * kN);
      hn::Store(lx[j], d, lanes[6] + j * kN);
    }
    out->abs_err += hqq_detail::lane_sum(lanes[0]);
    out->sq_err += hqq_detail::lane_sum(lanes[1]);
    out->sum_q += hqq_detail::lane_sum(lanes[2]);
    out->sum_qq += hqq_detail::lane_sum(lanes[3]);
    out->sum_qx += hqq_detail::lane_sum(lanes[4]);
    out->sum_x += hqq_detail::lane_sum(lanes[6]);
    for (size_t k = 0; k < kLanes; ++k) out->max_abs = std::max(out->max_abs, lanes[5][k]);
  }
}

void HqqPass(const float* x, size_t n, const hqq_detail::LoopParams& p, float qmax, bool int_zero,
             hqq_detail::PassSums* out) {
  if (int_zero) return HqqPassT<true>(x, n, p, qmax, out);
  HqqPassT<false>(x, n, p, qmax, out);
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit {

HWY_EXPORT(HqqPass);

namespace {

using hqq_detail::LoopParams;
using hqq_detail::PassSums;
using kernels::BlockScale;

// Work per task: blocks are optimized whole, as many per task as make about
// this many elements (a fixed split, so results never depend on threads).
constexpr uint64_t kTaskElements = 1 << 15;

int thread_count(int t) { return t > 0 ? t : default_thread_count(); }

void check_options(const Scheme& s, const HqqOptions& o) {
  if (s.zero == ZeroPoint::kNone) {
    fail_usage(std::string("hqq needs an asymmetric integer scheme (…/asym or …/asym=float), got ").append(s.spec()));
  }
  if (s.round.mode == Rounding::kStochastic) {
    fail_usage(std::string("hqq optimizes zero points for a deterministic element rounding; ")
                   .append(s.spec())
                   .append(" rounds stochastically"));
  }
  const auto bad = [](const char* what, double v, const char* range) {
    fail_usage(std::string("hqq option ")
                   .append(what)
                   .append(" = ")
                   .append(std::to_string(v))
                   .append(" is out of range (")
                   .append(range)
                   .append(")"));
  };
  if (!(o.lp_norm > 0.0f && o.lp_norm <= 1.0f)) bad("lp_norm", o.lp_norm, "0 < p <= 1");
  if (!(o.beta > 0.0f && std::isfinite(o.beta))) bad("beta", o.beta, "finite, > 0");
  if (!(o.kappa >= 1.0f && std::isfinite(o.kappa))) bad("kappa", o.kappa, "finite, >= 1");
  if (o.iterations < 0) bad("iterations", o.iterations, ">= 0");
}

// Calls fn(row, c0, c1) for the row segments of block b, in row-major order:
// the rows r with block_row(r) == b / blocks_per_row (block_grid.h), which
// recur every row_div * row_mod rows in runs of row_div.
template <class Fn>
void for_each_segment(const BlockGrid& g, uint64_t b, Fn&& fn) {
  const uint64_t br = b / g.blocks_per_row, c0 = (b % g.blocks_per_row) * g.group;
  const uint64_t c1 = c0 + std::min(g.group, g.cols - c0);
  const uint64_t period = g.row_div * g.row_mod;  // < rows + row_div (BlockGrid::make)
  for (uint64_t base = br * g.row_div; base < g.rows;) {
    const uint64_t run = std::min(g.row_div, g.rows - base);
    for (uint64_t r = base; r < base + run; ++r) fn(r, c0, c1);
    if (g.rows - base <= period) break;
    base += period;
  }
}

// Sum e and sum q e for e = shrink_lp(x - x_hat), over the elements whose
// |x - x_hat| exceeds `below`, a bound under which the shrink is exactly 0
// (see optimize_block).
void shrink_sums(const float* x, uint64_t n, const LoopParams& p, float qmax, bool int_zero, float beta, float lp,
                 float below, double& sum_e, double& sum_qe) {
  for (uint64_t i = 0; i < n; ++i) {
    const float q = hqq_detail::loop_code(x[i] * p.inv, p.z, qmax, int_zero);
    const float d = x[i] - (q - p.z) * p.s;
    if (!(std::fabs(d) > below)) continue;
    const double e = hqq_shrink_lp(d, beta, lp);
    sum_e += e;
    sum_qe += static_cast<double>(q) * e;
  }
}

// The next parameters: those that fit the codes q to t = x - W_e by least
// squares. HQQ's zero step: z = mean(q - t * inv) for the current scale;
// with optimize_scale, t ~ a q + c over both (s = a, z = -c / a).
LoopParams next_params(const LoopParams& p, const PassSums& ps, double sum_x, double sum_e, double sum_qe, uint64_t n,
                       float qmax, bool int_zero, const HqqOptions& o) {
  const double nn = static_cast<double>(n);
  const double st = sum_x - sum_e, sqt = ps.sum_qx - sum_qe;
  double z = (ps.sum_q - static_cast<double>(p.inv) * st) / nn;
  double s = p.s;
  if (o.optimize_scale) {
    const double den = nn * ps.sum_qq - ps.sum_q * ps.sum_q;
    const double a = den > 0 ? (nn * sqt - ps.sum_q * st) / den : 0.0;
    if (a > 0 && std::isfinite(a)) {
      s = a;
      z = -((st - a * ps.sum_q) / nn) / a;
    }
  }
  if (int_zero) {
    z = std::clamp(std::nearbyint(z), 0.0, static_cast<double>(qmax));
    if (o.optimize_scale) {
      // The scale that fits best for this integer zero.
      const double den = ps.sum_qq - 2 * z * ps.sum_q + nn * z * z;
      const double a = den > 0 ? (sqt - z * st) / den : 0.0;
      if (a > 0 && std::isfinite(a)) s = a;
    }
  }
  LoopParams next{static_cast<float>(s), 0.0f, static_cast<float>(z)};
  next.inv = 1.0f / next.s;
  if (!(next.s > 0.0f) || !std::isfinite(next.inv)) next = LoopParams{p.s, p.inv, next.z};
  return next;
}

struct BlockResult {
  LoopParams best;
  int iterations = 0;
  bool early_stop = false;
};

// beta of each iteration (beta_k = beta * kappa^k, multiplied up in double
// as the reference does), and the bound below which the shrink is 0:
// |d| - |d|^(p-1) / beta > 0 exactly when |d| > beta^(-1 / (2 - p)); 0.1%
// below that the float32 shrink is 0 by a wide margin, so only the (rare)
// elements above it need the pow. The same for every block.
struct Schedule {
  std::vector<float> beta, below;
  explicit Schedule(const HqqOptions& o) {
    double b = o.beta;
    for (int k = 0; k < o.iterations; ++k) {
      beta.push_back(static_cast<float>(b));
      below.push_back(static_cast<float>(std::pow(b, -1.0 / (2.0 - o.lp_norm)) * 0.999));
      b *= o.kappa;
    }
  }
};

// The HQQ iterations on one block of n elements from p0. Returns the
// parameters of the lowest tracked error seen (the first of equals).
BlockResult optimize_block(const float* x, uint64_t n, const LoopParams& p0, float qmax, bool int_zero,
                           const HqqOptions& o, const Schedule& sched) {
  BlockResult res;
  res.best = p0;
  double best = std::numeric_limits<double>::infinity();
  double sum_x = 0;
  LoopParams p = p0;
  for (int it = 0;; ++it) {
    PassSums ps;
    HWY_DYNAMIC_DISPATCH(HqqPass)(x, n, p, qmax, int_zero, &ps);
    if (it == 0) sum_x = ps.sum_x;
    const double err = o.track_l2 ? ps.sq_err : ps.abs_err;
    if (err < best) {
      best = err;
      res.best = p;
    } else if (o.early_stop) {
      res.early_stop = true;
      break;
    }
    if (it == o.iterations) break;
    const size_t k = static_cast<size_t>(it);
    double sum_e = 0, sum_qe = 0;
    if (ps.max_abs > sched.below[k]) {
      shrink_sums(x, n, p, qmax, int_zero, sched.beta[k], o.lp_norm, sched.below[k], sum_e, sum_qe);
    }
    p = next_params(p, ps, sum_x, sum_e, sum_qe, n, qmax, int_zero, o);
    ++res.iterations;
  }
  return res;
}

struct Setup {
  const HqqOptions& o;
  Schedule sched;
  bool want_errors;  // the guard or the stats need quantize()'s and the result's block errors
  BlockCodec codec;  // the quantizer's arithmetic for fixed block parameters
  float qmax;
  bool float_zero;
};

// Per-block outcome, merged into HqqStats in block order.
struct BlockOutcome {
  bool optimized = false, early = false, fallback = false, changed = false;
  int iterations = 0;
  double rtn_err = 0, err = 0;
};

// Optimizes block b: `blk` holds quantize()'s parameters on entry and the
// stored result on exit. `buf` is scratch for the block's elements.
BlockOutcome hqq_block(const Setup& S, const float* x, uint64_t b, BlockParams& blk, std::vector<float>& buf) {
  BlockOutcome out;
  const BlockScale& p = blk.value;
  if (!(p.scale > 0.0f)) return out;  // NaN (inf/NaN inside) or 0: nothing to fit
  const BlockGrid& g = S.codec.grid();
  const uint64_t n = g.block_elements(b);
  buf.resize(n);
  uint64_t k = 0;
  for_each_segment(g, b, [&](uint64_t r, uint64_t c0, uint64_t c1) {
    std::memcpy(buf.data() + k, x + r * g.cols + c0, (c1 - c0) * sizeof(float));
    k += c1 - c0;
  });
  const bool int_loop = !S.float_zero && S.o.round_zero_in_loop;
  const LoopParams p0{p.scale, p.inv, S.float_zero ? p.z_in : p.z_post};
  const BlockResult r = optimize_block(buf.data(), n, p0, S.qmax, int_loop, S.o, S.sched);
  out.optimized = true;
  out.iterations = r.iterations;
  out.early = r.early_stop;
  // The parameters as stored, and as dequantize() reads them.
  BlockParams q = blk;
  if (r.best.s != p.scale) {
    q = S.codec.with_scale(blk, r.best.s);
    if (!(q.value.scale > 0.0f && std::isfinite(q.value.scale))) q = blk;  // the scale format cannot hold it: keep quantize()'s
  }
  q = S.codec.with_zero(q, r.best.z);
  if (S.float_zero && !std::isfinite(q.value.z_in)) q = blk;  // e.g. a negative zero in an unsigned scale format
  const bool same = q.scale_code == blk.scale_code && q.zero_code == blk.zero_code;
  if (S.want_errors) {
    out.rtn_err = S.codec.block_sq_error(buf.data(), n, blk);
    out.err = same ? out.rtn_err : S.codec.block_sq_error(buf.data(), n, q);
  }
  if (S.o.rtn_guard && out.err > out.rtn_err) {
    out.fallback = true;
    out.err = out.rtn_err;
    return out;
  }
  out.changed = !same;
  blk = q;
  return out;
}

}  // namespace

float hqq_shrink_lp(float x, float beta, float p) {
  const float a = std::fabs(x);
  if (a == 0.0f) return 0.0f;
  const float t = a - std::pow(a, p - 1.0f) / beta;
  return t > 0.0f ? std::copysign(t, x) : 0.0f;
}

QuantizedTensor hqq_quantize(const TensorView& xv, const Scheme& scheme, const HqqOptions& opt, HqqStats* stats) {
  const float* x = xv.data;
  const std::vector<uint64_t>& shape = xv.shape;
  check_options(scheme, opt);
  const int threads = thread_count(opt.threads);
  // The starting point is quantize()'s own result with the same scheme (its
  // scale rule, scale rounding and zero), which is also what the guard
  // compares with. Outliers come out as quantize() takes them out; HQQ
  // fits the dense rest.
  QuantizeOptions qo;
  qo.threads = threads;
  std::vector<float> dense;
  OutlierList outliers;
  const float* xd = x;
  Scheme dense_scheme = scheme;
  if (scheme.outliers.kind != OutlierPolicy::Kind::kNone) {
    const BlockGrid g = BlockGrid::make(shape, scheme.gran);
    dense.assign(x, x + g.numel());
    outliers = extract_outliers(dense.data(), g.rows, g.cols, scheme.outliers);
    xd = dense.data();
    dense_scheme.outliers = OutlierPolicy{};
  }
  QuantizedTensor q = quantize({xd, shape}, dense_scheme, qo);
  q.scheme = scheme;
  q.outliers = std::move(outliers);

  const Setup S{opt, Schedule(opt), opt.rtn_guard || stats != nullptr, BlockCodec(dense_scheme, shape),
                static_cast<float>(scheme.element_max()), scheme.zero == ZeroPoint::kFloat};
  const BlockGrid& g = S.codec.grid();
  HqqStats st;
  st.blocks = g.numel() == 0 ? 0 : g.num_blocks;
  if (st.blocks == 0 || opt.iterations == 0) {
    if (stats) *stats = st;
    return q;
  }
  std::vector<BlockParams> blocks = S.codec.read(q);

  // Blocks in fixed runs per task, each optimized whole.
  const uint64_t blocks_per_task = std::max<uint64_t>(1, kTaskElements / std::max<uint64_t>(1, g.block_elements(0)));
  std::vector<BlockOutcome> outcome(g.num_blocks);
  ThreadPool::global().parallel_for((g.num_blocks + blocks_per_task - 1) / blocks_per_task, threads, [&](size_t t) {
    std::vector<float> buf;  // per task (a tensor-wide block must not stay allocated in a pool thread)
    const uint64_t b1 = std::min(g.num_blocks, (t + 1) * blocks_per_task);
    for (uint64_t b = t * blocks_per_task; b < b1; ++b) outcome[b] = hqq_block(S, xd, b, blocks[b], buf);
  });
  for (const BlockOutcome& o : outcome) {
    if (!o.optimized) continue;
    ++st.optimized_blocks;
    st.iterations += static_cast<uint64_t>(o.iterations);
    st.early_stops += o.early;
    st.rtn_fallbacks += o.fallback;
    st.changed_blocks += o.changed;
    st.rtn_sq_err += o.rtn_err;
    st.hqq_sq_err += o.err;
  }

  S.codec.encode({xd, shape}, blocks, threads, q);
  S.codec.write(blocks, q);
  q.scheme = scheme;
  if (stats) *stats = st;
  return q;
}

namespace {

// hqq as a registered method: the algorithm above with default options.
class Hqq final : public Method {
 public:
  const char* name() const noexcept override { return "hqq"; }
  bool needs_calibration() const noexcept override { return false; }
  void check(const Scheme& s) const override {
    if (s.zero == ZeroPoint::kNone || s.element.family != Family::kInteger) {
      fail_usage("method hqq needs an asymmetric integer scheme (e.g. int4/g128/asym or int4/g64/asym=float), got '" +
                 s.spec() + "'; use rtn or mse");
    }
  }
  using Method::quantize;
  QuantizedTensor quantize(const TensorView& w, const Scheme& s, const CalibStats*,
                           const QuantizeOptions& base, MethodReport*) const override {
    check(s);
    HqqOptions o;
    o.threads = base.threads;
    return hqq_quantize(w, s, o);
  }
};

}  // namespace

const Method& hqq_method() {
  static const Hqq m;
  return m;
}

}  // namespace lowbit
#endif  // HWY_ONCE
