#include "lowbit/format/packing.h"

#include <string>

#include "lowbit/core/error.h"

namespace lowbit {

namespace {

// Ternary codes are two's complement int2 (-1 = 3, 0 = 0, 1 = 1); the packed
// digit is value + 1.
constexpr uint8_t kTritDigit[4] = {1, 2, 1, 0};  // code 2 is unused (-2)
constexpr uint8_t kDigitCode[3] = {3, 0, 1};

void pack_ternary(const uint8_t* codes, uint64_t n, uint8_t* out) {
  for (uint64_t i = 0; i < n; i += 5) {
    unsigned byte = 0, place = 1;
    for (uint64_t j = i; j < i + 5; ++j) {
      const uint8_t c = j < n ? codes[j] : 0;
      byte += kTritDigit[c & 3] * place;
      place *= 3;
    }
    out[i / 5] = static_cast<uint8_t>(byte);
  }
}

void unpack_ternary(const uint8_t* in, uint64_t n, uint8_t* codes) {
  for (uint64_t i = 0; i < n; i += 5) {
    unsigned byte = in[i / 5];
    if (byte > 242) {
      fail_input("invalid packed ternary byte " + std::to_string(byte) + " at offset " +
                 std::to_string(i / 5) + " (5 base-3 trits never exceed 242)");
    }
    for (uint64_t j = i; j < i + 5 && j < n; ++j) {
      codes[j] = kDigitCode[byte % 3];
      byte /= 3;
    }
  }
}

}  // namespace

bool has_packed_layout(const Format& f) { return f.ternary || f.bits < 8; }

int pack_group(const Format& f) {
  if (f.ternary) return 5;
  if (f.bits >= 8) return 1;
  // Smallest count of codes that fills whole bytes: 8 / gcd(w, 8).
  int g = 8;
  while (g > 1 && (g / 2) * f.bits % 8 == 0) g /= 2;
  return g;
}

uint64_t packed_bytes(const Format& f, uint64_t n) {
  if (f.ternary) return (n + 4) / 5;
  if (f.bits >= 8) return n * static_cast<uint64_t>(f.code_bytes());
  return (n * static_cast<uint64_t>(f.bits) + 7) / 8;
}

void pack_codes(const Format& f, const uint8_t* codes, uint64_t n, uint8_t* out) {
  if (f.ternary) return pack_ternary(codes, n, out);
  const int w = f.bits;
  if (w == 4) {  // the common case, kept simple enough to vectorise
    const uint64_t pairs = n / 2;
    for (uint64_t i = 0; i < pairs; ++i) {
      out[i] = static_cast<uint8_t>((codes[2 * i] & 0xF) | (codes[2 * i + 1] << 4));
    }
    if (n & 1) out[pairs] = codes[n - 1] & 0xF;
    return;
  }
  const uint32_t mask = (1u << w) - 1;
  uint64_t acc = 0;
  int fill = 0;
  uint64_t o = 0;
  for (uint64_t i = 0; i < n; ++i) {
    acc |= static_cast<uint64_t>(codes[i] & mask) << fill;
    fill += w;
    while (fill >= 8) {
      out[o++] = static_cast<uint8_t>(acc);
      acc >>= 8;
      fill -= 8;
    }
  }
  if (fill > 0) out[o] = static_cast<uint8_t>(acc);
}

void unpack_codes(const Format& f, const uint8_t* in, uint64_t n, uint8_t* codes) {
  if (f.ternary) return unpack_ternary(in, n, codes);
  const int w = f.bits;
  if (w == 4) {
    for (uint64_t i = 0; i < n / 2; ++i) {
      codes[2 * i] = in[i] & 0xF;
      codes[2 * i + 1] = in[i] >> 4;
    }
    if (n & 1) codes[n - 1] = in[n / 2] & 0xF;
    return;
  }
  const uint32_t mask = (1u << w) - 1;
  uint64_t acc = 0;
  int fill = 0;
  uint64_t byte = 0;
  for (uint64_t i = 0; i < n; ++i) {
    while (fill < w) {
      acc |= static_cast<uint64_t>(in[byte++]) << fill;
      fill += 8;
    }
    codes[i] = static_cast<uint8_t>(acc & mask);
    acc >>= w;
    fill -= w;
  }
}

}  // namespace lowbit
