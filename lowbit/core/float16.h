// IEEE binary16 bits to float32, exactly, in plain C++: every finite value,
// the infinities, and NaNs with their payload and signalling bit as they
// are (what numpy, and so gguf-py, does). The scalar text that SIMD
// conversions (F16C's vcvtph2ps) are checked against; ggml's block scales
// and the GEMV tiles' scales (lowbit/kernels/gemv.h) go through it.
#pragma once

#include <cstdint>
#include <cstring>

namespace lowbit {

inline uint32_t f32_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
inline float f32_from_bits(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1F, mant = h & 0x3FF;
  uint32_t u;
  if (exp == 0x1F) {
    u = 0x7F800000 | (mant << 13);
  } else if (exp != 0) {
    u = ((exp + 112) << 23) | (mant << 13);
  } else if (mant == 0) {
    u = 0;
  } else {
    // Subnormal: mant * 2^-24, with its top set bit p as the implicit one.
    const int p = 31 - __builtin_clz(mant);
    u = (static_cast<uint32_t>(p + 103) << 23) | ((mant << (23 - p)) & 0x7FFFFF);
  }
  return f32_from_bits(sign | u);
}

}  // namespace lowbit
