// The parts of quantize() that its files share (quantize.cc, scale_rules.cc,
// scale_search.cc): the plan of one quantization, per-block state and the
// frames that place it in the block grid, and the row passes over a unit.
// Private to lowbit/quant/.
#pragma once

#include <bit>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/format/registry.h"
#include "lowbit/format/stochastic_bits.h"
#include "lowbit/kernels/array_ops.h"
#include "lowbit/kernels/scaled_kernels.h"
#include "lowbit/kernels/small_block_kernels.h"
#include "lowbit/quant/block_grid.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scale_coder.h"

namespace lowbit::quant_detail {

using kernels::BlockScale;

constexpr uint32_t kInfBits = 0x7f800000u;
using kernels::kMseGridStep;
using kernels::kMseGridSteps;
using kernels::kMseRefineSteps;
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

inline int thread_count(int t) { return t > 0 ? t : default_thread_count(); }


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


inline void unit_stats(const Plan& P, const float* x, const BlockGrid::Unit& u, Blocks& B, const Frame& F) {
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

inline void unit_errors(const Plan& P, const float* x, const BlockGrid::Unit& u, const BlockScale* params, double* err,
                 const Frame& F) {
  unit_rows(P, x, u, params, F, [&](uint64_t r, uint64_t, uint64_t b0, kernels::ScaledOut& out) {
    const float* w = P.row_weights(r);
    out.weights = w ? w + u.c0 : nullptr;
    out.block_err = err + b0;
  });
}


// ---- scale rules (scale_rules.cc)

// Rounds the raw scales of `blocks` (alpha per block, or 1) and fills their
// parameters and codes (codes only when scale_codes is given).
void set_params(const Plan& P, Blocks& B, const std::vector<uint64_t>& blocks, const float* alpha,
                BlockScale* params, uint32_t* scale_codes, uint32_t* zero_codes);
// Percentile clipping: the blocks' statistics replaced by percentiles.
void apply_percentile(const Plan& P, const float* x, Blocks& B, const std::vector<uint64_t>& blocks, const Frame& F);
// The largest finite block amax of a Blocks array, as float32 bits.
uint32_t finite_amax(const Blocks& B);
// The tensor scale of a two-level scheme from the tensor amax.
void set_tensor_scale(Plan& P, uint32_t amax_bits);
// The tensor amax of a two-level scheme over a local grid (finite blocks).
uint32_t tensor_amax(const Plan& P, const float* x);
// The same, keeping every block's amax in `all` (indexed like the grid's).
uint32_t tensor_block_amax(const Plan& P, const float* x, std::vector<uint32_t>& all);

// ---- scale searches (scale_search.cc)

// The mse/wmse search over clip factors for the blocks of one block set;
// `eval` fills err (zeroed for those blocks) for the given params. It runs
// once per trial, so the indirect call costs nothing next to it.
using ErrorEval = std::function<void(const BlockScale* params, double* err)>;
void search_scales(const Plan& P, Blocks& B, const std::vector<uint64_t>& blocks, const ErrorEval& eval);

}  // namespace lowbit::quant_detail
