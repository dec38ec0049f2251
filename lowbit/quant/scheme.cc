#include "lowbit/quant/scheme.h"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <map>

#include "lowbit/core/error.h"
#include "lowbit/core/text.h"
#include "lowbit/format/registry.h"

namespace lowbit {

void fail_scheme(std::string_view spec, const std::string& why) {
  std::string msg = "invalid scheme '";
  msg.append(spec).append("': ").append(why).append("\n").append(scheme_spec_help());
  fail_usage(msg);
}

namespace {

[[noreturn]] void bad_scheme(std::string_view spec, const std::string& why) { fail_scheme(spec, why); }


std::optional<uint64_t> parse_u64(std::string_view s) {
  uint64_t v = 0;
  if (s.empty()) return std::nullopt;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> parse_double(std::string_view s) {
  if (s.empty()) return std::nullopt;
  double v = 0;
  const auto r = std::from_chars(s.data(), s.data() + s.size(), v);
  if (r.ec != std::errc() || r.ptr != s.data() + s.size() || !std::isfinite(v)) return std::nullopt;
  return v;
}

std::optional<Granularity> parse_granularity(std::string_view g) {
  Granularity out;
  if (g == "tensor") return out;
  if (g == "channel" || g.starts_with("channel:")) {
    out.kind = Granularity::Kind::kChannel;
    if (g.size() > 7) {
      const auto a = parse_u64(g.substr(8));
      if (!a || *a > 63) return std::nullopt;
      out.axis = static_cast<int>(*a);
    }
    return out;
  }
  if (g.size() > 1 && g[0] == 'g') {
    const auto n = parse_u64(g.substr(1));
    if (!n || *n == 0) return std::nullopt;
    out.kind = Granularity::Kind::kGroup;
    out.group = *n;
    return out;
  }
  if (g.size() > 1 && g[0] == 'b') {
    const size_t x = g.find('x');
    if (x == std::string_view::npos) return std::nullopt;
    const auto r = parse_u64(g.substr(1, x - 1));
    const auto c = parse_u64(g.substr(x + 1));
    if (!r || !c || *r == 0 || *c == 0) return std::nullopt;
    out.kind = Granularity::Kind::kBlock2D;
    out.rows = *r;
    out.cols = *c;
    return out;
  }
  return std::nullopt;
}

bool is_integer_element(const Format& f) { return f.family == Family::kInteger && !f.ternary; }

Format default_scale_format(const Scheme& s) {
  if (s.power_of_two_rule()) return parse_format("float8_e8m0fnu");
  if (s.gran.kind == Granularity::Kind::kTensor) return parse_format("float32");
  return parse_format("float16");
}

// Options after the granularity: key=value or flags; `explicit_sf` tells
// whether the scale format was given, so that the default can follow the
// rule.
void apply_option(std::string_view spec, Scheme& s, std::string_view opt, bool& explicit_sf) {
  const size_t eq = opt.find('=');
  const std::string_view key = opt.substr(0, eq);
  const std::string_view val = eq == std::string_view::npos ? std::string_view{} : opt.substr(eq + 1);
  const bool has_val = eq != std::string_view::npos;
  if (key == "scale") {
    if (val == "absmax") s.rule = ScaleRule::kAbsmax;
    else if (val == "floor") s.rule = ScaleRule::kFloor;
    else if (val == "ceil") s.rule = ScaleRule::kCeil;
    else if (val == "mse") s.rule = ScaleRule::kMse;
    else if (val == "wmse") s.rule = ScaleRule::kWmse;
    else if (val.starts_with("percentile:")) {
      const auto p = parse_double(val.substr(11));
      if (!p || *p <= 0 || *p > 100) bad_scheme(spec, "percentile must be in (0, 100]");
      s.rule = ScaleRule::kPercentile;
      s.percentile = *p;
    } else {
      bad_scheme(spec, std::string("unknown scale rule '").append(val) +
                           "' (absmax, floor, ceil, percentile:<p>, mse, wmse)");
    }
  } else if (key == "sf") {
    if (!has_val || val.empty()) bad_scheme(spec, "sf= needs a scale format");
    const size_t star = val.find('*');
    try {
      if (star != std::string_view::npos) {
        s.tensor_scale_format = parse_format(val.substr(0, star));
        s.scale_format = parse_format(val.substr(star + 1));
      } else {
        s.tensor_scale_format.reset();
        s.scale_format = parse_format(val);
      }
    } catch (const Error& e) {
      bad_scheme(spec, std::string("bad scale format '").append(val) + "': " + e.what());
    }
    explicit_sf = true;
  } else if (key == "asym") {
    if (!has_val || val == "int") s.zero = ZeroPoint::kInteger;
    else if (val == "float") s.zero = ZeroPoint::kFloat;
    else bad_scheme(spec, "asym takes no value, =int or =float");
  } else if (key == "outliers") {
    if (!has_val) bad_scheme(spec, "outliers= needs a fraction or <n>sigma");
    const auto parts = split(val, ':');
    std::string_view v = parts[0];
    if (v.ends_with("sigma")) {
      const auto n = parse_double(v.substr(0, v.size() - 5));
      if (!n || *n <= 0) bad_scheme(spec, "outliers=<n>sigma needs n > 0");
      s.outliers.kind = OutlierPolicy::Kind::kSigma;
      s.outliers.value = *n;
    } else {
      const auto f = parse_double(v);
      if (!f || *f <= 0 || *f >= 1) bad_scheme(spec, "the outlier fraction must be in (0, 1)");
      s.outliers.kind = OutlierPolicy::Kind::kFraction;
      s.outliers.value = *f;
    }
    for (size_t i = 1; i < parts.size(); ++i) {
      if (parts[i] == "plain") {
        s.outliers.gap_bits = 0;
      } else if (parts[i].starts_with("gap")) {
        const auto b = parse_u64(std::string_view(parts[i]).substr(3));
        if (!b || *b < 2 || *b > 16) bad_scheme(spec, "gap bits must be 2..16");
        s.outliers.gap_bits = static_cast<int>(*b);
      } else {
        bad_scheme(spec, "outlier positions are plain or gap<b>");
      }
    }
  } else if (key == "round") {
    const auto parts = split(val, ':');
    const auto m = parse_rounding(parts[0]);
    if (!m) bad_scheme(spec, std::string("unknown rounding '").append(parts[0]) + "' (" + rounding_names_list() + ")");
    s.round.mode = *m;
    if (parts.size() > 1) {
      const auto b = parse_u64(parts[1]);
      if (!b || *b < 1 || *b > 32 || *m != Rounding::kStochastic) {
        bad_scheme(spec, "round=stochastic:<bits> takes 1..32 bits");
      }
      s.round.sr_bits = static_cast<int>(*b);
    }
  } else if (key == "seed") {
    const auto v = parse_u64(val);
    if (!v) bad_scheme(spec, "seed must be a non-negative integer");
    s.round.seed = *v;
  } else if (key == "overflow") {
    const auto o = parse_overflow(val);
    if (!o) bad_scheme(spec, "overflow is saturate or ieee");
    s.round.overflow = *o;
  } else {
    bad_scheme(spec, std::string("unknown option '").append(opt) + "'");
  }
}

struct PresetDef {
  const char* name;
  const char* expansion;
  const char* description;
};

const PresetDef kPresets[] = {
    {"mxfp8_e4m3", "e4m3fn/g32/scale=floor/sf=e8m0", "OCP MX v1.0 MXFP8 (E4M3 elements)"},
    {"mxfp8_e5m2", "e5m2/g32/scale=floor/sf=e8m0", "OCP MX v1.0 MXFP8 (E5M2 elements)"},
    {"mxfp6_e2m3", "e2m3/g32/scale=floor/sf=e8m0", "OCP MX v1.0 MXFP6 (E2M3 elements)"},
    {"mxfp6_e3m2", "e3m2/g32/scale=floor/sf=e8m0", "OCP MX v1.0 MXFP6 (E3M2 elements)"},
    {"mxfp4", "e2m1/g32/scale=floor/sf=e8m0", "OCP MX v1.0 MXFP4 (E2M1 elements)"},
    {"mxint8", "int:8:narrow/g32/scale=floor/sf=e8m0", "OCP MX v1.0 MXINT8 (symmetric int8)"},
    {"mxint6", "int:6:narrow/g32/scale=floor/sf=e8m0", "MX structure with symmetric int6 elements"},
    {"mxint4", "int:4:narrow/g32/scale=floor/sf=e8m0", "MX structure with symmetric int4 elements"},
    {"nvfp4", "e2m1/g16/sf=fp32*ue4m3", "NVIDIA NVFP4: UE4M3 block scale times an FP32 tensor scale"},
    {"nvint4", "int:4:narrow/g16/sf=fp32*ue4m3", "symmetric int4 with the NVFP4 scale structure"},
    {"w4g128", "int4/g128/asym", "4-bit asymmetric groups of 128 (GPTQ/AWQ style)"},
    {"w8", "int:8:narrow/channel", "symmetric int8 per output channel"},
};

// The shortest decimal that reads back as the same double.
std::string shortest(double v) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, r.ptr);
}

}  // namespace

