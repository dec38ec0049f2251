// QuantizedTensor: the stored form of a quantized tensor, and the exact
// count of the bits it takes.
//
// Components (docs/schemes.md gives the file layout):
//   codes          the element codes in row-major order, packed as
//                  packing.h packs them (sub-byte widths as one LE bit
//                  stream, wider ones 1/2/4 bytes each)
//   scales         one code of the scale format per block, packed the same
//                  way, blocks in BlockGrid order
//   tensor_scale   the code of the tensor scale format (two-level schemes)
//   zeros          one zero point per block (asym): the integer zero as an
//                  unsigned integer of the element width, or the float zero
//                  as a code of the scale format
//   outliers       positions (gap-coded or plain) and float16 values
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lowbit/quant/scheme.h"

namespace lowbit {

class TensorCodec;

struct OutlierList {
  uint64_t count = 0;
  int gap_bits = 6;                // 0: plain positions
  std::vector<uint8_t> positions;  // gap stream (LE, gap_bits each) or u32/u64 LE
  std::vector<uint16_t> values;    // float16 codes
  uint64_t position_bits = 0;      // exact bits of the position code
};

struct QuantizedTensor {
  // The generic arithmetic; for a fixed layout, the scheme that describes
  // its components (TensorCodec::scheme()).
  Scheme scheme;
  // A fixed block layout (llama.cpp's Q8_0, Q4_0) that owns the meaning of
  // codes and scales, or null for the scheme's arithmetic. Codecs live as
  // long as the program.
  const TensorCodec* fixed_codec = nullptr;
  std::vector<uint64_t> shape;
  std::vector<uint8_t> codes;
  std::vector<uint8_t> scales;
  uint32_t tensor_scale = 0;  // code, two-level schemes only
  std::vector<uint8_t> zeros;
  OutlierList outliers;

  // The spec of how it is stored: the fixed codec's, else the scheme's.
  std::string spec() const;
  uint64_t numel() const;
  uint64_t num_blocks() const;
  // Bits of each component and in total, exactly as stored (sub-byte codes
  // at their width, ternary at 8 bits per 5 trits).
  struct Bits {
    uint64_t codes = 0, scales = 0, tensor_scale = 0, zeros = 0, outlier_positions = 0, outlier_values = 0;
    uint64_t total() const { return codes + scales + tensor_scale + zeros + outlier_positions + outlier_values; }
  };
  Bits bits() const;
  double bits_per_element() const;
};

// Bits a scheme takes on a tensor of this shape, without quantizing it
// (outliers: the expected count at the scheme's fraction and gap-code cost
// for uniformly spread positions is not known in advance, so outlier
// schemes need the quantized tensor; this counts codes, scales and zeros).
QuantizedTensor::Bits scheme_bits(const Scheme& s, const std::vector<uint64_t>& shape);

// Bytes of n codes of a scale or zero-point format as stored.
uint64_t component_bytes(const Format& f, uint64_t n);
// Per-block codes (scales, zero points) as stored in a QuantizedTensor:
// packed for sub-byte formats, else little-endian, code_bytes() each.
std::vector<uint8_t> store_codes(const Format& f, const std::vector<uint32_t>& codes);
// The inverse, for n codes; kInput when the bytes do not hold exactly n.
std::vector<uint32_t> load_codes(const Format& f, const std::vector<uint8_t>& bytes, uint64_t n);
uint64_t component_bits(const Format& f, uint64_t n);

}  // namespace lowbit
