// Codec: the exact scalar model of one format, ready to encode and decode.
//
// This is the specification every fast path must reproduce bit for bit:
//   encode(x)    = the code that x rounds to under the given options,
//   decode(c)    = the exact value of code c (NaN for NaN or unused codes),
//   fakequant(x) = decode(encode(x)).
// Inputs are doubles, so float32, float16 and bfloat16 values (which convert
// to double exactly) and float64 values are all rounded once.
//
// Policies that hold for every format (details in docs/formats.md):
//  - NaN input: the format's NaN (keeping the sign where NaN has one); in a
//    format without NaN, the code of its smallest-magnitude value (+0).
//    Posits give NaR.
//  - +-inf input: +-inf where the format has it, else its NaN, else +-max.
//    This holds under both overflow policies.
//  - Finite values beyond the range: `saturate` gives +-max; `ieee` rounds
//    against a virtual neighbour just past max (inf, or NaN for fn/fnuz), so
//    rtz/odd and the inward directed mode never overflow. Formats without inf
//    and NaN always saturate. Posits never round to NaR, or to 0 from nonzero.
//  - Unsigned formats: negative values round toward 0; one that would need a
//    negative result is an underflow: 0 (or NaN under `ieee` if the format
//    has NaN and the mode does not round toward zero). E8M0 has no zero:
//    everything in [0, 2^-127) gives 2^-127.
#pragma once

#include <cstdint>
#include <memory>

#include "lowbit/format/format.h"
#include "lowbit/format/lattice.h"
#include "lowbit/format/rounding.h"
#include "lowbit/format/value_table.h"

namespace lowbit {

class Codec {
 public:
  explicit Codec(Format f);

  const Format& format() const { return f_; }

  uint32_t encode(double x, const RoundOptions& opt, uint64_t index = 0) const;
  double decode(uint32_t code) const;
  double fakequant(double x, const RoundOptions& opt, uint64_t index = 0) const {
    return decode(encode(x, opt, index));
  }

  // Whether `code` is a code of this format: within its width, and either a
  // number or one of its NaN encodings. The code a narrow integer leaves out,
  // ternary's fourth code, UE4M3 codes with the top bit set and codebook
  // indices past the table are not.
  bool is_valid_code(uint32_t code) const;

  // The bracket the rounding rule sees for a finite in-range x (exposed for
  // tests and for kernels that need the neighbours).
  Bracket bracket(double x) const;

  double max_finite() const { return max_value_; }
  double lowest_finite() const { return lowest_value_; }
  uint32_t max_code() const { return max_code_; }
  uint32_t lowest_code() const { return lowest_code_; }
  // Results of the special inputs (they do not depend on the rounding mode).
  uint32_t nan_result(bool negative) const { return negative ? nan_neg_ : nan_pos_; }
  uint32_t inf_result(bool negative) const { return negative ? inf_neg_ : inf_pos_; }
  // What an overflowing finite value becomes under `ieee` (where it differs
  // from +-max), or max/lowest.
  uint32_t ieee_overflow_code(bool negative) const { return negative ? ovf_neg_ : ovf_pos_; }
  bool has_virtual_overflow() const { return has_virtual_; }
  // The value just past max that stands for overflow under `ieee`.
  double virtual_max() const { return virtual_max_; }
  // Non-null for formats that round by table lookup (posit, HiF8, codebook).
  const ValueTable* table() const { return table_.get(); }

 private:
  uint32_t encode_unsigned_negative(double x, const RoundOptions& opt, uint64_t index) const;
  uint32_t encode_overflow(double x, const RoundOptions& opt, uint64_t index) const;

  Format f_;
  std::shared_ptr<const ValueTable> table_;
  double max_value_ = 0, lowest_value_ = 0, min_positive_ = 0;
  uint32_t max_code_ = 0, lowest_code_ = 0, min_positive_code_ = 0;
  uint32_t nan_pos_ = 0, nan_neg_ = 0, inf_pos_ = 0, inf_neg_ = 0;
  uint32_t ovf_pos_ = 0, ovf_neg_ = 0;
  bool has_virtual_ = false;
  double virtual_max_ = 0;
  uint32_t virtual_code_ = 0;  // only its parity matters
};

}  // namespace lowbit
