#include "lowbit/quant/tensor_codec.h"

#include <utility>
#include <vector>

namespace lowbit {
namespace {

class SchemeCodec final : public TensorCodec {
 public:
  explicit SchemeCodec(Scheme s) : s_(std::move(s)) {}
  std::string spec() const override { return s_.spec(); }
  const Scheme& scheme() const override { return s_; }
  bool generic() const override { return true; }
  void quantize_into(const TensorView& x, const QuantizeOptions& opt, QuantizedTensor& out) const override {
    lowbit::quantize_into(x, s_, opt, out);
  }
  void decode(const QuantizedTensor& q, float* out, int threads) const override { dequantize(q, out, threads); }
  void fakequant(const TensorView& x, float* out, const QuantizeOptions& opt) const override {
    fakequant_tensor(x, out, s_, opt);
  }

 private:
  Scheme s_;
};

}  // namespace

QuantizedTensor TensorCodec::quantize(const TensorView& x, const QuantizeOptions& opt) const {
  QuantizedTensor q;
  quantize_into(x, opt, q);
  return q;
}

void TensorCodec::fakequant(const TensorView& x, float* out, const QuantizeOptions& opt) const {
  const QuantizedTensor q = quantize(x, opt);
  decode(q, out, opt.threads);
}

std::shared_ptr<const TensorCodec> scheme_codec(Scheme s) { return std::make_shared<SchemeCodec>(std::move(s)); }

}  // namespace lowbit
