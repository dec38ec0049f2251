// Dense packing of sub-byte codes, little-endian.
//
// Codes narrower than 8 bits form one little-endian bit stream: code i takes
// bits [i*w, i*w + w), and byte j holds stream bits [8j, 8j + 8), least
// significant first. That gives 2 codes per byte for 4 bits (low nibble
// first), 4 per byte for 2 bits, 8 per byte for 1 bit and 4 codes in 3 bytes
// for 6 bits. Ternary packs 5 trits per byte in base 3 (the first trit is the
// least significant digit; digit = value + 1), 243 of 256 byte values used.
// A partial last unit is padded with code 0. Codes of 8 bits or more are not
// packed: 1, 2 or 4 bytes each, little-endian.
#pragma once

#include <cstdint>

#include "lowbit/format/format.h"

namespace lowbit {

// True when the format has a denser packed layout than one code per byte.
bool has_packed_layout(const Format& f);
// Codes per packing unit: chunk boundaries that are multiples of this keep
// packed output of independent chunks byte-aligned.
int pack_group(const Format& f);
// Bytes of n codes in the packed layout (no overflow for n < 2^60).
uint64_t packed_bytes(const Format& f, uint64_t n);

// Pack n one-byte codes (formats of < 8 bits, or ternary).
void pack_codes(const Format& f, const uint8_t* codes, uint64_t n, uint8_t* out);
// Unpack n codes; throws Error(kInput) on a byte that is not a valid ternary
// group. `in` must hold packed_bytes(f, n) bytes.
void unpack_codes(const Format& f, const uint8_t* in, uint64_t n, uint8_t* codes);

}  // namespace lowbit
