#include "lowbit/format/rounding.h"

namespace lowbit {

namespace {
constexpr const char* kRoundNames[kNumRoundings] = {"rne", "rna",  "rtz",       "up",
                                                    "down", "odd", "stochastic"};
}  // namespace

const char* rounding_name(Rounding r) { return kRoundNames[static_cast<int>(r)]; }

const char* overflow_name(Overflow o) { return o == Overflow::kSaturate ? "saturate" : "ieee"; }

std::optional<Rounding> parse_rounding(std::string_view name) {
  for (int i = 0; i < kNumRoundings; ++i) {
    if (name == kRoundNames[i]) return static_cast<Rounding>(i);
  }
  // Common synonyms, so that E8M0's "floor"/"ceil" vocabulary works too.
  if (name == "floor") return Rounding::kDown;
  if (name == "ceil") return Rounding::kUp;
  if (name == "sr") return Rounding::kStochastic;
  return std::nullopt;
}

std::optional<Overflow> parse_overflow(std::string_view name) {
  if (name == "saturate" || name == "sat") return Overflow::kSaturate;
  if (name == "ieee") return Overflow::kIeee;
  return std::nullopt;
}

std::string rounding_names_list() {
  std::string s;
  for (int i = 0; i < kNumRoundings; ++i) {
    if (i) s += ", ";
    s += kRoundNames[i];
  }
  return s;
}

}  // namespace lowbit
