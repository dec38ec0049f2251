// gemv_rows (gemv.h), compiled once per Highway target. Vectors are capped
// at 8 float lanes, so lane l of vector v is always accumulator v * L + l
// (AVX-512 runs 256-bit vectors rather than reorder the sums); four rows
// share each load of x and give four independent FMA chains.

#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "lowbit/kernels/gemv.cc"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
#include "hwy/highway.h"
// Highway's headers first.
#include "lowbit/kernels/gemv.h"

#include <cmath>
#include <cstring>

#include "lowbit/core/error.h"

// Target-independent parts: once, although foreach_target includes this
// file once per target.
#ifndef LOWBIT_KERNELS_GEMV_COMMON_
#define LOWBIT_KERNELS_GEMV_COMMON_
namespace lowbit::kernels {
namespace {

// The block record's fields (gemv.h).
inline float block_scale(const uint8_t* rec) {
  float d;
  std::memcpy(&d, rec, 4);
  return d;
}
inline float block_min(const uint8_t* rec) {
  float m;
  std::memcpy(&m, rec + 4, 4);
  return m;
}
inline const uint8_t* block_codes(GemvCodes c, const uint8_t* rec) { return rec + (c == GemvCodes::kQ4_1 ? 8 : 4); }

// Weight j of a block, as ggml_dequantize_row computes it (float products
// and sums round once each; the build compiles with -ffp-contract=off).
inline float block_weight(GemvCodes c, const uint8_t* rec, int j) {
  const uint8_t* q = block_codes(c, rec);
  const float d = block_scale(rec);
  if (c == GemvCodes::kQ8_0) return static_cast<float>(static_cast<int8_t>(q[j])) * d;
  const int code = j < 16 ? (q[j] & 0xF) : (q[j - 16] >> 4);
  if (c == GemvCodes::kQ4_0) return static_cast<float>(code - 8) * d;
  return static_cast<float>(code) * d + block_min(rec);
}

// The fixed tree over the eight accumulators (gemv.h).
inline float combine(const float* a) { return ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7])); }

void check(const GemvMatrix& w, int64_t r0, int64_t r1) {
  if (w.cols % kGemvBlock != 0 || r0 < 0 || r1 < r0 || r1 > w.rows || (w.rows > 0 && w.cols > 0 && !w.data)) {
    fail_internal("gemv: bad matrix or row range");
  }
}

void reference_rows(const GemvMatrix& w, const float* x, int64_t r0, int64_t r1, float* y) {
  const int64_t nb = w.cols / kGemvBlock, stride = gemv_block_bytes(w.codes);
  for (int64_t r = r0; r < r1; ++r) {
    float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t b = 0; b < nb; ++b) {
      const uint8_t* rec = w.data + (r * nb + b) * stride;
      for (int j = 0; j < kGemvBlock; ++j) {
        acc[j % 8] = std::fma(block_weight(w.codes, rec, j), x[b * kGemvBlock + j], acc[j % 8]);
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

// The 32 weights of one block as w[g][v]: elements 8g + v*kL + lane.
template <GemvCodes C>
HWY_INLINE void BlockWeights(const uint8_t* HWY_RESTRICT rec, VF8 (&w)[4][kV]) {
  const DF8 df;
  const DI8 di;
  const VF8 d = hn::Set(df, block_scale(rec));
  const uint8_t* q = block_codes(C, rec);
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
      const VF8 m = hn::Set(df, block_min(rec));
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
      const VF8 m = hn::Set(df, block_min(rec));
      for (size_t g = 0; g < 4; ++g) {
        for (size_t v = 0; v < kV; ++v) w[g][v] = hn::Add(w[g][v], m);
      }
    }
#endif
  }
}

// Rows r0 .. r0 + R - 1.
template <GemvCodes C, size_t R>
HWY_INLINE void Rows(const GemvMatrix& m, const float* HWY_RESTRICT x, int64_t r0, float* HWY_RESTRICT y) {
  const DF8 df;
  const int64_t nb = m.cols / kGemvBlock;
  constexpr int64_t stride = gemv_block_bytes(C);
  const uint8_t* rows[R];
  VF8 acc[R][kV];
  for (size_t r = 0; r < R; ++r) {
    rows[r] = m.data + (r0 + static_cast<int64_t>(r)) * nb * stride;
    for (size_t v = 0; v < kV; ++v) acc[r][v] = hn::Zero(df);
  }
  for (int64_t b = 0; b < nb; ++b) {
    VF8 xv[4][kV];
    for (size_t g = 0; g < 4; ++g) {
      for (size_t v = 0; v < kV; ++v) xv[g][v] = hn::LoadU(df, x + b * kGemvBlock + 8 * g + v * kL);
    }
    for (size_t r = 0; r < R; ++r) {
      VF8 w[4][kV];
      BlockWeights<C>(rows[r] + b * stride, w);
      for (size_t g = 0; g < 4; ++g) {
        for (size_t v = 0; v < kV; ++v) acc[r][v] = hn::MulAdd(w[g][v], xv[g][v], acc[r][v]);
      }
    }
  }
  for (size_t r = 0; r < R; ++r) {
    HWY_ALIGN float a[8];
    for (size_t v = 0; v < kV; ++v) hn::Store(acc[r][v], df, a + v * kL);
    y[r0 + static_cast<int64_t>(r)] = combine(a);
  }
}

template <GemvCodes C>
void RowsOf(const GemvMatrix& m, const float* x, int64_t r0, int64_t r1, float* y) {
  int64_t r = r0;
  for (; r + 4 <= r1; r += 4) Rows<C, 4>(m, x, r, y);
  for (; r < r1; ++r) Rows<C, 1>(m, x, r, y);
}

void GemvRowsSimd(const GemvMatrix& m, const float* x, int64_t r0, int64_t r1, float* y) {
#if HWY_NATIVE_FMA
  switch (m.codes) {
    case GemvCodes::kQ8_0: return RowsOf<GemvCodes::kQ8_0>(m, x, r0, r1, y);
    case GemvCodes::kQ4_0: return RowsOf<GemvCodes::kQ4_0>(m, x, r0, r1, y);
    case GemvCodes::kQ4_1: return RowsOf<GemvCodes::kQ4_1>(m, x, r0, r1, y);
  }
#else
  // hn::MulAdd would round twice here: the scalar text, with std::fma.
  reference_rows(m, x, r0, r1, y);
#endif
}

void DequantizeRowSimd(const GemvMatrix& m, int64_t r, float* out) {
  const DF8 df;
  const int64_t nb = m.cols / kGemvBlock;
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* rec = m.data + (r * nb + b) * gemv_block_bytes(m.codes);
    VF8 w[4][kV];
    if (m.codes == GemvCodes::kQ8_0) {
      BlockWeights<GemvCodes::kQ8_0>(rec, w);
    } else if (m.codes == GemvCodes::kQ4_0) {
      BlockWeights<GemvCodes::kQ4_0>(rec, w);
    } else {
      BlockWeights<GemvCodes::kQ4_1>(rec, w);
    }
    for (size_t g = 0; g < 4; ++g) {
      for (size_t v = 0; v < kV; ++v) hn::StoreU(w[g][v], df, out + b * kGemvBlock + 8 * g + v * kL);
    }
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
  check(w, r, r + 1);
  HWY_DYNAMIC_DISPATCH(DequantizeRowSimd)(w, r, out);
}

}  // namespace lowbit::kernels
#endif  // HWY_ONCE
