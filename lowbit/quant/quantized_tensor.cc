#include "lowbit/quant/quantized_tensor.h"

#include "lowbit/core/checked_math.h"
#include "lowbit/format/packing.h"
#include "lowbit/quant/block_grid.h"

namespace lowbit {

uint64_t component_bytes(const Format& f, uint64_t n) {
  if (has_packed_layout(f)) return packed_bytes(f, n);
  return mul_or_fail(n, static_cast<uint64_t>(f.code_bytes()), "component size");
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

uint64_t QuantizedTensor::num_blocks() const {
  if (scheme.layout != BlockLayout::kGeneric) return numel() / 32;
  return BlockGrid::make(shape, scheme.gran).num_blocks;
}

QuantizedTensor::Bits scheme_bits(const Scheme& s, const std::vector<uint64_t>& shape) {
  QuantizedTensor::Bits b;
  uint64_t n = 1;
  for (uint64_t d : shape) n = mul_or_fail(n, d, "tensor size");
  if (s.layout != BlockLayout::kGeneric) {
    b.codes = n * static_cast<uint64_t>(s.element.bits);
    b.scales = n / 32 * 16;
    return b;
  }
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
