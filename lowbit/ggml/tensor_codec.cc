#include "lowbit/ggml/tensor_codec.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/ggml/row_codec.h"
#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit {

namespace {

constexpr uint64_t kBlock = 32;

uint64_t numel_of(const std::vector<uint64_t>& shape) {
  uint64_t n = 1;
  for (uint64_t d : shape) n = mul_or_fail(n, d, "tensor size");
  return n;
}

void check_rows(const std::vector<uint64_t>& shape, const char* name) {
  const uint64_t cols = shape.empty() ? 1 : shape.back();
  if (cols % kBlock != 0) {
    fail_input(std::string(name) + " needs the last dimension to be a multiple of 32 (it is " + std::to_string(cols) +
               "); llama.cpp has the same rule");
  }
}

bool block_finite(const float* x) {
  // Branch-free on the exponent bits, so that the loop vectorizes.
  uint32_t inf_or_nan = 0;
  for (uint64_t j = 0; j < kBlock; ++j) inf_or_nan |= (ggml_internal::f32_bits(x[j]) & 0x7F800000u) == 0x7F800000u;
  return inf_or_nan == 0;
}

// A run of finite blocks through the GGUF codecs (row_codec.h), which are
// the same reference quantizers, with SIMD paths: their blocks hold the same
// float16 d and codes, only in ggml's byte layout (Q4_0 pairs element l with
// l + 16 in a byte, this layout elements 2k and 2k + 1).
void quantize_finite_run(bool q8, const float* x, uint64_t b0, uint64_t count, QuantizedTensor& q,
                         std::vector<uint8_t>& tmp) {
  const uint64_t bytes = q8 ? 34 : 18;
  tmp.resize(count * bytes);
  ggml_quantize_row(q8 ? GgmlType::kQ8_0 : GgmlType::kQ4_0, x + b0 * kBlock, count * kBlock, tmp.data());
  for (uint64_t i = 0; i < count; ++i) {
    const uint8_t* blk = tmp.data() + i * bytes;
    const uint64_t b = b0 + i;
    q.scales[2 * b] = blk[0];
    q.scales[2 * b + 1] = blk[1];
    if (q8) {
      std::copy(blk + 2, blk + 34, q.codes.begin() + static_cast<std::ptrdiff_t>(b * kBlock));
    } else {
      uint8_t* out = q.codes.data() + b * kBlock / 2;
      const auto code = [&](uint64_t e) { return e < 16 ? blk[2 + e] & 0xF : blk[2 + e - 16] >> 4; };
      for (uint64_t k = 0; k < kBlock / 2; ++k) out[k] = static_cast<uint8_t>(code(2 * k) | (code(2 * k + 1) << 4));
    }
  }
}

// The generic schemes with Q8_0's and Q4_0's element formats, blocks and
// scale format: the same bits per element and component sizes, for the
// readers of a QuantizedTensor's components (files, bit counts).
Scheme describing_scheme(bool q8) {
  Scheme s = parse_scheme(q8 ? "int:8:narrow/g32/sf=float16/round=rna" : "int4/g32/sf=float16");
  s.name = q8 ? "q8_0" : "q4_0";
  return s;
}

class GgmlLegacyCodec final : public TensorCodec {
 public:
  explicit GgmlLegacyCodec(bool q8) : q8_(q8), scheme_(describing_scheme(q8)) {}
  std::string spec() const override { return q8_ ? "q8_0" : "q4_0"; }
  const Scheme& scheme() const override { return scheme_; }
  bool generic() const override { return false; }

  void quantize_into(const TensorView& x, const QuantizeOptions& opt, QuantizedTensor& q) const override {
    const std::vector<uint64_t>& shape = x.shape;
    check_rows(shape, q8_ ? "q8_0" : "q4_0");
    const uint64_t n = numel_of(shape);
    const uint64_t nb = n / kBlock;
    // Field by field, so that the buffers of a reused QuantizedTensor are
    // reused too.
    q.scheme = scheme_;
    q.fixed_codec = this;
    q.shape = shape;
    q.codes.assign(q8_ ? n : n / 2, 0);
    q.scales.assign(nb * 2, 0);
    q.tensor_scale = 0;
    q.zeros.clear();
    q.outliers = OutlierList{};
    const uint64_t per_task = 1024;  // blocks
    const int threads = opt.threads > 0 ? opt.threads : default_thread_count();
    ThreadPool::global().parallel_for((nb + per_task - 1) / per_task, threads, [&](size_t t) {
      const uint64_t b1 = std::min(nb, (t + 1) * per_task);
      std::vector<uint8_t> tmp;
      uint64_t run = t * per_task;  // first block of the current finite run
      for (uint64_t b = t * per_task; b <= b1; ++b) {
        if (b < b1 && block_finite(x.data + b * kBlock)) continue;
        if (b > run) quantize_finite_run(q8_, x.data, run, b - run, q, tmp);
        if (b < b1) {
          // A block holding inf or NaN: a NaN scale, the codes stay 0.
          q.scales[2 * b] = 0x00;
          q.scales[2 * b + 1] = 0x7e;
        }
        run = b + 1;
      }
    });
  }

  void decode(const QuantizedTensor& q, float* out, int threads) const override {
    const uint64_t n = numel_of(q.shape);
    check_rows(q.shape, q8_ ? "q8_0" : "q4_0");
    const uint64_t nb = n / kBlock;
    if (q.codes.size() != (q8_ ? n : n / 2) || q.scales.size() != nb * 2) {
      fail_input(std::string(q8_ ? "q8_0" : "q4_0") + " tensor: component sizes do not match its shape");
    }
    const uint64_t per_task = 1024;
    ThreadPool::global().parallel_for((nb + per_task - 1) / per_task, threads > 0 ? threads : default_thread_count(),
                                      [&](size_t t) {
      const uint64_t b1 = std::min(nb, (t + 1) * per_task);
      for (uint64_t b = t * per_task; b < b1; ++b) {
        const uint16_t d16 = static_cast<uint16_t>(q.scales[2 * b] | (q.scales[2 * b + 1] << 8));
        const float d = ggml_internal::fp16_to_fp32(d16);
        float* o = out + b * kBlock;
        if (std::isnan(d)) {
          std::fill(o, o + kBlock, std::numeric_limits<float>::quiet_NaN());
        } else if (q8_) {
          const uint8_t* c = q.codes.data() + b * kBlock;
          for (uint64_t j = 0; j < kBlock; ++j) o[j] = static_cast<float>(static_cast<int8_t>(c[j])) * d;
        } else {
          const uint8_t* c = q.codes.data() + b * kBlock / 2;
          for (uint64_t k = 0; k < kBlock / 2; ++k) {
            o[2 * k] = static_cast<float>((c[k] & 0xF) - 8) * d;
            o[2 * k + 1] = static_cast<float>((c[k] >> 4) - 8) * d;
          }
        }
      }
    });
  }

 private:
  bool q8_;
  Scheme scheme_;
};

}  // namespace

const TensorCodec& ggml_tensor_codec(GgmlType t) {
  static const GgmlLegacyCodec q8(true), q4(false);
  if (t == GgmlType::kQ8_0) return q8;
  if (t == GgmlType::kQ4_0) return q4;
  fail_usage("ggml type " + std::string(ggml_type_info(t).name) +
             " has no tensor codec beside the schemes (Q8_0 and Q4_0 do); GGUF output stores every type");
}

}  // namespace lowbit
