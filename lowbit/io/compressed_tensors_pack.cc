#include "lowbit/io/compressed_tensors_pack.h"

#include <bit>
#include <cstring>
#include <string>

#include "lowbit/core/checked_math.h"

namespace lowbit {

static_assert(std::endian::native == std::endian::little, "int32 words are read as little-endian bytes");

namespace {

// The b-bit field (b <= 8) at bit `pos` of a little-endian bit stream: it
// spans at most two bytes.
inline uint32_t get_field(const uint8_t* s, uint64_t pos, int b) {
  const uint64_t byte = pos >> 3;
  const int shift = static_cast<int>(pos & 7);
  uint32_t v = s[byte];
  if (shift + b > 8) v |= static_cast<uint32_t>(s[byte + 1]) << 8;
  return (v >> shift) & ((1u << b) - 1);
}

// ORs a b-bit field into a zero-initialised little-endian bit stream.
inline void or_field(uint8_t* s, uint64_t pos, int b, uint32_t v) {
  const uint64_t byte = pos >> 3;
  const int shift = static_cast<int>(pos & 7);
  const uint32_t x = v << shift;
  s[byte] |= static_cast<uint8_t>(x);
  if (shift + b > 8) s[byte + 1] |= static_cast<uint8_t>(x >> 8);
}

// `flip` repeated over every field of a byte, when fields tile bytes
// (b = 1, 2, 4, 8): a whole-byte XOR then flips every field at once.
uint8_t byte_pattern(int b, uint8_t flip) {
  unsigned p = 0;
  for (int k = 0; k < 8; k += b) p |= static_cast<unsigned>(flip) << k;
  return static_cast<uint8_t>(p);
}

void xor_bytes(uint8_t* p, uint64_t n, uint8_t pattern) {
  if (pattern == 0) return;
  for (uint64_t i = 0; i < n; ++i) p[i] ^= pattern;
}

// Column streams live in words w * cols + c; words are LE bytes in `buf`.
inline uint32_t get_word(const uint8_t* buf, uint64_t index) {
  uint32_t w;
  std::memcpy(&w, buf + index * 4, 4);
  return w;
}

inline void or_word(uint8_t* buf, uint64_t index, uint32_t v) {
  uint32_t w = get_word(buf, index) | v;
  std::memcpy(buf + index * 4, &w, 4);
}

// Moves rows of b-bit fields between two bit streams whose rows start every
// src_row_bits and dst_row_bits bits, XOR-ing each field with flip; the
// destination must be zeroed. Rows that start on byte boundaries in both
// move as bytes when the flip is the same in every byte (b divides 8).
void move_rows(const uint8_t* src, uint64_t src_row_bits, uint8_t* dst, uint64_t dst_row_bits, uint64_t rows,
               uint64_t cols, int bits, uint8_t flip) {
  const bool bytewise = src_row_bits % 8 == 0 && dst_row_bits % 8 == 0 && (cols * bits) % 8 == 0 &&
                        (flip == 0 || 8 % bits == 0);
  if (bytewise) {
    const uint64_t n = cols * bits / 8;
    const uint8_t pattern = byte_pattern(bits, flip);
    for (uint64_t r = 0; r < rows; ++r) {
      uint8_t* d = dst + r * dst_row_bits / 8;
      std::memcpy(d, src + r * src_row_bits / 8, n);
      xor_bytes(d, n, pattern);
    }
    return;
  }
  for (uint64_t r = 0; r < rows; ++r) {
    for (uint64_t j = 0; j < cols; ++j) {
      or_field(dst, r * dst_row_bits + j * bits, bits, get_field(src, r * src_row_bits + j * bits, bits) ^ flip);
    }
  }
}

}  // namespace

uint64_t ct_packed_words(uint64_t n, int bits, const char* what) {
  const uint64_t total = mul_or_fail(n, static_cast<uint64_t>(bits), what);
  return total / 32 + (total % 32 != 0);
}

void ct_pack_rows(const uint8_t* stream, uint64_t rows, uint64_t cols, int bits, uint8_t flip, uint8_t* out) {
  const uint64_t row_bytes = ct_packed_words(cols, bits, "packed row") * 4;
  std::memset(out, 0, rows * row_bytes);
  move_rows(stream, cols * bits, out, row_bytes * 8, rows, cols, bits, flip);
}

void ct_unpack_rows(const uint8_t* in, uint64_t rows, uint64_t cols, int bits, uint8_t flip, uint8_t* stream) {
  const uint64_t row_bytes = ct_packed_words(cols, bits, "packed row") * 4;
  const uint64_t total_bits = rows * cols * bits;
  std::memset(stream, 0, total_bits / 8 + (total_bits % 8 != 0));
  move_rows(in, row_bytes * 8, stream, cols * bits, rows, cols, bits, flip);
}

void ct_pack_columns(const uint8_t* stream, uint64_t rows, uint64_t cols, int bits, uint8_t flip, uint8_t* out) {
  const uint64_t words = ct_packed_words(rows, bits, "packed column");
  std::memset(out, 0, words * cols * 4);
  for (uint64_t r = 0; r < rows; ++r) {
    const uint64_t pos = r * bits, w = pos / 32;
    const int shift = static_cast<int>(pos % 32);
    for (uint64_t c = 0; c < cols; ++c) {
      const uint32_t v = get_field(stream, (r * cols + c) * bits, bits) ^ flip;
      or_word(out, w * cols + c, v << shift);
      if (shift + bits > 32) or_word(out, (w + 1) * cols + c, v >> (32 - shift));
    }
  }
}

void ct_unpack_columns(const uint8_t* in, uint64_t rows, uint64_t cols, int bits, uint8_t flip, uint8_t* stream) {
  const uint64_t total_bits = rows * cols * bits;
  std::memset(stream, 0, total_bits / 8 + (total_bits % 8 != 0));
  const uint32_t mask = (1u << bits) - 1;
  for (uint64_t r = 0; r < rows; ++r) {
    const uint64_t pos = r * bits, w = pos / 32;
    const int shift = static_cast<int>(pos % 32);
    for (uint64_t c = 0; c < cols; ++c) {
      uint32_t v = get_word(in, w * cols + c) >> shift;
      if (shift + bits > 32) v |= get_word(in, (w + 1) * cols + c) << (32 - shift);
      or_field(stream, (r * cols + c) * bits, bits, ((v & mask) ^ flip));
    }
  }
}

}  // namespace lowbit
