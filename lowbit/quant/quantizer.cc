#include "lowbit/quant/quantizer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/format/packing.h"
#include "lowbit/format/registry.h"
#include "lowbit/format/stochastic_bits.h"
#include "lowbit/ggml/blocks.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/kernels/scaled_kernels.h"
#include "lowbit/kernels/small_block_kernels.h"
#include "lowbit/quant/block_grid.h"
#include "lowbit/quant/outliers.h"
#include "lowbit/quant/reciprocal_scale.h"
#include "lowbit/quant/scale_coder.h"

namespace lowbit {

namespace {

using kernels::BlockScale;

constexpr uint32_t kInfBits = 0x7f800000u;
using kernels::kMseGridStep;
using kernels::kMseGridSteps;
using kernels::kMseRefineSteps;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

int thread_count(int t) { return t > 0 ? t : default_thread_count(); }

// Everything derived from a scheme and a shape, shared by the phases.
struct Plan {
  Plan(const Scheme& s, const std::vector<uint64_t>& shape, const QuantizeOptions& o)
      : s(s),
        grid(BlockGrid::make(shape, s.gran)),
        elem(make_kernel_plan(s.zero == ZeroPoint::kNone ? s.element : make_int_format(s.element.bits + 1, true, false),
                              s.round)),
        sc(s.scale_format),
        threads(thread_count(o.threads)),
        min_tensor_amax(o.min_tensor_amax) {
    if (!(std::isfinite(o.min_tensor_amax) && o.min_tensor_amax >= 0)) {
      fail_usage(std::string("min_tensor_amax must be finite and >= 0, not ").append(std::to_string(o.min_tensor_amax)));
    }
    spec.asym = s.zero != ZeroPoint::kNone;
    spec.qmax = static_cast<float>(s.element_max());
    emax_val = static_cast<float>(s.element_max());
    emax_exp = s.element_emax();
    if (s.two_level()) tsc.emplace(*s.tensor_scale_format);
    if (o.reciprocal_tensor_scale) {
      if (!s.two_level() || s.tensor_scale_format->name != "float32") {
        fail_usage("a reciprocal tensor scale needs a two-level scheme with a float32 tensor scale (nvfp4 is one), not '" +
                   s.spec() + "'");
      }
      reciprocal_tensor_scale = true;
    }
    if (s.rule == ScaleRule::kWmse) {
      if (!o.importance) fail_usage("scale=wmse needs importance weights (one per element or per column)");
      const uint64_t want = o.importance_per_column ? grid.cols : grid.numel();
      if (o.importance_count != want) {
        fail_input("importance weights: expected " + std::to_string(want) + " values (" +
                   (o.importance_per_column ? "one per column" : "one per element") + "), got " +
                   std::to_string(o.importance_count));
      }
      weights = o.importance;
      w_per_col = o.importance_per_column;
    }
  }
  const Scheme& s;
  BlockGrid grid;
  KernelPlan elem;
  kernels::ScaledSpec spec;
  ScaleCoder sc;
  std::optional<ScaleCoder> tsc;
  float emax_val = 1;
  int emax_exp = 0;
  float s_t = 1;  // tensor scale value (two-level)
  uint32_t s_t_code = 0;
  int threads = 1;
  float min_tensor_amax = 0;  // QuantizeOptions'
  bool reciprocal_tensor_scale = false;  // QuantizeOptions'
  const float* weights = nullptr;
  bool w_per_col = false;
  // The fused small-block route (plan_small_blocks): its spec, and the
  // scale format's kernel plan it rounds scales with.
  bool small = false;
  kernels::SmallBlockSpec small_spec;
  std::optional<KernelPlan> scale_plan;

