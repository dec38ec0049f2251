// Fused quantization and dequantization of rows cut into small blocks (MX,
// NVFP4, g16/g32 schemes): a batch of 16 blocks at a time, block maxima,
// block scales and element codes computed in one pass over the batch while
// it sits in registers and L1, with no per-block parameter arrays and no
// second read of the row. The same arithmetic as the general route
// (lowbit/quant/quantize.cc and scale_rules.cc: block statistics, scale rule, scale rounding,
// then scaled_row; dequantize() then dequant_row), bit for bit:
//
//   kFloorE8m0  the OCP MX floor rule on E8M0 scales: e = floor(log2 amax) -
//               emax_exp clamped to [-127, 127] (-127 for an all-zero block,
//               and for every subnormal amax since emax_exp >= 0);
//               scale 2^e, inverse 2^-e, code e + 127.
//   kAbsmax     raw = (amax * 1) / emax_val, divided by the tensor scale of
//               a two-level scheme (0 when that is 0), rounded into the
//               scale format by the SIMD rounding of lattice-inl.h (what
//               ScaleCoder::round does for such formats); effective scale
//               val (* tensor scale), inverse 1 / scale (0 for scale 0).
//   kMse        the mse search of docs/schemes.md over the clip factors of
//               kAbsmax (raw = (amax * alpha) / emax_val ...), one block per
//               vector lane: the same candidates in the same order per
//               block, the same float32 error terms and the canonical error
//               sum of scaled_kernels.h (blocks hold at most 1024 elements,
//               so the 16 partials of a block are summed once, by the double
//               tree), so every block picks the clip factor the general
//               search picks.
//
// A block holding inf or NaN gets scale and inverse NaN and the scale code
// nan_code, its elements code 0 and x_hat NaN (scaled_kernels.h).
//
// Only round-to-nearest-even elements of the closed-form family (minifloats
// with subnormals, integers) and, for kAbsmax and kMse, a closed-form scale
// format of up to 16 bits; small_block_supported() says whether a plan and
// spec qualify on the running SIMD target (never on the one-lane target or
// with plans made under set_kernel_target(kScalar): callers then take the
// general route). Rounding is rne, so element indices do not matter; the
// caller keeps a row's error sums within one 2^32 block of indices, as
// scaled_row's parts are.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/kernels/kernel_plan.h"
#include "lowbit/kernels/scaled_kernels.h"

namespace lowbit::kernels {

enum class SmallBlockRule : uint8_t { kFloorE8m0, kAbsmax, kMse };

struct SmallBlockSpec {
  SmallBlockRule rule = SmallBlockRule::kAbsmax;
  size_t group = 16;                  // elements per block, 1..kSmallBlockMaxGroup
  int emax_exp = 0;                   // kFloorE8m0: the element's emax, >= 0
  float emax_val = 1;                 // kAbsmax, kMse: the element format's largest value
  const KernelPlan* scale = nullptr;  // kAbsmax, kMse: the scale format, rne
  bool two_level = false;
  float tensor_scale = 1;  // two-level: the tensor scale s_t
  uint32_t nan_code = 0;   // the scale code of a block holding inf or NaN
};

inline constexpr size_t kSmallBlockMaxGroup = 64;

// Element codes (quantize) or x_hat (fakequant), not both.
struct SmallBlockOut {
  CodeLayout layout = CodeLayout::kNone;  // element codes, as scaled_row
  void* codes = nullptr;                  // row start
  float* deq = nullptr;                   // row start, or null (then layout is kNone)
  uint8_t* scale_codes = nullptr;         // block 0 of the row, or null
  int scale_width = 1;                    // bytes per scale code, little-endian
};

// Whether small_block_row runs this element plan and spec on the current
// target. Requires: element plan closed-form with rne; group in
// [1, kSmallBlockMaxGroup], even for kNibbles codes; kFloorE8m0 with
// emax_exp >= 0; kAbsmax and kMse with a closed-form rne scale plan of up
// to 16 bits with a mantissa (or an integer one).
bool small_block_supported(const KernelPlan& elem, const SmallBlockSpec& spec, CodeLayout layout);

// Quantizes one row of n elements, blocks of spec.group from element 0 (the
// last may be short): codes, x_hat and scale codes per `out`.
void small_block_row(const KernelPlan& elem, const SmallBlockSpec& spec, const float* in, size_t n,
                     const SmallBlockOut& out);

// Whether this target runs the small-block kernels (not the one-lane
// target).
bool small_block_simd();

// Dequantization of a row of small blocks of a symmetric scheme with
// one-byte scale codes: per block, scale = scale_values[code & scale_mask]
// (float32 bits) times the tensor scale of a two-level scheme, NaN unless
// finite, then x_hat = lut[element code] * scale (NaN for a NaN scale): the
// parameters and arithmetic of dequantize() and dequant_row, bit for bit.
struct SmallBlockDequant {
  const float* lut = nullptr;  // element values by code
  const uint64_t* pair_lut = nullptr;  // kNibbles: both values of each byte (dequant_row)
  CodeLayout layout = CodeLayout::kByte;  // kByte or kNibbles (row start even)
  size_t group = 16;
  const uint32_t* scale_values = nullptr;
  uint32_t scale_mask = 0xFF;
  bool two_level = false;
  float tensor_scale = 1;
  // Non-temporal stores, as dequant_row: 4-bit codes into every whole
  // aligned vector (blocks need not be aligned), others where a block's
  // vector happens to be aligned.
  bool stream = false;
};
// Requires small_block_simd(). codes and scale_codes point at the row's
// element 0 and block 0.
void small_block_dequant_row(const SmallBlockDequant& q, const void* codes, const uint8_t* scale_codes, size_t n,
                             float* out);

// The largest float32 bit pattern of |x| over in[0, n) (0 for n = 0): NaN
// above inf above every finite value, as row_block_stats orders them.
uint32_t max_abs_bits(const float* in, size_t n);

}  // namespace lowbit::kernels
