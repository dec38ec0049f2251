// One way to store a float32 tensor, whatever it is: a Scheme's generic
// arithmetic (quantize.cc), or a fixed block layout whose arithmetic is its
// own (llama.cpp's Q8_0 and Q4_0, lowbit/ggml/tensor_codec.h). Commands,
// studies and files take either through parse_codec (ggml/codec_registry.h)
// and handle both the same way; Scheme itself has no special cases.
#pragma once

#include <memory>
#include <string>

#include "lowbit/core/tensor.h"
#include "lowbit/quant/quantized_tensor.h"
#include "lowbit/quant/quantizer.h"
#include "lowbit/quant/scheme.h"

namespace lowbit {

class TensorCodec {
 public:
  virtual ~TensorCodec() = default;

  // The spec that names it (parse_codec(spec()) gives it back).
  virtual std::string spec() const = 0;
  // A generic codec's arithmetic itself; for a fixed layout, the generic
  // scheme with the same element format, blocks and scale format, so the
  // same bits per element and component sizes (Q8_0: int:8:narrow/g32 with
  // float16 scales).
  virtual const Scheme& scheme() const = 0;
  // True when scheme() is the arithmetic, so that a method may change its
  // scale rule or zero points; false for a fixed layout.
  virtual bool generic() const = 0;

  virtual void quantize_into(const TensorView& x, const QuantizeOptions& opt, QuantizedTensor& out) const = 0;
  QuantizedTensor quantize(const TensorView& x, const QuantizeOptions& opt = {}) const;
  // Decodes a tensor this codec quantized; dequantize() calls it for a
  // fixed layout (QuantizedTensor::fixed_codec).
  virtual void decode(const QuantizedTensor& q, float* out, int threads) const = 0;
  // decode(quantize(x)), bit for bit; generic codecs fuse the two.
  virtual void fakequant(const TensorView& x, float* out, const QuantizeOptions& opt = {}) const;
};

// A Scheme's generic arithmetic as a codec.
std::shared_ptr<const TensorCodec> scheme_codec(Scheme s);

}  // namespace lowbit
