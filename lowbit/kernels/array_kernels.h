// Per-chunk SIMD kernels (internal; array_ops.h is the public API).
//
// Each function processes one contiguous chunk on the calling thread with the
// best SIMD target Highway selected at run time. Chunks must not straddle a
// multiple of 2^32 in element index (array_ops.cc splits them), so that the
// stochastic-rounding key is constant within a chunk. Lanes the SIMD path
// cannot express are finished by the scalar model, so every result equals
// Codec exactly.
#pragma once

#include <cstddef>
#include <cstdint>

#include "lowbit/kernels/kernel_plan.h"

namespace lowbit::kernels {

void fakequant_chunk(const KernelPlan& p, const float* in, float* out, size_t n, uint64_t index0);
// Codes of code_bytes (1, 2 or 4) bytes each, little-endian; code_bytes 0
// packs 4-bit codes two per byte (low nibble first) directly, for formats
// without scalar-fallback lanes (not posits), with n even unless the chunk
// ends the array.
void encode_chunk(const KernelPlan& p, const float* in, void* out, int code_bytes, size_t n,
                  uint64_t index0);
// Packs n 4-bit codes (one per byte, high nibble zero) two per byte, low
// nibble first; the SIMD twin of pack_codes for the common width.
void pack_nibbles(const uint8_t* codes, size_t n, uint8_t* out);
// Copy with non-temporal stores: the bandwidth baseline of `lowbit bench`.
void stream_copy(const float* in, float* out, size_t n);
void decode_chunk(const KernelPlan& p, const void* codes, int code_bytes, float* out, size_t n);

}  // namespace lowbit::kernels
