// Overflow-checked 64-bit size arithmetic for numbers read from untrusted
// headers (.npy shapes, safetensors offsets, GGUF tensor sizes).
//
// A header that claims a shape of (2**40, 2**40) must produce a clear error,
// not a product that wraps around to a small number and then passes a
// "does the data fit" check. The bool-returning forms are for callers that
// want to choose their own message; the *_or_fail forms throw
// ErrorKind::kInput naming `what`, the quantity being computed.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lowbit/core/error.h"

namespace lowbit {

// Stores a * b in *out and returns true, or returns false (leaving *out
// unspecified) when the product does not fit in 64 bits.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) noexcept {
  return !__builtin_mul_overflow(a, b, out);
}

// Stores a + b in *out and returns true, or returns false when the sum does
// not fit in 64 bits.
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) noexcept {
  return !__builtin_add_overflow(a, b, out);
}

// a * b, or an ErrorKind::kInput error such as
// "size overflow in tensor 'w' byte count: 1099511627776 * 1099511627776 does not fit in 64 bits".
inline uint64_t mul_or_fail(uint64_t a, uint64_t b, std::string_view what) {
  uint64_t out;
  if (!checked_mul(a, b, &out)) {
    fail_input("size overflow in " + std::string(what) + ": " + std::to_string(a) + " * " +
               std::to_string(b) + " does not fit in 64 bits");
  }
  return out;
}

// a + b, or an ErrorKind::kInput error naming `what`.
inline uint64_t add_or_fail(uint64_t a, uint64_t b, std::string_view what) {
  uint64_t out;
  if (!checked_add(a, b, &out)) {
    fail_input("size overflow in " + std::string(what) + ": " + std::to_string(a) + " + " +
               std::to_string(b) + " does not fit in 64 bits");
  }
  return out;
}

}  // namespace lowbit
