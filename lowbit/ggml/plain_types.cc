// ggml's plain element types: F32, F16 and BF16 both ways, and F64, I8, I16
// and I32 read into float32. One element per "block", little-endian.
//
//  - F16 from float32: ggml's GGML_FP32_TO_FP16, round to nearest even with
//    overflow to inf and NaN -> sign | 0x7E00. That is lowbit's float16
//    format under rne/ieee, so the format engine's array encoder does it.
//  - BF16 from float32: ggml_compute_fp32_to_bf16, round to nearest even
//    (overflow to inf); a NaN keeps its top 16 bits with the quiet bit set.
//    The format engine gives the same bits for numbers but a canonical NaN,
//    so the conversion is written out here.
//  - F16 and BF16 to float32 are exact, NaN payloads included (numpy's and
//    gguf-py's results); F64 rounds to nearest even; I32 rounds to nearest
//    even above 2^24 (a plain int -> float conversion).
#include <cstring>

#include "lowbit/format/registry.h"
#include "lowbit/ggml/row_codec_internal.h"
#include "lowbit/kernels/array_ops.h"

namespace lowbit::ggml_internal {

namespace {

void quantize_f32(const float* x, uint64_t n, uint8_t* out, const float*) { std::memcpy(out, x, n * 4); }
void dequantize_f32(const uint8_t* in, uint64_t n, float* out) { std::memcpy(out, in, n * 4); }

void quantize_f16(const float* x, uint64_t n, uint8_t* out, const float*) {
  static const Format f16 = parse_format("float16");
  ArrayOptions o;
  o.round.overflow = Overflow::kIeee;
  o.threads = 1;  // the caller splits the work
  encode_array(f16, x, out, n, false, o);
}
void dequantize_f16(const uint8_t* in, uint64_t n, float* out) {
  for (uint64_t i = 0; i < n; ++i) out[i] = fp16_to_fp32(load_u16(in + 2 * i));
}

uint16_t fp32_to_bf16(float f) {
  const uint32_t u = f32_bits(f);
  if ((u & 0x7FFFFFFF) > 0x7F800000) return static_cast<uint16_t>((u >> 16) | 64);
  return static_cast<uint16_t>((u + (0x7FFF + ((u >> 16) & 1))) >> 16);
}
void quantize_bf16(const float* x, uint64_t n, uint8_t* out, const float*) {
  for (uint64_t i = 0; i < n; ++i) store_u16(out + 2 * i, fp32_to_bf16(x[i]));
}
void dequantize_bf16(const uint8_t* in, uint64_t n, float* out) {
  for (uint64_t i = 0; i < n; ++i) out[i] = f32_from_bits(static_cast<uint32_t>(load_u16(in + 2 * i)) << 16);
}

// Little-endian T elements converted to float one by one.
template <class T>
void dequantize_as(const uint8_t* in, uint64_t n, float* out) {
  for (uint64_t i = 0; i < n; ++i) {
    T v;
    std::memcpy(&v, in + i * sizeof(T), sizeof(T));
    out[i] = static_cast<float>(v);
  }
}

const RowCodec kCodecs[] = {
    {GgmlType::kF32, quantize_f32, dequantize_f32},
    {GgmlType::kF16, quantize_f16, dequantize_f16},
    {GgmlType::kBF16, quantize_bf16, dequantize_bf16},
    {GgmlType::kF64, nullptr, dequantize_as<double>},
    {GgmlType::kI8, nullptr, dequantize_as<int8_t>},
    {GgmlType::kI16, nullptr, dequantize_as<int16_t>},
    {GgmlType::kI32, nullptr, dequantize_as<int32_t>},
};

}  // namespace

std::span<const RowCodec> plain_codecs() { return kCodecs; }

}  // namespace lowbit::ggml_internal