std::string Granularity::to_string() const {
  switch (kind) {
    case Kind::kTensor:
      return "tensor";
    case Kind::kChannel:
      return axis == 0 ? std::string("channel") : std::string("channel:").append(std::to_string(axis));
    case Kind::kGroup:
      return std::string("g").append(std::to_string(group));
    case Kind::kBlock2D:
      return std::string("b").append(std::to_string(rows)).append("x").append(std::to_string(cols));
  }
  return "?";
}

std::string OutlierPolicy::to_string() const {
  std::string s;
  if (kind == Kind::kFraction) s = shortest(value);
  if (kind == Kind::kSigma) s = shortest(value) + "sigma";
  if (gap_bits == 0) s += ":plain";
  else if (gap_bits != 6) s += ":gap" + std::to_string(gap_bits);
  return s;
}

const char* scale_rule_name(ScaleRule r) {
  switch (r) {
    case ScaleRule::kAbsmax: return "absmax";
    case ScaleRule::kFloor: return "floor";
    case ScaleRule::kCeil: return "ceil";
    case ScaleRule::kPercentile: return "percentile";
    case ScaleRule::kMse: return "mse";
    case ScaleRule::kWmse: return "wmse";
  }
  return "?";
}

double Scheme::element_max() const {
  if (zero != ZeroPoint::kNone) return std::ldexp(1.0, element.bits) - 1;
  return element.max_finite();
}

