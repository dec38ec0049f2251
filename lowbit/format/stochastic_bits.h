// The random bits of stochastic rounding: a counter-based hash of
// (seed, element index). Because it is a pure function of the index, results
// never depend on how an array is split across threads or SIMD lanes.
//
// The hash only uses 32-bit xor, shift and multiply so that every SIMD path
// can compute the same bits lane by lane. The index's high half and the seed
// are folded into a per-2^32-block key once; the per-element work is one
// xor and the lowbias32 finalizer (two multiplies).
#pragma once

#include <cstdint>

namespace lowbit {

// lowbias32 (Chris Wellons' hash-prospector constants): a bijection on
// 32-bit values with very low avalanche bias.
constexpr uint32_t mix32(uint32_t x) {
  x ^= x >> 16;
  x *= 0x7feb352dU;
  x ^= x >> 15;
  x *= 0x846ca68bU;
  x ^= x >> 16;
  return x;
}

// Key for all indices that share their high 32 bits.
constexpr uint32_t stochastic_key(uint64_t seed, uint32_t index_high) {
  uint32_t k = mix32(static_cast<uint32_t>(seed >> 32) ^ 0x9e3779b9U);
  k = mix32(k ^ static_cast<uint32_t>(seed));
  return mix32(k ^ index_high ^ 0x85ebca6bU);
}

// 32 uniformly distributed bits for element `index`; stochastic rounding
// with r bits uses the top r of them.
constexpr uint32_t stochastic_bits(uint32_t key, uint32_t index_low) {
  return mix32(index_low ^ key);
}

// Calls fn(b, e) on the sub-ranges of positions [begin, end) whose global
// index (index_offset + position) does not cross a multiple of 2^32: the
// SIMD kernels keep the key of the index's high half fixed per call.
template <class Fn>
void split_at_index_blocks(uint64_t begin, uint64_t end, uint64_t index_offset, Fn&& fn) {
  while (begin < end) {
    const uint64_t g = index_offset + begin;
    const uint64_t to_boundary = ((g >> 32) + 1) * (uint64_t{1} << 32) - g;
    const uint64_t len = end - begin < to_boundary ? end - begin : to_boundary;
    fn(begin, begin + len);
    begin += len;
  }
}

constexpr uint32_t stochastic_bits(uint64_t seed, uint64_t index) {
  return stochastic_bits(stochastic_key(seed, static_cast<uint32_t>(index >> 32)),
                         static_cast<uint32_t>(index));
}

}  // namespace lowbit
