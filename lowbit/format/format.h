// Format: the value type that describes one element format.
//
// A Format says everything needed to map a real number to a code and back:
// its family (minifloat, integer, posit, HiFloat8, codebook), the code width,
// the field widths and bias of float-like formats, and the special-value
// policy. The arithmetic lives in the per-family files (float_format.cc,
// int_format.cc, ...) and the rounding rule shared by all of them in
// lattice.cc; this header is only the description, cheap to copy.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace lowbit {

// How the format is built; selects the per-family model.
enum class Family : uint8_t {
  kMinifloat,  // sign? | exponent | mantissa, IEEE-style (incl. E8M0, UE4M3)
  kInteger,    // two's complement or unsigned integers, ternary
  kPosit,      // posit(n, es), two's complement tapered
  kHiFloat8,   // Ascend HiF8, sign-magnitude tapered
  kCodebook,   // an explicit table of values (NF4, IQ4_NL, binary, user)
};

// Which codes are special in a minifloat. Names follow ml_dtypes.
enum class Specials : uint8_t {
  kIeee,    // all-ones exponent: inf (mantissa 0) and NaN (otherwise)
  kFn,      // no inf; the all-ones code is NaN (one per sign)
  kFnuz,    // no inf, no -0; the code 1000..0 is the single NaN
  kFinite,  // no inf, no NaN: every code is a number
};

const char* specials_name(Specials s);

struct Format {
  std::string name;                  // canonical name, e.g. "float8_e4m3fn"
  std::vector<std::string> aliases;  // e.g. {"e4m3fn"}
  Family family = Family::kMinifloat;
  int bits = 8;            // width of one code
  bool is_signed = true;   // false: only non-negative values exist

  // Minifloat fields.
  int exp_bits = 0;
  int man_bits = 0;
  int bias = 0;
  Specials specials = Specials::kFinite;
  // False for E8M0: code 0 is the normal value 2^-bias, and there is no zero.
  bool subnormals = true;

  // Integer fields. `narrow` drops the most negative code so the range is
  // symmetric; `ternary` marks {-1, 0, 1}, which packs 5 trits per byte.
  bool narrow = false;
  bool ternary = false;

  // Posit exponent size.
  int posit_es = 0;

  // Codebook values indexed by code (not necessarily sorted). Shared so that
  // copying a Format stays cheap.
  std::shared_ptr<const std::vector<float>> table;

  // ---- derived properties (computed from the scalar model) ----
  bool has_inf() const;
  bool has_nan() const;
  bool has_negative_zero() const;
  bool has_zero() const;
  double max_finite() const;     // largest finite value
  double lowest_finite() const;  // most negative finite value (or smallest)
  double min_normal() const;     // smallest positive normal (NaN if n/a)
  double min_subnormal() const;  // smallest positive value
  uint32_t num_codes() const { return bits >= 32 ? 0u : (1u << bits); }
  // Human-readable family name used by `lowbit formats`: "float",
  // "exponent" (E8M0-like), "int", "tapered" or "codebook".
  std::string kind_name() const;
  // "e4m3"-style field summary or a short description for the table.
  std::string fields_summary() const;
  // A string that identifies the format's definition (including a codebook's
  // values), for caches of derived tables.
  std::string key() const;
  // Bytes one unpacked code takes in files: 1 up to 8 bits, 2 up to 16, 4 else.
  int code_bytes() const { return bits <= 8 ? 1 : bits <= 16 ? 2 : 4; }
};

}  // namespace lowbit