  const float* row_weights(uint64_t r) const {
    if (!weights) return nullptr;
    return w_per_col ? weights : weights + r * grid.cols;
  }
};

// Per-block state, for all blocks of the grid or for one unit's blocks.
struct Blocks {
  std::vector<uint32_t> amax_bits;
  std::vector<float> vmin, vmax;
  std::vector<BlockScale> params;
  std::vector<uint32_t> scale_codes, zero_codes;
  void init(uint64_t n, bool minmax) {
    amax_bits.assign(n, 0);
    if (minmax) {
      vmin.assign(n, std::numeric_limits<float>::infinity());
      vmax.assign(n, -std::numeric_limits<float>::infinity());
    }
    params.resize(n);
    scale_codes.resize(n);
    zero_codes.resize(n);
  }
  uint64_t size() const { return amax_bits.size(); }
};

// Where a Blocks array sits in the grid: block (br, bc) is entry
// (br - br0) * bpr + (bc - bc0). The whole grid, or one unit's rectangle of
// blocks (kept small and hot in cache, and never allocated per call).
struct Frame {
  uint64_t br0 = 0, bc0 = 0, bpr = 0, rows = 0;
  static Frame whole(const BlockGrid& g) { return {0, 0, g.blocks_per_row, g.row_mod}; }
  static Frame of_unit(const BlockGrid& g, const BlockGrid::Unit& u) {
    Frame f;
    f.br0 = g.block_row(u.r0);
    f.rows = g.block_row(u.r1 - 1) - f.br0 + 1;
    f.bc0 = u.c0 / g.group;
    f.bpr = (u.c1 - u.c0 + g.group - 1) / g.group;
    return f;
  }
  uint64_t size() const { return rows * bpr; }
  // Entry of the first block of row r from column c0 (group-aligned) on.
  uint64_t row_entry(const BlockGrid& g, uint64_t r, uint64_t c0) const {
    return (g.block_row(r) - br0) * bpr + (c0 / g.group - bc0);
  }
  uint64_t global(const BlockGrid& g, uint64_t e) const {
    return (br0 + e / bpr) * g.blocks_per_row + bc0 + e % bpr;
  }
};

void unit_stats(const Plan& P, const float* x, const BlockGrid::Unit& u, Blocks& B, const Frame& F) {
  const BlockGrid& g = P.grid;
  const bool mm = P.spec.asym;
  for (uint64_t r = u.r0; r < u.r1; ++r) {
    const uint64_t b0 = F.row_entry(g, r, u.c0);
    kernels::row_block_stats(x + r * g.cols + u.c0, u.c1 - u.c0, g.group, B.amax_bits.data() + b0,
                             mm ? B.vmin.data() + b0 : nullptr, mm ? B.vmax.data() + b0 : nullptr);
  }
}

// Runs the row kernel over every row of a unit. Rows go to the kernel from
// their column c0 on, so that block j / group of the row segment is entry
// row_entry + j / group of the frame; out_for(r, base, b0, out) fills the
// row's outputs (base: the element index of column c0).
template <class OutFor>
void unit_rows(const Plan& P, const float* x, const BlockGrid::Unit& u, const BlockScale* params, const Frame& F,
               OutFor&& out_for) {
  const BlockGrid& g = P.grid;
  for (uint64_t r = u.r0; r < u.r1; ++r) {
    const uint64_t b0 = F.row_entry(g, r, u.c0);
    const uint64_t base = r * g.cols + u.c0;
    kernels::ScaledOut out;
    out_for(r, base, b0, out);
    split_at_index_blocks(0, u.c1 - u.c0, base, [&](uint64_t j0, uint64_t j1) {
      kernels::scaled_row(P.elem, P.spec, x + base, j0, j1, g.group, params + b0, base, out);
    });
  }
}

void unit_errors(const Plan& P, const float* x, const BlockGrid::Unit& u, const BlockScale* params, double* err,
                 const Frame& F) {
  unit_rows(P, x, u, params, F, [&](uint64_t r, uint64_t, uint64_t b0, kernels::ScaledOut& out) {
    const float* w = P.row_weights(r);
    out.weights = w ? w + u.c0 : nullptr;
    out.block_err = err + b0;
  });
}

// Scale of block b from its statistics and a clip factor alpha (1: the
// rule's own scale). Fills params, scale code and zero code.
struct RawScale {
  float raw = 0;       // the scale before rounding to the scale format
  float lo = 0, hi = 0;  // asym range
  bool bad = false;    // the block holds inf or NaN
};

// The OCP MX floor rule's exponent: floor(log2 amax) - emax_elem, clamped
// to E8M0's [-127, 127]; an all-zero block takes the smallest scale (as
// microxcaling does). Straight from the float32 bits of amax.
int floor_rule_exponent(const Plan& P, uint32_t amax_bits) {
  if (amax_bits == 0) return -127;
  const int e = amax_bits >= 0x00800000u ? static_cast<int>(amax_bits >> 23) - 127
                                         : std::ilogb(std::bit_cast<float>(amax_bits));
  return std::clamp(e - P.emax_exp, -127, 127);
}

// The absmax-like raw scale: alpha * amax / max_elem, relative to the
// tensor scale of a two-level scheme (0 when that is 0).
inline float absmax_raw(const Plan& P, float amax, float alpha) {
  const float raw = (amax * alpha) / P.emax_val;
  if (!P.s.two_level()) return raw;
  return P.s_t == 0.0f ? 0.0f : raw / P.s_t;
}

RawScale raw_scale(const Plan& P, const Blocks& B, uint64_t b, float alpha) {
  const Scheme& s = P.s;
  RawScale r;
  const uint32_t ab = B.amax_bits[b];
  if (ab >= kInfBits) {
    r.bad = true;
    return r;
  }
  const float amax = std::bit_cast<float>(ab);
  if (P.spec.asym) {
    float lo = B.vmin[b] * alpha, hi = B.vmax[b] * alpha;
    // An integer zero needs zero in the range to be exact. A float zero
    // takes [min, max] as it is, except a constant block (one element, say):
    // a zero-width range would give scale 0 and dequantize the block to 0,
    // so it is widened to zero too, and the value is then the top (bottom)
    // code, s * (2^b - 1) (minus that, z = 2^b - 1).
    if (s.zero == ZeroPoint::kInteger || hi == lo) {
      lo = std::min(lo, 0.0f);
      hi = std::max(hi, 0.0f);
    }
    r.lo = lo;
    r.hi = hi;
    r.raw = (hi - lo) / P.emax_val;
    return r;
  }
  if (s.power_of_two_rule() || P.sc.is_power_of_two_format()) {
    // Exponents: floor: floor(log2 amax) - emax_elem; ceil: the smallest e
    // with emax_val * 2^e >= amax. Both clamp to E8M0's [-127, 127]; an
    // all-zero block takes the smallest scale.
    int e;
    if (s.rule == ScaleRule::kFloor) {
      e = floor_rule_exponent(P, ab);
    } else if (amax == 0.0f) {
      e = -127;
    } else {
      const double target = static_cast<double>(amax) / P.s_t;
      e = std::ilogb(target / P.emax_val);
      while (std::ldexp(static_cast<double>(P.emax_val), e) < target) ++e;
      while (e > -200 && std::ldexp(static_cast<double>(P.emax_val), e - 1) >= target) --e;
    }
    e = std::clamp(e, -127, 127);
    r.raw = std::ldexp(1.0f, e) * alpha;  // alpha is a power of two here
    return r;
  }
  r.raw = absmax_raw(P, amax, alpha);
  return r;
}

// The OCP MX rule on E8M0 scales, straight from the amax bits: code =
// clamp(floor(log2 amax) - emax_elem + 127, 0, 254), 0 for an all-zero
// block, 0xFF (NaN) for inf or NaN. Same results as raw_scale + ScaleCoder,
// without either (the MX presets spend most of their scale time here).
void set_params_mx_floor(const Plan& P, const Blocks& B, const std::vector<uint64_t>& blocks, BlockScale* params,
                         uint32_t* scale_codes) {
  const auto pow2 = [](int e) {  // 2^e for e in [-127, 127], exact
    return std::bit_cast<float>(e >= -126 ? static_cast<uint32_t>(e + 127) << 23 : 0x00400000u);
  };
  for (uint64_t b : blocks) {
    const uint32_t ab = B.amax_bits[b];
    if (ab >= kInfBits) {
      params[b] = BlockScale{kNaN, kNaN, 0, 0};
      if (scale_codes) scale_codes[b] = 0xFF;
      continue;
    }
    const int e = floor_rule_exponent(P, ab);
    params[b] = BlockScale{pow2(e), pow2(-e), 0, 0};
    if (scale_codes) scale_codes[b] = static_cast<uint32_t>(e + 127);
  }
}

// Rounds the raw scales of `blocks` (alpha per block, or 1) and fills their
// parameters and codes.
void set_params(const Plan& P, Blocks& B, const std::vector<uint64_t>& blocks, const float* alpha,
                BlockScale* params, uint32_t* scale_codes, uint32_t* zero_codes) {
  const size_t n = blocks.size();
  if (!alpha && P.s.rule == ScaleRule::kFloor && P.sc.is_power_of_two_format() && !P.spec.asym && !P.s.two_level()) {
    return set_params_mx_floor(P, B, blocks, params, scale_codes);
  }
  thread_local std::vector<RawScale> raws;
  thread_local std::vector<float> raw, val, zraw, zval;
  thread_local std::vector<uint32_t> codes, zcodes;
  raws.resize(n);
  raw.resize(n);
  val.resize(n);
  codes.resize(n);
  if (!P.spec.asym && !P.s.power_of_two_rule() && !P.sc.is_power_of_two_format()) {
    // The common case (absmax-like rules on float scales) in one tight
    // loop, without raw_scale's branches.
    for (size_t i = 0; i < n; ++i) {
      const uint32_t ab = B.amax_bits[blocks[i]];
      const bool bad = ab >= kInfBits;
      raws[i].bad = bad;
      raw[i] = absmax_raw(P, std::bit_cast<float>(bad ? 0u : ab), alpha ? alpha[i] : 1.0f);
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      raws[i] = raw_scale(P, B, blocks[i], alpha ? alpha[i] : 1.0f);
      raw[i] = raws[i].bad ? 0.0f : raws[i].raw;
    }
  }
  // Trial scales of a search need values only; codes are for the result.
  const bool want_codes = scale_codes != nullptr;
  P.sc.round(raw.data(), n, val.data(), want_codes ? codes.data() : nullptr);
  const bool float_zero = P.s.zero == ZeroPoint::kFloat;
  if (float_zero) {
    zraw.resize(n);
    zval.resize(n);
    zcodes.resize(n);
    for (size_t i = 0; i < n; ++i) {
      const float s = val[i];
      const float inv = s == 0.0f ? 0.0f : 1.0f / s;
      zraw[i] = raws[i].bad ? 0.0f : -raws[i].lo * inv;
    }
    P.sc.round(zraw.data(), n, zval.data(), want_codes ? zcodes.data() : nullptr);
  }
  // The common symmetric case in branch-free loops the compiler vectorizes:
  // effective scales and their reciprocals first, blocks holding inf or NaN
  // patched afterwards.
  if (!P.spec.asym) {
    thread_local std::vector<float> eff, inv;
    eff.resize(n);
    inv.resize(n);
    const float st = P.s.two_level() ? P.s_t : 1.0f;
    const bool two = P.s.two_level();
    for (size_t i = 0; i < n; ++i) eff[i] = two ? val[i] * st : val[i];
    for (size_t i = 0; i < n; ++i) inv[i] = eff[i] == 0.0f ? 0.0f : 1.0f / eff[i];
    for (size_t i = 0; i < n; ++i) {
      const uint64_t b = blocks[i];
      params[b] = BlockScale{eff[i], inv[i], 0.0f, 0.0f};
      if (want_codes) {
        scale_codes[b] = codes[i];
        zero_codes[b] = 0;
      }
    }
    for (size_t i = 0; i < n; ++i) {
      if (!raws[i].bad) continue;
      params[blocks[i]] = BlockScale{kNaN, kNaN, 0, 0};
      if (want_codes) scale_codes[blocks[i]] = P.sc.nan_code();
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) {
    const uint64_t b = blocks[i];
    BlockScale& p = params[b];
    if (raws[i].bad) {
      p = BlockScale{kNaN, kNaN, 0, 0};
      if (want_codes) {
        scale_codes[b] = P.sc.nan_code();
        zero_codes[b] = 0;
      }
      continue;
    }
    const float eff = P.s.two_level() ? val[i] * P.s_t : val[i];
    p.scale = eff;
    p.inv = eff == 0.0f ? 0.0f : 1.0f / eff;
    p.z_in = 0;
    p.z_post = 0;
    if (want_codes) {
      scale_codes[b] = codes[i];
      zero_codes[b] = 0;
    }
    if (P.s.zero == ZeroPoint::kInteger) {
      // z = round(-lo / s), clamped to the codes: zero maps to code z.
      const float z = std::clamp(std::nearbyint(-raws[i].lo * p.inv), 0.0f, P.spec.qmax);
      p.z_post = z;
      if (want_codes) zero_codes[b] = static_cast<uint32_t>(z);
    } else if (float_zero) {
      p.z_in = zval[i];
      if (want_codes) zero_codes[b] = zcodes[i];
    }
  }
}

// The mse/wmse search over clip factors for the blocks of one block set;
// `eval` fills err (zeroed for those blocks) for the given params.
template <class Eval>
void search_scales(const Plan& P, Blocks& B, const std::vector<uint64_t>& blocks, Eval&& eval) {
  const size_t n = blocks.size();
  // Indexed like B; only this set's entries are touched.
  thread_local std::vector<BlockScale> trial;
  thread_local std::vector<double> err;
  trial.resize(B.size());
  err.resize(B.size());
  std::vector<float> best_alpha(n, 1.0f), alpha(n);
  std::vector<double> best_err(n, std::numeric_limits<double>::infinity());
  const auto try_alpha = [&](const std::vector<float>& a) {
    set_params(P, B, blocks, a.data(), trial.data(), nullptr, nullptr);
    for (uint64_t b : blocks) err[b] = 0.0;
    eval(trial.data(), err.data());
    std::vector<double> out(n);
    for (size_t i = 0; i < n; ++i) {
      const double e = err[blocks[i]];
      out[i] = e;
      if (e < best_err[i]) {
        best_err[i] = e;
        best_alpha[i] = a[i];
      }
    }
    return out;
  };
  if (P.sc.is_power_of_two_format()) {
    // Power-of-two scales: the ceil rule's exponent and the three below it.
    for (int k = 0; k <= 3; ++k) {
      std::fill(alpha.begin(), alpha.end(), std::ldexp(1.0f, -k));
      try_alpha(alpha);
    }
  } else {
    // A coarse grid of clip factors, then golden-section refinement around
    // the best, per block.
    for (int k = 0; k <= kMseGridSteps; ++k) {
      std::fill(alpha.begin(), alpha.end(), 1.0f - static_cast<float>(k) * kMseGridStep);
      try_alpha(alpha);
    }
    const float phi = kernels::kMsePhi;
    std::vector<float> lo(n), hi(n), x1(n), x2(n);
    for (size_t i = 0; i < n; ++i) {
      lo[i] = std::max(best_alpha[i] - kMseGridStep, 0.01f);
      hi[i] = std::min(best_alpha[i] + kMseGridStep, 1.0f);
      x1[i] = hi[i] - phi * (hi[i] - lo[i]);
      x2[i] = lo[i] + phi * (hi[i] - lo[i]);
    }
    std::vector<double> f1 = try_alpha(x1), f2 = try_alpha(x2);
    for (int it = 0; it < kMseRefineSteps; ++it) {
      std::vector<float> next(n);
      std::vector<bool> left(n);
      for (size_t i = 0; i < n; ++i) {
        left[i] = f1[i] <= f2[i];
        if (left[i]) {
          hi[i] = x2[i];
          x2[i] = x1[i];
          f2[i] = f1[i];
          x1[i] = hi[i] - phi * (hi[i] - lo[i]);
          next[i] = x1[i];
        } else {
          lo[i] = x1[i];
          x1[i] = x2[i];
          f1[i] = f2[i];
          x2[i] = lo[i] + phi * (hi[i] - lo[i]);
          next[i] = x2[i];
        }
      }
      const std::vector<double> f = try_alpha(next);
      for (size_t i = 0; i < n; ++i) (left[i] ? f1[i] : f2[i]) = f[i];
    }
  }
  set_params(P, B, blocks, best_alpha.data(), B.params.data(), B.scale_codes.data(), B.zero_codes.data());
}

// Percentile clipping: replace the block statistics by the percentile of
// |x| (symmetric) or of x at p and 100 - p (asym), over the block's
// elements gathered from the tensor.
void gather_block(const Plan& P, const float* x, uint64_t b, std::vector<float>& out) {
  const BlockGrid& g = P.grid;
  const uint64_t br = b / g.blocks_per_row, bc = b % g.blocks_per_row;
  const uint64_t c0 = bc * g.group, c1 = std::min(g.cols, c0 + g.group);
  out.clear();
  const auto take = [&](uint64_t r) { out.insert(out.end(), x + r * g.cols + c0, x + r * g.cols + c1); };
  if (g.row_mod == 1) {
    for (uint64_t r = 0; r < g.rows; ++r) take(r);
  } else if (g.row_mod * g.row_div >= g.rows) {
    for (uint64_t r = br * g.row_div; r < std::min(g.rows, (br + 1) * g.row_div); ++r) take(r);
  } else {
    // Channel on a middle axis: the block's rows recur every row_mod * row_div.
    const uint64_t period = g.row_mod * g.row_div;
    for (uint64_t o = 0; o * period < g.rows; ++o) {
      for (uint64_t k = 0; k < g.row_div; ++k) take(o * period + br * g.row_div + k);
    }
  }
}

float percentile_of(std::vector<float>& v, double p) {
  if (v.empty()) return 0;
  const double pos = p / 100.0 * static_cast<double>(v.size());
  size_t k = static_cast<size_t>(std::ceil(pos));
  k = std::clamp<size_t>(k, 1, v.size()) - 1;
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
  return v[k];
}

void apply_percentile(const Plan& P, const float* x, Blocks& B, const std::vector<uint64_t>& blocks, const Frame& F) {
  std::vector<float> buf;
  for (uint64_t b : blocks) {
    if (B.amax_bits[b] >= kInfBits) continue;
    gather_block(P, x, F.global(P.grid, b), buf);
    if (P.spec.asym) {
      std::vector<float> copy = buf;
      B.vmax[b] = percentile_of(buf, P.s.percentile);
      B.vmin[b] = percentile_of(copy, 100.0 - P.s.percentile);
      B.vmin[b] = std::min(B.vmin[b], B.vmax[b]);
    } else {
      for (float& v : buf) v = std::fabs(v);
      B.amax_bits[b] = std::bit_cast<uint32_t>(percentile_of(buf, P.s.percentile));
    }
  }
}

// Output of the emit phase.
struct Sink {
  kernels::CodeLayout layout = kernels::CodeLayout::kNone;
  // Scale codes written straight into the stored bytes (whole-byte scale
  // formats of a local grid), instead of through Blocks::scale_codes.
  uint8_t* scale_bytes = nullptr;
  int scale_width = 0;
  uint8_t* codes = nullptr;  // tensor start; element size by layout
  float* deq = nullptr;
};

void* row_codes(const Sink& k, uint64_t elem_index) {
  switch (k.layout) {
    case kernels::CodeLayout::kByte: return k.codes + elem_index;
    case kernels::CodeLayout::kHalf: return k.codes + 2 * elem_index;
    case kernels::CodeLayout::kWord: return k.codes + 4 * elem_index;
    case kernels::CodeLayout::kNibbles: return k.codes + elem_index / 2;
    case kernels::CodeLayout::kNone: return nullptr;
  }
  return nullptr;
}

void unit_emit(const Plan& P, const float* x, const BlockGrid::Unit& u, const Blocks& B, const Sink& sink,
               const Frame& F) {
  unit_rows(P, x, u, B.params.data(), F, [&](uint64_t, uint64_t base, uint64_t, kernels::ScaledOut& out) {
    out.layout = sink.layout;
    out.codes = row_codes(sink, base);
    out.deq = sink.deq ? sink.deq + base : nullptr;
  });
}

// The largest finite block amax of a Blocks array, as float32 bits.
uint32_t finite_amax(const Blocks& B) {
  uint32_t m = 0;
  for (uint32_t a : B.amax_bits) {
    if (a < kInfBits) m = std::max(m, a);
  }
  return m;
}

// The tensor scale of a two-level scheme: amax over the finite blocks,
// mapped onto element max x block-scale max.
void set_tensor_scale(Plan& P, uint32_t amax_bits) {
  const float amax = std::max(std::bit_cast<float>(amax_bits), P.min_tensor_amax);
  const float denom = P.emax_val * static_cast<float>(P.sc.format().max_finite());
  const float raw = amax / denom;
  float val = 0;
  uint32_t code = 0;
  P.tsc->round(&raw, 1, &val, &code);
  if (P.reciprocal_tensor_scale) {
    val = reciprocal_preimage(val).back;
    code = std::bit_cast<uint32_t>(val);  // float32's code is its bits
  }
  P.s_t = val;
  P.s_t_code = code;
}

// The tensor amax of a two-level scheme over a local grid: the largest
// finite block amax. A unit without inf or NaN needs only max |x| (at
// memory speed, no block structure); one with them takes block statistics
// so that their blocks are left out whole.
uint32_t tensor_amax(const Plan& P, const float* x) {
  const BlockGrid& g = P.grid;
  std::vector<uint32_t> unit_amax(g.num_units(), 0);
  ThreadPool::global().parallel_for(g.num_units(), P.threads, [&](size_t ui) {
    const BlockGrid::Unit u = g.unit(ui);
    uint32_t m = 0;
    for (uint64_t r = u.r0; r < u.r1; ++r) m = std::max(m, kernels::max_abs_bits(x + r * g.cols + u.c0, u.c1 - u.c0));
    if (m >= kInfBits) {
      const Frame F = Frame::of_unit(g, u);
      thread_local Blocks L;
      L.init(F.size(), P.spec.asym);
      unit_stats(P, x, u, L, F);
      m = finite_amax(L);
    }
    unit_amax[ui] = m;
  });
  return *std::max_element(unit_amax.begin(), unit_amax.end());
}

// The same, keeping every block's amax in `all` (indexed like the grid's
// blocks) for the general route's second pass.
uint32_t tensor_block_amax(const Plan& P, const float* x, std::vector<uint32_t>& all) {
  const BlockGrid& g = P.grid;
  all.assign(g.num_blocks, 0);
  std::vector<uint32_t> unit_amax(g.num_units(), 0);
  ThreadPool::global().parallel_for(g.num_units(), P.threads, [&](size_t ui) {
    const BlockGrid::Unit u = g.unit(ui);
    for (uint64_t r = u.r0; r < u.r1; ++r) {
      kernels::row_block_stats(x + r * g.cols + u.c0, u.c1 - u.c0, g.group, all.data() + g.block_of(r, u.c0), nullptr,
                               nullptr);
    }
    uint32_t m = 0;
    for (uint64_t br = g.block_row(u.r0); br <= g.block_row(u.r1 - 1); ++br) {
      for (uint64_t bc = u.c0 / g.group; bc <= (u.c1 - 1) / g.group; ++bc) {
        const uint32_t a = all[br * g.blocks_per_row + bc];
        if (a < kInfBits) m = std::max(m, a);
      }
    }
    unit_amax[ui] = m;
  });
  return *std::max_element(unit_amax.begin(), unit_amax.end());
}

// Chooses the fused small-block route (small_block_kernels.h) where it
// computes exactly what the general route does: symmetric 1-D groups of at
// most 64 with the MX floor rule on E8M0, or absmax or mse on a scale
// format the SIMD rounding covers (two-level or not), whose scale format
// has a NaN for blocks holding inf or NaN (without one the general route
// reports the error), and scale codes written straight into the stored
// bytes (or not at all: fakequant).
void plan_small_blocks(Plan& P, const Sink& sink) {
  P.small = false;
  const Scheme& s = P.s;
  const BlockGrid& g = P.grid;
  if (s.gran.kind != Granularity::Kind::kGroup || g.group > kernels::kSmallBlockMaxGroup || P.spec.asym) return;
  if (!s.scale_format.has_nan() || (sink.codes && !sink.scale_bytes)) return;
  kernels::SmallBlockSpec& k = P.small_spec;
  k = kernels::SmallBlockSpec{};
  k.group = g.group;
  k.nan_code = P.sc.nan_code();
  k.emax_exp = P.emax_exp;
  k.emax_val = P.emax_val;
  k.two_level = s.two_level();
  k.tensor_scale = P.s_t;  // two-level: set again once the first pass has it
  if (s.rule == ScaleRule::kFloor && P.sc.is_power_of_two_format() && !s.two_level()) {
    k.rule = kernels::SmallBlockRule::kFloorE8m0;
  } else if ((s.rule == ScaleRule::kAbsmax || s.rule == ScaleRule::kMse) && !P.sc.is_power_of_two_format()) {
    k.rule = s.rule == ScaleRule::kMse ? kernels::SmallBlockRule::kMse : kernels::SmallBlockRule::kAbsmax;
    P.scale_plan.emplace(make_kernel_plan(s.scale_format, RoundOptions{}));
    k.scale = &*P.scale_plan;
  } else {
    return;
  }
  P.small = kernels::small_block_supported(P.elem, k, sink.layout);
}

// Whether a unit's elements share one 2^32 block of indices, as a row
// kernel's part must (scaled_kernels.h; error sums are canonical per part).
bool within_index_block(const BlockGrid& g, const BlockGrid::Unit& u) {
  const uint64_t first = u.r0 * g.cols + u.c0, last = (u.r1 - 1) * g.cols + u.c1 - 1;
  return first >> 32 == last >> 32;
}

void unit_small_blocks(const Plan& P, const float* x, const BlockGrid::Unit& u, const Sink& sink) {
  const BlockGrid& g = P.grid;
  for (uint64_t r = u.r0; r < u.r1; ++r) {
    const uint64_t base = r * g.cols + u.c0;
    kernels::SmallBlockOut out;
    out.layout = sink.layout;
    out.codes = row_codes(sink, base);
    out.deq = sink.deq ? sink.deq + base : nullptr;
    if (sink.scale_bytes) {
      out.scale_codes = sink.scale_bytes + g.block_of(r, u.c0) * static_cast<uint64_t>(sink.scale_width);
      out.scale_width = sink.scale_width;
    }
    kernels::small_block_row(P.elem, P.small_spec, x + base, u.c1 - u.c0, out);
  }
}

// Runs the whole pipeline. codes/deq outputs per the sink; B receives the
// scale and zero codes of every block.
void run(Plan& P, const float* x, Blocks& B, const Sink& sink) {
  const BlockGrid& g = P.grid;
  const uint64_t units = g.num_units();
  auto& pool = ThreadPool::global();
  const bool search = P.s.rule == ScaleRule::kMse || P.s.rule == ScaleRule::kWmse;
  if (g.local) {
    if (!sink.scale_bytes) B.scale_codes.resize(g.num_blocks);
    if (P.spec.asym) B.zero_codes.resize(g.num_blocks);
    // Two-level scales need the tensor amax before any block scale: a first
    // pass over the tensor. The fused route needs only max |x| from it (it
    // recomputes block maxima in registers); the general route keeps every
    // block's amax (exact, any order), so that the second pass reads them.
    plan_small_blocks(P, sink);
    const bool two = P.s.two_level();
    std::vector<uint32_t> all_amax;
    if (two) {
      set_tensor_scale(P, P.small ? tensor_amax(P, x) : tensor_block_amax(P, x, all_amax));
      P.small_spec.tensor_scale = P.s_t;
    }
    pool.parallel_for(units, P.threads, [&](size_t ui) {
      const BlockGrid::Unit u = g.unit(ui);
      if (P.small && within_index_block(g, u)) return unit_small_blocks(P, x, u, sink);
      const Frame F = Frame::of_unit(g, u);
      thread_local Blocks L;
      thread_local std::vector<uint64_t> ids;
      L.init(F.size(), P.spec.asym);
      ids.resize(F.size());
      for (uint64_t e = 0; e < F.size(); ++e) ids[e] = e;
      if (all_amax.empty()) {
        unit_stats(P, x, u, L, F);
      } else {
        for (uint64_t fr = 0, e = 0; fr < F.rows; ++fr) {
          const uint32_t* src = all_amax.data() + (F.br0 + fr) * g.blocks_per_row + F.bc0;
          for (uint64_t fc = 0; fc < F.bpr; ++fc, ++e) L.amax_bits[e] = src[fc];
        }
      }
      if (P.s.rule == ScaleRule::kPercentile) apply_percentile(P, x, L, ids, F);
      if (search) {
        search_scales(P, L, ids, [&](const BlockScale* params, double* err) { unit_errors(P, x, u, params, err, F); });
      } else {
        set_params(P, L, ids, nullptr, L.params.data(), L.scale_codes.data(), L.zero_codes.data());
      }
      unit_emit(P, x, u, L, sink, F);
      // Codes to their global places, row of blocks by row of blocks (no
      // division per block).
      for (uint64_t fr = 0, e = 0; fr < F.rows; ++fr) {
        const uint64_t b0 = (F.br0 + fr) * g.blocks_per_row + F.bc0;
        for (uint64_t fc = 0; fc < F.bpr; ++fc, ++e) {
          const uint64_t b = b0 + fc;
          const uint32_t code = L.scale_codes[e];
          if (sink.scale_width == 1) {
            sink.scale_bytes[b] = static_cast<uint8_t>(code);
          } else if (sink.scale_bytes) {
            for (int k = 0; k < sink.scale_width; ++k) {
              sink.scale_bytes[b * sink.scale_width + k] = static_cast<uint8_t>(code >> (8 * k));
            }
          } else {
            B.scale_codes[b] = code;
          }
          if (P.spec.asym) B.zero_codes[b] = L.zero_codes[e];
        }
      }
    });
    return;
  }
  // Blocks span units: statistics over stripes of units merged (max and
  // min are exact in any order), scales for all blocks, then the emit.
  const Frame W = Frame::whole(g);
  B.init(g.num_blocks, P.spec.asym);
  const uint64_t stripes = std::min<uint64_t>(units, 64);
  const auto stripe_units = [&](uint64_t s) {
    return std::pair<uint64_t, uint64_t>{units * s / stripes, units * (s + 1) / stripes};
  };
  {
    std::vector<Blocks> part(stripes);
    pool.parallel_for(stripes, P.threads, [&](size_t s) {
      part[s].init(g.num_blocks, P.spec.asym);
      const auto [a, b] = stripe_units(s);
      for (uint64_t u = a; u < b; ++u) unit_stats(P, x, g.unit(u), part[s], W);
    });
    for (const Blocks& p : part) {
      for (uint64_t b = 0; b < g.num_blocks; ++b) {
        B.amax_bits[b] = std::max(B.amax_bits[b], p.amax_bits[b]);
        if (P.spec.asym) {
          B.vmin[b] = std::min(B.vmin[b], p.vmin[b]);
          B.vmax[b] = std::max(B.vmax[b], p.vmax[b]);
        }
      }
    }
  }
  if (P.s.two_level()) set_tensor_scale(P, finite_amax(B));
  std::vector<uint64_t> all(g.num_blocks);
  for (uint64_t b = 0; b < g.num_blocks; ++b) all[b] = b;
  if (P.s.rule == ScaleRule::kPercentile) apply_percentile(P, x, B, all, W);
  if (search) {
    std::vector<std::vector<double>> part(stripes);
    search_scales(P, B, all, [&](const BlockScale* params, double* err) {
      pool.parallel_for(stripes, P.threads, [&](size_t s) {
        part[s].assign(g.num_blocks, 0.0);
        const auto [a, b] = stripe_units(s);
        for (uint64_t u = a; u < b; ++u) unit_errors(P, x, g.unit(u), params, part[s].data(), W);
      });
      for (const auto& p : part) {
        for (uint64_t b = 0; b < g.num_blocks; ++b) err[b] += p[b];
      }
    });
  } else {
    set_params(P, B, all, nullptr, B.params.data(), B.scale_codes.data(), B.zero_codes.data());
  }
  pool.parallel_for(units, P.threads, [&](size_t u) { unit_emit(P, x, g.unit(u), B, sink, W); });
}

void check_shape(const std::vector<uint64_t>& shape) {
  uint64_t n = 1;
  for (uint64_t d : shape) n = mul_or_fail(n, d, "tensor size");
  (void)n;
}


kernels::CodeLayout direct_layout(const Format& cf, uint64_t cols) {
  if (cf.ternary) return kernels::CodeLayout::kNone;
  if (cf.bits == 4) return cols % 2 == 0 ? kernels::CodeLayout::kNibbles : kernels::CodeLayout::kNone;
  if (cf.bits == 8) return kernels::CodeLayout::kByte;
  if (cf.bits > 8 && cf.bits <= 16) return kernels::CodeLayout::kHalf;
  if (cf.bits > 16) return kernels::CodeLayout::kWord;
  return kernels::CodeLayout::kNone;
}

// Quantizes with outliers removed (the caller restores them).
// Quantizes into q, reusing its buffers' memory (no page faults when the
// same shape is quantized again).
void quantize_dense(const float* x, const std::vector<uint64_t>& shape, const Scheme& s, const QuantizeOptions& opt,
                    QuantizedTensor& q) {
  q.scheme = s;
  q.shape = shape;
  q.outliers = OutlierList{};
  q.tensor_scale = 0;
  Plan P(s, shape, opt);
  const Format cf = s.code_format();
  const uint64_t n = P.grid.numel();
  q.codes.resize(component_bytes(cf, n));
  Sink sink;
  std::vector<uint8_t> tile;
  sink.layout = direct_layout(cf, P.grid.cols);
  if (sink.layout == kernels::CodeLayout::kNone) {
    tile.assign(n, 0);
    sink.layout = kernels::CodeLayout::kByte;
    sink.codes = tile.data();
  } else {
    sink.codes = q.codes.data();
  }
  const bool direct_scales = P.grid.local && !has_packed_layout(s.scale_format);
  if (direct_scales) {
    q.scales.resize(component_bytes(s.scale_format, P.grid.num_blocks));
    sink.scale_bytes = q.scales.data();
    sink.scale_width = s.scale_format.code_bytes();
  }
  Blocks B;
  if (n > 0) run(P, x, B, sink);
  if (!tile.empty()) pack_codes(cf, tile.data(), n, q.codes.data());
  if (!direct_scales) {
    B.scale_codes.resize(P.grid.num_blocks);
    q.scales = store_codes(s.scale_format, B.scale_codes);
  }
  if (s.two_level()) q.tensor_scale = P.s_t_code;
  q.zeros.clear();
  if (s.zero == ZeroPoint::kInteger) q.zeros = store_codes(cf, B.zero_codes);
  if (s.zero == ZeroPoint::kFloat) q.zeros = store_codes(s.scale_format, B.zero_codes);
}

}  // namespace

void quantize_into(const TensorView& xv, const Scheme& s, const QuantizeOptions& opt, QuantizedTensor& q) {
  const float* x = xv.data;
  const std::vector<uint64_t>& shape = xv.shape;
  check_shape(shape);
  if (s.layout != BlockLayout::kGeneric) {
    q = ggml_quantize(x, shape, s, thread_count(opt.threads));
    return;
  }
  if (s.outliers.kind == OutlierPolicy::Kind::kNone) return quantize_dense(x, shape, s, opt, q);
  const BlockGrid grid = BlockGrid::make(shape, s.gran);
  std::vector<float> work(x, x + grid.numel());
  OutlierList list = extract_outliers(work.data(), grid.rows, grid.cols, s.outliers);
  quantize_dense(work.data(), shape, s, opt, q);
  q.outliers = std::move(list);
}

QuantizedTensor quantize(const TensorView& x, const Scheme& s, const QuantizeOptions& opt) {
  QuantizedTensor q;
  quantize_into(x, s, opt, q);
  return q;
}

void fakequant_tensor(const TensorView& xv, float* out, const Scheme& s, const QuantizeOptions& opt) {
  const float* x = xv.data;
  const std::vector<uint64_t>& shape = xv.shape;
  check_shape(shape);
  if (s.layout != BlockLayout::kGeneric || s.outliers.kind != OutlierPolicy::Kind::kNone) {
    const QuantizedTensor q = quantize(xv, s, opt);
    dequantize(q, out, opt.threads);
    return;
  }
  Plan P(s, shape, opt);
  Sink sink;
  sink.deq = out;
  Blocks B;
  if (P.grid.numel() > 0) run(P, x, B, sink);
}

void dequantize(const QuantizedTensor& q, float* out, int threads) {
  const Scheme& s = q.scheme;
  // A tensor without elements has nothing to write (and its block grid a
  // phantom 1 x 1 block whose row loop would run past the end).
  if (std::find(q.shape.begin(), q.shape.end(), uint64_t{0}) != q.shape.end()) return;
  if (s.layout != BlockLayout::kGeneric) return ggml_dequantize(q, out, thread_count(threads));
  const BlockGrid g = BlockGrid::make(q.shape, s.gran);
  const uint64_t n = g.numel();
  const Format cf = s.code_format();
  if (q.codes.size() != component_bytes(cf, n)) {
    fail_input("quantized tensor: codes hold " + std::to_string(q.codes.size()) + " bytes, expected " +
               std::to_string(component_bytes(cf, n)));
  }
  ScaleCoder sc(s.scale_format);
  if (q.scales.size() != component_bytes(s.scale_format, g.num_blocks)) {
    fail_input("quantized tensor: scales hold " + std::to_string(q.scales.size()) + " bytes, expected " +
               std::to_string(component_bytes(s.scale_format, g.num_blocks)));
  }
  // Packed (sub-byte) scale and zero formats are unpacked up front; whole-
  // byte codes are read in place, block by block, inside the parallel loop.
  const Format zf = s.zero == ZeroPoint::kInteger ? cf : s.scale_format;
  const bool packed_scales = has_packed_layout(s.scale_format);
  const bool packed_zeros = s.zero != ZeroPoint::kNone && has_packed_layout(zf);
  std::vector<uint32_t> scodes, zcodes;
  if (packed_scales) scodes = load_codes(s.scale_format, q.scales, g.num_blocks);
  if (s.zero != ZeroPoint::kNone) {
    if (q.zeros.size() != component_bytes(zf, g.num_blocks)) fail_input("quantized tensor: zero points have the wrong size");
    if (packed_zeros) zcodes = load_codes(zf, q.zeros, g.num_blocks);
  }
  const int scb = s.scale_format.code_bytes(), zcb = zf.code_bytes();
  const auto read_code = [](const std::vector<uint8_t>& bytes, int cb, uint64_t i) {
    uint32_t c = 0;
    for (int k = 0; k < cb; ++k) c |= static_cast<uint32_t>(bytes[i * cb + k]) << (8 * k);
    return c;
  };
  float s_t = 1;
  if (s.two_level()) s_t = ScaleCoder(*s.tensor_scale_format).decode(q.tensor_scale);
  // The same per-block parameters as the quantizer used.
  const uint32_t* svals = sc.value_bits();
  const uint32_t smask = sc.code_mask();
  const auto param = [&](uint64_t b) {
    BlockScale p;
    const uint32_t code = packed_scales ? scodes[b] : read_code(q.scales, scb, b);
    const float v = svals ? std::bit_cast<float>(svals[code & smask]) : sc.decode(code);
    const float eff = s.two_level() ? v * s_t : v;
    p.scale = std::isfinite(eff) ? eff : kNaN;
    if (s.zero != ZeroPoint::kNone) {
      const uint32_t z = packed_zeros ? zcodes[b] : read_code(q.zeros, zcb, b);
      if (s.zero == ZeroPoint::kInteger) p.z_post = static_cast<float>(z);
      if (s.zero == ZeroPoint::kFloat) p.z_in = sc.decode(z);
    }
    return p;
  };
  // Grids whose blocks span units share one parameter table; local grids
  // build each row's few parameters where they are used.
  std::vector<BlockScale> params;
  if (!g.local) {
    params.resize(g.num_blocks);
    for (uint64_t b = 0; b < g.num_blocks; ++b) params[b] = param(b);
  }
  // Element values by code: the element format's values, or q itself.
  const KernelPlan vplan = make_kernel_plan(cf, RoundOptions{});
  std::vector<float> lut;
  if (cf.bits <= 16) {
    lut.resize(size_t{1} << cf.bits);
    for (size_t c = 0; c < lut.size(); ++c) lut[c] = static_cast<float>(vplan.codec->decode(static_cast<uint32_t>(c)));
  }
  const bool asym = s.zero != ZeroPoint::kNone;
  const bool nibbles = cf.bits == 4 && !cf.ternary && g.cols % 2 == 0;
  std::vector<uint64_t> pair_lut;
  if (nibbles) {
    pair_lut.resize(256);
    for (size_t b = 0; b < 256; ++b) {
      pair_lut[b] = std::bit_cast<uint32_t>(lut[b & 15]) | static_cast<uint64_t>(std::bit_cast<uint32_t>(lut[b >> 4])) << 32;
    }
  }
  // Other sub-byte widths are unpacked to one byte per code first.
  std::vector<uint8_t> unpacked;
  const bool packed = has_packed_layout(cf);
  if (packed && !nibbles) {
    unpacked.resize(n);
    unpack_codes(cf, q.codes.data(), n, unpacked.data());
  }
  const int cb = cf.code_bytes();
  kernels::CodeLayout layout = nibbles ? kernels::CodeLayout::kNibbles
                               : (packed || cb == 1) ? kernels::CodeLayout::kByte
                               : cb == 2 ? kernels::CodeLayout::kHalf
                                         : kernels::CodeLayout::kWord;
  // Outputs far beyond the caches are written with non-temporal stores.
  const bool stream = n * sizeof(float) >= (uint64_t{32} << 20);
  // Symmetric 1-D groups with one-byte scale codes (MX, NVFP4): each batch
  // of 16 blocks' scales in SIMD, no per-block parameters
  // (small_block_kernels.h). The reference target keeps the general route.
  kernels::SmallBlockDequant small;
  const bool use_small = g.local && s.gran.kind == Granularity::Kind::kGroup && !asym && !packed_scales &&
                         scb == 1 && svals && (layout == kernels::CodeLayout::kByte || (nibbles && g.group % 2 == 0)) &&
                         vplan.family != SimdFamily::kScalarOnly && kernels::small_block_simd();
  if (use_small) {
    small.lut = lut.data();
    small.pair_lut = pair_lut.data();
    small.layout = layout;
    small.group = g.group;
    small.scale_values = svals;
    small.scale_mask = smask;
    small.two_level = s.two_level();
    small.tensor_scale = s_t;
    small.stream = stream;
  }
  ThreadPool::global().parallel_for(g.num_units(), thread_count(threads), [&](size_t ui) {
    const BlockGrid::Unit u = g.unit(ui);
    thread_local std::vector<BlockScale> row_params;
    for (uint64_t r = u.r0; r < u.r1; ++r) {
      if (use_small) {
        const uint64_t e = r * g.cols + u.c0;
        const uint8_t* codes = nibbles ? q.codes.data() + e / 2 : packed ? unpacked.data() + e : q.codes.data() + e;
        kernels::small_block_dequant_row(small, codes, q.scales.data() + g.block_of(r, u.c0), u.c1 - u.c0, out + e);
        continue;
      }
      const BlockScale* bp;
      if (g.local) {
        // Entries [c0 / group, c1 / group] of this row's blocks.
        const uint64_t b0 = g.block_row(r) * g.blocks_per_row, first = u.c0 / g.group, last = (u.c1 - 1) / g.group;
        row_params.resize(last + 1);
        for (uint64_t c = first; c <= last; ++c) row_params[c] = param(b0 + c);
        bp = row_params.data();
      } else {
        bp = params.data() + g.block_row(r) * g.blocks_per_row;
      }
      const uint64_t base = r * g.cols;
      float* o = out + base;
      if (layout == kernels::CodeLayout::kWord) {
        for (uint64_t j = u.c0; j < u.c1; ++j) {
          uint32_t c;
          std::memcpy(&c, &q.codes[4 * (base + j)], 4);
          const float v = static_cast<float>(vplan.codec->decode(c));
          const BlockScale& p = bp[j / g.group];
          float d = asym ? (v - (p.z_in + p.z_post)) * p.scale : v * p.scale;
          if (std::isnan(p.scale)) d = kNaN;
          o[j] = d;
        }
        continue;
      }
      const uint8_t* rc = packed && !nibbles ? unpacked.data() + base
                          : nibbles         ? q.codes.data() + base / 2
                                            : q.codes.data() + base * cb;
      kernels::dequant_row(lut.data(), pair_lut.data(), layout, rc, asym, u.c0, u.c1, g.group, bp, o, stream);
    }
  });
  if (q.outliers.count > 0) restore_outliers(q.outliers, out, n);
}

}  // namespace lowbit
