// Block-scaled kernels: the element rounding of lattice-inl.h with a scale
// (and optionally a zero point) per block of consecutive elements, the inner
// loop of every quantization scheme (lowbit/quant/).
//
// One row of n elements is split into blocks of `group` elements (the last
// may be short); block b uses blocks[b]. For each element
//   u    = x * inv            (+ z_in)        float32 arithmetic
//   r    = round(u)           in the element format (the scalar model)
//   q    = r                  symmetric, or clamp(r + z_post, 0, qmax) asym
//   x_hat = q * scale         symmetric, or (q - (z_in + z_post)) * scale
// Symmetric blocks keep z_in = z_post = 0. Integer zero points put the zero
// in z_post (round, then shift: the GPTQ convention); float zero points
// (HQQ) put it in z_in (shift, then round), and the element format is then a
// signed integer one bit wider than the codes so that the clamp, not the
// format, bounds q. A block whose scale is NaN (its input held inf or NaN)
// gets code 0 and x_hat NaN everywhere, as the OCP MX spec says.
//
// Every output is optional: codes (of the element format, or q for asym),
// x_hat, and per-block error sums sum w (x - x_hat)^2 (w = 1 without
// weights) for the scale searches. Results equal the scalar reference
// (scaled_row_reference) bit for bit on every target, error sums included:
// they have one canonical order. Within the part of a block that one call
// covers, element k (counted from the part's start) adds its float32 error
// term to float partial sum k mod 16; after every 1024 elements and at the
// end of the part, the 16 partials are added up in double by a fixed
// pairwise tree (lanes k and k+8, then k+4, k+2, k+1) into the part's sum,
// which is added to block_err[b].
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/kernels/kernel_plan.h"

namespace lowbit::kernels {

// The mse search's candidates (docs/schemes.md), shared by the general
// search (lowbit/quant/scale_search.cc) and the lane-per-block one
// (small_block_kernels.h): clip factors 1, 0.9, ..., 0.1, then golden-
// section steps on [best - 0.1, best + 0.1] clamped to [0.01, 1], which end
// within 0.2 * 0.618^8 < 0.005 of the minimum of a unimodal error curve.
inline constexpr float kMseGridStep = 0.1f;
inline constexpr int kMseGridSteps = 9;
inline constexpr int kMseRefineSteps = 8;
inline constexpr float kMsePhi = 0.6180339887f;

struct BlockScale {
  float scale = 0;  // x_hat = (q - z_in - z_post) * scale
  float inv = 0;    // u = x * inv + z_in; 0 when scale is 0
  float z_in = 0;
  float z_post = 0;
};

enum class CodeLayout : uint8_t {
  kNone,     // no codes
  kByte,     // one byte per code (formats of up to 8 bits)
  kHalf,     // two bytes per code, little-endian
  kWord,     // four bytes per code
  kNibbles,  // 4-bit codes, two per byte, low nibble first (row start even)
};

struct ScaledSpec {
  bool asym = false;
  float qmax = 0;  // asym: codes are clamped to [0, qmax]
};

struct ScaledOut {
  CodeLayout layout = CodeLayout::kNone;
  void* codes = nullptr;        // row start (element 0 of the row)
  float* deq = nullptr;         // row start
  const float* weights = nullptr;  // per element of the row, or null (w = 1)
  double* block_err = nullptr;  // += per block of the row, indexed like blocks
};

// Processes elements [j0, j1) of a row that starts at `in`, whose element 0
// has global index `index0` (stochastic rounding). [index0 + j0, index0 + j1)
// must not cross a multiple of 2^32. For kNibbles, j0 must be even.
void scaled_row(const KernelPlan& elem, const ScaledSpec& spec, const float* in, size_t j0, size_t j1,
                size_t group, const BlockScale* blocks, uint64_t index0, const ScaledOut& out);

// The scalar reference of scaled_row (the element rounding by Codec).
void scaled_row_reference(const KernelPlan& elem, const ScaledSpec& spec, const float* in, size_t j0,
                          size_t j1, size_t group, const BlockScale* blocks, uint64_t index0,
                          const ScaledOut& out);

// Dequantizes elements [j0, j1) of a row: v = value[code] from `lut` (the
// element format's values, or q itself for asym codes), then
// x_hat = v * scale, or (v - (z_in + z_post)) * scale for asym; NaN where
// the block's scale is NaN. Codes: kByte or kHalf one per element, or
// kNibbles (j0 even), at `codes` = the row start. `pair_lut` (kNibbles
// only) holds for each byte the two values of its nibbles, low first.
// `stream` writes whole aligned vectors with non-temporal stores (for
// outputs far larger than the caches: a normal store reads each line first):
// for kNibbles every vector after an unaligned head, each lane with its own
// block's parameters (groups of at least a vector); for other codes, whose
// values are gathered and slower to make, the vectors that happen to be
// aligned.
void dequant_row(const float* lut, const uint64_t* pair_lut, CodeLayout layout, const void* codes, bool asym,
                 size_t j0, size_t j1, size_t group, const BlockScale* blocks, float* out, bool stream = false);

// Per-block statistics of one row: for block b (elements [b*group, ...) of
// in[0, n)), amax_bits[b] = max of the float32 bits of |x| (so a NaN block
// shows a value above 0x7f800000 and an inf block exactly that), and when
// vmin/vmax are given, the smallest and largest x (meaningless for blocks
// that are not finite). Results are max-merged into the outputs, so rows of
// 2-D blocks accumulate: initialize amax_bits to 0 and vmin/vmax to +-inf.
void row_block_stats(const float* in, size_t n, size_t group, uint32_t* amax_bits, float* vmin,
                     float* vmax);

}  // namespace lowbit::kernels
