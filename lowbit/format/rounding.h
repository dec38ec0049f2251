// Rounding modes and overflow policies, shared by every format.
//
// The semantics are defined once, in lattice.cc, over a bracket [lo, hi] of
// neighbouring representable values; each mode below names how a value
// strictly between two neighbours picks one of them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace lowbit {

enum class Rounding : uint8_t {
  kNearestEven,  // "rne": nearest; ties to the code whose lowest bit is 0
  kNearestAway,  // "rna": nearest; ties away from zero
  kTowardZero,   // "rtz"
  kUp,           // "up": toward +inf
  kDown,         // "down": toward -inf
  kOdd,          // "odd": inexact results take the neighbour with an odd code
  kStochastic,   // "stochastic": up with probability (x - lo) / (hi - lo)
};
inline constexpr int kNumRoundings = 7;

enum class Overflow : uint8_t {
  kSaturate,  // finite values beyond the range become +-max
  kIeee,      // ... become inf where the format has it, else NaN, else +-max
};

// Everything that selects one rounding of a value, apart from the format.
struct RoundOptions {
  Rounding mode = Rounding::kNearestEven;
  Overflow overflow = Overflow::kSaturate;
  // Stochastic rounding: the number of random bits r (1..32) and the seed.
  // The result is a pure function of (seed, element index, value). 32 bits
  // make it exactly unbiased for every float32 input of at least half the
  // format's smallest positive value (see docs/formats.md).
  int sr_bits = 32;
  uint64_t seed = 0;
};

const char* rounding_name(Rounding r);
const char* overflow_name(Overflow o);
std::optional<Rounding> parse_rounding(std::string_view name);
std::optional<Overflow> parse_overflow(std::string_view name);
// "rne, rna, rtz, up, down, odd, stochastic" for error messages.
std::string rounding_names_list();

}  // namespace lowbit
