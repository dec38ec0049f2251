// gemv_rows (gemv.h), compiled once per Highway target. Vectors are capped
// at 8 float lanes, so lane l of vector v is always accumulator v * L + l
// (AVX-512 runs 256-bit vectors rather than reorder the sums). A group's
// four rows share each load of x and give four independent FMA chains, and
// its tiles are read in address order, one stream the hardware prefetcher
// follows (with rows stored apart, four short streams per group left the
// kernel at a third of the memory bandwidth).

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/kernels/gemv.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Highway's headers first.
#include "lowbit/kernels/gemv.h"

#include <cmath>
#include <cstring>

#include "lowbit/core/error.h"
#include "lowbit/core/float16.h"

// Target-independent parts: once, although foreach_target includes this
// file once per target.
#ifndef LOWBIT_KERNELS_GEMV_COMMON_
#define LOWBIT_KERNELS_GEMV_COMMON_
namespace lowbit::kernels {
namespace {

// Block b of row r: its scale, its min (Q4_1), its codes (gemv.h).
inline float block_scale(const GemvMatrix& w, int64_t r, int64_t b) {
  uint16_t h;
  std::memcpy(&h, w.data + gemv_scale_offset(w.codes, w.cols, r, b), 2);
  return fp16_to_fp32(h);
}
inline float block_min(const GemvMatrix& w, int64_t r, int64_t b) {
  uint16_t h;
  std::memcpy(&h, w.data + gemv_scale_offset(w.codes, w.cols, r, b) + 8, 2);
  return fp16_to_fp32(h);
}

// Weight j of block b of row r, as ggml_dequantize_row computes it (float
// products and sums round once each; the build compiles with
// -ffp-contract=off).
inline float block_weight(const GemvMatrix& w, int64_t r, int64_t b, int j) {
  const uint8_t* q = w.data + gemv_codes_offset(w.codes, w.cols, r, b);
  const float d = block_scale(w, r, b);
  if (w.codes == GemvCodes::kQ8_0) return static_cast<float>(static_cast<int8_t>(q[j])) * d;
  const int code = j < 16 ? (q[j] & 0xF) : (q[j - 16] >> 4);
  if (w.codes == GemvCodes::kQ4_0) return static_cast<float>(code - 8) * d;
  return static_cast<float>(code) * d + block_min(w, r, b);
}

// The fixed tree over the eight accumulators (gemv.h).
inline float combine(const float* a) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }

// Rows [r0, r1) start a group and end one (or the matrix).
void check(const GemvMatrix& w, int64_t r0, int64_t r1) {
  if (w.cols % kGemvBlock != 0 || r0 < 0 || r1 < r0 || r1 > w.rows || (w.rows > 0 && w.cols > 0 && !w.data) ||
      r0 % kGemvRows != 0 || (r1 % kGemvRows != 0 && r1 != w.rows)) {
    fail_internal("gemv: bad matrix or row range");
  }
}

void reference_rows(const GemvMatrix& w, const float* x, int64_t r0, int64_t r1, float* y) {
  const int64_t nb = w.cols / kGemvBlock;
  for (int64_t r = r0; r < r1; ++r) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t b = 0; b < nb; ++b) {
      for (int j = 0; j < kGemvBlock; ++j) {
        acc[j % 8] = std::fma(block_weight(w, r, b, j), x[b * kGemvBlock + j], acc[j % 8]);
      }
    }
    y[r] = combine(acc);
  }
}

}  // namespace
}  // namespace lowbit::kernels
#endif  // LOWBIT_KERNELS_GEMV_COMMON_

HWY_BEFORE_NAMESPACE();
namespace lowbit::kernels {
namespace HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF8 = hn::CappedTag<float, 8>;
using DI8 = hn::Rebind<int32_t, DF8>;
using DB8 = hn::Rebind<uint8_t, DF8>;
using DS8 = hn::Rebind<int8_t, DF8>;
using VF8 = hn::Vec<DF8>;
constexpr size_t kL = hn::MaxLanes(DF8());
constexpr size_t kV = 8 / kL;  // vectors per group of 8 elements
static_assert(kL * kV == 8, "8 float lanes must be a whole number of vectors");
constexpr size_t kR = static_cast<size_t>(kGemvRows);

// A tile's four scales (or mins) at p as float32, widened exactly (F16C's
// vcvtph2ps where the target has it).
HWY_INLINE void TileHalves(const uint8_t* HWY_RESTRICT p, float* HWY_RESTRICT out) {
  const hn::CappedTag<float, kR> d4;
  const hn::Rebind<hwy::float16_t, decltype(d4)> dh;
  if constexpr (hn::MaxLanes(d4) == kR) {
    hn::StoreU(hn::PromoteTo(d4, hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p))), d4, out);
  } else {
    for (size_t i = 0; i < kR; ++i) {
      uint16_t h;
      std::memcpy(&h, p + 2 * i, 2);
      out[i] = fp16_to_fp32(h);
    }
  }
}

