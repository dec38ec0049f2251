// compressed-tensors' int32 packing of sub-byte integers (pack_to_int32 and
// unpack_from_int32 in compressed_tensors/compressors/pack_quantized/
// helpers.py, version 0.20), as vLLM's pack-quantized loader reads it.
//
// The packed form of one stream of n b-bit values (b = 1..8):
//   - each value is stored as an unsigned b-bit field: the signed value plus
//     the offset 2^(b-1) (so -8..7 becomes 0..15 for 4 bits);
//   - value i occupies bits [i*b, i*b + b) of the stream, least significant
//     bit first, word k holding stream bits [32k, 32k + 32): fields straddle
//     word boundaries (dense packing, no wasted bits);
//   - ceil(n*b / 32) int32 words, the bits past the last value zero.
// For b = 2, 4 and 8 (which divide 32) this is also what compressed-tensors
// wrote before it switched to dense packing (32 / b values per word), and it
// is what gptq_marlin_repack expects.
//
// weight_packed packs along dim 1: each row of [rows, cols] is one stream,
// giving [rows, ceil(cols*b/32)]. weight_zero_point packs along dim 0: each
// column is one stream, giving [ceil(rows*b/32), cols].
//
// Because int32 words are little-endian in files, a row stream is simply a
// little-endian bit stream, the same bit order lowbit uses for its packed
// codes (format/packing.h). The routines here move b-bit fields between the
// two, optionally XOR-ing each field with `flip`: XOR with 2^(b-1) turns a
// two's complement code into its offset (unsigned) form and back.
#pragma once

#include <cstdint>

namespace lowbit {

// ceil(n * bits / 32) with overflow checked (Error(kInput) naming `what`).
uint64_t ct_packed_words(uint64_t n, int bits, const char* what);

// Rows of a lowbit code stream -> pack-quantized rows.
//   stream  lowbit's LE bit stream of rows * cols b-bit codes (row-major,
//           rows not byte-aligned in general)
//   out     rows * ct_packed_words(cols, bits) * 4 bytes, written in full
void ct_pack_rows(const uint8_t* stream, uint64_t rows, uint64_t cols, int bits, uint8_t flip, uint8_t* out);
// The reverse: packed rows (bytes of LE int32 words, any alignment) ->
// lowbit's stream, ceil(rows * cols * bits / 8) bytes, written in full.
void ct_unpack_rows(const uint8_t* in, uint64_t rows, uint64_t cols, int bits, uint8_t flip, uint8_t* stream);

// Columns of a lowbit code stream (rows * cols codes, row-major) ->
// ct_packed_words(rows, bits) * cols int32 words packed along dim 0, as bytes.
void ct_pack_columns(const uint8_t* stream, uint64_t rows, uint64_t cols, int bits, uint8_t flip, uint8_t* out);
void ct_unpack_columns(const uint8_t* in, uint64_t rows, uint64_t cols, int bits, uint8_t flip, uint8_t* stream);

}  // namespace lowbit
