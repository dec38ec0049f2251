// NaN and inf in ggml blocks, by rule rather than by accident: the rule
// `lowbit quantize --nan keep` follows (docs/ggml_types.md, "NaN and inf").
//
// The raw codecs (row_codec.h) give a block holding NaN or inf whatever
// ggml gives it, which is often finite garbage (a NaN skipped by the block
// maximum encodes as code 0). For a model whose NaN weights are to be kept,
// lowbit promises instead: every block whose input holds a NaN or an
// infinity decodes to NaN in every element. "Block" is ggml's block, the
// unit with its own float scale: 32 elements for Q4_0..Q8_0 and IQ4_NL, 128
// for Q1_0, the whole super-block of 256 for the K-quants, IQ4_XS, TQ1_0
// and TQ2_0 (their sub-block scales are integers, so only the super-block's
// float16 d can carry a NaN).
//
// How: such a block is quantized from its input with the non-finite values
// replaced by 0, and then each of its float16 scale fields (d, and dmin or m
// where the type has one) is set to 0x7E00, the quiet NaN ggml itself writes
// for a NaN float32. Every type's decode multiplies by d (and subtracts a
// dmin or adds an m product), so every element comes out NaN, in lowbit's
// ggml_dequantize_row, in gguf-py's numpy dequantizer and in llama.cpp's
// dequantize_row_* and dot products alike (0 * NaN is NaN).
//
// The plain types keep each value by themselves: F32 is a copy, F16 and BF16
// turn a NaN into a NaN and an infinity into the same infinity (F16 also
// turns finite values beyond 65504 into infinities, as ggml does), so for
// them the rule is element-wise and nothing is rewritten.
//
// MXFP4 and NVFP4 cannot follow the rule: no scale byte decodes to NaN in
// ggml or gguf-py (E8M0 0xFF is read as 2^127, UE4M3 0x7F as 0), so no block
// of theirs decodes to NaN. Asked to mark such a block, these functions fail
// with a kInput error (and write nothing); a tensor without NaN or inf
// quantizes as usual.
#pragma once

#include <cstdint>

#include "lowbit/ggml/type.h"

namespace lowbit {

// Whether some block of t decodes to NaN in every element (the plain types
// F32, F16, BF16 included, element by element): false for MXFP4, NVFP4 and
// the types lowbit cannot quantize.
bool ggml_type_can_hold_nan(GgmlType t);

// Whether x[0, n) holds a NaN or an infinity: one vectorized pass.
bool has_nonfinite(const float* x, uint64_t n);

// The entry point for `--nan keep`: ggml_quantize_rows (same arguments),
// except that the rows holding NaN or inf are quantized from a copy with
// those values replaced by 0, and that every block whose input holds a NaN
// or an infinity is then marked as above. (The raw codecs take NaN and inf
// without undefined behaviour, but what ggml's searches make of them is
// arbitrary, and with importance weights the legacy types' row statistics
// would carry a NaN into every block of its row; zeros keep the other
// blocks as they would be and the marked blocks' codes defined.) Blocks without NaN or inf get the bytes
// ggml_quantize_rows gives the zero-filled copy: in rows without NaN or inf,
// exactly its bytes for x itself. Only the rows holding NaN or inf are
// copied, in batches of about 2^20 elements (or one longer row), so the
// extra memory stays small.
//
// Returns the number of blocks marked (for the plain types: the number of
// non-finite values). The bytes never depend on `threads`. A kInput error
// (before anything is written) when t cannot hold NaN and x has NaN or inf.
uint64_t ggml_quantize_rows_keeping_nonfinite(GgmlType t, const float* x, uint64_t rows, uint64_t cols, uint8_t* out,
                                              const float* importance_per_col, int threads);

// The marking step alone: `blocks` holds the rows x cols elements of type t
// that ggml_quantize_rows wrote for x (or for x with its non-finite values
// replaced by 0, as above); every block whose elements of x hold a NaN or an
// infinity gets its scale fields set to NaN. Blocks of x without NaN or inf
// are left as they are, so with the raw x and a row-statistics importance
// they may hold whatever a NaN elsewhere in the row did to them; prefer
// ggml_quantize_rows_keeping_nonfinite. Returns the number of blocks marked
// (plain types: the count of non-finite values, nothing rewritten). Fast when
// such blocks are few: a clean row costs one vectorized scan. A kInput error,
// with nothing rewritten, when t cannot hold NaN and some block needs marking.
uint64_t ggml_mark_nonfinite_blocks(GgmlType t, const float* x, uint64_t rows, uint64_t cols, uint8_t* blocks,
                                    int threads);

}  // namespace lowbit
