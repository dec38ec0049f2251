// SplitMix64's finalizer (Steele, Lea and Flood 2014): a bijection of 64-bit
// words whose output bits each depend on every input bit. The trainer
// derives every seed (stochastic rounding, Hadamard signs, batch positions,
// the initialization) as a pure function of the run's seed and counters
// through it, so runs repeat on every machine.
#pragma once

#include <cstdint>

namespace lowbit {

inline uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

}  // namespace lowbit
