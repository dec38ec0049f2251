// `lowbit formats [--json]`: every preset format and its properties.
#include <cmath>
#include <cstdio>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/format/registry.h"
#include "tools/lowbit/commands.h"

namespace lowbit::cli {

namespace {

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& a : v) s += (s.empty() ? "" : ",") + a;
  return s.empty() ? "-" : s;
}

std::string num(double v) { return std::isnan(v) ? "-" : fmt::format("{:.9g}", v); }

nlohmann::json json_num(double v) { return std::isnan(v) ? nlohmann::json(nullptr) : nlohmann::json(v); }

void print_formats(bool json) {
  if (json) {
    nlohmann::json all = nlohmann::json::array();
    for (const Format& f : preset_formats()) {
      const bool fl = f.family == Family::kMinifloat;
      all.push_back({{"name", f.name},
                     {"aliases", f.aliases},
                     {"bits", f.bits},
                     {"kind", f.kind_name()},
                     {"exponent_bits", fl ? nlohmann::json(f.exp_bits) : nlohmann::json(nullptr)},
                     {"mantissa_bits", fl ? nlohmann::json(f.man_bits) : nlohmann::json(nullptr)},
                     {"bias", fl ? nlohmann::json(f.bias) : nlohmann::json(nullptr)},
                     {"signed", f.is_signed},
                     {"specials", fl ? nlohmann::json(specials_name(f.specials)) : nlohmann::json(nullptr)},
                     {"has_inf", f.has_inf()},
                     {"has_nan", f.has_nan()},
                     {"has_negative_zero", f.has_negative_zero()},
                     {"max_finite", f.max_finite()},
                     {"lowest_finite", f.lowest_finite()},
                     {"min_normal", json_num(f.min_normal())},
                     {"min_subnormal", json_num(f.min_subnormal())},
                     {"fields", f.fields_summary()}});
    }
    std::printf("%s\n", all.dump(2).c_str());
    return;
  }
  std::printf("%-20s %-18s %4s %-8s %-32s %5s %3s %3s %3s %14s %13s %13s\n", "name", "aliases", "bits", "kind",
              "fields", "bias", "inf", "nan", "-0", "max", "min_normal", "min_subnorm");
  for (const Format& f : preset_formats()) {
    const bool fl = f.family == Family::kMinifloat;
    std::printf("%-20s %-18s %4d %-8s %-32s %5s %3s %3s %3s %14s %13s %13s\n", f.name.c_str(),
                join(f.aliases).c_str(), f.bits, f.kind_name().c_str(), f.fields_summary().c_str(),
                fl ? std::to_string(f.bias).c_str() : "-", f.has_inf() ? "yes" : "no", f.has_nan() ? "yes" : "no",
                f.has_negative_zero() ? "yes" : "no", num(f.max_finite()).c_str(), num(f.min_normal()).c_str(),
                num(f.min_subnormal()).c_str());
  }
  std::printf("\nParametric forms: fp:eXmY[:bias=B][:specials=ieee|fn|fnuz|finite], int:B[:unsigned][:narrow],\n"
              "posit:N:ES, codebook:v1,v2,... or codebook:@file. See docs/formats.md.\n");
}

}  // namespace

Action add_formats_command(CLI::App& app) {
  auto* cmd = app.add_subcommand("formats", "List every named format with its fields, range and special values");
  auto json = std::make_shared<bool>(false);
  cmd->add_flag("--json", *json, "machine-readable output");
  return [json] { print_formats(*json); };
}

}  // namespace lowbit::cli
