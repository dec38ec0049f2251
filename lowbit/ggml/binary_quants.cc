// ggml's Q1_0 (type 41): blocks of 128 signs with one float16 d, the mean
// |x| of the block: d, then qs[16] with element j in bit j % 8 of byte j / 8,
// 1 for x >= 0 (so +-0 give +d, NaN gives -d). An element decodes to +d or
// -d.
//
// quantize_row_q1_0_ref sums |x| in element order in float32 and divides by
// 128; lowbit keeps that order (four blocks' sums run side by side, as
// independent chains, for speed). Importance weights are ignored, as in
// llama.cpp.
#include <algorithm>
#include <cmath>

#include "lowbit/ggml/row_codec_internal.h"

namespace lowbit::ggml_internal {
namespace {

constexpr int kQK = 128;
constexpr uint64_t kBlockBytes = 18;

void signs(const float* x, uint8_t* qs) {
  for (int k = 0; k < kQK / 8; ++k) {
    uint8_t byte = 0;
    for (int j = 0; j < 8; ++j) byte = static_cast<uint8_t>(byte | ((x[8 * k + j] >= 0.0f) << j));
    qs[k] = byte;
  }
}

void quantize_q1_0(const float* x, uint64_t n, uint8_t* out, const float*) {
  const uint64_t blocks = n / kQK;
  constexpr uint64_t kChains = 4;
  for (uint64_t b0 = 0; b0 < blocks; b0 += kChains) {
    const uint64_t m = std::min(kChains, blocks - b0);
    float sum[kChains] = {};
    for (int j = 0; j < kQK; ++j) {
      for (uint64_t c = 0; c < m; ++c) sum[c] += std::fabs(x[kQK * (b0 + c) + j]);
    }
    for (uint64_t c = 0; c < m; ++c) {
      uint8_t* y = out + kBlockBytes * (b0 + c);
      store_u16(y, fp32_to_fp16(sum[c] / static_cast<float>(kQK)));
      signs(x + kQK * (b0 + c), y + 2);
    }
  }
}

void dequantize_q1_0(const uint8_t* in, uint64_t n, float* out) {
  for (uint64_t b = 0; b < n / kQK; ++b) {
    const uint8_t* y = in + kBlockBytes * b;
    const float d = fp16_to_fp32(load_u16(y));
    for (int j = 0; j < kQK; ++j) out[kQK * b + j] = (y[2 + j / 8] >> (j % 8)) & 1 ? d : -d;
  }
}

const RowCodec kCodecs[] = {{GgmlType::kQ1_0, quantize_q1_0, dequantize_q1_0}};

}  // namespace

std::span<const RowCodec> binary_codecs() { return kCodecs; }

}  // namespace lowbit::ggml_internal