// The 32 weights of one block as w[g][v]: elements 8g + v*kL + lane, from
// its scale d, its min m (Q4_1) and its codes q.
template <GemvCodes C>
HWY_INLINE void BlockWeights(float d_scalar, float m_scalar, const uint8_t* HWY_RESTRICT q, VF8 (&w)[4][kV]) {
  const DF8 df;
  const DI8 di;
  const VF8 d = hn::Set(df, d_scalar);
  if constexpr (C == GemvCodes::kQ8_0) {
    const int8_t* s = reinterpret_cast<const int8_t*>(q);
    for (size_t g = 0; g < 4; ++g) {
      for (size_t v = 0; v < kV; ++v) {
        w[g][v] = hn::Mul(hn::ConvertTo(df, hn::PromoteTo(di, hn::LoadU(DS8(), s + 8 * g + v * kL))), d);
      }
    }
  } else {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
    // The block's 16 possible weights, t[code] = float(code) * d (+ m) or
    // float(code - 8) * d, computed as block_weight computes each one (the
    // same float operations on the same operands, so the same bits), then
    // looked up by vpermt2ps: it reads only the low four bits of each
    // 32-bit index, so the low nibble needs no mask.
    VF8 t_lo, t_hi;
    if constexpr (C == GemvCodes::kQ4_0) {
      t_lo = hn::Mul(hn::Iota(df, -8.0f), d);
      t_hi = hn::Mul(hn::Iota(df, 0.0f), d);
    } else {
      const VF8 m = hn::Set(df, m_scalar);
      t_lo = hn::Add(hn::Mul(hn::Iota(df, 0.0f), d), m);
      t_hi = hn::Add(hn::Mul(hn::Iota(df, 8.0f), d), m);
    }
    for (size_t h = 0; h < 2; ++h) {
      for (size_t v = 0; v < kV; ++v) {
        const auto bytes = hn::PromoteTo(di, hn::LoadU(DB8(), q + 8 * h + v * kL));
        const auto hi = hn::ShiftRight<4>(bytes);
        w[h][v] = VF8{_mm256_permutex2var_ps(t_lo.raw, bytes.raw, t_hi.raw)};
        w[h + 2][v] = VF8{_mm256_permutex2var_ps(t_lo.raw, hi.raw, t_hi.raw)};
      }
    }
#else
    const auto mask = hn::Set(di, 0xF);
    for (size_t h = 0; h < 2; ++h) {
      for (size_t v = 0; v < kV; ++v) {
        const auto bytes = hn::PromoteTo(di, hn::LoadU(DB8(), q + 8 * h + v * kL));
        auto lo = hn::And(bytes, mask);           // elements 8h + ...
        auto hi = hn::ShiftRight<4>(bytes);       // elements 16 + 8h + ...
        if constexpr (C == GemvCodes::kQ4_0) {
          const auto eight = hn::Set(di, 8);
          lo = hn::Sub(lo, eight);
          hi = hn::Sub(hi, eight);
        }
        w[h][v] = hn::Mul(hn::ConvertTo(df, lo), d);
        w[h + 2][v] = hn::Mul(hn::ConvertTo(df, hi), d);
      }
    }
    if constexpr (C == GemvCodes::kQ4_1) {
      const VF8 m = hn::Set(df, m_scalar);
      for (size_t g = 0; g < 4; ++g) {
        for (size_t v = 0; v < kV; ++v) w[g][v] = hn::Add(w[g][v], m);
      }
    }
#endif
  }
}

// The four rows of the group at `tiles` (nb tiles): out[i] = row i's sum.
template <GemvCodes C>
HWY_INLINE void Group(const uint8_t* HWY_RESTRICT tiles, int64_t nb, const float* HWY_RESTRICT x,
                      float* HWY_RESTRICT out) {
  const DF8 df;
  constexpr int64_t kTile = gemv_tile_bytes(C), kScales = gemv_tile_scale_bytes(C), kCode = gemv_code_bytes(C);
  VF8 acc[kR][kV];
  for (size_t r = 0; r < kR; ++r) {
    for (size_t v = 0; v < kV; ++v) acc[r][v] = hn::Zero(df);
  }
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* t = tiles + b * kTile;
    HWY_ALIGN float d[kR], m[kR] = {0, 0, 0, 0};
    TileHalves(t, d);
    if constexpr (C == GemvCodes::kQ4_1) TileHalves(t + 8, m);
    VF8 xv[4][kV];
    for (size_t g = 0; g < 4; ++g) {
      for (size_t v = 0; v < kV; ++v) xv[g][v] = hn::LoadU(df, x + b * kGemvBlock + 8 * g + v * kL);
    }
    for (size_t r = 0; r < kR; ++r) {
      VF8 w[4][kV];
      BlockWeights<C>(d[r], m[r], t + kScales + static_cast<int64_t>(r) * kCode, w);
      for (size_t g = 0; g < 4; ++g) {
        for (size_t v = 0; v < kV; ++v) acc[r][v] = hn::MulAdd(w[g][v], xv[g][v], acc[r][v]);
      }
    }
  }
  for (size_t r = 0; r < kR; ++r) {
    HWY_ALIGN float a[8];
    for (size_t v = 0; v < kV; ++v) hn::Store(acc[r][v], df, a + v * kL);
    out[r] = combine(a);
  }
}

