// Outliers: the few largest elements kept exactly (as float16) in a sparse
// side list, so that the dense blocks are quantized on the reduced range.
//
// Selection (OutlierPolicy): the largest fraction f of |x| over the tensor
// (ties broken by position, lower first), or every x with |x - mean| > n
// sigma of its row. inf and NaN rank above every finite value, so a fraction
// policy takes them first.
//
// Positions are stored in ascending order either plainly (u32, or u64 for
// tensors past 2^32 elements) or gap-coded as in ICQuant: the gap to the
// previous position (minus one) in b-bit codes, where the all-ones code
// 2^b - 1 means "advance 2^b - 1 and read on". At density f a position then
// costs about b * (1 + (1 - f)^(2^b - 1)) bits.
#pragma once

#include <cstdint>

#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

// Selects outliers of x (rows x cols, row-major), returns them, and sets
// their places in x to 0.
OutlierList extract_outliers(float* x, uint64_t rows, uint64_t cols, const OutlierPolicy& p);

// Writes the outliers' values into out (n elements). Throws Error(kInput)
// on a position list that is malformed or points past n.
void restore_outliers(const OutlierList& list, float* out, uint64_t n);

// The positions of a list, decoded (validated as restore_outliers does).
std::vector<uint64_t> outlier_positions(const OutlierList& list, uint64_t n);

// Encodes ascending positions; fills positions and position_bits.
void encode_positions(const std::vector<uint64_t>& pos, uint64_t n, int gap_bits, OutlierList& out);

}  // namespace lowbit
