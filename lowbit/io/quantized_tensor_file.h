// QuantizedTensor in a safetensors file: one tensor per component, the
// scheme and shape in the header metadata (layout in docs/schemes.md).
//
//   <name>.codes              U8 [bytes]   element codes, packed (packing.h)
//   <name>.scales             per-block scale codes, [block rows, blocks per
//                             row], in the scale format's own dtype where
//                             safetensors has one (F32, F16, BF16, F8_E4M3,
//                             F8_E8M0), else its codes (U8/U16/U32)
//   <name>.tensor_scale       the tensor scale of two-level schemes, []
//   <name>.zeros              zero points: U8 [bytes] packed integer zeros,
//                             or float zeros in the scale's dtype
//   <name>.outlier_positions  U8 [bytes]   gap stream or plain u32/u64
//   <name>.outlier_values     F16 [count]
// Metadata: lowbit.layout = "quantized_tensor/1", lowbit.tensors (the
// names), and per tensor <name>.scheme, <name>.shape (JSON list),
// <name>.outliers ("count gap_bits position_bits").
#pragma once

#include <string>
#include <vector>

#include "lowbit/io/safetensors.h"
#include "lowbit/quant/quantized_tensor.h"

namespace lowbit {

// Writes one or more quantized tensors to `path` atomically.
void save_quantized_tensors(const std::string& path,
                            const std::vector<std::pair<std::string, const QuantizedTensor*>>& tensors);

// Reads tensor `name` (empty: the file's only quantized tensor), validating
// every component's size against the scheme and shape (ErrorKind::kInput).
QuantizedTensor load_quantized_tensor(const SafetensorsFile& file, const std::string& name = "");

}  // namespace lowbit
