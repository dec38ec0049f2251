// The scale rules: from block statistics to block scales (absmax, the OCP MX
// floor and ceil rules, percentile clipping, the two-level tensor scale of
// NVFP4), rounded to the scale format, with zero points for asymmetric
// schemes.
#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>
#include <vector>

#include "lowbit/quant/quantize_internal.h"
#include "lowbit/quant/reciprocal_scale.h"

namespace lowbit::quant_detail {
namespace {

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

}  // namespace

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

namespace {

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

}  // namespace

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

}  // namespace lowbit::quant_detail
