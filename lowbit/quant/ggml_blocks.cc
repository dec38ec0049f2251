#include "lowbit/quant/ggml_blocks.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "lowbit/core/checked_math.h"
#include "lowbit/core/error.h"
#include "lowbit/core/thread_pool.h"
#include "lowbit/format/codec.h"
#include "lowbit/format/registry.h"

namespace lowbit {

namespace {

constexpr uint64_t kBlock = 32;

const Codec& fp16() {
  static const Codec c(parse_format("float16"));
  return c;
}

// GGML_FP32_TO_FP16: round to nearest even, and a scale beyond float16's
// range becomes inf (ggml and gguf-py store 0x7c00), not 65504.
uint16_t to_fp16(float v) {
  RoundOptions o;
  o.overflow = Overflow::kIeee;
  return static_cast<uint16_t>(fp16().encode(v, o));
}
float from_fp16(uint16_t c) { return static_cast<float>(fp16().decode(c)); }

uint64_t numel_of(const std::vector<uint64_t>& shape) {
  uint64_t n = 1;
  for (uint64_t d : shape) n = mul_or_fail(n, d, "tensor size");
  return n;
}

void check_rows(const std::vector<uint64_t>& shape, const char* name) {
  const uint64_t cols = shape.empty() ? 1 : shape.back();
  if (cols % kBlock != 0) {
    fail_usage(std::string(name) + " needs the last dimension to be a multiple of 32 (it is " + std::to_string(cols) +
               "); llama.cpp has the same rule");
  }
}

bool block_finite(const float* x) {
  for (uint64_t j = 0; j < kBlock; ++j) {
    if (!std::isfinite(x[j])) return false;
  }
  return true;
}

}  // namespace

QuantizedTensor ggml_quantize(const float* x, const std::vector<uint64_t>& shape, const Scheme& s, int threads) {
  const bool q8 = s.layout == BlockLayout::kGgmlQ8_0;
  check_rows(shape, q8 ? "q8_0" : "q4_0");
  const uint64_t n = numel_of(shape);
  const uint64_t nb = n / kBlock;
  QuantizedTensor q;
  q.scheme = s;
  q.shape = shape;
  q.codes.assign(q8 ? n : n / 2, 0);
  q.scales.assign(nb * 2, 0);
  const uint64_t per_task = 1024;  // blocks
  ThreadPool::global().parallel_for((nb + per_task - 1) / per_task, threads, [&](size_t t) {
    const uint64_t b1 = std::min(nb, (t + 1) * per_task);
    for (uint64_t b = t * per_task; b < b1; ++b) {
      const float* xb = x + b * kBlock;
      uint16_t d16;
      if (!block_finite(xb)) {
        d16 = 0x7e00;  // float16 NaN; the codes stay 0
      } else if (q8) {
        float amax = 0;
        for (uint64_t j = 0; j < kBlock; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float d = amax / 127.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        for (uint64_t j = 0; j < kBlock; ++j) {
          // In range for every finite block; the clamp only guards a tiny d
          // whose reciprocal overflowed.
          const float r = std::roundf(xb[j] * id);
          const int v = r >= 127.0f ? 127 : r <= -127.0f ? -127 : r == r ? static_cast<int>(r) : 0;
          q.codes[b * kBlock + j] = static_cast<uint8_t>(static_cast<int8_t>(v));
        }
        d16 = to_fp16(d);
      } else {
        float amax = 0, max = 0;
        for (uint64_t j = 0; j < kBlock; ++j) {
          if (amax < std::fabs(xb[j])) {
            amax = std::fabs(xb[j]);
            max = xb[j];
          }
        }
        const float d = max / -8.0f;
        const float id = d != 0.0f ? 1.0f / d : 0.0f;
        uint8_t* out = q.codes.data() + b * kBlock / 2;
        // ggml: min(15, (int8_t)(x * id + 8.5f)); truncation equals the int8
        // cast on [0, 16), and the guards only matter when id overflowed.
        const auto code = [&](float v) {
          const float t = v * id + 8.5f;
          return t >= 16.0f ? 15 : t > 0.0f ? static_cast<int>(t) : 0;
        };
        for (uint64_t j = 0; j < kBlock; j += 2) {
          out[j / 2] = static_cast<uint8_t>(code(xb[j]) | (code(xb[j + 1]) << 4));
        }
        d16 = to_fp16(d);
      }
      q.scales[2 * b] = static_cast<uint8_t>(d16);
      q.scales[2 * b + 1] = static_cast<uint8_t>(d16 >> 8);
    }
  });
  return q;
}

void ggml_dequantize(const QuantizedTensor& q, float* out, int threads) {
  const bool q8 = q.scheme.layout == BlockLayout::kGgmlQ8_0;
  const uint64_t n = numel_of(q.shape);
  check_rows(q.shape, q8 ? "q8_0" : "q4_0");
  const uint64_t nb = n / kBlock;
  if (q.codes.size() != (q8 ? n : n / 2) || q.scales.size() != nb * 2) {
    fail_input(std::string(q8 ? "q8_0" : "q4_0") + " tensor: component sizes do not match its shape");
  }
  const uint64_t per_task = 1024;
  ThreadPool::global().parallel_for((nb + per_task - 1) / per_task, threads, [&](size_t t) {
    const uint64_t b1 = std::min(nb, (t + 1) * per_task);
    for (uint64_t b = t * per_task; b < b1; ++b) {
      const uint16_t d16 = static_cast<uint16_t>(q.scales[2 * b] | (q.scales[2 * b + 1] << 8));
      const float d = from_fp16(d16);
      float* o = out + b * kBlock;
      for (uint64_t j = 0; j < kBlock; ++j) {
        float v;
        if (q8) {
          v = static_cast<float>(static_cast<int8_t>(q.codes[b * kBlock + j])) * d;
        } else {
          const uint8_t byte = q.codes[(b * kBlock + j) / 2];
          const int c = j % 2 == 0 ? (byte & 0xF) : (byte >> 4);
          v = static_cast<float>(c - 8) * d;
        }
        o[j] = std::isnan(d) ? std::numeric_limits<float>::quiet_NaN() : v;
      }
    }
  });
}

}  // namespace lowbit
