// The registry of named formats and the parser of format spec strings.
//
// A spec is either a preset name or alias ("float8_e4m3fn", "e4m3fn",
// "int4", "nf4", "posit8_1", ...) or a parametric form:
//   fp:eXmY[:bias=B][:specials=ieee|fn|fnuz|finite]
//   int:B[:unsigned][:narrow]
//   posit:N:ES
//   codebook:v1,v2,...        (up to 256 values)
//   codebook:@path            (values separated by commas or whitespace)
// Anything else is a usage error whose message lists these forms.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "lowbit/format/format.h"

namespace lowbit {

// Every preset, in the order `lowbit formats` lists them.
const std::vector<Format>& preset_formats();

// Parses a spec; throws Error(kUsage) naming the problem and the valid forms.
Format parse_format(std::string_view spec);

// The text listing the valid spec forms, used in error messages and --help.
std::string format_spec_help();

// Builders for the parametric families (validate and throw kUsage).
Format make_float_format(int exp_bits, int man_bits, int bias, Specials specials);
Format make_int_format(int bits, bool is_signed, bool narrow);
Format make_posit_format(int bits, int es);
Format make_codebook_format(std::string name, std::vector<float> values);

}  // namespace lowbit
