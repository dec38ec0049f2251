#include "lowbit/quant/quantized_tensor.h"

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/format/packing.h"
#include "lowbit/quant/block_grid.h"
#include "lowbit/quant/tensor_codec.h"

namespace lowbit {

uint64_t component_bytes(const Format& f, uint64_t n) {
  if (has_packed_layout(f)) return packed_bytes(f, n);
  return mul_or_fail(n, static_cast<uint64_t>(f.code_bytes()), "component size");
}

std::vector<uint8_t> store_codes(const Format& f, const std::vector<uint32_t>& codes) {
  const uint64_t n = codes.size();
  std::vector<uint8_t> out(component_bytes(f, n));
  if (has_packed_layout(f)) {
    std::vector<uint8_t> tmp(n);
    for (uint64_t i = 0; i < n; ++i) tmp[i] = static_cast<uint8_t>(codes[i]);
    pack_codes(f, tmp.data(), n, out.data());
    return out;
  }
  const int cb = f.code_bytes();
  for (uint64_t i = 0; i < n; ++i) {
    for (int k = 0; k < cb; ++k) out[i * cb + k] = static_cast<uint8_t>(codes[i] >> (8 * k));
  }
  return out;
}

std::vector<uint32_t> load_codes(const Format& f, const std::vector<uint8_t>& bytes, uint64_t n) {
  std::vector<uint32_t> out(n);
  if (bytes.size() != component_bytes(f, n)) fail_input("component size does not match its block count");
  if (has_packed_layout(f)) {
    std::vector<uint8_t> tmp(n);
    unpack_codes(f, bytes.data(), n, tmp.data());
    for (uint64_t i = 0; i < n; ++i) out[i] = tmp[i];
    return out;
  }
  const int cb = f.code_bytes();
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t c = 0;
    for (int k = 0; k < cb; ++k) c |= static_cast<uint32_t>(bytes[i * cb + k]) << (8 * k);
    out[i] = c;
  }
  return out;
}

uint64_t component_bits(const Format& f, uint64_t n) {
  // Ternary packs 5 trits per byte; other sub-byte widths pack densely;
  // 8 bits and up take whole bytes per code (tf32 takes 4).
  if (f.ternary) return packed_bytes(f, n) * 8;
  if (has_packed_layout(f)) return n * static_cast<uint64_t>(f.bits);
  return n * 8 * static_cast<uint64_t>(f.code_bytes());
}

uint64_t QuantizedTensor::numel() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n = mul_or_fail(n, d, "tensor size");
  return n;
}

std::string QuantizedTensor::spec() const { return fixed_codec ? fixed_codec->spec() : scheme.spec(); }

uint64_t QuantizedTensor::num_blocks() const {
  return BlockGrid::make(shape, scheme.gran).num_blocks;
}

QuantizedTensor::Bits scheme_bits(const Scheme& s, const std::vector<uint64_t>& shape) {
  QuantizedTensor::Bits b;
  uint64_t n = 1;
  for (uint64_t d : shape) n = mul_or_fail(n, d, "tensor size");
  const uint64_t nb = BlockGrid::make(shape, s.gran).num_blocks;
  b.codes = component_bits(s.code_format(), n);
  b.scales = component_bits(s.scale_format, nb);
  if (s.two_level()) b.tensor_scale = component_bits(*s.tensor_scale_format, 1);
  if (s.zero == ZeroPoint::kInteger) b.zeros = component_bits(s.code_format(), nb);
  if (s.zero == ZeroPoint::kFloat) b.zeros = component_bits(s.scale_format, nb);
  return b;
}

QuantizedTensor::Bits QuantizedTensor::bits() const {
  Bits b = scheme_bits(scheme, shape);
  b.outlier_positions = outliers.position_bits;
  b.outlier_values = outliers.count * 16;
  return b;
}

double QuantizedTensor::bits_per_element() const {
  const uint64_t n = numel();
  return n == 0 ? 0.0 : static_cast<double>(bits().total()) / static_cast<double>(n);
}

}  // namespace lowbit
