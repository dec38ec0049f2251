// ggml's block formats, byte for byte: quantize float32 rows into the exact
// bytes llama.cpp stores in GGUF tensor data, and dequantize those bytes
// back to float32.
//
// Every type's layout, the reference each codec matches and the NaN
// behaviour are in docs/ggml_types.md. In short:
//  - Quantization reproduces llama.cpp's reference quantizers (ggml-quants.c,
//    the ones llama-quantize runs: quantize_row_*_ref without an importance
//    matrix, the quant_weights paths with one) operation by operation, so
//    the bytes equal llama.cpp's. Q4_0..Q8_0, TQ1_0, TQ2_0 and MXFP4 are
//    also byte-identical to gguf-py's numpy quantizers.
//  - Dequantization equals gguf-py's (and llama.cpp's) float32 results bit
//    for bit.
//  - A row is encoded independently of every other row, as in llama.cpp, so
//    results never depend on the thread count.
//  - NaN and inf inputs are not refused here (callers refuse them): the
//    block gets what ggml would give it, typically a NaN or inf scale.
#pragma once

#include <cstdint>

#include "lowbit/ggml/type.h"

namespace lowbit {

// Whether lowbit can decode / encode `t`. Decodable: F32, F16, BF16, F64,
// I8, I16, I32, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K..Q6_K, IQ4_NL, IQ4_XS,
// MXFP4, TQ1_0, TQ2_0. Encodable: the same but F64 and the integer types.
bool ggml_can_dequantize(GgmlType t);
bool ggml_can_quantize(GgmlType t);

// Encodes one row of n elements (a whole number of blocks of t) into
// ggml_row_bytes(t, n) bytes.
//
// importance: null, or n non-negative weights, one per element: llama.cpp's
// importance matrix (quant_weights). Q4_0, Q4_1, Q5_0, Q5_1, Q2_K..Q6_K,
// IQ4_NL and IQ4_XS then run llama.cpp's weighted search, which minimizes
// the importance-weighted squared error (for the legacy types the weights
// are scaled by the row's RMS, so the row is one unit). Q8_0, MXFP4, TQ1_0,
// TQ2_0 and the plain types ignore it, as llama.cpp does.
void ggml_quantize_row(GgmlType t, const float* x, uint64_t n, uint8_t* out, const float* importance = nullptr);
// Decodes ggml_row_bytes(t, n) bytes into n floats.
void ggml_dequantize_row(GgmlType t, const uint8_t* in, uint64_t n, float* out);

// rows x cols, row-major, each row encoded independently (llama.cpp's
// convention); importance_per_col: null or cols weights, the same for every
// row (an imatrix is per column). threads: 0 = default_thread_count().
void ggml_quantize_rows(GgmlType t, const float* x, uint64_t rows, uint64_t cols, uint8_t* out,
                        const float* importance_per_col, int threads);
void ggml_dequantize_rows(GgmlType t, const uint8_t* in, uint64_t rows, uint64_t cols, float* out, int threads);

}  // namespace lowbit