int Scheme::element_emax() const {
  return static_cast<int>(std::floor(std::log2(element_max())));
}

int Scheme::zero_bits() const {
  switch (zero) {
    case ZeroPoint::kNone: return 0;
    case ZeroPoint::kInteger: return element.bits;
    case ZeroPoint::kFloat: return scale_format.bits;
  }
  return 0;
}

Format Scheme::code_format() const {
  if (zero != ZeroPoint::kNone) {
    return make_int_format(element.bits, false, false);
  }
  return element;
}

std::string Scheme::spec() const {
  std::string s = element.name + "/" + gran.to_string();
  if (rule != ScaleRule::kAbsmax) {
    s += "/scale=";
    if (rule == ScaleRule::kPercentile) {
      s += "percentile:" + shortest(percentile);
    } else {
      s += scale_rule_name(rule);
    }
  }
  s += "/sf=";
  if (tensor_scale_format) s += tensor_scale_format->name + "*";
  s += scale_format.name;
  if (zero == ZeroPoint::kInteger) s += "/asym";
  if (zero == ZeroPoint::kFloat) s += "/asym=float";
  if (outliers.kind != OutlierPolicy::Kind::kNone) s += "/outliers=" + outliers.to_string();
  if (round.mode != Rounding::kNearestEven || (round.mode == Rounding::kStochastic && round.sr_bits != 32)) {
    s += std::string("/round=") + rounding_name(round.mode);
    if (round.mode == Rounding::kStochastic && round.sr_bits != 32) s += ":" + std::to_string(round.sr_bits);
  }
  if (round.mode == Rounding::kStochastic && round.seed != 0) s += "/seed=" + std::to_string(round.seed);
  if (round.overflow != Overflow::kSaturate) s += std::string("/overflow=") + overflow_name(round.overflow);
  return s;
}

