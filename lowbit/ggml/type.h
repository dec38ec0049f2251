// The table of ggml tensor types: ids as stored in GGUF, llama.cpp's names,
// and the block geometry (elements per block, bytes per block).
//
// The GGUF reader needs the geometry to size tensor data it may not be able
// to decode, and the block codecs need it to lay out rows, so both share this
// one table. Ids are ggml's enum values (ggml.h); the gaps are types ggml
// has retired, which a file must not use.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace lowbit {

enum class GgmlType : uint32_t {
  kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8, kQ8_1 = 9,
  kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kQ8_K = 15,
  kIQ2_XXS = 16, kIQ2_XS = 17, kIQ3_XXS = 18, kIQ1_S = 19, kIQ4_NL = 20, kIQ3_S = 21,
  kIQ2_S = 22, kIQ4_XS = 23, kI8 = 24, kI16 = 25, kI32 = 26, kI64 = 27, kF64 = 28,
  kIQ1_M = 29, kBF16 = 30, kTQ1_0 = 34, kTQ2_0 = 35, kMXFP4 = 39, kNVFP4 = 40, kQ1_0 = 41,
};

struct GgmlTypeInfo {
  GgmlType type;
  std::string_view name;  // llama.cpp's spelling: "Q4_K", "F16", "MXFP4"
  uint32_t block_elems;   // elements per block (1 for plain types)
  uint32_t block_bytes;   // bytes per block
};

// The entry for a raw id read from a file, or nullopt for an id ggml does
// not define (or has retired).
std::optional<GgmlTypeInfo> ggml_type_info(uint32_t id);
GgmlTypeInfo ggml_type_info(GgmlType type);

// Look a type up by name, case-insensitively ("q4_k", "Q4_K", "bf16").
std::optional<GgmlTypeInfo> ggml_type_by_name(std::string_view name);

// Every defined type, in id order.
const std::vector<GgmlTypeInfo>& ggml_types();

// Bytes that `elems` elements of `type` take, or a kInput error when
// `elems` is not a whole number of blocks or the size overflows 64 bits.
// `what` names the tensor for the message.
uint64_t ggml_row_bytes(GgmlType type, uint64_t elems, std::string_view what);

}  // namespace lowbit
