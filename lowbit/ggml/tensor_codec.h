// llama.cpp's legacy block formats Q8_0 and Q4_0 as tensor codecs, beside
// lowbit's schemes (`qtensor --scheme q8_0`, studies, benchmarks),
// reproduced byte for byte.
//
// Both cut each row into blocks of 32 and store a float16 scale d per block.
// Their arithmetic differs from the generic scheme on purpose, to match
// ggml's reference quantizers (ggml-quants.c, and gguf-py's numpy port):
//   Q8_0: d = amax / 127, q = roundf(x * (1/d)) (ties away from zero), with
//         the float32 d, not its float16 rounding, used to quantize.
//   Q4_0: m = the element of largest |x| (the first one on ties),
//         d = m / -8, q = min(15, trunc(x * (1/d) + 8.5f)) in float32, the
//         code being q (value q - 8).
// d is stored as ggml's float16 of it: round to nearest even, inf beyond
// 65504 (so such a block dequantizes to inf/NaN, as in llama.cpp).
// Dequantization is q * d16 (Q8_0) and (q - 8) * d16 (Q4_0). Codes are
// stored in element order (Q4_0 as packed nibbles, low first), not in
// ggml's block layout (a GGUF file holds the blocks of row_codec.h). A block holding inf or
// NaN gets a NaN scale and codes 0, as in every other scheme. The finite
// blocks between such ones are encoded by the GGUF codecs (row_codec.h,
// the same quantizers with SIMD paths) and moved into this layout.
#pragma once

#include "lowbit/ggml/type.h"
#include "lowbit/quant/tensor_codec.h"

namespace lowbit {

// The codec of a llama.cpp type lowbit stores in this layout: Q8_0 or Q4_0
// (kUsage for any other). A static object: QuantizedTensor::fixed_codec
// points to it.
const TensorCodec& ggml_tensor_codec(GgmlType t);

}  // namespace lowbit