const std::vector<SchemePreset>& scheme_presets() {
  static const std::vector<SchemePreset> presets = [] {
    std::vector<SchemePreset> v;
    for (const auto& p : kPresets) v.push_back({p.name, p.expansion, p.description});
    for (int m = 2; m <= 16; ++m) {
      const std::string ms = std::to_string(m);
      v.push_back({std::string("bfp").append(ms), std::string("int:").append(ms).append(":narrow/g16/scale=floor/sf=e8m0"),
                   std::string("block floating point: shared 8-bit exponent per 16, ").append(ms).append(
                       "-bit signed mantissas")});
    }
    return v;
  }();
  return presets;
}

// Also names q8_0 and q4_0, which the codec registry takes beside the
// schemes: the help describes what every command accepts.
std::string scheme_spec_help() {
  return "schemes: <element-format>/<granularity>[/scale=<rule>][/sf=<scale-format>][/asym][/outliers=<f>]\n"
         "  granularity: tensor | channel[:<axis>] | g<N> | b<R>x<C>\n"
         "  scale rules: absmax | floor | ceil | percentile:<p> | mse | wmse\n"
         "  scale formats: any format, or <tensor>*<block> for two levels (fp32*ue4m3)\n"
         "  zero points: /asym (integer), /asym=float (HQQ style)\n"
         "  outliers: /outliers=<fraction>|<n>sigma[:gap<b>|:plain]\n"
         "  presets: mxfp8_e4m3 mxfp8_e5m2 mxfp6_e2m3 mxfp6_e3m2 mxfp4 mxint8 mxint6 mxint4 nvfp4 nvint4\n"
         "           bfp<M> q8_0 q4_0 w4g128 w8, each optionally followed by /<override>\n"
         "  e.g. int4/g128/asym, float8_e4m3fn/channel, nvfp4/b16x16, mxfp4/scale=ceil";
}

