// The fixed facts of the GGUF container that its reader and writer share:
// the magic, the versions, alignment rules, ggml's limits on tensors, and
// the one rule that turns a tensor's shape and type into a byte count.
//
// GGUF (https://github.com/ggml-org/ggml/blob/master/docs/gguf.md), all
// little-endian:
//   "GGUF"                   4 bytes
//   version                  u32 (3; 2 has the same layout)
//   tensor_count, kv_count   u64, u64
//   kv_count entries         key (string), value type (u32), value
//   tensor_count infos       name (string), n_dims (u32), ne[n_dims] (u64),
//                            ggml type (u32), offset (u64, into the data section)
//   padding                  zeros up to a multiple of the alignment
//   data section             each tensor at its offset, a multiple of the alignment
// A string is a u64 byte count and the bytes (no terminator). The alignment
// is the metadata value "general.alignment" (UINT32), 32 when absent.
//
// ne[0] is the fastest-varying dimension (a row), so ggml's ne is the
// reverse of a row-major (numpy, lowbit) shape: a [rows, cols] matrix has
// ne = {cols, rows}.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/ggml/type.h"

namespace lowbit {

inline constexpr char kGgufMagic[4] = {'G', 'G', 'U', 'F'};
inline constexpr uint32_t kGgufVersion = 3;        // what the writer writes
inline constexpr uint32_t kGgufOldestVersion = 2;  // v1 used 32-bit counts
inline constexpr uint32_t kGgufDefaultAlignment = 32;
inline constexpr std::string_view kGgufAlignmentKey = "general.alignment";
// The fixed part of the header: magic, version, two counts.
inline constexpr uint64_t kGgufHeaderBytes = 4 + 4 + 8 + 8;

// ggml's GGML_MAX_DIMS: a ggml tensor has at most 4 dimensions.
inline constexpr uint32_t kGgmlMaxDims = 4;
// ggml's GGML_MAX_NAME: a tensor name is stored in a 64-byte array with its
// terminating NUL, so llama.cpp refuses names of 64 bytes or more.
inline constexpr size_t kGgmlMaxName = 64;

// True for a valid alignment: a non-zero power of two.
constexpr bool is_valid_gguf_alignment(uint64_t alignment) noexcept {
  return alignment != 0 && (alignment & (alignment - 1)) == 0;
}

// `value` rounded up to a multiple of `alignment` (a valid alignment), or
// nullopt when that does not fit in 64 bits.
std::optional<uint64_t> gguf_align_up(uint64_t value, uint64_t alignment) noexcept;

// The element count and byte size of a tensor, or the reason it has none.
struct GgufTensorSize {
  uint64_t numel = 0;
  uint64_t nbytes = 0;
  // Empty when the shape is valid; otherwise a sentence naming the tensor,
  // e.g. "tensor 'w' has 33 elements per row (ne[0]), not a multiple of the
  // Q4_0 block size 32".
  std::string problem;
};

// ggml's rules, so that what the reader accepts and the writer writes is
// what llama.cpp loads: at most kGgmlMaxDims dimensions, every ne[i] and
// their product at most 2^63 - 1 (ggml holds them in int64_t), and rows
// (ne[0]) made of whole blocks. A tensor with no dimensions is a scalar of
// one element; a zero dimension gives zero elements and zero bytes.
GgufTensorSize gguf_tensor_size(std::string_view name, const GgmlTypeInfo& type,
                                std::span<const uint64_t> ne);

// ggml's ne from a row-major shape, or the shape from ne: the order reversed.
std::vector<uint64_t> reverse_dims(std::span<const uint64_t> dims);

// Concatenates strings (std::string, string_view, literals) into one.
// Messages are built with it rather than with `"literal" + std::string`,
// on which GCC 12 gives a bogus -Wrestrict warning.
template <typename... Parts>
std::string gguf_cat(const Parts&... parts) {
  std::string out;
  (out.append(std::string_view(parts)), ...);
  return out;
}

// A name or key as it appears in messages: single-quoted, control bytes
// escaped, cut short after 200 bytes, since it comes from an untrusted file.
std::string gguf_quote(std::string_view text);

}  // namespace lowbit
