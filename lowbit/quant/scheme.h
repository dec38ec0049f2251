// Scheme: how a tensor is quantized. Element format x granularity x scale
// rule x scale format x optional zero point x optional outliers.
//
// Spec strings (docs/schemes.md has the full grammar and every preset):
//   <element-format>/<granularity>[/scale=<rule>][/sf=<scale-format>][/asym]
//                                 [/outliers=<fraction>]
//   <preset>[/<override>...]      e.g. mxfp4, nvfp4/b16x16, mxfp8_e4m3/scale=ceil
// Granularity: tensor | channel[:<axis>] | g<N> | b<R>x<C>.
// Scale rules: absmax | floor | ceil | percentile:<p> | mse | wmse.
// Scale formats: any format spec; "<tensor-format>*<block-format>" (e.g.
// fp32*ue4m3) is the two-level scale of NVFP4.
// Zero points: /asym (integer zero point from min/max), /asym=float (a float
// zero point in the scale format, as HQQ stores it).
// Outliers: /outliers=<fraction> (largest |x| of the tensor) or
// /outliers=<n>sigma (beyond n standard deviations of their row), with
// positions gap-coded in 6-bit gaps; /outliers=...:gap<b> or :plain selects
// the position code.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lowbit/format/format.h"
#include "lowbit/format/rounding.h"

namespace lowbit {

struct Granularity {
  enum class Kind : uint8_t { kTensor, kChannel, kGroup, kBlock2D };
  Kind kind = Kind::kTensor;
  int axis = 0;           // kChannel: the axis that indexes the scales
  uint64_t group = 0;     // kGroup: elements per group along the last axis
  uint64_t rows = 0, cols = 0;  // kBlock2D
  std::string to_string() const;
};

enum class ScaleRule : uint8_t { kAbsmax, kFloor, kCeil, kPercentile, kMse, kWmse };
const char* scale_rule_name(ScaleRule r);

enum class ZeroPoint : uint8_t { kNone, kInteger, kFloat };

struct OutlierPolicy {
  enum class Kind : uint8_t { kNone, kFraction, kSigma };
  Kind kind = Kind::kNone;
  double value = 0;   // the fraction (0, 1), or n for n sigma
  int gap_bits = 6;   // 0: plain positions (32-bit, 64-bit past 2^32 elements)
  std::string to_string() const;
};

struct Scheme {
  std::string name;  // preset name, or empty
  Format element;
  RoundOptions round;  // element rounding (rne, saturate unless the spec says)
  Granularity gran;
  ScaleRule rule = ScaleRule::kAbsmax;
  double percentile = 99.9;  // kPercentile: the percentile of |x| that maps to max
  Format scale_format;       // block scale format
  std::optional<Format> tensor_scale_format;  // set: two-level scale (NVFP4)
  ZeroPoint zero = ZeroPoint::kNone;
  OutlierPolicy outliers;

  // The canonical spec string: parse_scheme(spec()) gives this scheme back.
  std::string spec() const;
  bool two_level() const { return tensor_scale_format.has_value(); }
  bool power_of_two_rule() const { return rule == ScaleRule::kFloor || rule == ScaleRule::kCeil; }
  // The largest element value a scale maps amax onto (max of the element
  // format; for asym the largest code).
  double element_max() const;
  // emax_elem of the MX floor rule: exponent of the largest power of two not
  // above the largest element.
  int element_emax() const;
  // Bits of the stored zero point (0 without one).
  int zero_bits() const;
  // The format codes are stored in: the element format, or for asym the
  // unsigned integer of the element's width.
  Format code_format() const;
};

// Parses a scheme spec; throws Error(kUsage) naming the problem and the
// valid forms. llama.cpp's fixed layouts (q8_0, q4_0) are codecs beside the
// schemes: parse_codec (ggml/codec_registry.h) takes both.
Scheme parse_scheme(std::string_view spec);

// The usage error of a bad spec: "invalid scheme '<spec>': <why>" and the
// grammar. Shared with the codec registry, whose specs read the same way.
[[noreturn]] void fail_scheme(std::string_view spec, const std::string& why);

// The named presets with their expansions, in documentation order.
struct SchemePreset {
  std::string name;
  std::string expansion;  // a spec string in the generic grammar
  std::string description;
};
const std::vector<SchemePreset>& scheme_presets();

std::string scheme_spec_help();

}  // namespace lowbit