Scheme parse_scheme(std::string_view spec) {
  if (spec.empty()) bad_scheme(spec, "empty scheme");
  const std::vector<std::string_view> pieces = split(spec, '/');
  const std::vector<std::string> parts(pieces.begin(), pieces.end());
  for (const auto& p : parts) {
    if (p.empty()) bad_scheme(spec, "empty component (two '/' in a row, or a trailing '/')");
  }
  Scheme s;
  size_t next = 0;
  bool explicit_sf = false;
  bool preset_power_of_two = false;
  // A preset first?
  for (const auto& p : scheme_presets()) {
    if (parts[0] != p.name) continue;
    s = parse_scheme(p.expansion);
    s.name = p.name;
    explicit_sf = true;
    preset_power_of_two = s.power_of_two_rule();
    next = 1;
    break;
  }
  if (next == 0) {
    // Element format: the longest run of leading components that parses,
    // followed by a granularity (codebook files may contain '/').
    std::optional<Format> elem;
    std::string first_error;
    for (size_t k = 1; k < parts.size() && !elem; ++k) {
      if (!parse_granularity(parts[k])) continue;
      std::string f = parts[0];
      for (size_t i = 1; i < k; ++i) f += "/" + parts[i];
      try {
        elem = parse_format(f);
        next = k;
      } catch (const Error& e) {
        if (first_error.empty()) first_error = e.what();
      }
    }
    if (!elem) {
      for (size_t k = 1; k < parts.size(); ++k) {
        const std::string& g = parts[k];
        if ((g.size() > 1 && g[0] == 'g' && g.find_first_not_of('0', 1) == std::string::npos) ||
            (g.size() > 1 && g[0] == 'b' && g.find('x') != std::string::npos &&
             (g.substr(1, g.find('x') - 1).find_first_not_of('0') == std::string::npos ||
              g.substr(g.find('x') + 1).find_first_not_of('0') == std::string::npos))) {
          bad_scheme(spec, "granularity '" + g + "' is empty: group and block sizes must be at least 1");
        }
      }
      if (parts.size() == 1) {
        try {
          (void)parse_format(parts[0]);
        } catch (const Error& e) {
          bad_scheme(spec, "'" + parts[0] + "' is neither a scheme preset nor an element format (" + e.what() + ")");
        }
        bad_scheme(spec, "a granularity must follow the element format (e.g. " + parts[0] + "/g32)");
      }
      if (!first_error.empty()) bad_scheme(spec, "bad element format: " + first_error);
      bad_scheme(spec, "no granularity (tensor, channel, g<N> or b<R>x<C>) after the element format");
    }
    s.element = *elem;
    s.gran = *parse_granularity(parts[next]);
    ++next;
  } else if (next < parts.size()) {
    // A preset may override its granularity first (nvfp4/b16x16).
    if (const auto g = parse_granularity(parts[next])) {
      s.gran = *g;
      ++next;
    }
  }
  // Each option once: "scale=mse/scale=absmax" or "asym/asym=float" would
  // otherwise mean whichever came last. (A preset's own options are its
  // expansion's; the spec may override each of them once.)
  std::map<std::string, std::string> given;
  for (; next < parts.size(); ++next) {
    const std::string key = parts[next].substr(0, parts[next].find('='));
    if (const auto it = given.find(key); it != given.end()) {
      bad_scheme(spec, "'" + key + "' is given twice ('" + it->second + "' and '" + parts[next] +
                           "'): give each option once");
    }
    given.emplace(key, parts[next]);
    apply_option(spec, s, parts[next], explicit_sf);
  }
  if (!explicit_sf) s.scale_format = default_scale_format(s);
  // A preset built on E8M0 with its rule changed away from powers of two
  // keeps its scale format only when that still makes sense.
  if (preset_power_of_two && !s.power_of_two_rule() && s.scale_format.name == "float8_e8m0fnu" &&
      s.rule != ScaleRule::kMse && s.rule != ScaleRule::kWmse) {
    bad_scheme(spec, "an E8M0 scale needs the floor, ceil, mse or wmse rule");
  }

  // Consistency checks.
  if (s.zero != ZeroPoint::kNone) {
    if (!is_integer_element(s.element)) bad_scheme(spec, "asym needs an integer element format");
    if (s.element.bits > 16) bad_scheme(spec, "asym integers are at most 16 bits");
    if (s.power_of_two_rule()) bad_scheme(spec, "asym scales come from min/max; floor and ceil are for symmetric schemes");
    if (s.two_level()) bad_scheme(spec, "asym does not combine with a two-level scale");
  }
  if (s.gran.kind == Granularity::Kind::kGroup && s.gran.group > (uint64_t{1} << 32)) {
    bad_scheme(spec, "group size too large");
  }
  if (!(s.element.max_finite() > 0) || !std::isfinite(s.element.max_finite())) {
    bad_scheme(spec, "element format has no positive finite maximum");
  }
  const Format& sf = s.scale_format;
  if (sf.family != Family::kMinifloat || sf.bits > 32) {
    bad_scheme(spec, "scale formats are float formats (e.g. float32, float16, bfloat16, e8m0, ue4m3, e4m3fn)");
  }
  if (s.tensor_scale_format && (s.tensor_scale_format->family != Family::kMinifloat)) {
    bad_scheme(spec, "the tensor scale format must be a float format");
  }
  if (s.element.family == Family::kMinifloat && !s.element.subnormals && s.element.exp_bits == 8 &&
      s.element.man_bits == 0) {
    bad_scheme(spec, "E8M0 is a scale format, not an element format");
  }
  return s;
}

}  // namespace lowbit
