#include "lowbit/format/registry.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <set>
#include <sstream>

#include "lowbit/core/error.h"
#include "lowbit/core/text.h"
#include "lowbit/format/codec.h"

namespace lowbit {

namespace {

// QLoRA's NF4 table (bitsandbytes get_4bit_type("nf4")): quantiles of N(0,1)
// normalised to [-1, 1], with an exact zero.
const std::vector<float> kNf4 = {
    -1.0f,
    -0.6961928009986877f,
    -0.5250730514526367f,
    -0.39491748809814453f,
    -0.28444138169288635f,
    -0.18477343022823334f,
    -0.09105003625154495f,
    0.0f,
    0.07958029955625534f,
    0.16093020141124725f,
    0.24611230194568634f,
    0.33791524171829224f,
    0.44070982933044434f,
    0.5626170039176941f,
    0.7229568362236023f,
    1.0f,
};

// llama.cpp's kvalues_iq4nl: a non-uniform 16-value grid in int8 units (the
// block scale multiplies these), with no exact zero.
const std::vector<float> kIq4Nl = {-127, -104, -83, -65, -49, -35, -22, -10,
                                   1,    13,   25,  38,  53,  69,  89,  113};

Format minifloat(std::string name, std::vector<std::string> aliases, int bits, int e, int m,
                 int bias, Specials sp, bool is_signed = true, bool subnormals = true) {
  Format f;
  f.name = std::move(name);
  f.aliases = std::move(aliases);
  f.family = Family::kMinifloat;
  f.bits = bits;
  f.exp_bits = e;
  f.man_bits = m;
  f.bias = bias;
  f.specials = sp;
  f.is_signed = is_signed;
  f.subnormals = subnormals;
  return f;
}

std::vector<Format> build_presets() {
  std::vector<Format> v;
  using S = Specials;
  v.push_back(minifloat("float8_e4m3fn", {"e4m3fn", "fp8_e4m3fn"}, 8, 4, 3, 7, S::kFn));
  v.push_back(minifloat("float8_e5m2", {"e5m2", "fp8_e5m2"}, 8, 5, 2, 15, S::kIeee));
  v.push_back(minifloat("float8_e4m3fnuz", {"e4m3fnuz"}, 8, 4, 3, 8, S::kFnuz));
  v.push_back(minifloat("float8_e5m2fnuz", {"e5m2fnuz"}, 8, 5, 2, 16, S::kFnuz));
  v.push_back(minifloat("float8_e4m3b11fnuz", {"e4m3b11fnuz"}, 8, 4, 3, 11, S::kFnuz));
  v.push_back(minifloat("float8_e3m4", {"e3m4"}, 8, 3, 4, 3, S::kIeee));
  v.push_back(minifloat("float8_e4m3", {"e4m3"}, 8, 4, 3, 7, S::kIeee));
  v.push_back(minifloat("float6_e2m3fn", {"e2m3", "fp6_e2m3"}, 6, 2, 3, 1, S::kFinite));
  v.push_back(minifloat("float6_e3m2fn", {"e3m2", "fp6_e3m2"}, 6, 3, 2, 3, S::kFinite));
  v.push_back(minifloat("float4_e2m1fn", {"e2m1", "fp4", "fp4_e2m1"}, 4, 2, 1, 1, S::kFinite));
  v.push_back(minifloat("float16", {"fp16", "half"}, 16, 5, 10, 15, S::kIeee));
  v.push_back(minifloat("bfloat16", {"bf16"}, 16, 8, 7, 127, S::kIeee));
  v.push_back(minifloat("tfloat32", {"tf32"}, 19, 8, 10, 127, S::kIeee));
  v.push_back(minifloat("float32", {"fp32"}, 32, 8, 23, 127, S::kIeee));
  // Scale formats. UE4M3 is E4M3 (fn) without a sign, stored in a byte whose
  // top bit is 0, as NVFP4 stores its block scales.
  v.push_back(minifloat("float8_e8m0fnu", {"e8m0", "e8m0fnu"}, 8, 8, 0, 127, S::kFn, false, false));
  v.push_back(minifloat("ue4m3", {}, 8, 4, 3, 7, S::kFn, false));
  v.push_back(minifloat("ue5m3", {}, 8, 5, 3, 15, S::kFn, false));
  for (int b = 2; b <= 16; ++b) v.push_back(make_int_format(b, true, false));
  for (int b = 2; b <= 16; ++b) v.push_back(make_int_format(b, false, false));
  {
    Format t = make_int_format(2, true, true);
    t.name = "ternary";
    t.aliases = {"trit"};
    t.ternary = true;
    v.push_back(t);
  }
  {
    // Code 0 is +1 so that the code is the sign bit and 0 rounds to +1.
    Format b = make_codebook_format("binary", {1.0f, -1.0f});
    v.push_back(b);
  }
  v.push_back(make_codebook_format("nf4", kNf4));
  v.push_back(make_codebook_format("iq4_nl", kIq4Nl));
  {
    Format h;
    h.name = "hifloat8";
    h.aliases = {"hif8"};
    h.family = Family::kHiFloat8;
    h.bits = 8;
    v.push_back(h);
  }
  for (auto [n, es] : {std::pair{8, 0}, {8, 1}, {8, 2}, {16, 1}, {16, 2}}) {
    v.push_back(make_posit_format(n, es));
  }
  return v;
}


[[noreturn]] void bad_spec(std::string_view spec, const std::string& why) {
  fail_usage("unknown or malformed format '" + std::string(spec) + "': " + why + "\n" +
             format_spec_help());
}

int parse_int(std::string_view spec, std::string_view text, const char* what) {
  int v = 0;
  auto [p, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || p != text.data() + text.size()) {
    bad_spec(spec, std::string("expected an integer ") + what + ", got '" + std::string(text) + "'");
  }
  return v;
}

Format parse_fp(std::string_view spec, const std::vector<std::string_view>& parts) {
  // parts[1] = "eXmY"
  const std::string_view em = parts.size() > 1 ? parts[1] : std::string_view();
  const size_t mpos = em.find('m');
  if (em.size() < 4 || em[0] != 'e' || mpos == std::string_view::npos) {
    bad_spec(spec, "expected fp:eXmY");
  }
  const int e = parse_int(spec, em.substr(1, mpos - 1), "exponent width");
  const int m = parse_int(spec, em.substr(mpos + 1), "mantissa width");
  int bias = (e >= 1 && e <= 8) ? (1 << (e - 1)) - 1 : 0;
  Specials sp = Specials::kIeee;
  for (size_t i = 2; i < parts.size(); ++i) {
    const std::string_view p = parts[i];
    if (p.starts_with("bias=")) {
      bias = parse_int(spec, p.substr(5), "bias");
    } else if (p.starts_with("specials=")) {
      const std::string_view v = p.substr(9);
      if (v == "ieee") sp = Specials::kIeee;
      else if (v == "fn") sp = Specials::kFn;
      else if (v == "fnuz") sp = Specials::kFnuz;
      else if (v == "finite") sp = Specials::kFinite;
      else bad_spec(spec, "specials must be ieee, fn, fnuz or finite");
    } else {
      bad_spec(spec, "unknown option '" + std::string(p) + "'");
    }
  }
  return make_float_format(e, m, bias, sp);
}

Format parse_int_spec(std::string_view spec, const std::vector<std::string_view>& parts) {
  if (parts.size() < 2) bad_spec(spec, "expected int:B");
  const int b = parse_int(spec, parts[1], "bit width");
  bool is_signed = true, narrow = false;
  for (size_t i = 2; i < parts.size(); ++i) {
    if (parts[i] == "unsigned") is_signed = false;
    else if (parts[i] == "narrow") narrow = true;
    else bad_spec(spec, "unknown option '" + std::string(parts[i]) + "'");
  }
  if (narrow && !is_signed) bad_spec(spec, "narrow applies to signed integers only");
  return make_int_format(b, is_signed, narrow);
}

std::vector<float> parse_values(std::string_view spec, std::string_view text) {
  std::vector<float> values;
  std::string buf(text);
  std::replace(buf.begin(), buf.end(), ',', ' ');
  std::istringstream in(buf);
  std::string tok;
  while (in >> tok) {
    char* end = nullptr;
    const float v = std::strtof(tok.c_str(), &end);
    if (end != tok.c_str() + tok.size()) bad_spec(spec, "codebook value '" + tok + "' is not a number");
    values.push_back(v);
  }
  return values;
}

Format parse_codebook(std::string_view spec, std::string_view body) {
  std::vector<float> values;
  if (body.starts_with("@")) {
    const std::string path(body.substr(1));
    std::ifstream in(path);
    if (!in) bad_spec(spec, "cannot read codebook file '" + path + "'");
    std::stringstream ss;
    ss << in.rdbuf();
    values = parse_values(spec, ss.str());
  } else {
    values = parse_values(spec, body);
  }
  return make_codebook_format("codebook:" + std::string(body), std::move(values));
}

}  // namespace

const std::vector<Format>& preset_formats() {
  static const std::vector<Format> presets = build_presets();
  return presets;
}

std::string format_spec_help() {
  return "valid formats:\n"
         "  a preset name or alias (run 'lowbit formats' for the list), e.g. float8_e4m3fn, e4m3fn,\n"
         "    e5m2, float4_e2m1fn, bf16, int4, uint8, ternary, binary, nf4, iq4_nl, hifloat8,\n"
         "    posit8_1, float8_e8m0fnu, ue4m3\n"
         "  fp:eXmY[:bias=B][:specials=ieee|fn|fnuz|finite]   e.g. fp:e2m5:specials=finite, fp:e3m2:bias=5\n"
         "  int:B[:unsigned][:narrow]                         e.g. int:8:narrow, int:3:unsigned\n"
         "  posit:N:ES                                        e.g. posit:12:1\n"
         "  codebook:v1,v2,...  or  codebook:@file            up to 256 values";
}

Format make_float_format(int e, int m, int bias, Specials sp) {
  const std::string spec = "fp:e" + std::to_string(e) + "m" + std::to_string(m);
  if (e < 1 || e > 8) bad_spec(spec, "the exponent width must be 1..8");
  if (m < 0 || m > 23) bad_spec(spec, "the mantissa width must be 0..23");
  if (sp == Specials::kIeee && e < 2) bad_spec(spec, "ieee specials need at least 2 exponent bits");
  Format f;
  f.family = Family::kMinifloat;
  f.bits = 1 + e + m;
  f.exp_bits = e;
  f.man_bits = m;
  f.bias = bias;
  f.specials = sp;
  f.name = spec + ":bias=" + std::to_string(bias) + ":specials=" + specials_name(sp);
  // Every value must be a float32 (fakequant writes float32). A bias far
  // outside float32's exponent range is refused before the Codec is built:
  // its limits are computed in double, and 2^-43000 flushes to zero there.
  if (bias < -300 || bias > 300) {
    bad_spec(spec, "with bias " + std::to_string(bias) + " its values do not fit in float32");
  }
  const Codec c(f);
  const double emin = 1 - bias;
  if (!(c.max_finite() <= std::numeric_limits<float>::max()) || emin - m < -149) {
    bad_spec(spec, "with bias " + std::to_string(bias) + " its values do not fit in float32");
  }
  return f;
}

Format make_int_format(int bits, bool is_signed, bool narrow) {
  if (bits < 2 || bits > 16) {
    bad_spec("int:" + std::to_string(bits), "integer widths are 2..16");
  }
  Format f;
  f.family = Family::kInteger;
  f.bits = bits;
  f.is_signed = is_signed;
  f.narrow = narrow;
  f.name = (is_signed ? "int" : "uint") + std::to_string(bits);
  if (narrow) f.name = "int:" + std::to_string(bits) + ":narrow";
  return f;
}

Format make_posit_format(int n, int es) {
  const std::string spec = "posit:" + std::to_string(n) + ":" + std::to_string(es);
  if (n < 3 || n > 16) bad_spec(spec, "posit widths are 3..16");
  if (es < 0 || es > 4) bad_spec(spec, "posit es must be 0..4");
  // maxpos = 2^((n-2) * 2^es) must be a float32.
  if ((n - 2) * (1 << es) > 127) bad_spec(spec, "its range does not fit in float32");
  Format f;
  f.family = Family::kPosit;
  f.bits = n;
  f.posit_es = es;
  f.name = "posit" + std::to_string(n) + "_" + std::to_string(es);
  return f;
}

Format make_codebook_format(std::string name, std::vector<float> values) {
  if (values.size() < 2 || values.size() > 256) {
    bad_spec(name, "a codebook needs 2..256 values, got " + std::to_string(values.size()));
  }
  std::set<float> seen;
  for (float v : values) {
    if (!std::isfinite(v)) bad_spec(name, "codebook values must be finite");
    if (!seen.insert(v == 0 ? 0.0f : v).second) bad_spec(name, "codebook values must be distinct");
  }
  Format f;
  f.family = Family::kCodebook;
  f.name = std::move(name);
  int bits = 1;
  while ((size_t{1} << bits) < values.size()) ++bits;
  f.bits = bits;
  // Codebooks clamp to their smallest and largest entries; they have no
  // separate unsigned behaviour.
  f.is_signed = true;
  f.table = std::make_shared<const std::vector<float>>(std::move(values));
  return f;
}

Format parse_format(std::string_view spec) {
  for (const Format& f : preset_formats()) {
    if (spec == f.name) return f;
    for (const auto& a : f.aliases) {
      if (spec == a) return f;
    }
  }
  const auto parts = split(spec, ':');
  if (parts[0] == "fp") return parse_fp(spec, parts);
  if (parts[0] == "int") return parse_int_spec(spec, parts);
  if (parts[0] == "posit") {
    if (parts.size() != 3) bad_spec(spec, "expected posit:N:ES");
    return make_posit_format(parse_int(spec, parts[1], "width"), parse_int(spec, parts[2], "es"));
  }
  if (parts[0] == "codebook") {
    if (spec.size() <= 9) bad_spec(spec, "expected codebook:v1,v2,... or codebook:@file");
    return parse_codebook(spec, spec.substr(9));
  }
  // posit<N>_<ES> is the canonical name of every posit (make_posit_format),
  // so that a name read back from a file or a scheme spec parses.
  if (spec.starts_with("posit") && spec.find('_') != std::string_view::npos) {
    const size_t u = spec.find('_');
    const std::string_view n = spec.substr(5, u - 5), es = spec.substr(u + 1);
    const auto digits = [](std::string_view d) {
      return !d.empty() && d.size() <= 2 && d.find_first_not_of("0123456789") == std::string_view::npos;
    };
    if (digits(n) && digits(es)) return make_posit_format(std::stoi(std::string(n)), std::stoi(std::string(es)));
  }
  if (spec.empty()) bad_spec(spec, "the name is empty");
  bad_spec(spec, "no preset has this name");
}

}  // namespace lowbit
