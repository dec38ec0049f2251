// KernelPlan: everything the SIMD kernels need to reproduce the scalar model
// of one format and one set of rounding options, precomputed once per call.
//
// The kernels work on the float32 bit pattern of |x|. Write Eb for its biased
// exponent and sig for its significand (with the implicit bit). Every format
// with a binade structure (minifloats, integers, posits, HiFloat8) is then
// described per Eb by one shift s: the quantum at |x| is 2^(Eb-150+s), the
// lower neighbour keeps sig >> s, and rounding decides from the s dropped bits.
// Two ways to get s:
//  - closed form (minifloats with subnormals, integers):
//      s = 23 - M + max(0, Emin - max(Eb, 1)), the code of the lower
//      neighbour is ((max(Eb, Emin) - Emin) << M) + (sig >> s);
//    integers are the special case M = 31, Emin = 158 (all "subnormal",
//    quantum 1);
//  - a 256-entry table (posits, HiFloat8), built and checked from the scalar
//    model's value table; binades the shift cannot describe (posit regions
//    where the regime pushed out exponent bits) are marked for the scalar
//    fallback, lane by lane.
// Lanes with s >= 24 lie below the smallest positive value and round to 0 or
// to it ("tiny" lanes). Codebooks use a sorted-table search instead.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <vector>

#include "lowbit/format/codec.h"
#include "lowbit/format/rounding.h"

namespace lowbit {

enum class SimdFamily : uint8_t {
  kScalarOnly,  // E8M0 and stochastic rounding of codebooks: the scalar model
  kClosedForm,
  kBinadeTable,
  kCodebook,
};

struct KernelPlan {
  KernelPlan(const Format& f, const RoundOptions& opt);

  std::shared_ptr<const Codec> codec;
  RoundOptions opt;
  SimdFamily family = SimdFamily::kScalarOnly;

  // ---- binade families (closed form and table) ----
  int32_t man_bits = 0;       // M (closed form)
  int32_t emin_biased = 0;    // Emin (closed form)
  bool twos_complement = false;  // negative codes are -code (ints, posits)
  // Integers (and ternary): the scaled kernels round them with the float
  // rounding instructions and a clamp, for the modes those express.
  bool integer = false;
  uint32_t sign_bit = 0;      // sign bit of sign-magnitude codes
  uint32_t code_mask = 0;     // all bits of a code
  bool negative_zero = false; // the format keeps -0
  uint32_t tiny_bits = 0;     // float32 bits of the smallest positive value
  // Per sign (0: +, 1: -): the largest magnitude (float32 bits), what an
  // overflowing lane becomes when the mode rounds toward zero (clamp) and
  // otherwise (away: the overflow policy's result), as codes and as float32.
  uint32_t max_mag_bits[2] = {0, 0};
  uint32_t clamp_code[2] = {0, 0}, clamp_bits[2] = {0, 0};
  uint32_t away_code[2] = {0, 0}, away_bits[2] = {0, 0};
  uint32_t nan_code[2] = {0, 0}, nan_bits[2] = {0, 0};
  uint32_t inf_code[2] = {0, 0}, inf_bits[2] = {0, 0};
  // Fast path for minifloats with a mantissa (M >= 1): lanes at or above
  // the smallest normal round with constant shifts; subnormal lanes under
  // rne round by the exact float32 addition |x| + 2^(emin-M+23), whose
  // hardware round-to-nearest-even is exactly the format's rounding there.
  bool fast_minifloat = false;
  uint32_t min_normal_bits = 0;
  uint32_t magic_bits = 0;   // 2^(emin - M + 23): its ulp is the subnormal quantum
  // Posits clamp |x| into [minpos, maxpos] before rounding.
  bool clamp_input = false;
  uint32_t clamp_lo_bits = 0, clamp_hi_bits = 0;
  // Table family: shift per Eb and the code of the binade's lower neighbour
  // is code_tab[Eb] + (sig >> s). s = kSparse marks a binade holding at most
  // its own bottom value (posit regions where the regime pushed exponent bits
  // out): there every x has the same neighbours, recorded in sp_*. s =
  // kFallback leaves the binade to the scalar model.
  static constexpr int32_t kFallback = -1, kSparse = -2;
  std::array<int32_t, 256> s_tab{};
  std::array<uint32_t, 256> code_tab{};
  std::array<uint32_t, 256> sp_lo{}, sp_hi{}, sp_mid{}, sp_lo_code{}, sp_hi_code{};
  bool codes_monotonic = true;  // code of 2^(e+1) == last code of binade e, plus 1

  // ---- codebooks: values sorted ascending ----
  std::vector<float> cb_values;
  std::vector<uint32_t> cb_codes;
  std::vector<float> cb_mid_floor;   // largest float32 <= midpoint of (i, i+1)
  std::vector<uint32_t> cb_pair_flags;  // per pair i: see kPair* below
  uint32_t cb_size_pow2 = 1;            // search steps cover this many entries

  static constexpr uint32_t kPairMidExact = 1, kPairRneTieHi = 2, kPairRnaTieHi = 4,
                            kPairRtzHi = 8, kPairOddHi = 16;

  // Fakequant writes its float32 output with non-temporal stores (set for
  // arrays far larger than the caches, where the output is not read back
  // soon and a normal store would first read every line it writes).
  bool stream_stores = false;

  // ---- decode ----
  // Every code's value as float32 bits, for formats of up to 16 bits.
  std::shared_ptr<const std::vector<uint32_t>> decode_lut;
  // For formats of up to 16 bits where some codes within the width are not
  // codes of the format (narrow integers, ternary, UE4M3's top bit, short
  // codebooks): 1 for each valid code. Null when every code is valid.
  std::shared_ptr<const std::vector<uint8_t>> valid_codes;
};

// Float32 bit pattern of a value the format can represent (NaN: the quiet NaN
// with the value's sign, as the scalar decoder returns it).
uint32_t float_bits_of(double v);

}  // namespace lowbit