template <GemvCodes C>
void GroupsOf(const GemvMatrix& m, const float* x, int64_t r0, int64_t r1, float* y) {
  const int64_t nb = m.cols / kGemvBlock;
  for (int64_t r = r0; r < r1; r += kGemvRows) {
    const uint8_t* tiles = m.data + gemv_tile_offset(C, m.cols, r, 0);
    if (r + kGemvRows <= r1) {
      Group<C>(tiles, nb, x, y + r);
    } else {  // the matrix's last, padded group
      float out[kR];
      Group<C>(tiles, nb, x, out);
      for (int64_t i = 0; i < r1 - r; ++i) y[r + i] = out[i];
    }
  }
}

void GemvRowsSimd(const GemvMatrix& m, const float* x, int64_t r0, int64_t r1, float* y) {
#if HWY_NATIVE_FMA
  switch (m.codes) {
    case GemvCodes::kQ8_0: return GroupsOf<GemvCodes::kQ8_0>(m, x, r0, r1, y);
    case GemvCodes::kQ4_0: return GroupsOf<GemvCodes::kQ4_0>(m, x, r0, r1, y);
    case GemvCodes::kQ4_1: return GroupsOf<GemvCodes::kQ4_1>(m, x, r0, r1, y);
  }
#else
  // hn::MulAdd would round twice here: the scalar text, with std::fma.
  reference_rows(m, x, r0, r1, y);
#endif
}

template <GemvCodes C>
void DequantizeRowOf(const GemvMatrix& m, int64_t r, float* out) {
  const DF8 df;
  const int64_t nb = m.cols / kGemvBlock;
  const size_t i = static_cast<size_t>(r % kGemvRows);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* t = m.data + gemv_tile_offset(C, m.cols, r, b);
    HWY_ALIGN float d[kR], mins[kR] = {0, 0, 0, 0};
    TileHalves(t, d);
    if constexpr (C == GemvCodes::kQ4_1) TileHalves(t + 8, mins);
    VF8 w[4][kV];
    BlockWeights<C>(d[i], mins[i], m.data + gemv_codes_offset(C, m.cols, r, b), w);
    for (size_t g = 0; g < 4; ++g) {
      for (size_t v = 0; v < kV; ++v) hn::StoreU(w[g][v], df, out + b * kGemvBlock + 8 * g + v * kL);
    }
  }
}

void DequantizeRowSimd(const GemvMatrix& m, int64_t r, float* out) {
  switch (m.codes) {
    case GemvCodes::kQ8_0: return DequantizeRowOf<GemvCodes::kQ8_0>(m, r, out);
    case GemvCodes::kQ4_0: return DequantizeRowOf<GemvCodes::kQ4_0>(m, r, out);
    case GemvCodes::kQ4_1: return DequantizeRowOf<GemvCodes::kQ4_1>(m, r, out);
  }
}

}  // namespace HWY_NAMESPACE
}  // namespace lowbit::kernels
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace lowbit::kernels {

HWY_EXPORT(GemvRowsSimd);
HWY_EXPORT(DequantizeRowSimd);

void gemv_rows(const GemvMatrix& w, const float* x, int64_t r0, int64_t r1, float* y) {
  check(w, r0, r1);
  if (r0 == r1) return;
  HWY_DYNAMIC_DISPATCH(GemvRowsSimd)(w, x, r0, r1, y);
}

void gemv_rows_reference(const GemvMatrix& w, const float* x, int64_t r0, int64_t r1, float* y) {
  check(w, r0, r1);
  reference_rows(w, x, r0, r1, y);
}

void gemv_dequantize_row(const GemvMatrix& w, int64_t r, float* out) {
  if (r < 0 || r >= w.rows) fail_internal("gemv: bad row");
  check(w, 0, w.rows);
  HWY_DYNAMIC_DISPATCH(DequantizeRowSimd)(w, r, out);
}

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
