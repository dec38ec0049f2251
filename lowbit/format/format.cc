#include "lowbit/format/format.h"

#include <bit>
#include <cmath>
#include <limits>

#include "lowbit/format/codec.h"
#include "lowbit/format/families.h"

namespace lowbit {

const char* specials_name(Specials s) {
  switch (s) {
    case Specials::kIeee:
      return "ieee";
    case Specials::kFn:
      return "fn";
    case Specials::kFnuz:
      return "fnuz";
    case Specials::kFinite:
      return "finite";
  }
  return "?";
}

bool Format::has_inf() const {
  return (family == Family::kMinifloat && specials == Specials::kIeee) ||
         family == Family::kHiFloat8;
}

bool Format::has_nan() const {
  switch (family) {
    case Family::kMinifloat:
      return (specials == Specials::kIeee && man_bits > 0) || specials == Specials::kFn ||
             specials == Specials::kFnuz;
    case Family::kPosit:
    case Family::kHiFloat8:
      return true;
    default:
      return false;
  }
}

bool Format::has_negative_zero() const {
  return family == Family::kMinifloat && is_signed && subnormals && specials != Specials::kFnuz;
}

bool Format::has_zero() const {
  if (family == Family::kMinifloat) return subnormals;
  if (family == Family::kCodebook) {
    for (float v : *table) {
      if (v == 0) return true;
    }
    return false;
  }
  return true;
}

double Format::max_finite() const { return Codec(*this).max_finite(); }
double Format::lowest_finite() const { return Codec(*this).lowest_finite(); }

double Format::min_normal() const {
  switch (family) {
    case Family::kMinifloat:
      return std::ldexp(1.0, subnormals ? 1 - bias : -bias);
    case Family::kHiFloat8:
      return std::ldexp(1.0, -15);  // the smallest value with an implicit 1 (D = 4, E = -15)
    case Family::kInteger:
      return 1.0;
    default:
      return std::numeric_limits<double>::quiet_NaN();  // posits and codebooks: no such notion
  }
}

double Format::min_subnormal() const {
  const Codec c(*this);
  if (c.table()) {
    double best = std::numeric_limits<double>::infinity();
    for (const auto& e : c.table()->entries()) {
      if (e.value > 0 && e.value < best) best = e.value;
    }
    return best;
  }
  if (family == Family::kInteger) return 1.0;
  const family::MinifloatLayout L(*this);
  return subnormals ? std::ldexp(1.0, L.emin - L.m) : std::ldexp(1.0, L.emin);
}

std::string Format::key() const {
  std::string k = name;
  k.append("|").append(std::to_string(bits)).append("|").append(std::to_string(posit_es));
  if (table) {
    for (float v : *table) k.append("|").append(std::to_string(std::bit_cast<uint32_t>(v)));
  }
  return k;
}

std::string Format::kind_name() const {
  switch (family) {
    case Family::kMinifloat:
      return man_bits == 0 && !is_signed ? "exponent" : "float";
    case Family::kInteger:
      return "int";
    case Family::kPosit:
    case Family::kHiFloat8:
      return "tapered";
    case Family::kCodebook:
      return "codebook";
  }
  return "?";
}

std::string Format::fields_summary() const {
  switch (family) {
    case Family::kMinifloat: {
      std::string s = (is_signed ? "s1 e" : "e") + std::to_string(exp_bits) + " m" +
                      std::to_string(man_bits);
      return s;
    }
    case Family::kInteger:
      if (ternary) return "trit {-1,0,1}";
      return std::string(is_signed ? "two's complement" : "unsigned") + (narrow ? ", narrow" : "");
    case Family::kPosit:
      return "posit n=" + std::to_string(bits) + " es=" + std::to_string(posit_es);
    case Family::kHiFloat8:
      return "s1 dot(2-4) exp(0-4) mant(1-3)";
    case Family::kCodebook:
      return std::to_string(table->size()) + "-entry table";
  }
  return "";
}

}  // namespace lowbit
