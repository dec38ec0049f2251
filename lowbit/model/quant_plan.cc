#include "lowbit/model/quant_plan.h"

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include "lowbit/core/error.h"
#include "lowbit/core/name_pattern.h"
#include "lowbit/model/linear.h"

namespace lowbit {

namespace {

using Json = nlohmann::json;

const char* kPointNames[4] = {"q", "k", "p", "v"};

std::vector<PlanRule> parse_rules(const Json& value, const std::string& where_list) {
  if (!value.is_array()) fail_usage(where_list + " must be an array of rules");
  std::vector<PlanRule> rules;
  for (size_t i = 0; i < value.size(); ++i) {
    const Json& rj = value[i];
    const std::string where = fmt::format("{} rule {}", where_list, i + 1);
    if (!rj.is_object()) fail_usage(where + " must be an object");
    PlanRule rule;
    for (const auto& [k, v] : rj.items()) {
      if (k == "match" || k == "scheme") {
        if (!v.is_string()) fail_usage(fmt::format("{}: \"{}\" must be a string", where, k));
        (k == "match" ? rule.match : rule.scheme) = v.get<std::string>();
      } else if (k == "static") {
        if (v.is_boolean()) {
          rule.static_rule = v.get<bool>() ? "absmax" : "";
        } else if (v.is_string() && !v.get<std::string>().empty()) {
          rule.static_rule = v.get<std::string>();
        } else {
          fail_usage(where + ": \"static\" must be true, false or a rule (absmax, percentile:<p>, mse, kl)");
        }
      } else {
        fail_usage(fmt::format("{}: unknown key \"{}\"; valid: match, scheme, static", where, k));
      }
    }
    if (!rj.contains("match")) fail_usage(where + " has no \"match\" regular expression");
    if (!rj.contains("scheme")) fail_usage(where + " has no \"scheme\" (a scheme, or \"none\")");
    if (!rule.static_rule.empty() && rule.scheme == "none") fail_usage(where + ": a static \"none\" means nothing");
    rules.push_back(std::move(rule));
  }
  return rules;
}

}  // namespace

bool PlanRules::is_plan_key(std::string_view key) { return key == "inputs" || key == "attention" || key == "kv"; }

PlanRules PlanRules::parse(std::string_view text, const std::string& name, bool in_recipe) {
  Json j;
  try {
    j = Json::parse(text);
  } catch (const Json::exception& e) {
    fail_usage(fmt::format("plan '{}' is not valid JSON: {}", name, e.what()));
  }
  if (!j.is_object()) fail_usage(fmt::format("plan '{}' must be a JSON object", name));
  PlanRules r;
  for (const auto& [key, value] : j.items()) {
    if (key == "inputs") {
      r.inputs = parse_rules(value, fmt::format("plan '{}' \"inputs\"", name));
    } else if (key == "attention") {
      r.attention = parse_rules(value, fmt::format("plan '{}' \"attention\"", name));
    } else if (key == "kv") {
      if (!value.is_string()) fail_usage(fmt::format("plan '{}': \"kv\" must be a string", name));
      r.kv = value.get<std::string>();
    } else if (in_recipe && (key == "default_scheme" || key == "method" || key == "importance" || key == "rules")) {
      r.has_weight_keys = true;  // the recipe's (Recipe::parse checks them)
    } else {
      fail_usage(fmt::format("plan '{}': unknown key \"{}\"; valid: inputs, attention, kv{}", name, key,
                             in_recipe ? ", and a recipe's default_scheme, method, importance, rules" : ""));
    }
  }
  return r;
}

PlanRules PlanRules::shorthand(const std::string& acts, const std::string& kv, const std::string& attn) {
  PlanRules r;
  r.kv = kv;
  if (attn != "none" && !attn.empty()) r.attention.push_back(PlanRule{".", attn, ""});
  if (acts != "none" && !acts.empty()) {
    PlanRule rule;
    // Llama blocks in GGUF and Hugging Face spellings, BERT encoder layers.
    rule.match = R"(^blk\.|^model\.layers\.|(^|\.)encoder\.layer\.)";
    rule.scheme = acts;
    if (const size_t at = rule.scheme.find("@static"); at != std::string::npos) {
      const std::string tail = rule.scheme.substr(at + 7);
      if (!tail.empty() && tail[0] != ':') fail_usage(fmt::format("'{}': write <scheme>@static or <scheme>@static:<rule>", acts));
      rule.static_rule = tail.empty() ? "absmax" : tail.substr(1);
      rule.scheme.resize(at);
    }
    r.inputs.push_back(std::move(rule));
  }
  return r;
}

QuantPlan QuantPlan::resolve(const PlanRules& rules, const std::vector<const Linear*>& linears, int64_t layers,
                             int64_t kv_dim, const StaticAmax& static_amax) {
  QuantPlan plan;
  // Settings are interned: points whose settings are equal share an index.
  const auto intern = [&](ActQuant a) -> size_t {
    for (size_t i = 0; i < plan.quants_.size(); ++i) {
      const ActQuant& b = plan.quants_[i];
      if (b.scheme.spec() == a.scheme.spec() && b.static_amax == a.static_amax && b.static_rule == a.static_rule) {
        return i;
      }
    }
    plan.quants_.push_back(std::move(a));
    return plan.quants_.size() - 1;
  };
  const auto compile = [](const std::vector<PlanRule>& list, const char* what) {
    std::vector<NamePattern> res;
    for (size_t i = 0; i < list.size(); ++i) {
      res.push_back(NamePattern::compile(list[i].match, ErrorKind::kUsage, fmt::format("{} rule {}", what, i + 1)));
    }
    return res;
  };
  const std::vector<NamePattern> input_res = compile(rules.inputs, "input");
  const std::vector<NamePattern> attn_res = compile(rules.attention, "attention");
  std::vector<bool> input_used(rules.inputs.size()), attn_used(rules.attention.size());

  for (const Linear* lin : linears) {
    for (size_t i = 0; i < rules.inputs.size(); ++i) {
      if (!input_res[i].search(lin->name())) continue;
      input_used[i] = true;
      const PlanRule& rule = rules.inputs[i];
      if (rule.scheme == "none") break;
      if (!rule.static_rule.empty()) {
        if (!static_amax) {
          fail_usage(fmt::format("input rule {} ({}) asks for static scales, and no calibration file was given "
                                 "(--calib FILE from lowbit calibrate)",
                                 i + 1, rule.match));
        }
        // The scheme is checked first, so that a static /channel is named as
        // such before any calibration is read.
        const ActQuant shape = ActQuant::fixed(rule.scheme, 1.0f);
        const std::optional<float> amax = static_amax(lin->name(), lin->in_features(), shape.scheme, rule.static_rule);
        if (!amax) {
          fail_usage(fmt::format("input rule {} ({}): the calibration has no largest |x| for '{}' (was it made for "
                                 "this model by lowbit calibrate?)",
                                 i + 1, rule.match, lin->name()));
        }
        ActQuant a = ActQuant::fixed(rule.scheme, *amax);
        a.static_rule = rule.static_rule;
        plan.input_[lin->name()] = intern(std::move(a));
      } else {
        plan.input_[lin->name()] = intern(ActQuant::dynamic(rule.scheme));
      }
      break;
    }
  }
  plan.attention_.assign(static_cast<size_t>(layers), {-1, -1, -1, -1});
  for (int64_t l = 0; l < layers; ++l) {
    for (int p = 0; p < 4; ++p) {
      const std::string name = fmt::format("blk.{}.attn.{}", l, kPointNames[p]);
      for (size_t i = 0; i < rules.attention.size(); ++i) {
        if (!attn_res[i].search(name)) continue;
        attn_used[i] = true;
        const PlanRule& rule = rules.attention[i];
        if (rule.scheme == "none") break;
        if (!rule.static_rule.empty()) {
          fail_usage(fmt::format("attention rule {} ({}): static scales are recorded for Linear inputs only; use a "
                                 "dynamic scheme",
                                 i + 1, rule.match));
        }
        plan.attention_[static_cast<size_t>(l)][static_cast<size_t>(p)] =
            static_cast<int>(intern(ActQuant::dynamic(rule.scheme)));
        break;
      }
    }
  }
  for (size_t i = 0; i < input_used.size(); ++i) {
    if (!input_used[i]) {
      fail_usage(fmt::format("input rule {} ({}) matches no Linear of the model (names look like '{}')", i + 1,
                             rules.inputs[i].match, linears.empty() ? std::string() : linears.front()->name()));
    }
  }
  for (size_t i = 0; i < attn_used.size(); ++i) {
    if (!attn_used[i]) {
      fail_usage(fmt::format("attention rule {} ({}) matches no attention point (blk.<i>.attn.q, .k, .p or .v)",
                             i + 1, rules.attention[i].match));
    }
  }
  plan.kv_ = KvQuant::parse(rules.kv);
  if (plan.kv_) plan.kv_->check_width(kv_dim);

  for (const auto& [name, index] : plan.input_) {
    plan.described_.push_back(fmt::format("input {}: {}", name, plan.quants_[index].describe()));
  }
  for (int64_t l = 0; l < layers; ++l) {
    for (int p = 0; p < 4; ++p) {
      const int index = plan.attention_[static_cast<size_t>(l)][static_cast<size_t>(p)];
      if (index >= 0) {
        plan.described_.push_back(
            fmt::format("blk.{}.attn.{}: {}", l, kPointNames[p], plan.quants_[static_cast<size_t>(index)].describe()));
      }
    }
  }
  if (plan.kv_) plan.described_.push_back("kv cache: " + plan.kv_->spec());
  return plan;
}

int QuantPlan::input_index(const Linear& linear) const {
  const auto it = input_.find(linear.name());
  return it == input_.end() ? -1 : static_cast<int>(it->second);
}

const ActQuant* QuantPlan::input(const Linear& linear) const {
  const int i = input_index(linear);
  return i < 0 ? nullptr : &quants_[static_cast<size_t>(i)];
}

std::array<const float*, 3> QuantPlan::inputs(std::initializer_list<const Linear*> linears, const float* x,
                                             int64_t rows, std::span<const int64_t> segments, InputScratch& scratch,
                                             int threads) const {
  std::array<const float*, 3> out{x, x, x};
  std::array<int, 3> index{-1, -1, -1};
  if (linears.size() > 3) fail_internal("QuantPlan::inputs: more than 3 Linears share an input");
  size_t i = 0;
  for (const Linear* lin : linears) {
    index[i] = input_index(*lin);
    for (size_t j = 0; j < i && index[i] >= 0; ++j) {
      if (index[j] == index[i]) {
        out[i] = out[j];
        break;
      }
    }
    if (index[i] >= 0 && out[i] == x) {
      const ActQuant& a = quants_[static_cast<size_t>(index[i])];
      const int64_t cols = lin->in_features();
      scratch[i].resize(static_cast<size_t>(rows * cols));
      if (segments.empty()) {
        a.apply(x, rows, cols, scratch[i].data(), threads);
      } else {
        for (size_t s = 0; s + 1 < segments.size(); ++s) {
          a.apply(x + segments[s] * cols, segments[s + 1] - segments[s], cols, scratch[i].data() + segments[s] * cols,
                  threads);
        }
      }
      out[i] = scratch[i].data();
    }
    ++i;
  }
  return out;
}

const ActQuant* QuantPlan::attention(int64_t layer, AttentionPoint p) const {
  if (layer < 0 || layer >= static_cast<int64_t>(attention_.size())) return nullptr;
  const int i = attention_[static_cast<size_t>(layer)][static_cast<size_t>(p)];
  return i < 0 ? nullptr : &quants_[static_cast<size_t>(i)];
}

double QuantPlan::input_bits(const std::vector<const Linear*>& linears) const {
  double bits = 0, cols = 0;
  for (const Linear* lin : linears) {
    const ActQuant* a = input(*lin);
    const double c = static_cast<double>(lin->in_features());
    bits += c * (a ? a->bits_per_element(lin->in_features()) : 32.0);
    cols += c;
  }
  return cols > 0 ? bits / cols : 32.0;
}

std::vector<std::string> QuantPlan::describe() const { return described_; }

}  // namespace lowbit
