#include "lowbit/train/precision_recipe.h"

#include <charconv>
#include <cmath>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "lowbit/core/error.h"

namespace lowbit {

namespace {

using nlohmann::json;

[[noreturn]] void bad(std::string_view where, const std::string& why) {
  fail_usage(fmt::format("{}: {}", where, why));
}

OperandQuant operand(const json& v, std::string_view where) {
  if (!v.is_string()) bad(where, "an operand is a spec string");
  return OperandQuant::parse(v.get<std::string>(), where);
}

// One GEMM's object: {"x": ..., "w": ...} with the names of its operands.
GemmQuant gemm(const json& v, const char* a, const char* b, const std::string& where) {
  GemmQuant g;
  if (!v.is_object()) bad(where, "must be an object");
  for (const auto& [k, val] : v.items()) {
    if (k == a) {
      g.a = operand(val, where + "." + k);
    } else if (k == b) {
      g.b = operand(val, where + "." + k);
    } else {
      bad(where, fmt::format("unknown operand \"{}\" (this product's operands: {}, {})", k, a, b));
    }
  }
  return g;
}

LayerPrecision layer(const json& v, const std::string& where) {
  LayerPrecision p;
  if (v.is_string()) {
    const OperandQuant q = operand(v, where);
    p.forward = p.dgrad = p.wgrad = {q, q};
    return p;
  }
  if (!v.is_object()) bad(where, "must be an object or one operand spec");
  for (const auto& [k, val] : v.items()) {
    if (k == "all") {
      const OperandQuant q = operand(val, where + ".all");
      p.forward = p.dgrad = p.wgrad = {q, q};
    }
  }
  for (const auto& [k, val] : v.items()) {
    if (k == "all") continue;
    if (k == "forward") {
      p.forward = gemm(val, "x", "w", where + ".forward");
    } else if (k == "dgrad") {
      p.dgrad = gemm(val, "dy", "w", where + ".dgrad");
    } else if (k == "wgrad") {
      p.wgrad = gemm(val, "dy", "x", where + ".wgrad");
    } else {
      bad(where, fmt::format("unknown key \"{}\" (all, forward, dgrad, wgrad)", k));
    }
  }
  return p;
}

}  // namespace

bool LayerPrecision::identity() const noexcept {
  for (const GemmQuant* g : {&forward, &dgrad, &wgrad}) {
    if (!g->a.identity() || !g->b.identity()) return false;
  }
  return true;
}

const LayerPrecision& PrecisionRecipe::for_linear(std::string_view name) const {
  for (const Rule& r : keep) {
    if (r.pattern->search(name)) return r.layer;
  }
  return base;
}

bool PrecisionRecipe::identity() const noexcept {
  if (!base.identity() || master != MasterWeights::kFloat32 || loss_scale != LossScale::kNone || qat.active()) {
    return false;
  }
  for (const Rule& r : keep) {
    if (!r.layer.identity()) return false;
  }
  return true;
}

PrecisionRecipe PrecisionRecipe::parse(std::string_view json_text, std::string_view where,
                                       const std::vector<std::string>& linear_names) {
  const json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) bad(where, "a precision recipe is a JSON object");
  PrecisionRecipe r;
  for (const auto& [k, v] : j.items()) {
    const std::string at = fmt::format("{}: \"{}\"", where, k);
    if (k == "linear") {
      r.base = layer(v, at);
    } else if (k == "keep") {
      if (!v.is_array()) bad(at, "is a list of {\"match\": REGEX, \"linear\": ...}");
      for (size_t i = 0; i < v.size(); ++i) {
        const std::string rule_at = fmt::format("{}[{}]", at, i);
        const json& e = v[i];
        if (!e.is_object() || !e.contains("match") || !e["match"].is_string() || !e.contains("linear") ||
            e.size() != 2) {
          bad(rule_at, "a rule is {\"match\": REGEX, \"linear\": ...}");
        }
        Rule rule;
        rule.match = e["match"].get<std::string>();
        rule.pattern = std::make_shared<NamePattern>(NamePattern::compile(rule.match, ErrorKind::kUsage, rule_at));
        bool any = false;
        for (const std::string& n : linear_names) any = any || rule.pattern->search(n);
        if (!any) {
          bad(rule_at, fmt::format("'{}' matches no Linear of this model (their names: {}, ..., output)", rule.match,
                                   linear_names.empty() ? "none" : linear_names.front()));
        }
        rule.layer = layer(e["linear"], rule_at + ".linear");
        r.keep.push_back(std::move(rule));
      }
    } else if (k == "master_weights") {
      const std::string m = v.is_string() ? v.get<std::string>() : "";
      if (m == "float32") {
        r.master = MasterWeights::kFloat32;
      } else if (m == "bfloat16") {
        r.master = MasterWeights::kBFloat16;
      } else if (m == "bfloat16+kahan") {
        r.master = MasterWeights::kBFloat16Kahan;
      } else if (m == "bfloat16+collage") {
        r.master = MasterWeights::kBFloat16Collage;
      } else {
        bad(at, "is float32, bfloat16, bfloat16+kahan or bfloat16+collage");
      }
    } else if (k == "loss_scale") {
      if (v.is_string() && v.get<std::string>() == "none") {
        r.loss_scale = LossScale::kNone;
      } else if (v.is_string() && v.get<std::string>().starts_with("dynamic")) {
        const std::string t = v.get<std::string>();
        r.loss_scale = LossScale::kDynamic;
        if (t != "dynamic") {
          int k = 0;
          const auto res = std::from_chars(t.data() + 8, t.data() + t.size(), k);
          if (t[7] != ':' || res.ec != std::errc{} || res.ptr != t.data() + t.size() || k < 0 || k > 120) {
            bad(at, "dynamic:K starts the scale at 2^K, K in 0..120");
          }
          r.initial_loss_scale = std::ldexp(1.0, k);
        }
      } else if (v.is_number() && v.get<double>() > 0 && std::isfinite(v.get<double>())) {
        r.loss_scale = LossScale::kStatic;
        r.static_loss_scale = v.get<double>();
      } else {
        bad(at, "is \"none\", \"dynamic\", \"dynamic:K\" or a positive number");
      }
    } else if (k == "qat") {
      if (!v.is_string()) bad(at, "is a string: none, lsq+:intB, ternary");
      r.qat = QatSpec::parse(v.get<std::string>(), at);
    } else if (k == "name" || k == "description") {
      if (!v.is_string()) bad(at, "is a string");
    } else {
      bad(where, fmt::format("unknown key \"{}\" (linear, keep, master_weights, loss_scale, qat, name, description)",
                             k));
    }
  }
  return r;
}

}  // namespace lowbit
