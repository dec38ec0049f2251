// compressed-tensors: the checkpoint layout that vLLM loads (Neural Magic /
// vLLM's compressed-tensors library, 0.20, and vLLM 0.33's loaders). One
// quantized 2-D weight [out_features, in_features] of module M becomes a few
// tensors named M.<suffix>; config.json's quantization_config says how
// (compressed_tensors_config.h). docs/compressed_tensors.md has the tables.
//
//   scheme                         format                 tensors
//   int<b>/channel|g<N>[/asym]     pack-quantized         weight_packed I32 [out, ceil(in*b/32)]
//     (b = 2..8)                                          weight_scale [out, in/N] (channel: [out, 1])
//                                                         weight_zero_point I32 [ceil(out*b/32), in/N] (asym)
//                                                         weight_shape I64 [2] = {out, in}
//   float8_e4m3fn/tensor|channel|  float-quantized        weight F8_E4M3 [out, in]
//     b<R>x<C>                                            weight_scale [1] | [out, 1] | [ceil(out/R), ceil(in/C)]
//   nvfp4 (e2m1/g16, fp32*ue4m3)   nvfp4-pack-quantized   weight_packed U8 [out, in/2]
//                                                         weight_scale F8_E4M3 [out, in/16]
//                                                         weight_global_scale F32 [1]
//   mxfp4 (e2m1/g32, e8m0)         mxfp4-pack-quantized   weight_packed U8 [out, in/2], weight_scale U8 [out, in/32]
//   mxfp8_e4m3 (e4m3fn/g32, e8m0)  mxfp8-quantized        weight F8_E4M3 [out, in], weight_scale U8 [out, in/32]
//
// Scales of the int and float8 schemes are written in the scale format's
// own dtype when it is F32, F16 or BF16, and otherwise as F32 (every lowbit
// scale value is a float32 value, so nothing changes). The global scale of
// NVFP4 is the reciprocal of lowbit's tensor scale, chosen so that vLLM's
// 1.0f / weight_global_scale gives lowbit's tensor scale back bit for bit.
//
// Typical use (the quantize command): plans need only schemes and shapes,
// so every weight is planned and declared before any is quantized:
//   for each weight: p[i] = plan_compressed_tensors(scheme, shape, name);      // refuses early
//                    idx[i] = declare_compressed_tensors(writer, module, p[i]);
//   writer.begin();
//   for each weight, in the same order:
//     write_compressed_tensors(writer, idx[i], encode_compressed_tensors(p[i], quantize({x, shape}, scheme)));
//   writer.commit();   // and config.json's quantization_config from ct_quantization_config
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/io/safetensors.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/scheme.h"
#include "lowbit/quant/tensor_codec.h"

namespace lowbit {

enum class CtFormat : uint8_t {
  kPackQuantized,       // "pack-quantized"
  kFloatQuantized,      // "float-quantized"
  kNvfp4PackQuantized,  // "nvfp4-pack-quantized"
  kMxfp4PackQuantized,  // "mxfp4-pack-quantized"
  kMxfp8Quantized,      // "mxfp8-quantized"
};
const char* ct_format_name(CtFormat f);
std::optional<CtFormat> find_ct_format(std::string_view name);
// "pack-quantized, float-quantized, ..." for messages.
std::string ct_format_names();

// The weights' quantization_args, with the fields of compressed-tensors'
// QuantizationArgs that matter to the stored layout.
struct CtArgs {
  int num_bits = 8;
  std::string type = "int";         // "int" | "float"
  bool symmetric = true;
  std::string strategy = "tensor";  // tensor | channel | group | block | tensor_group
  std::optional<uint64_t> group_size;                       // group, tensor_group
  std::optional<std::array<uint64_t, 2>> block_structure;   // block: [rows, cols]
  std::optional<std::string> scale_dtype;                   // "torch.uint8" for MXFP8
  bool operator==(const CtArgs&) const = default;
};

// One tensor of a weight: M.<suffix>.
struct CtTensorDecl {
  std::string suffix;  // "weight_packed", "weight_scale", ...
  DType dtype;
  std::vector<uint64_t> shape;
  bool operator==(const CtTensorDecl&) const = default;
};

struct CtPlan {
  Scheme scheme;
  std::vector<uint64_t> shape;  // [out_features, in_features]
  CtFormat format;
  CtArgs args;
  std::vector<CtTensorDecl> tensors;  // in the order they are written
};

// How `scheme` is stored for a weight of this shape. Throws Error(kUsage)
// naming the scheme (and `name`, when given) with the reason and the list of
// storable schemes (ct_storable_schemes) when it cannot be stored.
CtPlan plan_compressed_tensors(const Scheme& scheme, const std::vector<uint64_t>& shape,
                               const std::string& name = "");
std::string ct_storable_schemes();
// The same for any codec: a fixed layout (q8_0, q4_0) is refused.
CtPlan plan_compressed_tensors(const TensorCodec& c, const std::vector<uint64_t>& shape, const std::string& name = "");

struct CtTensorData {
  CtTensorDecl decl;
  std::vector<uint8_t> bytes;  // little-endian, exactly tensor_nbytes(decl)
};

struct CtEncoded {
  std::vector<CtTensorData> tensors;  // plan.tensors, in order
  // Empty when decoding gives q back exactly. Otherwise why not: NVFP4 whose
  // float32 tensor scale s is not 1.0f / g for any float32 g (about one
  // scale in six; QuantizeOptions::reciprocal_tensor_scale avoids them);
  // the stored g is then the nearest, and vLLM and decode_compressed_tensors
  // both use 1.0f / g, within one ulp of s.
  std::string inexact;
};

// The tensors of q, which must have the plan's scheme and shape
// (Error(kUsage) otherwise; Error(kInput) for codes that compressed-tensors
// cannot hold, such as a negative NVFP4 block scale).
CtEncoded encode_compressed_tensors(const CtPlan& plan, const QuantizedTensor& q);

// A stored tensor as decode reads it (bytes may be unaligned).
struct CtTensorView {
  DType dtype;
  std::vector<uint64_t> shape;
  std::span<const std::byte> bytes;
};

// The weight back as a QuantizedTensor whose dequantization is the
// checkpoint's: `tensors` maps suffixes to tensors (others are ignored).
// Every tensor's dtype and shape is checked against the args and each
// other; a problem throws Error(kInput) naming `module` and the tensor.
// The scheme is the canonical one for the layout (int<b> full range,
// sf = the scale dtype; nvfp4, mxfp4, mxfp8_e4m3), so its dequantization
// equals that of the tensor that was encoded, bit for bit.
QuantizedTensor decode_compressed_tensors(CtFormat format, const CtArgs& args,
                                          const std::map<std::string, CtTensorView>& tensors,
                                          const std::string& module);
// The same for the tensors "<module>.<suffix>" of an open file.
QuantizedTensor load_compressed_tensors_weight(const SafetensorsFile& file, const std::string& module, CtFormat format,
                                               const CtArgs& args);

// Streaming: declares the plan's tensors as "<module>.<suffix>" (before
// begin()) and returns their indices; then writes an encoding of the same
// plan into them (after begin(), in declaration order).
std::vector<size_t> declare_compressed_tensors(SafetensorsWriter& w, const std::string& module, const CtPlan& plan);
void write_compressed_tensors(SafetensorsWriter& w, const std::vector<size_t>& indices, const CtEncoded& enc);

}  // namespace lowbit
