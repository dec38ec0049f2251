// quantize(): a tensor onto a scheme. Two passes over the block grid's
// units: block statistics and scales (scale_rules.cc, scale_search.cc),
// then the codes, in the fused small-block kernels where they compute the
// same, and the general scaled-row kernels elsewhere.
#include "lowbit/quant/quantizer.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>

#include "lowbit/core/checked_math.h"
#include "lowbit/format/packing.h"
#include "lowbit/format/stochastic_bits.h"
#include "lowbit/quant/outliers.h"
#include "lowbit/quant/quantize_internal.h"

namespace lowbit {

namespace {

using namespace quant_detail;

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
  q.fixed_codec = nullptr;
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
  if (s.outliers.kind != OutlierPolicy::Kind::kNone) {
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

}  // namespace lowbit
